"""Counting a Powertools metric without letting it pile up while metrics are switched off.

Powertools keeps added metrics until a flush, and a flush with metrics off (the local runtime)
keeps them too; at 100 values of one metric ``add_metric`` prints them itself, switch or not.
So a local process that served 100 requests printed an EMF line into whatever stdout it had
(the CLI's output, in tests). Counting only while metrics are on keeps nothing to print."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled


def count(metrics: Metrics, name: str) -> None:
    """Add 1 to ``name`` (a CloudWatch EMF count on AWS); nothing while metrics are off."""
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
