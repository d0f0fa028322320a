"""JSON error bodies (``{"error": ..., "details": ...}``) for every 4xx/5xx."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("sample_app")


class ApiError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error_response(status: int, message: str, details: Any = None) -> Response:
    response = jsonify({"error": message, "details": details})
    response.status_code = status
    return response


def bad_request(message: str, details: Any = None) -> ApiError:
    return ApiError(400, message, details)


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, f"{what} not found", {"id": ident})


def conflict(message: str, details: Any = None) -> ApiError:
    return ApiError(409, message, details)


def _handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, exc.details)


def _handle_http(exc: HTTPException) -> Response:
    response = error_response(exc.code or 500, exc.name, exc.description)
    # Keep headers such as Allow (405) that the exception carries.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "Internal Server Error", None)


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_unexpected)
