"""Lambda entry point: SQS train requests -> manifest + SageMaker training job + email.

Failures are reported per message (partial batch response), so one bad request does not make
SQS redeliver the whole batch, even when every record failed (the response then lists them all).
After ``max_receives`` receives a message goes to the dead-letter queue; on that last receive a
launch that fails again marks the version Failed (with the reason, and a mail), so no version
waits forever for a launch that will not come."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from kestrel.composition import get_ports
from kestrel.flow.launch import give_up, launch
from kestrel.metrics import count
from kestrel.ports.jobs import TrainRequest

logger = Logger(service="kestrel-launcher")
tracer = Tracer(service="kestrel-launcher")
metrics = Metrics(namespace="Kestrel", service="launcher")
# A batch whose records all failed is answered like any other: the failed ones are listed (not
# raised, which would count as a crash of the function and retry the batch as a whole).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _receives(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (KeyError, TypeError, ValueError):
        return 1


@tracer.capture_method
def handle_record(record: SQSRecord) -> None:
    try:
        request = TrainRequest.from_message(json.loads(record.body))
    except (ValueError, KeyError, TypeError):
        # Nothing names a version to fail: back to the queue, then to the dead letters (alarmed).
        logger.exception("train request that is not one", extra={"message_id": record.message_id})
        raise
    logger.append_keys(model_id=request.model_id, task_id=request.task_id)
    ports = get_ports()
    try:
        launch(ports, request)
    except Exception as error:
        receives = _receives(record)
        logger.exception("launch failed", extra={"receives": receives})
        count(metrics, "TrainingLaunchFailed")
        if receives >= ports.settings.training.max_receives:
            give_up(ports, request, error, receives)
        raise
    count(metrics, "TrainingLaunched")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
