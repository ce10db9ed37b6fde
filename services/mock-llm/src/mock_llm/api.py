"""GET /v1/models and /v1/models/{id}, plus the API-key check for every /v1 route."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from mock_llm import errors
from mock_llm.profiles import ModelProfile
from mock_llm.state import get_state

blueprint = Blueprint("models", __name__)


def check_api_key() -> None:
    """With MOCK_LLM_API_KEY set, every /v1 request needs `Authorization: Bearer <key>`."""
    expected = get_state().settings.api_key
    if not expected or not request.path.startswith("/v1/"):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise errors.missing_api_key()
    if key.strip() != expected:
        raise errors.invalid_api_key(key.strip())


def model_entry(profile: ModelProfile) -> dict:
    return {
        "id": profile.name,
        "object": "model",
        "created": profile.created,
        "owned_by": profile.owned_by,
        "root": profile.name,
        "mock_profile": {
            "quality": dict(profile.quality),
            "ttft_ms": profile.ttft_ms,
            "tokens_per_s": profile.tokens_per_s,
            "output_tokens_mean": profile.output_tokens_mean,
            "context_window": profile.context_window,
            "reasoning": profile.reasoning,
        },
    }


@blueprint.get("/v1/models")
def list_models():
    profiles = get_state().profiles.models.values()
    return jsonify({"object": "list", "data": [model_entry(p) for p in profiles]})


@blueprint.get("/v1/models/<path:model>")
def retrieve_model(model: str):
    profile = get_state().profiles.models.get(model)
    if profile is None:
        raise errors.model_not_found(model[:200])
    return jsonify(model_entry(profile))
