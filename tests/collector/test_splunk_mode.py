"""Splunk mode against the fake ingest: what is sent where, with which token; failures; secrets."""

from __future__ import annotations

import secrets

import pytest

from harness.collector import start_collector
from harness.fake_splunk import FakeSplunk

pytestmark = pytest.mark.timeout(120)

INGEST_KINDS = ("traces", "datapoints", "otlp_metrics")


def splunk_env(fake: FakeSplunk, token: str, **extra: str) -> dict[str, str]:
    """Splunk mode pointed at the fake through the URL overrides (no realm needed then)."""
    return {
        "SPLUNK_ACCESS_TOKEN": token,
        "SPLUNK_INGEST_URL": fake.url,
        "SPLUNK_API_URL": fake.url,
        "DEPLOYMENT_ENVIRONMENT": "lab-test",
        **extra,
    }


def test_traces_and_metrics_reach_ingest_with_the_token(otelcol, sdk, tmp_path):
    token = f"lab-{secrets.token_hex(12)}"
    with FakeSplunk(token=token) as fake:
        # Detailed debug output prints all data it has: the token must still not show up, even
        # though the client sends it as a header too (as apps pointed at Splunk directly do).
        env = splunk_env(fake, token, OTELCOL_DEBUG_VERBOSITY="detailed")
        with start_collector(tmp_path, mode="splunk", env=env) as agent:
            sent = sdk.telemetry(agent, "grpc", "svc-splunk", headers={"x-sf-token": token})

            def arrived():
                names = {p["name"] for p in fake.otlp_metric_points()}
                counters = [p for p in fake.datapoints() if p["metric"] == "lab.requests"]
                return len(fake.spans()) == 2 and "lab.duration" in names and counters

            fake.wait_until(arrived, timeout=30)

            ingest = [r for r in fake.requests() if r["kind"] in INGEST_KINDS]
            assert {r["path"] for r in ingest} == {"/v2/trace/otlp", "/v2/datapoint"}
            assert all(r["headers"]["x-sf-token"] == token for r in ingest)
            assert all(r["status"] == 200 for r in fake.requests())

            spans = {s["name"]: s for s in fake.spans()}
            client = spans["chat gpt-4o"]
            assert (client["trace_id"], client["span_id"]) == (sent.trace_id, sent.client_span_id)
            assert client["parent_span_id"] == sent.server_span_id
            assert client["kind"] == "CLIENT" and client["status_code"] == "ERROR"
            assert client["attributes"] == {"gen_ai.usage.output_tokens": 42}
            assert client["resource"]["deployment.environment.name"] == "lab-test"
            assert client["resource"]["deployment.environment"] == "lab-test"
            assert spans["POST /api/chat"]["attributes"]["http.response.status_code"] == 200

            # Histograms travel as OTLP (send_otlp_histograms), the counter as a SignalFx datapoint.
            (histogram,) = fake.otlp_metric_points()
            assert histogram["name"] == "lab.duration" and histogram["type"] == "histogram"
            assert histogram["count"] == 4
            assert histogram["sum"] == pytest.approx(sum(sdk.histogram_values))
            assert histogram["bucket_counts"] == [1, 1, 1, 1]
            assert histogram["explicit_bounds"] == sdk.histogram_bounds
            assert histogram["resource"]["deployment.environment"] == "lab-test"
            (counter,) = [p for p in fake.datapoints() if p["metric"] == "lab.requests"]
            assert counter["value"] == 7
            assert counter["type"] == "CUMULATIVE_COUNTER"
            assert counter["dimensions"]["gen_ai.request.model"] == "gpt-4o"
            assert counter["dimensions"]["deployment.environment"] == "lab-test"
            assert counter["dimensions"]["service.name"] == "svc-splunk"

            # Logs stay local without a HEC; the local archive is written as in local mode.
            assert fake.recorded("hec") == []
            agent.wait_until(lambda: len(agent.spans()) == 2 and agent.log_records())

            assert agent.own_metric("otelcol_exporter_sent_spans", exporter="otlp_http/splunk") == 2
            assert agent.own_metric("otelcol_exporter_sent_metric_points", exporter="signalfx") == 2
            assert agent.own_metric("otelcol_exporter_send_failed_spans") == 0
            assert agent.own_metric("otelcol_exporter_send_failed_metric_points") == 0

    log = agent.log()
    assert "chat gpt-4o" in log  # the detailed debug output did print the data
    assert token not in log


