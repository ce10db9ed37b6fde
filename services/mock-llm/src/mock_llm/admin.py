"""Operations endpoints: /healthz, /metrics and the admin API for live fault changes."""

from __future__ import annotations

import json
import re

from flask import Blueprint, Response, jsonify, request

from mock_llm import errors
from mock_llm.faults import FAULT_KINDS, FaultConfigError, RuntimeFaults
from mock_llm.metrics import QUEUED_REQUESTS
from mock_llm.state import get_state

blueprint = Blueprint("admin", __name__)


@blueprint.get("/healthz")
def healthz():
    state = get_state()
    return jsonify({"status": "ok", "models": list(state.profiles.models)})


@blueprint.get("/metrics")
def metrics():
    state = get_state()
    for model, gate in state.gates.items():
        state.metrics.set(QUEUED_REQUESTS, gate.waiting, model=model)
    return Response(state.metrics.render(), mimetype="text/plain; version=0.0.4")


def _require_admin() -> None:
    if not get_state().settings.admin_enabled:
        raise errors.ApiError(404, "The admin API is disabled (MOCK_LLM_ADMIN=false).")


def _faults_document() -> dict:
    state = get_state()
    runtime = state.faults.runtime
    return {
        **runtime.to_json(),
        "kinds": list(FAULT_KINDS),
        "effective": {
            name: state.faults.effective_rates(name, profile.faults)
            for name, profile in state.profiles.models.items()
        },
    }


@blueprint.get("/admin/faults")
def get_faults():
    _require_admin()
    return jsonify(_faults_document())


@blueprint.put("/admin/faults")
def put_faults():
    """Replace the runtime fault rates: {"rates": {kind: rate}, "models": {model: {kind: rate}}}."""
    _require_admin()
    state = get_state()
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, RecursionError):
        raise errors.bad_request("The body must be valid JSON.") from None
    try:
        runtime = RuntimeFaults.parse(body, set(state.profiles.models))
    except FaultConfigError as exc:
        raise errors.bad_request(str(exc), None, "invalid_value") from None
    state.faults.replace(runtime)
    return jsonify(_faults_document())


@blueprint.post("/admin/reset")
def reset():
    """Clear runtime faults, rate-limit buckets and the request history (metrics keep counting)."""
    _require_admin()
    get_state().reset()
    return jsonify(_faults_document())


@blueprint.get("/admin/profiles")
def profiles():
    _require_admin()
    state = get_state()
    return jsonify(
        {
            "source": state.profiles.source,
            "models": {name: p.public() for name, p in state.profiles.models.items()},
            "fault_settings": vars(state.profiles.fault_settings),
        }
    )


_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def _entry_json(entry: dict) -> dict:
    """A request-log entry as JSON (the planned gaps are kept as a compact array of doubles)."""
    plan = entry.get("plan")
    if plan is None:
        return entry
    return {**entry, "plan": {**plan, "gaps_ms": plan["gaps_ms"].tolist()}}


@blueprint.get("/admin/requests")
def recent_requests():
    """The most recent chat requests (newest last), for demos and tests counting retries;
    `?trace_id=<32 hex>`: only those of one caller trace."""
    _require_admin()
    state = get_state()
    trace_id = request.args.get("trace_id")
    if trace_id is None:
        entries = list(state.recent)
    else:
        trace_id = trace_id.strip().lower()
        if not _TRACE_ID.match(trace_id):
            raise errors.bad_request(
                "trace_id must be 32 hexadecimal characters (a W3C trace id).",
                "trace_id",
                "invalid_value",
            )
        entries = state.for_trace(trace_id)
    return jsonify({"requests": [_entry_json(entry) for entry in entries]})


@blueprint.get("/admin/requests/<path:request_id>")
def one_request(request_id: str):
    """One request-log entry by completion id (chatcmpl-..., the body's `id`) or request id
    (req_..., the x-request-id header); 404 when unknown or no longer in the log."""
    _require_admin()
    state = get_state()
    entry = state.find(request_id)
    if entry is None:
        raise errors.ApiError(
            404,
            f"No request {request_id[:100]!r} in the request log (the last "
            f"{state.settings.request_log_size} chat requests).",
            "invalid_request_error",
            "id",
            "request_not_found",
        )
    return jsonify(_entry_json(entry))
