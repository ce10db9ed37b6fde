"""OpenAI-shaped error bodies and the exception that carries them to the HTTP layer."""

from __future__ import annotations

from flask import Response, jsonify


class ApiError(Exception):
    """An error answered as {"error": {message, type, param, code}} with a status and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> Response:
        response = jsonify(self.body())
        response.status_code = self.status
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code, {"x-should-retry": "false"})


def missing_parameter(param: str) -> ApiError:
    return bad_request(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def empty_array(param: str) -> ApiError:
    return bad_request(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an "
        "empty array instead.",
        param,
        "empty_array",
    )


def invalid_type(param: str, expected: str, value: object) -> ApiError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param,
        "invalid_type",
    )


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        None,
        "model_not_found",
        {"x-should-retry": "false"},
    )


def missing_api_key() -> ApiError:
    return ApiError(
        401,
        "Missing bearer or basic authentication in header",
        "invalid_request_error",
        None,
        None,
        {"x-should-retry": "false"},
    )


def invalid_api_key(key: str) -> ApiError:
    masked = f"{key[:3]}{'*' * 6}{key[-2:]}" if len(key) > 6 else "*" * len(key)
    return ApiError(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        None,
        "invalid_api_key",
        {"x-should-retry": "false"},
    )


def server_error() -> ApiError:
    return ApiError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
        {"x-should-retry": "true"},
    )


def overloaded() -> ApiError:
    return ApiError(
        503,
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
        None,
        {"x-should-retry": "true"},
    )


def retry_headers(retry_after_ms: int) -> dict[str, str]:
    return {
        "retry-after": str(max(1, round(retry_after_ms / 1000))),
        "retry-after-ms": str(retry_after_ms),
        "x-should-retry": "true",
    }


def rate_limited(message: str, kind: str, retry_after_ms: int) -> ApiError:
    return ApiError(429, message, kind, None, "rate_limit_exceeded", retry_headers(retry_after_ms))


def insufficient_quota() -> ApiError:
    return ApiError(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        None,
        "insufficient_quota",
        {"x-should-retry": "false"},
    )
