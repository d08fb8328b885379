"""Observability: the alarms that page someone, the topic they go to, and one dashboard.

(Powertools log/metric/trace settings are set on every function by infra.functions.)"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.api import Api
from infra.environment import METRICS_NAMESPACE, Handler
from infra.nag import acknowledge
from infra.settings import Settings
from infra.training import Training

PERIOD = Duration.minutes(5)
API_5XX_THRESHOLD = 5  # per 5 minutes: one stray 5xx is noise, five is an incident
#: Emitted by the finisher (kestrel.handlers.finisher: Metrics(namespace="Kestrel", service="finisher")).
TRAINING_FAILED = cloudwatch.Metric(
    namespace=METRICS_NAMESPACE,
    metric_name="TrainingFailed",
    dimensions_map={"service": "finisher"},
    statistic="Sum",
    period=PERIOD,
)
TRAINING_COMPLETED = cloudwatch.Metric(
    namespace=METRICS_NAMESPACE,
    metric_name="TrainingCompleted",
    dimensions_map={"service": "finisher"},
    statistic="Sum",
    period=PERIOD,
)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        api: Api,
        training: Training,
        functions: dict[Handler, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"Kestrel alarms ({settings.stage})", enforce_ssl=True)
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        acknowledge(
            self.topic,
            "AwsSolutions-SNS2",
            "Alarm notifications carry alarm names and metric values, no customer data; CloudWatch "
            "cannot publish to a topic under the AWS managed SNS key, and a customer key costs "
            "1 USD a month at idle.",
        )
        action = actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(name: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
            created = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # idle is healthy
                alarm_description=description,
            )
            created.add_alarm_action(action)
            self.alarms[name] = created

        alarm(
            "Api5xx",
            api.rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            API_5XX_THRESHOLD,
            f"API Gateway answered {API_5XX_THRESHOLD}+ server errors in 5 minutes",
        )
        alarm(
            "TrainRequestsDlq",
            _queue_depth(training.dead_letters),
            1,
            "A train request failed to launch 3 times and waits in the dead-letter queue",
        )
        alarm(
            "FinisherDlq",
            _queue_depth(training.event_dead_letters),
            1,
            "A training completion event could not be processed and waits in the dead-letter queue",
        )
        alarm("TrainingFailed", TRAINING_FAILED, 1, "A SageMaker training job ended Failed or Stopped")
        throttles = _sum_over(functions, "Throttles")
        alarm("LambdaThrottles", throttles, 1, "A Kestrel function was throttled (account concurrency)")
        errors = _sum_over(functions, "Errors")
        alarm("LambdaErrors", errors, 1, "A Kestrel function crashed or timed out (handled errors do not count)")

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"kestrel-{settings.stage}",
            default_interval=Duration.hours(6),
        )
        rest_api = api.rest_api
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    rest_api.metric_count(period=PERIOD, statistic="Sum"),
                    rest_api.metric_client_error(period=PERIOD, statistic="Sum"),
                    rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    rest_api.metric_latency(period=PERIOD, statistic="p50"),
                    rest_api.metric_latency(period=PERIOD, statistic="p90"),
                    rest_api.metric_integration_latency(period=PERIOD, statistic="p90"),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function duration p90 (ms)",
                left=[
                    fn.metric_duration(period=PERIOD, statistic="p90", label=h.short_name)
                    for h, fn in functions.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function errors and throttles",
                left=[errors, throttles],
                right=[
                    fn.metric("ConcurrentExecutions", period=PERIOD, statistic="Maximum", label=h.short_name)
                    for h, fn in functions.items()
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Training",
                left=[TRAINING_COMPLETED, TRAINING_FAILED],
                right=[
                    _queue_depth(training.queue, "waiting train requests"),
                    _queue_depth(training.dead_letters, "train request DLQ"),
                    _queue_depth(training.event_dead_letters, "finisher DLQ"),
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=12),
        )


def _queue_depth(queue: sqs.IQueue, label: str | None = None) -> cloudwatch.Metric:
    return queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum", label=label)


def _sum_over(functions: dict[Handler, lambda_.Function], metric_name: str) -> cloudwatch.MathExpression:
    metrics = {
        f"{metric_name.lower()}{index}": fn.metric(metric_name, period=PERIOD, statistic="Sum")
        for index, fn in enumerate(functions.values())
    }
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({key}, 0)" for key in metrics),
        using_metrics=metrics,
        label=f"{metric_name} (all functions)",
        period=PERIOD,
    )