def test_wrong_token_is_refused_and_counted_as_send_failures(otelcol, sdk, tmp_path):
    wrong = f"wrong-{secrets.token_hex(12)}"
    fake = FakeSplunk(token=f"right-{secrets.token_hex(12)}")
    with fake, start_collector(tmp_path, mode="splunk", env=splunk_env(fake, wrong)) as agent:
        sdk.telemetry(agent, "http", "svc-wrong-token")

        def failures_counted():
            spans = agent.own_metric(
                "otelcol_exporter_send_failed_spans", exporter="otlp_http/splunk"
            )
            points = agent.own_metric(
                "otelcol_exporter_send_failed_metric_points", exporter="signalfx"
            )
            return (spans, points) if spans == 2 and points >= 1 else None

        spans_failed, points_failed = agent.wait_until(failures_counted, timeout=30)
        print(f"send failures: spans={spans_failed:.0f} metric points={points_failed:.0f}")
        ingest = [r for r in fake.requests() if r["kind"] in INGEST_KINDS]
        assert ingest, "the collector did not try to send"
        assert {r["status"] for r in ingest} == {401}
        assert {r["headers"]["x-sf-token"] for r in ingest} == {wrong}
        assert agent.own_metric("otelcol_exporter_sent_spans", exporter="otlp_http/splunk") == 0
        # The local archive does not depend on Splunk.
        agent.wait_until(lambda: len(agent.spans()) == 2)

    log = agent.log()
    assert "401" in log
    assert wrong not in log


def test_logs_go_to_hec_when_configured(otelcol, sdk, tmp_path):
    token, hec_token = f"lab-{secrets.token_hex(8)}", f"hec-{secrets.token_hex(8)}"
    with FakeSplunk(token=token, hec_token=hec_token) as fake:
        env = splunk_env(
            fake,
            token,
            SPLUNK_HEC_URL=f"{fake.url}/services/collector",
            SPLUNK_HEC_TOKEN=hec_token,
        )
        with start_collector(tmp_path, mode="splunk", env=env) as agent:
            sdk.telemetry(agent, "grpc", "svc-hec")
            (event,) = fake.wait_until(fake.hec_events, timeout=30)
            (request,) = fake.recorded("hec")
            assert request["headers"]["authorization"] == f"Splunk {hec_token}"
            assert event["event"] == "feedback received"
            assert event["fields"]["gen_ai.response.id"] == "resp_1"
            assert event["fields"]["deployment.environment"] == "lab-test"
            assert agent.own_metric("otelcol_exporter_sent_log_records", exporter="splunk_hec") == 1
    assert hec_token not in agent.log() and token not in agent.log()


def start_failure(tmp_path, env) -> str:
    """Start a collector that must refuse to start; return its output."""
    with start_collector(tmp_path, mode="splunk", env=env, wait=False) as agent:
        code = agent.process.wait_exit(timeout=30)
        assert code != 0
    return agent.log()


@pytest.mark.parametrize(
    "urls",
    [{}, {"SPLUNK_INGEST_URL": "http://127.0.0.1:9"}],
    ids=["no-urls", "ingest-url-only"],
)
def test_missing_realm_fails_at_start_naming_the_variable(otelcol, tmp_path, urls):
    token = f"lab-{secrets.token_hex(8)}"
    log = start_failure(tmp_path, {"SPLUNK_ACCESS_TOKEN": token, **urls})
    (error,) = [line for line in log.splitlines() if line.startswith("Error:")]
    print(error)
    assert "SPLUNK_REALM is not set" in error
    assert token not in log


def test_hec_without_any_token_fails_at_start(otelcol, tmp_path):
    env = {"SPLUNK_HEC_URL": "http://127.0.0.1:9/services/collector"}
    with start_collector(tmp_path, mode="local", env=env, wait=False) as agent:
        assert agent.process.wait_exit(timeout=30) != 0
    (error,) = [line for line in agent.log().splitlines() if line.startswith("Error:")]
    print(error)
    assert "splunk_hec" in error and '"token"' in error
