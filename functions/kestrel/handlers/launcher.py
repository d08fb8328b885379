"""Lambda entry point: SQS train requests -> manifest + SageMaker training job + email.

Failures are reported per message (partial batch response), so one bad request does not make
SQS redeliver the whole batch; after three receives a message goes to the dead-letter queue."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kestrel.composition import get_ports
from kestrel.flow.launch import launch
from kestrel.ports.training import TrainRequest

logger = Logger(service="kestrel-launcher")
tracer = Tracer(service="kestrel-launcher")
metrics = Metrics(namespace="Kestrel", service="launcher")
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def handle_record(record: SQSRecord) -> None:
    request = TrainRequest.from_message(json.loads(record.body))
    logger.append_keys(model_id=request.model_id, task_id=request.task_id)
    launch(get_ports(), request)
    metrics.add_metric(name="TrainingLaunched", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
