"""The training flow's AWS adapters: SQS for train requests, SageMaker for jobs."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from kestrel.adapters.aws_clients import LazyClient
from kestrel.config import TrainingSettings
from kestrel.ports.jobs import JobSpec, TrainRequest


class SqsTrainQueue(LazyClient):
    service = "sqs"

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._given = client

    def send(self, request: TrainRequest) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(request.to_message()))


class SageMakerJobLauncher(LazyClient):
    """CreateTrainingJob with the training image; the job reads its manifest from the bucket."""

    service = "sagemaker"

    def __init__(
        self, settings: TrainingSettings, bucket: str, environment: dict[str, str], client: Any = None
    ) -> None:
        self.settings = settings
        self.bucket = bucket
        self.environment = environment
        self._given = client

    def request(self, spec: JobSpec) -> dict[str, Any]:
        """The CreateTrainingJob request for ``spec`` (kept apart so tests can read it)."""
        return {
            "TrainingJobName": spec.job_name,
            "AlgorithmSpecification": {"TrainingImage": self.settings.image_uri, "TrainingInputMode": "File"},
            "RoleArn": self.settings.role_arn,
            "InputDataConfig": [
                {
                    "ChannelName": "manifest",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": f"s3://{self.bucket}/{spec.manifest_key}",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": "application/json",
                }
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{self.bucket}/{spec.output_prefix}"},
            "ResourceConfig": {
                "InstanceType": self.settings.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": 30,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": self.settings.max_seconds},
            "HyperParameters": dict(spec.hyperparameters),
            "Environment": dict(self.environment),
            "Tags": [{"Key": key, "Value": value} for key, value in spec.tags.items()],
        }

    def launch(self, spec: JobSpec) -> bool:
        try:
            self._client.create_training_job(**self.request(spec))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            if code == "ResourceInUse" or "already exists" in message:
                return False  # a redelivered request: the job was started the first time
            raise
        return True
