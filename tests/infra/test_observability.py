"""Alarms (API 5xx, DLQ depth, failed trainings, throttles), their topic, and the dashboard."""

from __future__ import annotations

from typing import Any

from tests.infra.synth import Synth, require_node

require_node()

from tests.infra.template_tools import functions_by_handler, logical_id_of  # noqa: E402


def _alarms(synth: Synth) -> list[dict[str, Any]]:
    return [alarm["Properties"] for alarm in synth.resources("AWS::CloudWatch::Alarm").values()]


def _metric_alarm(synth: Synth, namespace: str, metric: str) -> list[dict[str, Any]]:
    return [a for a in _alarms(synth) if a.get("Namespace") == namespace and a.get("MetricName") == metric]


def test_every_alarm_notifies_the_topic(dev: Synth) -> None:
    topic = logical_id_of(dev, "ObservabilityAlarmTopic", "AWS::SNS::Topic")
    alarms = _alarms(dev)
    assert len(alarms) >= 6
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic}], alarm.get("AlarmDescription")
        assert alarm["TreatMissingData"] == "notBreaching"


def test_api_5xx_alarm(dev: Synth) -> None:
    (alarm,) = _metric_alarm(dev, "AWS/ApiGateway", "5XXError")
    assert alarm["Statistic"] == "Sum"
    assert alarm["Dimensions"] == [{"Name": "ApiName", "Value": "kestrel-dev"}]


def test_dead_letter_queue_alarms(dev: Synth) -> None:
    alarms = _metric_alarm(dev, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    watched = {alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for alarm in alarms}
    assert watched == {
        logical_id_of(dev, "TrainingTrainRequestsDlq", "AWS::SQS::Queue"),
        logical_id_of(dev, "TrainingFinisherDlq", "AWS::SQS::Queue"),
    }
    assert all(alarm["Threshold"] == 1 for alarm in alarms)


def test_failed_training_alarm_reads_the_finishers_metric(dev: Synth) -> None:
    (alarm,) = _metric_alarm(dev, "Kestrel", "TrainingFailed")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "finisher"}]
    assert alarm["Threshold"] == 1


def test_finisher_emits_the_metric_the_alarm_reads() -> None:
    from tests.infra.synth import REPO_ROOT

    source = (REPO_ROOT / "functions" / "kestrel" / "handlers" / "finisher.py").read_text()
    assert 'namespace="Kestrel"' in source and 'service="finisher"' in source
    assert 'count(metrics, "TrainingFailed")' in source


def test_throttle_alarm_covers_every_function(dev: Synth) -> None:
    functions = {logical_id for logical_id, _ in functions_by_handler(dev).values()}
    (alarm,) = [a for a in _alarms(dev) if "Metrics" in a and "Throttles" in str(a["Metrics"])]
    watched = {
        query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    assert watched == functions


def test_dashboard_and_alarm_email(dev: Synth, prod: Synth) -> None:
    dev.template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    dev.template.resource_count_is("AWS::SNS::Subscription", 0)
    prod.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_alarm_topic_is_tls_only(dev: Synth) -> None:
    (policy,) = dev.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
