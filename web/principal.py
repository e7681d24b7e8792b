"""Who is calling: the principal a request acts as, and the scopes it holds.

`web.auth` resolves the bearer token to a `Principal` and stores it on `flask.g`; every view
and the job engine ask `current_principal()`, never the token. With authentication off (a local
demo) every request acts as the local administrator.
"""

from __future__ import annotations

from flask import g

# The principal type lives in the core package (the worker checks schedules with it too).
from mlsys.access.principal import ALL_SCOPES, LOCAL_ADMIN, Principal, Scope

__all__ = ["ALL_SCOPES", "LOCAL_ADMIN", "Principal", "Scope", "current_principal"]


def current_principal() -> Principal:
    """The principal of the request being handled (the local admin when auth is off)."""
    return getattr(g, "principal", None) or LOCAL_ADMIN
