"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from mock_llm import admin, api, chat, errors
from mock_llm.config import Settings
from mock_llm.profiles import Profiles
from mock_llm.state import ServiceState, install

log = logging.getLogger("mock_llm")


def create_app(settings: Settings, profiles: Profiles) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    install(app, ServiceState(settings, profiles))
    app.before_request(api.check_api_key)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(chat.blueprint)
    app.register_blueprint(admin.blueprint)

    @app.errorhandler(errors.ApiError)
    def api_error(error: errors.ApiError):
        return error.response()

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error):
        return errors.bad_request(
            f"The request body is larger than {settings.max_body_bytes} bytes.",
            None,
            "request_too_large",
        ).response()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 400
        message = (
            f"Invalid URL ({request.method} {request.path})"
            if code in (404, 405)
            else (error.description or error.name)
        )
        return errors.ApiError(code, message).response()

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # a bug: still answer in OpenAI's shape
        log.exception("unexpected error: %s", error)
        return errors.server_error().response()

    return app
