"""Local mode: OTLP over gRPC and HTTP lands in the archive intact; no send failures."""

from __future__ import annotations

import pytest

from harness.collector import start_collector

pytestmark = pytest.mark.timeout(120)

PROTOCOLS = ("grpc", "http")


def test_local_mode_archives_traces_metrics_and_logs_intact(otelcol, sdk, tmp_path):
    env = {"DEPLOYMENT_ENVIRONMENT": "lab-test"}
    with start_collector(tmp_path, mode="local", env=env) as agent:
        sent = {p: sdk.telemetry(agent, p, service=f"svc-{p}") for p in PROTOCOLS}

        def everything_arrived():
            services = {p: f"svc-{p}" for p in PROTOCOLS}.values()
            spans = agent.spans()
            points = agent.metric_points()
            logs = agent.log_records()
            return all(
                sum(s["resource"].get("service.name") == svc for s in spans) == 2
                and sum(p["resource"].get("service.name") == svc for p in points) == 2
                and sum(r["resource"].get("service.name") == svc for r in logs) == 1
                for svc in services
            )

        agent.wait_until(everything_arrived, timeout=30)
        spans, logs = agent.spans(), agent.log_records()

        for protocol in PROTOCOLS:
            service = f"svc-{protocol}"
            mine = {s["name"]: s for s in spans if s["resource"]["service.name"] == service}
            assert set(mine) == {"POST /api/chat", "chat gpt-4o"}
            server, client = mine["POST /api/chat"], mine["chat gpt-4o"]
            expected_resource = {
                "service.name": service,
                "service.version": "1.2.3",
                "deployment.environment.name": "lab-test",
                "deployment.environment": "lab-test",
            }
            assert expected_resource.items() <= server["resource"].items()
            assert server["kind"] == "SERVER"
            assert server["trace_id"] == sent[protocol].trace_id
            assert server["span_id"] == sent[protocol].server_span_id
            assert server["parent_span_id"] == ""
            assert server["status_code"] == "UNSET"
            assert server["attributes"] == {
                "http.request.method": "POST",
                "http.response.status_code": 200,
                "gen_ai.request.temperature": 0.25,
                "feature.enabled": True,
                "gen_ai.response.finish_reasons": ["stop", "length"],
            }
            assert server["end_ns"] >= server["start_ns"] > 0
            assert client["kind"] == "CLIENT"
            assert client["trace_id"] == sent[protocol].trace_id
            assert client["span_id"] == sent[protocol].client_span_id
            assert client["parent_span_id"] == sent[protocol].server_span_id
            assert (client["status_code"], client["status_message"]) == ("ERROR", "rate limited")
            assert client["attributes"] == {"gen_ai.usage.output_tokens": 42}
            assert [(e["name"], e["attributes"]) for e in client["events"]] == [
                ("gen_ai.evaluation.result", {"gen_ai.evaluation.score.value": 4})
            ]

            def mine_only(points, service=service):
                return [p for p in points if p["resource"]["service.name"] == service]

            (counter,) = mine_only(agent.metric_points("lab.requests"))
            assert counter["type"] == "sum"
            assert counter["value"] == 7
            assert counter["is_monotonic"] is True
            assert counter["temporality"] == "CUMULATIVE"
            assert counter["unit"] == "{request}"
            assert counter["attributes"] == {"gen_ai.request.model": "gpt-4o"}
            assert counter["resource"]["deployment.environment.name"] == "lab-test"

            (histogram,) = mine_only(agent.metric_points("lab.duration"))
            assert histogram["type"] == "histogram"
            assert histogram["unit"] == "s"
            assert histogram["count"] == len(sdk.histogram_values)
            assert histogram["sum"] == pytest.approx(sum(sdk.histogram_values))
            assert histogram["explicit_bounds"] == sdk.histogram_bounds
            assert histogram["bucket_counts"] == [1, 1, 1, 1]
            assert (histogram["min"], histogram["max"]) == (0.05, 50.0)
            assert histogram["attributes"] == {"gen_ai.request.model": "gpt-4o"}

            (log,) = [r for r in logs if r["resource"]["service.name"] == service]
            assert log["body"] == "feedback received"
            assert (log["severity_number"], log["severity_text"]) == (13, "WARN")
            assert log["attributes"] == {"gen_ai.response.id": "resp_1", "score": 5}
            assert log["resource"]["deployment.environment"] == "lab-test"

        # The collector's own metrics: everything received was written, nothing failed.
        for signal, exporter, count in (
            ("spans", "file/traces", 4),
            ("metric_points", "file/metrics", 4),
            ("log_records", "file/logs", 2),
        ):
            assert agent.own_metric(f"otelcol_receiver_accepted_{signal}") == count
            assert agent.own_metric(f"otelcol_receiver_refused_{signal}") == 0
            assert agent.own_metric(f"otelcol_exporter_sent_{signal}", exporter=exporter) == count
            assert agent.own_metric(f"otelcol_exporter_send_failed_{signal}") == 0
        for transport in PROTOCOLS:
            assert agent.own_metric("otelcol_receiver_accepted_spans", transport=transport) == 2
        # No outbound connection: the archive and the debug log are the only exporters at work.
        exporters = {
            labels["exporter"] for _, labels, _ in agent.own_metrics() if "exporter" in labels
        }
        assert exporters == {"file/traces", "file/metrics", "file/logs", "debug"}

    log = agent.log()
    assert "Everything is ready" in log
    problems = [line for line in log.splitlines() if "\twarn\t" in line or "\terror\t" in line]
    assert problems == []
