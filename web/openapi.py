"""GET /openapi.json: OpenAPI 3.1 built from the app's own routes and pydantic models.

Each view carries an `Operation` (the `@doc` decorator); the document is assembled from
`app.url_map`, so a route cannot be served without being described, and request/response
schemas are the very models that validate and shape the traffic.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.errors import PROBLEM_MIME
from web.policy import Access, Policy, policy, policy_of
from web.schemas import IDEMPOTENCY_KEY_PATTERN, Problem

bp = Blueprint("openapi", __name__)

_ERROR_TEXT = {
    400: "The request is invalid; `detail` says what to fix.",
    401: "Missing or invalid bearer token.",
    403: "Not allowed: the principal lacks a scope or a dataset, the table is one of mlsys' own, "
    "or a browser sent it from another site.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    413: "The request body is larger than 64 KiB.",
    422: "The input table does not fit the model (missing columns, output schema).",
    429: "The principal submitted more jobs than MLSYS_SUBMIT_RATE_LIMIT allows; see Retry-After.",
    500: "Unexpected server error (logged server-side).",
    503: "A backend (Redis, warehouse, model store) is unavailable; retry.",
}

TAGS = [
    {"name": "predict", "description": "Submit batch predictions; each is a job."},
    {"name": "jobs", "description": "Follow, list and cancel jobs."},
    {"name": "registry", "description": "Registered models, versions and aliases."},
    {"name": "schedules", "description": "Predict jobs run on a cron expression or interval."},
    {"name": "monitoring", "description": "Drift of model inputs and predictions, job by job."},
    {"name": "operations", "description": "Liveness, readiness and metrics."},
    {"name": "documentation", "description": "This document and its page."},
]

IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key returns the first job (200) instead of a new one.",
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
}


#: Endpoints that are pages for people, not part of the API (the /ui dashboard).
NOT_API_PREFIX = "ui."


@dataclass
class Operation:
    """How one view is described in the OpenAPI document."""

    summary: str
    tag: str
    description: str = ""
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    #: status -> response model, or (media type, description) for other bodies.
    responses: dict[int, Any] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    example: Any = None
    headers: list[dict[str, Any]] = field(default_factory=list)
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    secured: bool = True


def doc(summary: str, **kwargs: Any):
    """Attach an `Operation` to a view function; its docstring becomes the description."""

    def decorate(view):
        view.openapi = Operation(
            summary, description=inspect.cleandoc(view.__doc__ or ""), **kwargs
        )
        return view

    return decorate


def openapi_path(rule: str) -> str:
    """Flask's `/jobs/<job_id>` (or `<path:x>`) as OpenAPI's `/jobs/{job_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _with_policy(operation: Operation, declared: Policy | None) -> Operation:
    """What the route's declared policy adds to its description: no security on a public
    route, 403 where a scope is needed, 429 where it spends the submit budget."""
    if declared is None:
        return operation
    errors = set(operation.errors)
    if declared.scope is not None:
        errors.add(403)
    if declared.budget:
        errors.add(429)
    secured = operation.secured and not declared.public
    return replace(operation, errors=tuple(sorted(errors)), secured=secured)


def documented_routes(app: Flask) -> list[tuple[str, str, Operation]]:
    """(path, method, operation) for every route the app serves, HEAD/OPTIONS aside."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(NOT_API_PREFIX):
            continue
        view = app.view_functions[rule.endpoint]
        operation = getattr(view, "openapi", None)
        if operation is None:
            raise RuntimeError(f"Route {rule.rule} ({rule.endpoint}) has no @doc.")
        operation = _with_policy(operation, policy_of(app, rule.endpoint))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((openapi_path(rule.rule), method.lower(), operation))
    return routes


def _models(routes) -> tuple[list[tuple[type[BaseModel], str]], set[type[BaseModel]]]:
    pairs: dict[tuple[type[BaseModel], str], None] = {(Problem, "serialization"): None}
    for _, _, op in routes:
        for model in (op.body, op.query):
            if model is not None:
                pairs[(model, "validation")] = None
        for response in op.responses.values():
            if isinstance(response, type) and issubclass(response, BaseModel):
                pairs[(response, "serialization")] = None
    return list(pairs), {model for model, _ in pairs}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Query strings cannot carry null: keep the non-null branch of an Optional."""
    options = schema.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        merged = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**(rest[0] if len(rest) == 1 else {"anyOf": rest}), **merged}
    return schema


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _ERROR_TEXT.get(status, "Error."),
        "content": {PROBLEM_MIME: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app`."""
    settings = app.config["SETTINGS"]
    auth_on = app.extensions["mlsys_credentials"].enabled
    routes = documented_routes(app)
    pairs, _ = _models(routes)
    keys, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    _apply_settings(schemas, settings)

    paths: dict[str, dict[str, Any]] = {}
    for path, method, op in routes:
        paths.setdefault(path, {})[method] = _operation(path, method, op, keys, schemas, auth_on)

    components: dict[str, Any] = {
        "schemas": schemas,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "One of the tokens in MLSYS_API_TOKENS.",
            }
        },
    }
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "mlsys",
            "version": _version(),
            "description": "Batch predictions for scikit-learn models over warehouse tables. "
            "Submitting returns a job at once; follow it at GET /jobs/{job_id}. "
            "Errors are application/problem+json."
            + ("" if auth_on else " Authentication is OFF on this server (local demo)."),
        },
        "tags": TAGS,
        "paths": paths,
        "components": components,
    }
    if auth_on:
        spec["security"] = [{"bearerAuth": []}]
    return spec


def _apply_settings(schemas: dict[str, Any], settings) -> None:
    # Bounds that come from configuration, so the document matches this server.
    for schema in schemas.values():
        properties = schema.get("properties", {})
        if "env" in properties:
            properties["env"]["enum"] = list(settings.environments)
        for option in properties.get("shards", {}).get("anyOf", []):
            if option.get("type") == "integer":
                option["maximum"] = settings.max_shards


def _operation(path, method, op: Operation, keys, schemas, auth_on) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_') or 'root'}",
        "tags": [op.tag],
    }
    if op.description:
        out["description"] = op.description
    params = _parameters(path, op, schemas)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = _request_body(op, keys)
    out["responses"] = _responses(op, keys, auth_on)
    if not op.secured:
        out["security"] = []
    return out


def _parameters(path, op: Operation, schemas) -> list[dict[str, Any]]:
    """The path parameters in `path`, then the query model's fields, then the headers."""
    params: list[dict[str, Any]] = []
    for name in re.findall(r"{([^}]+)}", path):
        spec = {"type": "string", "minLength": 1, **op.path_params.get(name, {}).get("schema", {})}
        param = {"name": name, "in": "path", "required": True, "schema": spec}
        if "example" in op.path_params.get(name, {}):
            param["example"] = op.path_params[name]["example"]
        params.append(param)
    if op.query is not None:
        params += _query_parameters(schemas[op.query.__name__])
    return params + op.headers


