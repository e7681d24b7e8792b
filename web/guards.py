"""Guards that keep a browser from being turned against the API (DNS rebinding, CSRF).

- Every request must name an allowed Host (MLSYS_ALLOWED_HOSTS): a web page that rebinds its
  own domain to 127.0.0.1 still sends its own name as Host, and is refused.
- A state-changing request (any method but GET/HEAD/OPTIONS, and the GET aliases that start
  jobs) is refused when the browser says it comes from another site (`Sec-Fetch-Site`) or
  another origin (`Origin`). Clients that are not browsers (curl, the CLI, notebooks) send
  neither header and are unaffected.

GET views that change state say so in their declared policy (`web.policy`,
`state_changing=True`); the dashboard's cookie-session pages use `refuse_cross_site()` too.
"""

from __future__ import annotations

import fnmatch
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request

from web.errors import problem
from web.policy import request_policy

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sec-Fetch-Site values of requests a user made to this API itself.
_SAME = frozenset({"same-origin", "none"})


def changes_state() -> bool:
    declared = request_policy()
    return request.method not in SAFE_METHODS or bool(declared and declared.state_changing)


def host_allowed(host: str, patterns: list[str]) -> bool:
    """`host` (as in the Host header, maybe with a port) against glob patterns."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return bool(name) and any(fnmatch.fnmatchcase(name, p.strip().lower()) for p in patterns)


def cross_site_reason() -> str | None:
    """Why the browser that sent this request is on another site, or None."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in _SAME:
        return f"Sec-Fetch-Site is {fetch_site!r}"
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin == "null":
            return "Origin is null (a sandboxed or file: page)"
        parts = urlsplit(origin)
        if parts.netloc.lower() != request.host.lower():
            return f"Origin {origin!r} is not this API ({request.host})"
    return None


def refuse_cross_site() -> Response | None:
    """403 for a state-changing request a browser sent from another site."""
    if not changes_state():
        return None
    reason = cross_site_reason()
    if reason is None:
        return None
    return problem(
        403,
        "Cross-site request refused",
        f"This request changes state and came from another site ({reason}).",
        "cross-site-request",
    )


def _check_host() -> Response | None:
    patterns = current_app.config["SETTINGS"].allowed_hosts
    if host_allowed(request.host, patterns):
        return None
    return problem(
        400,
        "Host not allowed",
        f"This API does not answer to Host {request.host[:100]!r}. Call it by one of its "
        "names, or add this one to MLSYS_ALLOWED_HOSTS.",
        "host-not-allowed",
    )


def init_app(app: Flask) -> None:
    """Check Host on every request and refuse cross-site state changes (before auth)."""
    app.before_request(_check_host)
    app.before_request(refuse_cross_site)
