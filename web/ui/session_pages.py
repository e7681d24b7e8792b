"""Sign in with a token once, sign out."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for

from web.policy import Access, policy
from web.ui import guard

bp = Blueprint("session", __name__)


@policy(Access.SIGNED_IN)
def home() -> Response:
    """/ui/ -> the jobs page."""
    return redirect(url_for("ui.jobs.index"), code=303)


def _token_source() -> str:
    """Where the tokens this deployment accepts come from, in the words of its settings."""
    settings = current_app.config["SETTINGS"]
    plain = any(token.get_secret_value() for token in settings.api_tokens)
    principals = settings.api_principals is not None or settings.api_principals_file is not None
    if plain and principals:
        return "one of MLSYS_API_TOKENS, or the token issued for your principal"
    if plain:
        return "one of MLSYS_API_TOKENS"
    return "the token issued for your principal"


def _signin_page(**context) -> str:
    return render_template("ui/signin.html", token_source=_token_source(), **context)


@bp.get("/signin")
@policy(Access.PUBLIC)
def signin() -> Response | str:
    """The sign-in form (straight to the jobs page when already signed in or auth is off)."""
    if g.get("ui_session") is not None or not guard.auth_enabled():
        return redirect(guard.safe_next(request.args.get("next")), code=303)
    return _signin_page(next=guard.safe_next(request.args.get("next")))


@bp.post("/signin")
@policy(Access.PUBLIC)
def signin_submit() -> Response | tuple[str, int]:
    """Check the token as the API would, then open a session and set its cookie."""
    target = guard.safe_next(request.form.get("next"))
    if not guard.auth_enabled():
        return redirect(target, code=303)
    token = request.form.get("token", "").strip()
    principal = guard.principal_for(token) if token else None
    if principal is None:
        # Never echo the token: it may be a real one with a typo.
        message = "That token is not valid." if token else "Enter your API token."
        return _signin_page(next=target, error=message), 401
    cookie, _session = guard.sessions().create(token, principal.name)
    response = redirect(target, code=303)
    guard.set_cookie(
        response,
        guard.SESSION_COOKIE,
        cookie,
        max_age=guard.sessions().seconds,
        path=guard.SESSION_COOKIE_PATH,
    )
    guard.clear_cookie(response, guard.CSRF_COOKIE)
    return response


@bp.post("/signout")
@policy(Access.SIGNED_IN)
def signout() -> Response:
    """Forget the session server-side and clear its cookie."""
    guard.sessions().close(request.cookies.get(guard.SESSION_COOKIE))
    response = redirect(url_for("ui.session.signin", signed_out=1), code=303)
    guard.clear_cookie(response, guard.SESSION_COOKIE, path=guard.SESSION_COOKIE_PATH)
    # A session signed in before the cookie covered the documentation lives under /ui.
    guard.clear_cookie(response, guard.SESSION_COOKIE)
    return response
