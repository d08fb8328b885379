"""The Lambda functions, and the agreement between what the stack sets and what the code reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import REPO_ROOT, Synth, require_node

require_node()

from infra.environment import (  # noqa: E402
    ENV_MODEL_DIR,
    FORBIDDEN_ON_AWS,
    HANDLER_ENV,
    LAMBDA_MODEL_DIR,
    NOT_SET_ON_AWS,
    Handler,
)
from tests.infra.template_tools import functions_by_handler, logical_id_of, render  # noqa: E402

PACKAGE = REPO_ROOT / "functions" / "kestrel"
DOCKERFILE = REPO_ROOT / "functions" / "Dockerfile"
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}


def _kestrel_variables(properties: dict[str, Any]) -> set[str]:
    variables = properties["Environment"]["Variables"]
    return {name for name in variables if name.startswith("KESTREL_")}


def test_one_function_per_handler(dev: Synth) -> None:
    assert set(functions_by_handler(dev)) == {handler.value for handler in Handler}
    assert len(dev.resources("AWS::Lambda::Function")) == len(Handler)  # nothing else runs code


def test_functions_share_one_image(dev: Synth) -> None:
    functions = functions_by_handler(dev)
    image_uris = {render(properties["Code"]["ImageUri"]) for _, properties in functions.values()}
    assert len(image_uris) == 1, "every function runs the same image (one build per deploy)"
    assert all(properties["PackageType"] == "Image" for _, properties in functions.values())


def test_functions_run_on_arm64_unless_told_otherwise(dev: Synth, prod: Synth) -> None:
    for synth, architecture, platform in ((dev, "arm64", "linux/arm64"), (prod, "x86_64", "linux/amd64")):
        for handler, (_, properties) in functions_by_handler(synth).items():
            assert properties["Architectures"] == [architecture], handler
        lambda_images = [
            image for image in _docker_images(synth).values() if image["source"]["dockerFile"] == "functions/Dockerfile"
        ]
        assert len(lambda_images) == 1
        assert lambda_images[0]["source"]["platform"] == platform


def _docker_images(synth: Synth) -> dict[str, dict[str, Any]]:
    import json

    manifest = json.loads((synth.outdir / f"{synth.stack.stack_name}.assets.json").read_text())
    images: dict[str, dict[str, Any]] = manifest["dockerImages"]
    return images


def test_every_function_traces_and_logs_with_powertools(dev: Synth) -> None:
    log_groups = dev.resources("AWS::Logs::LogGroup")
    for handler, (_, properties) in functions_by_handler(dev).items():
        assert properties["TracingConfig"] == {"Mode": "Active"}, handler
        variables = properties["Environment"]["Variables"]
        assert set(variables) >= POWERTOOLS, handler
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Kestrel"
        assert variables["POWERTOOLS_SERVICE_NAME"] == f"kestrel-{Handler(handler).short_name}"
        assert variables["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"  # events carry tokens
        log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group]["Properties"]["RetentionInDays"] > 0, handler


def test_each_function_gets_exactly_the_variables_its_handler_reads(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        for handler, (_, properties) in functions_by_handler(synth).items():
            assert _kestrel_variables(properties) == set(HANDLER_ENV[Handler(handler)]), handler


def test_variable_values_point_at_the_stack_resources(dev: Synth) -> None:
    functions = functions_by_handler(dev)
    table = {"Ref": logical_id_of(dev, "DataItemsV2", "AWS::DynamoDB::Table")}
    bucket = {"Ref": logical_id_of(dev, "DataBlobs", "AWS::S3::Bucket")}
    for handler, (_, properties) in functions.items():
        variables = properties["Environment"]["Variables"]
        assert variables["KESTREL_RUNTIME"] == "aws", handler
        assert variables["KESTREL_TABLE"] == table, handler
        assert variables["KESTREL_BUCKET"] == bucket, handler
    api = functions[Handler.API.value][1]["Environment"]["Variables"]
    assert api["KESTREL_QUEUE_URL"] == {"Ref": logical_id_of(dev, "TrainingTrainRequests", "AWS::SQS::Queue")}
    classify = functions[Handler.CLASSIFY.value][1]["Environment"]["Variables"]
    assert classify[ENV_MODEL_DIR] == LAMBDA_MODEL_DIR
    launcher = functions[Handler.LAUNCHER.value][1]["Environment"]["Variables"]
    role = logical_id_of(dev, "TrainingSageMakerRole", "AWS::IAM::Role")
    assert launcher["KESTREL_TRAINING_ROLE_ARN"] == {"Fn::GetAtt": [role, "Arn"]}
    assert launcher["KESTREL_TRAINING_INSTANCE_TYPE"] == "ml.m5.large"
    assert launcher["KESTREL_TRAINING_MAX_SECONDS"] == "3600"
    training_images = [k for k, v in _docker_images(dev).items() if v["source"]["dockerFile"] == "training/Dockerfile"]
    assert len(training_images) == 1
    assert render(launcher["KESTREL_TRAINING_IMAGE_URI"]).endswith(f":{training_images[0]}")
    for handler in (Handler.LAUNCHER, Handler.FINISHER):
        variables = functions[handler.value][1]["Environment"]["Variables"]
        assert variables["KESTREL_MAIL_FROM"] == "kestrel@example.com"
        assert variables["KESTREL_SES_CONFIGURATION_SET"] == {
            "Ref": logical_id_of(dev, "NotificationsConfigurationSet", "AWS::SES::ConfigurationSet")
        }
        assert render(variables["KESTREL_CONSOLE_URL"]).startswith("https://<ConsoleCdn")


def test_every_config_variable_is_set_for_a_handler_or_deliberately_not() -> None:
    from kestrel import config

    constants = {value for name, value in vars(config).items() if name.startswith("ENV_")}
    used = set().union(*HANDLER_ENV.values())
    assert not used & set(NOT_SET_ON_AWS), "a variable cannot be both set and deliberately unset"
    unaccounted = constants - used - set(NOT_SET_ON_AWS)
    assert not unaccounted, (
        f"kestrel.config reads {sorted(unaccounted)} but infra/environment.py neither sets it for a "
        "handler (HANDLER_ENV) nor says why not (NOT_SET_ON_AWS)"
    )


def test_every_kestrel_variable_the_package_reads_is_accounted_for() -> None:
    """Beyond kestrel.config: any "KESTREL_..." string in the package is a variable someone reads."""
    found: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        for name in re.findall(r"[\"'](KESTREL_[A-Z0-9_]+)[\"']", path.read_text()):
            found.setdefault(name, str(path.relative_to(REPO_ROOT)))
    used = set().union(*HANDLER_ENV.values())
    unaccounted = {name: where for name, where in found.items() if name not in used | set(NOT_SET_ON_AWS)}
    assert not unaccounted, f"add these to infra/environment.py (HANDLER_ENV or NOT_SET_ON_AWS): {unaccounted}"
    assert used <= set(found), f"the stack sets variables no code reads: {sorted(used - set(found))}"


def test_forbidden_variables_are_never_set(dev: Synth, prod: Synth) -> None:
    assert "KESTREL_FETCH_ALLOW_HOSTS" in FORBIDDEN_ON_AWS
    for synth in (dev, prod):
        for handler, (_, properties) in functions_by_handler(synth).items():
            assert not FORBIDDEN_ON_AWS & set(properties["Environment"]["Variables"]), handler


def test_model_dir_agrees_with_the_backbone_module_and_the_dockerfile() -> None:
    from kestrel.vision import backbone

    assert backbone.ENV_MODEL_DIR == ENV_MODEL_DIR
    text = DOCKERFILE.read_text()
    assert f"ARG {ENV_MODEL_DIR}={LAMBDA_MODEL_DIR}" in text
    assert f"ENV {ENV_MODEL_DIR}=${{{ENV_MODEL_DIR}}}" in text
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.12\b", text, re.MULTILINE)
    assert "python -m kestrel.vision.backbone" in text  # the backbone is baked in, not fetched
    assert "requirements.txt" in text


@pytest.mark.parametrize("handler", list(Handler), ids=lambda handler: handler.short_name)
def test_handler_string_names_a_lambda_handler(handler: Handler) -> None:
    module, function = handler.value.rsplit(".", 1)
    path = REPO_ROOT / "functions" / Path(*module.split("."))
    source = path.with_suffix(".py")
    if not source.exists():
        pytest.skip(f"{source.relative_to(REPO_ROOT)} is not written yet (the stack only names it)")
    tree = ast.parse(source.read_text())
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    names |= {  # lambda_handler = http_entry_point(...)
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert function in names, f"{source.relative_to(REPO_ROOT)} defines no {function}"


def _log_event_settings(tree: ast.AST) -> list[tuple[int, ast.expr]]:
    """(line, value) of every ``log_event=`` passed to Powertools' inject_lambda_context."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "inject_lambda_context":
            found.extend((node.lineno, keyword.value) for keyword in node.keywords if keyword.arg == "log_event")
    return found


