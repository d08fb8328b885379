"""Lambda entry point: "SageMaker Training Job State Change" (EventBridge) -> TRAINED/FAILED + email."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from kestrel.composition import get_ports
from kestrel.domain.entities import TrainStatus
from kestrel.flow.finish import finish
from kestrel.metrics import count

logger = Logger(service="kestrel-finisher")
tracer = Tracer(service="kestrel-finisher")
metrics = Metrics(namespace="Kestrel", service="finisher")


# log_event is left to POWERTOOLS_LOGGER_LOG_EVENT (the stack sets it to false for every function).
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    # Counted only when one of this stage's models changed state: repeats and other jobs are not.
    outcome = finish(get_ports(), event)
    if outcome == TrainStatus.FAILED:
        count(metrics, "TrainingFailed")
    elif outcome == TrainStatus.TRAINED:
        count(metrics, "TrainingCompleted")
