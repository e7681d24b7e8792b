"""Every error leaves the API as application/problem+json (RFC 9457), mapped here once."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import redis
from flask import Flask, Response, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from mlsys.errors import InvalidRequest, MlsysError

log = logging.getLogger(__name__)

PROBLEM_MIME = "application/problem+json"
MAX_BODY_BYTES = 64 * 1024

_HTTP_DETAILS = {
    404: "No such route. See GET /openapi.json for the routes this API serves.",
    405: "This route does not accept {method}. See the Allow header for the methods it does.",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.",
}


def problem_type(slug: str) -> str:
    """The `type` URI of a problem: a stable name per error class."""
    return f"urn:mlsys:problem:{slug}"


def problem(
    status: int,
    title: str,
    detail: str,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response."""
    body = {
        "type": problem_type(slug) if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIME)
    response.headers.update(headers or {})
    return response


def _field_name(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validation_problem(error: ValidationError) -> Response:
    """400 naming each bad field and what it expects (never echoing the input)."""
    errors = []
    for item in error.errors(include_url=False, include_input=False):
        name = _field_name(item["loc"])
        if item["type"] == "extra_forbidden":
            message = "Unknown field; remove it (GET /openapi.json lists the fields accepted)"
        elif item["type"] == "missing":
            message = "Required; add it"
        elif item["type"] == "value_error":
            message = str(item["ctx"]["error"])  # an mlsys.ids message, with its hint
        else:
            message = item["msg"]
        errors.append({"field": name, "message": message})
    parts = "; ".join(f"{e['field']}: {e['message'].rstrip('.')}" for e in errors)
    detail = f"Invalid request: {parts}."
    return problem(400, "Invalid request", detail, "invalid-request", errors=errors)


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object, or an InvalidRequest saying how to send one."""
    if not request.is_json:
        raise InvalidRequest(
            f"Expected a JSON body, got Content-Type {request.mimetype or 'none'!r}.",
            hint="Send a JSON object with Content-Type: application/json.",
        )
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        where = f" (line {error.lineno}, column {error.colno})" if hasattr(error, "lineno") else ""
        raise InvalidRequest(
            f"The request body is not valid JSON{where}.",
            hint="Send a JSON object with Content-Type: application/json.",
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            f"The request body is a JSON {type(body).__name__}, not an object.",
            hint='Send a JSON object, e.g. {"env": "dev", ...}.',
        )
    return body


def new_error_id() -> str:
    """The id a 500 answer carries and the server log line repeats, to find one in the other."""
    return uuid.uuid4().hex[:16]


def _mlsys_error(error: MlsysError) -> Response:
    if error.status >= 500:
        error_id = new_error_id()
        log.error("error %s: %s: %s", error_id, type(error).__name__, error)
        return problem(error.status, error.title, str(error), error.type_slug, error_id=error_id)
    return problem(error.status, error.title, str(error), error.type_slug)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    detail = error.description or error.name
    if detail == type(error).description and status in _HTTP_DETAILS:
        # werkzeug's stock text is written for browsers; say what an API caller should do.
        detail = _HTTP_DETAILS[status].format(method=request.method)
    # Keep headers such as Allow (405) that the exception carries.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return problem(status, error.name, detail, headers=headers)


def _redis_down(error: redis.RedisError) -> Response:
    log.error("job store unavailable: %s", type(error).__name__)
    return problem(
        503,
        "Backend unavailable",
        "The job store (Redis) is unavailable. Retry shortly.",
        "backend-unavailable",
        headers={"Retry-After": "5"},
    )


def _unexpected(error: Exception) -> Response:
    # The traceback stays in the server log under the error id; the caller learns nothing
    # about internals, only the id to report.
    error_id = new_error_id()
    log.exception("error %s: unhandled on %s %s", error_id, request.method, request.path)
    return problem(
        500,
        "Internal server error",
        f"An unexpected error occurred; it has been logged as error {error_id}. "
        "Retry, or report that id.",
        "internal-error",
        error_id=error_id,
    )


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(MlsysError, _mlsys_error)
    app.register_error_handler(ValidationError, validation_problem)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(redis.ConnectionError, _redis_down)
    app.register_error_handler(redis.TimeoutError, _redis_down)
    app.register_error_handler(Exception, _unexpected)