def test_no_handler_logs_whole_events_against_the_stack_setting(dev: Synth) -> None:
    """The stack sets POWERTOOLS_LOGGER_LOG_EVENT=false for every function (events carry tokens,
    answers presigned URLs); a handler's ``log_event=True`` would override it (the finisher's did)."""
    for _, properties in functions_by_handler(dev).values():
        assert properties["Environment"]["Variables"]["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    handlers = sorted((PACKAGE / "handlers").glob("*.py"))
    assert any(path.name == "finisher.py" for path in handlers)
    for path in handlers:
        for line, value in _log_event_settings(ast.parse(path.read_text())):
            assert isinstance(value, ast.Constant) and value.value is False, (
                f"{path.relative_to(REPO_ROOT)}:{line}: log_event may only be False (or left to the environment)"
            )


def test_the_log_event_check_sees_a_decorator_argument() -> None:
    tree = ast.parse("@logger.inject_lambda_context(log_event=True)\ndef lambda_handler(event, context): ...\n")
    ((line, value),) = _log_event_settings(tree)
    assert line == 1 and isinstance(value, ast.Constant) and value.value is True


def test_memory_and_timeouts(dev: Synth, prod: Synth) -> None:
    for synth, classify_memory in ((dev, 3008), (prod, 4096)):
        functions = functions_by_handler(synth)
        assert functions[Handler.CLASSIFY.value][1]["MemorySize"] == classify_memory
        for handler in (Handler.API, Handler.CLASSIFY, Handler.AUTHORIZER):
            # API Gateway gives up after 29 s: a longer function would only waste money.
            assert functions[handler.value][1]["Timeout"] <= 29, handler


def test_lambda_image_context_is_only_the_package_and_its_requirements(dev: Synth) -> None:
    (asset,) = [k for k, v in _docker_images(dev).items() if v["source"]["dockerFile"] == "functions/Dockerfile"]
    staged = dev.outdir / f"asset.{asset}"
    # (CDK writes the exclude patterns as .dockerignore for the build.)
    assert sorted(p.name for p in staged.iterdir()) == [".dockerignore", "functions", "requirements.txt"]
    assert (staged / "functions" / "Dockerfile").is_file()
    assert (staged / "functions" / "kestrel" / "handlers" / "api.py").is_file()
    leftovers = [p for p in staged.rglob("*") if p.name == "__pycache__" or p.name.endswith((".pyc", ".egg-info"))]
    assert not leftovers


def test_manual_docker_builds_see_the_same_context_as_cdk() -> None:
    from infra.functions import LAMBDA_CONTEXT_EXCLUDE

    ignore = REPO_ROOT / "functions" / "Dockerfile.dockerignore"
    lines = [line.strip() for line in ignore.read_text().splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == LAMBDA_CONTEXT_EXCLUDE
