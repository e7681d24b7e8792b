"""Who may use the dashboard, and which form posts it accepts.

Every dashboard request resolves a principal - from its session cookie when authentication is
on, the local administrator when it is off - onto `flask.g.principal`, the same place the API's
bearer tokens put theirs, so views ask `current_principal()` as everywhere else. Every POST
must come from this origin (Origin / Sec-Fetch-Site) and carry the CSRF token of its session
(or, before sign-in and with authentication off, of the `mlsys_csrf` cookie).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Response, abort, current_app, g, jsonify, redirect, request, url_for

from web import guards
from web.credentials import Credentials
from web.policy import request_policy
from web.principal import LOCAL_ADMIN, Principal, current_principal
from web.ui.sessions import Session, SessionStore

SESSION_COOKIE = "mlsys_session"
CSRF_COOKIE = "mlsys_csrf"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/ui"
#: The session cookie also goes to the API's documentation (/docs, /openapi.json), which
#: accept it (web.policy's dashboard_session); every other API route ignores it.
SESSION_COOKIE_PATH = "/"
#: Styles and scripts only from this origin, no inline script, never framed (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def _credentials() -> Credentials:
    return current_app.extensions["mlsys_credentials"]


def auth_enabled() -> bool:
    """Whether the API demands tokens (MLSYS_API_TOKENS or MLSYS_API_PRINCIPALS set)."""
    return _credentials().enabled


def principal_for(token: str) -> Principal | None:
    """The principal a bearer token acts as through the API, or None for an invalid token."""
    return _credentials().resolve(token)


def sessions() -> SessionStore:
    store = current_app.extensions.get("mlsys_ui_sessions")
    if store is None:
        settings = current_app.config["SETTINGS"]
        store = SessionStore.from_url(settings.redis_url, settings.ui_sessions_per_principal)
        current_app.extensions["mlsys_ui_sessions"] = store
    return store


def secure_request() -> bool:
    """Served over TLS, directly or behind a proxy that terminates it (Cloud Run, a balancer)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.is_secure or forwarded == "https"


def set_cookie(
    response: Response, name: str, value: str, max_age: int | None, path: str = COOKIE_PATH
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="Strict",
        secure=secure_request(),
    )


def clear_cookie(response: Response, name: str, path: str = COOKIE_PATH) -> None:
    response.delete_cookie(
        name, path=path, httponly=True, samesite="Strict", secure=secure_request()
    )


def session_principal() -> Principal | None:
    """The principal of this request's dashboard session cookie (None: no valid session, or
    authentication off). The API's documentation routes ask this (web.auth)."""
    if not auth_enabled():
        return None
    session = sessions().open(request.cookies.get(SESSION_COOKIE))
    return principal_for(session.token) if session is not None else None


def authenticate() -> Response | None:
    """Before every dashboard view: resolve the principal, check the scope the page's policy
    names (web.policy), then a POST's origin and CSRF."""
    g.ui_session = None
    g.ui_new_csrf = None
    if request.endpoint == "ui.static":
        return None
    declared = request_policy()
    session = sessions().open(request.cookies.get(SESSION_COOKIE)) if auth_enabled() else None
    principal = principal_for(session.token) if session is not None else None
    if principal is not None:
        g.ui_session = session
        g.principal = principal
    elif not auth_enabled():
        g.principal = LOCAL_ADMIN
    elif declared is None or not declared.public:
        return _signed_out()
    if request.method == "POST":
        _check_origin()
        _check_csrf()
    needed = declared.scope if declared is not None else None
    if needed is not None and not current_principal().has(needed):
        abort(
            403,
            description=f"{current_principal().name} may not do this: it needs the "
            f"{needed.value!r} scope. Ask for a token that has it.",
        )
    return None


def csrf_token() -> str:
    """The CSRF token forms of this response carry."""
    session: Session | None = g.get("ui_session")
    if session is not None:
        return session.csrf
    token = request.cookies.get(CSRF_COOKIE) or g.get("ui_new_csrf")
    if not token:
        token = g.ui_new_csrf = secrets.token_urlsafe(32)
    return token


def finish(response: Response) -> Response:
    """After every dashboard view: cookie for a new CSRF token, security headers."""
    if g.get("ui_new_csrf"):
        set_cookie(response, CSRF_COOKIE, g.ui_new_csrf, max_age=None)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "ui.static":
        # Pages show live state and CSRF tokens: never from a shared or back-button cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def _signed_out() -> Response:
    if request.endpoint and request.endpoint.endswith("_live"):
        response = jsonify(error="signed out", signin=url_for("ui.session.signin"))
        response.status_code = 401
        return response
    if request.method == "GET":
        return redirect(url_for("ui.session.signin", next=request.full_path.rstrip("?")), code=303)
    abort(401, description="Sign in to the dashboard first.")
    raise AssertionError  # unreachable: abort raises


def _check_origin() -> None:
    """Refuse a form posted by another site or origin (another port of this host included,
    which SameSite alone would let through). The app's guard refuses these first; this keeps
    the pages safe whatever the order of guards."""
    reason = guards.cross_site_reason()
    if reason is not None:
        abort(403, description=f"Form posts from another site are refused ({reason}).")


def _check_csrf() -> None:
    sent = request.form.get(CSRF_FIELD, "")
    session: Session | None = g.get("ui_session")
    expected = session.csrf if session is not None else request.cookies.get(CSRF_COOKIE, "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="The form's CSRF token is missing or stale: reload the page.")


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a dashboard path of this site."""
    if target and target.startswith(COOKIE_PATH + "/") and not target.startswith("//"):
        if "\\" not in target and urlsplit(target).netloc == "":
            return target
    return url_for("ui.jobs.index")
