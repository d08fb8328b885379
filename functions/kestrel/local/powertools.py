"""Powertools for the local runtime: configured here, explicitly, by whoever runs handlers locally
(``kestrel serve``, its worker processes, the test suite), never as a side effect of an import.

On AWS the Lambdas print metrics as EMF lines for CloudWatch. Locally nothing reads them: they
would only bury the request log, and a handler run in the CLI's process would print them into the
CLI's own output."""

from __future__ import annotations

import warnings

from aws_lambda_powertools.metrics.provider import cold_start

from kestrel.config import disable_powertools_metrics


def quiet_local_powertools() -> None:
    """No EMF metric lines in this process (and no warning that a request recorded none).

    Powertools' switch silences the metrics a handler adds, but its ColdStart metric is printed
    by a path that ignores the switch (``single_metric``): so the local runtime counts itself as
    warm from the start, and no first request prints one."""
    disable_powertools_metrics()
    cold_start.is_cold_start = False
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
