"""Bearer-token authentication of every route but /health (DESIGN §7)."""

from __future__ import annotations

import hmac
import logging

from flask import Flask, Response, current_app, request

from web.errors import problem

log = logging.getLogger(__name__)

#: Endpoints anyone may call: liveness probes carry no credentials.
OPEN_ENDPOINTS = frozenset({"health.health"})


def token_matches(presented: str, tokens: list[bytes]) -> bool:
    """Constant-time check of `presented` against every configured token.

    All tokens are compared (no early exit), so timing reveals neither which one matched nor
    how many there are; several are accepted so they can be rotated without downtime.
    """
    candidate = presented.encode("utf-8")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token)
    return matched


def _bearer() -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def _unauthorized(detail: str) -> Response:
    return problem(
        401,
        "Unauthorized",
        detail,
        "unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="mlsys"'},
    )


def _require_token() -> Response | None:
    tokens: list[bytes] = current_app.extensions["mlsys_tokens"]
    if not tokens or request.endpoint in OPEN_ENDPOINTS:
        return None
    presented = _bearer()
    if presented is None:
        return _unauthorized("Send Authorization: Bearer <token> (a token from MLSYS_API_TOKENS).")
    if not token_matches(presented, tokens):
        # Never log or echo the presented value: it may be a real token with a typo.
        return _unauthorized("The bearer token is not valid.")
    return None


def init_app(app: Flask) -> None:
    """Require a bearer token when MLSYS_API_TOKENS is set; warn loudly when it is not."""
    settings = app.config["SETTINGS"]
    tokens = [t.get_secret_value().encode("utf-8") for t in settings.api_tokens]
    app.extensions["mlsys_tokens"] = [t for t in tokens if t]
    if not app.extensions["mlsys_tokens"]:
        log.warning(
            "AUTHENTICATION IS OFF: MLSYS_API_TOKENS is empty, so anyone who can reach this API "
            "can submit jobs and change aliases. Use this for a local demo only."
        )
    app.before_request(_require_token)
