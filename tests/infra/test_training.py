"""Training: queue + DLQ, the launcher's event source, the SageMaker role and image, the rule."""

from __future__ import annotations

import json
import re
import shlex

from tests.infra.synth import REPO_ROOT, TRAINING_DOCKERFILE, Synth, require_node

require_node()

from aws_cdk.assertions import Match  # noqa: E402

from infra.training import JOB_PREFIX, MAX_RECEIVE_COUNT, TRAINING_CONTEXT_EXCLUDE  # noqa: E402
from tests.infra.template_tools import (  # noqa: E402
    functions_by_handler,
    grants,
    logical_id_of,
    role_of,
    role_statements,
    service_grants,
)

LAUNCHER = "kestrel.handlers.launcher.lambda_handler"
FINISHER = "kestrel.handlers.finisher.lambda_handler"


def test_train_requests_go_to_a_dead_letter_queue_after_three_failures(dev: Synth) -> None:
    from kestrel.config import TRAIN_MAX_RECEIVES, TrainingSettings

    queue_id = logical_id_of(dev, "TrainingTrainRequests", "AWS::SQS::Queue")
    dlq_id = logical_id_of(dev, "TrainingTrainRequestsDlq", "AWS::SQS::Queue")
    queue = dev.template_json["Resources"][queue_id]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 3}
    # The launcher gives a version up on the last receive: it must count as the queue does (the
    # moto test tests/flow/test_aws_faults.py builds its queue from the same constant).
    assert MAX_RECEIVE_COUNT == TRAIN_MAX_RECEIVES == TrainingSettings().max_receives == 3
    _, launcher = functions_by_handler(dev)[LAUNCHER]
    assert queue["VisibilityTimeout"] >= 6 * launcher["Timeout"]  # AWS's advice for Lambda sources