def _request_body(op: Operation, keys) -> dict[str, Any]:
    ref = keys[(op.body, "validation")]
    examples = op.body.model_config.get("json_schema_extra", {}).get("examples", [])
    content: dict[str, Any] = {"schema": ref}
    if examples:
        content["example"] = examples[0]
    return {"required": True, "content": {"application/json": content}}


def _responses(op: Operation, keys, auth_on) -> dict[str, Any]:
    """The operation's own responses (the first with its example), then its problems."""
    responses: dict[str, Any] = {}
    for status, response in op.responses.items():
        if isinstance(response, tuple):
            mime, description = response
            body = {"schema": {"type": "object"} if mime.endswith("json") else {"type": "string"}}
            if op.example is not None and not responses:
                body["example"] = op.example
            responses[str(status)] = {"description": description, "content": {mime: body}}
            continue
        body = {"schema": keys[(response, "serialization")]}
        if op.example is not None and not responses:
            body["example"] = op.example
        responses[str(status)] = {
            "description": (response.__doc__ or response.__name__).strip().splitlines()[0],
            "content": {"application/json": body},
        }
        if status == 202:
            responses[str(status)]["headers"] = {
                "Location": {"description": "The job's status URL.", "schema": {"type": "string"}}
            }
    errors = set(op.errors) | {500}
    if op.body is not None:
        errors |= {400, 413}
    if op.query is not None or op.path_params:
        errors.add(400)
    if op.secured and auth_on:
        errors.add(401)
    for status in sorted(errors):
        responses[str(status)] = _problem_response(status)
    return responses


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlsys")
    except PackageNotFoundError:
        return "0.0.0"


@bp.get("/openapi.json")
@policy(Access.SIGNED_IN, dashboard_session=True)  # readable in a signed-in browser
@doc(
    "This document",
    tag="documentation",
    responses={200: ("application/json", "OpenAPI 3.1.")},
    example={"openapi": "3.1.0", "info": {"title": "mlsys", "version": "0.2.0"}, "paths": {}},
)
def openapi_json():
    """The OpenAPI 3.1 description of every route this server serves."""
    spec = current_app.extensions.get("mlsys_openapi")
    if spec is None:
        spec = current_app.extensions["mlsys_openapi"] = build_spec(
            current_app._get_current_object()
        )
    return jsonify(spec)
