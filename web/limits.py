"""Per-principal rate limits on the routes that start jobs (flask-limiter, on the job Redis).

Every route whose policy says `budget` (web.policy) - API routes and dashboard forms alike -
shares one budget per principal (MLSYS_SUBMIT_RATE_LIMIT, e.g. `30/minute;500/hour`), counted
in the same Redis as the jobs, so all API processes see one count. Over it: 429 problem+json
with Retry-After. Reads are not limited. Dashboard sign-in has its own limit, per client
address and per token (MLSYS_SIGNIN_RATE_LIMIT).
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded

from mlsys.access.budget import SUBMIT_SCOPE, principal_key
from mlsys.jobs import keys
from web.errors import problem
from web.policy import policy_of
from web.principal import current_principal

#: The dashboard's sign-in form: limited per client address and per presented token.
SIGNIN_ENDPOINT = "ui.session.signin_submit"


def _principal_key() -> str:
    # The budget's key and scope are mlsys.access.budget's: a schedule's firing in the worker
    # spends the same counters.
    return principal_key(current_principal().name)


def _submit_limit() -> str:
    return current_app.config["SETTINGS"].submit_rate_limit


def _signin_limit() -> str:
    return current_app.config["SETTINGS"].signin_rate_limit


def _client_address() -> str:
    return f"address:{request.remote_addr or '-'}"


def _presented_token() -> str:
    # A hash: the limiter's keys in Redis must not hold tokens.
    token = request.form.get("token", "").strip()
    return f"token:{hashlib.sha256(token.encode('utf-8')).hexdigest()[:32]}"


def _spent(response: Response) -> bool:
    """A request refused with a 4xx before any work (bad input, no permission, over budget)
    spends nothing; one that queued work, or held a thread until a backend failed, does."""
    return not 400 <= response.status_code < 500


def _too_many(error: RateLimitExceeded) -> Response:
    limiter: Limiter = current_app.extensions["mlsys_limiter"]
    reset = limiter.current_limit.reset_at if limiter.current_limit else None
    retry = max(1, math.ceil(reset - time.time())) if reset else 60
    if request.endpoint == SIGNIN_ENDPOINT:
        return problem(
            429,
            "Too many sign-ins",
            f"Too many sign-in attempts ({error.description}). Retry after {retry} seconds.",
            "rate-limited",
            headers={"Retry-After": str(retry)},
        )
    return problem(
        429,
        "Too many requests",
        f"Principal {current_principal().name!r} started more jobs than allowed "
        f"({error.description}). Retry after {retry} seconds.",
        "rate-limited",
        headers={"Retry-After": str(retry)},
    )


def init_app(app: Flask) -> None:
    """Call after the views are registered and after auth (budgets are per principal)."""
    settings = app.config["SETTINGS"]
    budgets = bool(settings.submit_rate_limit.strip())
    signins = bool(settings.signin_rate_limit.strip())
    app.config.setdefault("RATELIMIT_ENABLED", budgets or signins)
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url)
    # A Redis outage answers 503 on submit anyway; the limiter must not turn it into a 500.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter = Limiter(key_func=_principal_key, key_prefix=keys.RATE_LIMIT_PREFIX, app=app)
    app.extensions["mlsys_limiter"] = limiter
    shared = limiter.shared_limit(_submit_limit, scope=SUBMIT_SCOPE, deduct_when=_spent)
    for endpoint, view in list(app.view_functions.items()):
        declared = policy_of(app, endpoint)
        if budgets and declared is not None and declared.budget:
            app.view_functions[endpoint] = shared(view)
    signin = app.view_functions.get(SIGNIN_ENDPOINT)
    if signin is not None and signins:
        for key in (_client_address, _presented_token):
            signin = limiter.limit(_signin_limit, key_func=key, scope=f"signin-{key.__name__}")(
                signin
            )
        app.view_functions[SIGNIN_ENDPOINT] = signin
    app.register_error_handler(RateLimitExceeded, _too_many)