def test_every_queue_is_encrypted_and_tls_only(dev: Synth) -> None:
    queues = dev.resources("AWS::SQS::Queue")
    assert len(queues) == 3  # requests, their DLQ, the finisher's DLQ
    for logical_id, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, logical_id
    denied: set[str] = set()
    for policy in dev.resources("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                denied.update(ref["Ref"] for ref in policy["Properties"]["Queues"])
    assert denied == set(queues)


def test_launcher_reads_the_queue_with_partial_batch_failures(dev: Synth) -> None:
    launcher_id, _ = functions_by_handler(dev)[LAUNCHER]
    queue_id = logical_id_of(dev, "TrainingTrainRequests", "AWS::SQS::Queue")
    dev.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": launcher_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_rule_sends_kestrels_finished_jobs_to_the_finisher(dev: Synth) -> None:
    finisher_id, finisher = functions_by_handler(dev)[FINISHER]
    dlq_id = logical_id_of(dev, "TrainingFinisherDlq", "AWS::SQS::Queue")
    (rule,) = dev.resources("AWS::Events::Rule").values()
    properties = rule["Properties"]
    assert properties["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change"],
        "detail": {
            "TrainingJobStatus": ["Completed", "Failed", "Stopped"],
            "TrainingJobName": [{"prefix": "kestrel-"}],
        },
    }
    (target,) = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [finisher_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # A finisher run that fails all of Lambda's async retries lands in the same DLQ.
    assert finisher["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}}


def test_job_names_the_code_makes_match_the_rule_and_the_grants() -> None:
    from kestrel.store.lifecycle import job_name, model_id_of_job

    assert JOB_PREFIX == "kestrel-"
    name = job_name("m-123")
    assert name.startswith(JOB_PREFIX)
    assert model_id_of_job(name) == "m-123"


def test_manifest_and_output_keys_fall_under_the_granted_prefixes() -> None:
    from kestrel.flow.launch import manifest_key, output_prefix

    assert re.fullmatch(r"jobs/[^/]+/[^/]+", manifest_key("m-1")), manifest_key("m-1")
    # SageMaker writes <output_prefix>/<job>/output/model.tar.gz: under "jobs/*/output/*".
    assert re.fullmatch(r"jobs/[^/]+/output", output_prefix("m-1").rstrip("/"))


def _role_id(dev: Synth) -> str:
    return logical_id_of(dev, "TrainingSageMakerRole", "AWS::IAM::Role")


def test_sagemaker_role_trusts_sagemaker_and_has_only_its_prefixes(dev: Synth) -> None:
    role_id = _role_id(dev)
    role = dev.template_json["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    statements = role_statements(dev, role_id)
    blobs = logical_id_of(dev, "DataBlobs", "AWS::S3::Bucket")
    assert service_grants(statements, "s3") == {
        ("s3:GetObject", f"<{blobs}.Arn>/jobs/*"),
        ("s3:GetObject", f"<{blobs}.Arn>/images/*"),
        ("s3:GetObject", f"<{blobs}.Arn>/embeddings/*"),
        ("s3:PutObject", f"<{blobs}.Arn>/embeddings/*"),
        ("s3:PutObject", f"<{blobs}.Arn>/jobs/*/output/*"),
        ("s3:ListBucket", f"<{blobs}.Arn>"),
    }
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLikeIfExists": {"s3:prefix": ["jobs/*", "images/*", "embeddings/*"]}}
    assert not service_grants(statements, "dynamodb")
    logs = service_grants(statements, "logs")
    assert logs and all("/aws/sagemaker/TrainingJobs" in resource for _, resource in logs)
    ecr = service_grants(statements, "ecr")
    assert ("ecr:GetAuthorizationToken", "*") in ecr
    assert all("container-assets" in resource for action, resource in ecr if action != "ecr:GetAuthorizationToken")


def test_only_the_launcher_starts_jobs_and_passes_the_role(dev: Synth) -> None:
    role_arn = f"<{_role_id(dev)}.Arn>"
    jobs = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/kestrel-*"
    for handler, (_, properties) in functions_by_handler(dev).items():
        statements = role_statements(dev, role_of(properties))
        allowed = grants(statements)
        passes = [s for s in statements if s["Action"] == "iam:PassRole"]
        if handler == LAUNCHER:
            assert {("sagemaker:CreateTrainingJob", jobs), ("sagemaker:AddTags", jobs)} <= allowed
            (statement,) = passes
            assert statement["Resource"] == {"Fn::GetAtt": [_role_id(dev), "Arn"]}
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
            assert ("iam:PassRole", role_arn) in allowed
        else:
            assert not passes, handler
            assert ("sagemaker:CreateTrainingJob", jobs) not in allowed, handler
        if handler == FINISHER:
            # The completion event carries all the finisher reads (status, reason, artefact path).
            assert not service_grants(statements, "sagemaker"), "the finisher calls no SageMaker API"


def test_training_image_is_built_from_training_dockerfile_for_x86(dev: Synth) -> None:
    manifest = json.loads((dev.outdir / f"{dev.stack.stack_name}.assets.json").read_text())
    (image_hash,) = [
        key for key, image in manifest["dockerImages"].items() if image["source"]["dockerFile"] == "training/Dockerfile"
    ]
    source = manifest["dockerImages"][image_hash]["source"]
    assert source["platform"] == "linux/amd64"  # SageMaker's ml.m5/ml.c5 hosts
    staged = {path.name for path in (dev.outdir / f"asset.{image_hash}").iterdir()}
    assert {"training", "functions", "requirements.txt"} <= staged
    assert ".venv" not in staged and "tests" not in staged and "web" not in staged


def _context_allows(relative: str) -> bool:
    """Whether the training image's build context (TRAINING_CONTEXT_EXCLUDE) contains ``relative``."""
    top = relative.strip("/").split("/")[0]
    return f"!{top}" in TRAINING_CONTEXT_EXCLUDE


def test_training_dockerfile_copies_only_what_its_context_has() -> None:
    """The image is built with the repository root as context, cut down to a few paths: every
    COPY/ADD source of training/Dockerfile must exist there (this catches a Dockerfile written
    for another context before a deploy does)."""
    assert TRAINING_DOCKERFILE.is_file(), f"{TRAINING_DOCKERFILE} is missing"
    text = re.sub(r"\\\n", " ", TRAINING_DOCKERFILE.read_text())
    copies = 0
    for line in text.splitlines():
        words = shlex.split(line.strip(), comments=True) if line.strip() else []
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        arguments = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]):
            continue  # from another stage, not from the context
        if arguments and arguments[0].startswith("["):
            arguments = json.loads(" ".join(arguments))
        for source in arguments[:-1]:
            copies += 1
            assert _context_allows(source), f"training/Dockerfile copies {source!r}, not in the build context"
            assert list(REPO_ROOT.glob(source.lstrip("./"))), f"training/Dockerfile copies {source!r}: no such path"
    assert copies, "training/Dockerfile copies nothing from its context"


def test_launcher_and_finisher_have_their_bucket_prefixes_only(dev: Synth) -> None:
    blobs = logical_id_of(dev, "DataBlobs", "AWS::S3::Bucket")
    functions = functions_by_handler(dev)
    launcher = service_grants(role_statements(dev, role_of(functions[LAUNCHER][1])), "s3")
    assert launcher == {("s3:PutObject", f"<{blobs}.Arn>/jobs/*")}
    finisher = service_grants(role_statements(dev, role_of(functions[FINISHER][1])), "s3")
    assert finisher == {
        ("s3:GetObject", f"<{blobs}.Arn>/jobs/*"),
        ("s3:GetObject", f"<{blobs}.Arn>/models/*"),
        ("s3:PutObject", f"<{blobs}.Arn>/models/*"),
        ("s3:ListBucket", f"<{blobs}.Arn>"),
    }
    dev.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2, "FunctionName": Match.any_value()}
    )
