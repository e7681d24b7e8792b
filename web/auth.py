"""Who may call what: bearer tokens resolve to a principal with scopes (DESIGN §7).

Every route but the public ones (web.policy) needs a valid bearer token once tokens or
principals are configured (web.credentials); the principal lands on `flask.g.principal` for
views and the job engine (`web.principal.current_principal()`). Each view's declared policy
says which scope it needs; `authorize_predict` adds what depends on the request body
(WRITE_TRUNCATE, dataset globs).
With no credentials at all (a local demo) every request acts as the local administrator, the
job-starting GET aliases are refused unless MLSYS_OPEN_GET_SUBMITS is set, and a loud warning
is logged; MLSYS_REQUIRE_AUTH (set by the container entry point) refuses to start instead.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, request

from mlsys.access.credentials import Credentials, load_credentials
from mlsys.access.datasets import check_predict
from mlsys.ids import TableId
from web.errors import problem
from web.policy import Policy, request_policy
from web.principal import LOCAL_ADMIN, Principal, current_principal

log = logging.getLogger(__name__)

#: The dashboard signs browsers in with a session cookie of its own (web.ui.guard).
OWN_AUTH_PREFIX = "ui."
#: Paths of the dashboard: even one no route matches (`/ui`, which redirects to `/ui/`, or a
#: mistyped page) is a browser's, answered by the dashboard, never with a bearer challenge.
UI_PATH = "/ui"


#: Where the dashboard (when installed) puts its reader of a request's session cookie: a
#: callable returning the session's principal or None (web.ui.guard.session_principal).
DASHBOARD_SESSION = "mlsys_dashboard_session"


#: Logged at startup with no credentials, and shown on every dashboard page (web.ui).
AUTH_OFF_WARNING = (
    "AUTHENTICATION IS OFF: no MLSYS_API_TOKENS or MLSYS_API_PRINCIPALS, so anyone who can "
    "reach this API can submit jobs and change aliases. Use this for a local demo only."
)


class AuthRequired(RuntimeError):
    """MLSYS_REQUIRE_AUTH is set but no token or principal is configured."""


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


def _forbidden(detail: str) -> Response:
    return problem(403, "Permission denied", detail, "permission-denied")


def _authenticate() -> Response | None:
    declared = request_policy()
    if declared is not None and declared.public:
        return None
    credentials: Credentials = current_app.extensions["mlsys_credentials"]
    if not credentials.enabled:
        g.principal = LOCAL_ADMIN
        settings = current_app.config["SETTINGS"]
        if declared is not None and declared.state_changing and not settings.open_get_submits:
            return _forbidden(
                "Authentication is off, so the job-starting GET aliases are refused (any web "
                "page could call them). Use POST, configure MLSYS_API_TOKENS, or set "
                "MLSYS_OPEN_GET_SUBMITS=true."
            )
        return None
    if request.endpoint and request.endpoint.startswith(OWN_AUTH_PREFIX):
        return None
    if request.endpoint is None and (
        request.path == UI_PATH or request.path.startswith(UI_PATH + "/")
    ):
        return None  # routing answers it: a redirect to /ui/, or a 404 that shows nothing
    presented = _bearer()
    if presented is None and declared is not None and declared.dashboard_session:
        # Only the API's documentation (read-only GETs) takes the dashboard's cookie. On any
        # other API route a cookie would sign in requests the browser sends by itself - a form
        # or script of another site (or another port of this one, which SameSite lets through)
        # could then start jobs as the person; a bearer token is only ever sent on purpose.
        reader = current_app.extensions.get(DASHBOARD_SESSION)
        principal = reader() if reader is not None else None
        if principal is not None:
            g.principal = principal
            return _scope_refusal(declared, principal)
    if presented is None:
        return _unauthorized("Send Authorization: Bearer <token> (a token from MLSYS_API_TOKENS).")
    principal = credentials.resolve(presented)
    if principal is None:
        # Never log or echo the presented value: it may be a real token with a typo.
        return _unauthorized("The bearer token is not valid.")
    g.principal = principal
    if declared is None:
        # Unmatched paths fall through to 404/405; a matched route always has a policy
        # (web.policy.check_app refuses to start otherwise).
        return None
    return _scope_refusal(declared, principal)


def _scope_refusal(declared: Policy, principal: Principal) -> Response | None:
    needed = declared.scope
    if needed is not None and not principal.has(needed):
        return _forbidden(
            f"Principal {principal.name!r} lacks the {needed.value!r} scope this route needs."
        )
    return None


def authorize_predict(
    input_table: TableId,
    output_table: TableId,
    write_disposition: str,
    principal: Principal | None = None,
) -> None:
    """What a predict request may do beyond its route's scope (mlsys.access.check_predict,
    for the request's principal unless one is given).

    Raises:
        PermissionDenied: WRITE_TRUNCATE without the truncate scope, or a table outside the
            principal's datasets.
    """
    check_predict(input_table, output_table, write_disposition, principal or current_principal())


def init_app(app: Flask) -> None:
    """Load the credentials; refuse to start without any when MLSYS_REQUIRE_AUTH is set."""
    settings = app.config["SETTINGS"]
    credentials = load_credentials(settings)
    app.extensions["mlsys_credentials"] = credentials
    if not credentials.enabled:
        if settings.require_auth:
            raise AuthRequired(
                "MLSYS_REQUIRE_AUTH is set but neither MLSYS_API_TOKENS nor "
                "MLSYS_API_PRINCIPALS(_FILE) configures a token: refusing to start an open API."
            )
        log.warning(AUTH_OFF_WARNING)
    app.before_request(_authenticate)
