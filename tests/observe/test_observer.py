"""The Observer turns each report into metrics and audit records with exactly the fields it chose."""

from __future__ import annotations

from support.metrics import parse, value

from castproxy.observe import CURRENT, AuditTrail, Observer, RequestInfo


def samples(observer: Observer) -> dict:
    return parse(observer.metrics.render().decode())


def test_a_tool_call_outside_a_request_names_no_caller() -> None:
    observer = Observer(AuditTrail(None))
    observer.tool_call("ws", "getItem", "getItem", "upstream_error", 503, 0.25)
    [record] = observer.audit.records()
    assert {key: record[key] for key in ("event", "workspace", "tool", "outcome", "upstream_status")} == {
        "event": "tool_call", "workspace": "ws", "tool": "getItem", "outcome": "upstream_error",
        "upstream_status": 503}
    assert record["duration_ms"] == 250.0 and "caller" not in record and "arguments" not in record
    assert value(samples(observer), "castproxy_tool_calls_total", workspace="ws", tool="getItem",
                 outcome="upstream_error") == 1


def test_a_call_in_a_request_names_its_caller_and_only_argument_names_on_opt_in() -> None:
    observer = Observer(AuditTrail(None))
    observer._argument_names = frozenset({"opted"})
    for workspace in ("opted", "plain"):
        token = CURRENT.set(RequestInfo(workspace, client_id="cpc-1", grant="0123456789ab", address="10.0.0.1"))
        try:
            observer.note_arguments({"password": "hunter2", "id": 7})
            observer.tool_call(workspace, "login", "login", "ok", 200, 0.01)
        finally:
            CURRENT.reset(token)
    plain, opted = observer.audit.records()
    assert opted["arguments"] == ["id", "password"] and "arguments" not in plain
    assert opted["caller"] == {"client_id": "cpc-1", "grant": "0123456789ab", "address": "10.0.0.1"}
    assert "hunter2" not in str(observer.audit.records())


def test_auth_events_are_counted_and_failures_recorded() -> None:
    observer = Observer(AuditTrail(None))
    observer.token_refresh("ws", outcome="ok", grant="g1")
    observer.token_refresh("ws", outcome="failed", grant="g1", reason="temporarily_unavailable")
    observer.sign_in("ws", outcome="failed", client_id="cpc-2", reason="access_denied")
    observer.consent("ws", client_id="cpc-2", decision="deny")
    observer.record_reload(False, problems=("cast.yaml:3:5: unknown key", "another"))
    events = [(r["event"], r["outcome"]) for r in reversed(observer.audit.records())]
    assert events == [("token_refresh_failed", "failed"), ("sign_in", "failed"), ("consent", "deny"),
                      ("reload", "failed")]  # a successful refresh is counted, not recorded
    reload = observer.audit.records()[0]
    assert reload["problems"] == 2 and reload["detail"] == "cast.yaml:3:5: unknown key"
    found = samples(observer)
    assert value(found, "castproxy_token_refreshes_total", workspace="ws", outcome="ok") == 1
    assert value(found, "castproxy_token_refreshes_total", workspace="ws", outcome="failed") == 1
    assert value(found, "castproxy_sign_ins_total", workspace="ws", outcome="failed") == 1
    assert value(found, "castproxy_config_reloads_total", outcome="failed") == 1
