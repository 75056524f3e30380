"""The project's own template check catches what cfn-lint misses in SAM templates."""

from __future__ import annotations

import copy

from local.check_template import function_errors, operations_errors, reference_errors, route_errors
from local.template import Tag, load_template


def test_the_template_passes() -> None:
    template = load_template()
    assert reference_errors(template) == []
    assert function_errors(template) == []
    assert route_errors() == []
    assert operations_errors(template) == []


def test_a_ref_to_a_missing_resource_is_reported() -> None:
    template = copy.deepcopy(load_template())
    template["Resources"]["Extra"] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"KmsMasterKeyId": Tag("Ref", "Nope")},
    }
    template["Resources"]["Extra2"] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": Tag("GetAtt", "Missing.Arn"), "DisplayName": Tag("Sub", "${Gone}-x")},
    }
    errors = reference_errors(template)
    assert any("'Nope'" in e for e in errors)
    assert any("'Missing'" in e for e in errors)
    assert any("'Gone'" in e for e in errors)


def test_a_bad_handler_codeuri_or_runtime_is_reported() -> None:
    template = copy.deepcopy(load_template())
    functions = template["Resources"]
    functions["GetConnectionFunction"]["Properties"]["Handler"] = "app.no_such_function"
    functions["ListGroupsFunction"]["Properties"]["CodeUri"] = "functions/nowhere/"
    functions["GetGroupFunction"]["Properties"]["Runtime"] = "python3.99"
    errors = "\n".join(function_errors(template))
    assert "no function 'no_such_function'" in errors
    assert "functions/nowhere/" in errors
    assert "python3.99" in errors


def test_an_alarm_on_a_metric_nothing_emits_is_reported() -> None:
    template = copy.deepcopy(load_template())
    template["Resources"]["SyncFailuresAlarm"]["Properties"]["MetricName"] = "SyncFailurez"
    expected = "SyncFailuresAlarm watches Sluice/SyncFailurez, which nothing emits"
    assert operations_errors(template) == [expected]


def test_an_async_target_without_a_dead_letter_queue_or_on_failure_destination_is_reported() -> None:
    template = copy.deepcopy(load_template())
    worker = template["Resources"]["SyncWorkerFunction"]["Properties"]
    del worker["Events"]["SyncRequested"]["Properties"]["DeadLetterConfig"]
    del worker["EventInvokeConfig"]
    errors = operations_errors(template)
    assert "SyncWorkerFunction.SyncRequested has no DeadLetterConfig" in errors
    assert any(e.startswith("SyncWorkerFunction is invoked asynchronously") for e in errors)


def test_a_dashboard_showing_a_metric_nothing_emits_is_reported() -> None:
    template = copy.deepcopy(load_template())
    dashboard = template["Resources"]["Dashboard"]["Properties"]
    body = dashboard["DashboardBody"]
    dashboard["DashboardBody"] = Tag("Sub", body.value.replace('"TickLag"', '"TickLagz"'))
    assert operations_errors(template) == ["Dashboard shows Sluice/TickLagz, which nothing emits"]
    dashboard["DashboardBody"] = Tag("Sub", "{not json")
    assert operations_errors(template) == ["Dashboard's DashboardBody is not JSON with widgets"]
