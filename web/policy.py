"""Who may call each route: one declared `Policy` per endpoint, enforced in one place.

Every endpoint the app serves (API and /ui, every method) declares its policy next to its
route with `@policy(...)`; endpoints Flask makes itself (a blueprint's static files) are
declared with `declare(app, endpoint, ...)`. `check_app` refuses to start an app with an
endpoint that has none, so a new route cannot ship without saying who may call it:

    @bp.post("/evaluations")
    @policy(Scope.PREDICT, datasets=Datasets.REQUEST, budget=True)
    @doc(...)
    def submit_evaluation(): ...

The policy is what the guards read: `web.auth` (API) and `web.ui.guard` (dashboard) check
`access` before the view runs; `web.limits` spends the principal's submit budget on `budget`
routes; `web.guards` treats `state_changing` GETs as writes; `dashboard_session` lets a
signed-in dashboard session (its cookie) stand for a bearer token on a read-only GET.
`datasets` and `owner` say which rule the view itself applies with the request's data
(`web.auth.authorize_predict`, the job engine's owner filter), and the matrix test checks
that every kind of caller gets what the policy promises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from flask import Flask, current_app, request

from web.principal import Scope

F = TypeVar("F", bound=Callable)


class Access(StrEnum):
    """Who may reach a route at all (beyond a scope)."""

    PUBLIC = "public"  # no credentials: liveness, sign-in form, static assets
    SIGNED_IN = "signed-in"  # any valid principal


class Datasets(StrEnum):
    """The dataset rule: which tables of the request must be in the principal's datasets."""

    NONE = "none"  # the route names no table
    REQUEST = "request"  # input/output tables named by the request (403 outside them)


class Owner(StrEnum):
    """The owner rule: whose objects the route reaches."""

    NONE = "none"  # shared data (the registry) or no object at all
    OWN = "own"  # ids in the path: the caller's own objects; another's answer 404 (admin: all)
    OWN_ROWS = "own-rows"  # job-derived rows are filtered to the caller's jobs (admin: all)


@dataclass(frozen=True)
class Policy:
    """Who may call one endpoint, and what that call spends."""

    access: Access | Scope
    datasets: Datasets = Datasets.NONE
    owner: Owner = Owner.NONE
    #: Starts work or holds a thread: spends the principal's submit budget (web.limits).
    budget: bool = False
    #: A GET that changes state (the seed's aliases): a write for the cross-site guard.
    state_changing: bool = False
    #: The dashboard's session cookie also signs the caller in (only the API's documentation:
    #: read-only GETs a person opens in the browser they signed in to /ui with).
    dashboard_session: bool = False

    @property
    def public(self) -> bool:
        return self.access == Access.PUBLIC

    @property
    def scope(self) -> Scope | None:
        """The scope the principal must hold (admin holds all), or None."""
        return self.access if isinstance(self.access, Scope) else None


PUBLIC = Policy(Access.PUBLIC)
SIGNED_IN = Policy(Access.SIGNED_IN)


def policy(
    access: Access | Scope,
    *,
    datasets: Datasets = Datasets.NONE,
    owner: Owner = Owner.NONE,
    budget: bool = False,
    state_changing: bool = False,
    dashboard_session: bool = False,
) -> Callable[[F], F]:
    """Declare who may call the decorated view (put it right under the route decorator)."""
    declared = Policy(access, datasets, owner, budget, state_changing, dashboard_session)

    def mark(view: F) -> F:
        view.policy = declared  # type: ignore[attr-defined]
        return view

    return mark


def declare(app: Flask, endpoint: str, declared: Policy) -> None:
    """Declare the policy of an endpoint that has no view function of ours (static files)."""
    app.extensions.setdefault("mlsys_policies", {})[endpoint] = declared


def policy_of(app: Flask, endpoint: str) -> Policy | None:
    """The declared policy of `endpoint`, or None when it has none."""
    declared = app.extensions.get("mlsys_policies", {}).get(endpoint)
    if declared is not None:
        return declared
    view = app.view_functions.get(endpoint)
    return getattr(view, "policy", None)


def request_policy() -> Policy | None:
    """The policy of the endpoint handling this request (None: unmatched, or undeclared)."""
    if not request.endpoint:
        return None
    return policy_of(current_app, request.endpoint)


def undeclared(app: Flask) -> list[str]:
    """`rule (endpoint)` of every route without a declared policy."""
    return [
        f"{rule.rule} ({rule.endpoint})"
        for rule in app.url_map.iter_rules()
        if policy_of(app, rule.endpoint) is None
    ]


class UndeclaredPolicy(RuntimeError):
    """A route of the app declares no policy."""


def cookie_writes(app: Flask) -> list[str]:
    """`rule (endpoint)` of every route that accepts the dashboard's session cookie but may
    change something: a method other than GET, a budget, or a state-changing GET."""
    return [
        f"{rule.rule} ({rule.endpoint})"
        for rule in app.url_map.iter_rules()
        if (declared := policy_of(app, rule.endpoint)) is not None
        and declared.dashboard_session
        and (
            not (rule.methods or set()) <= {"GET", "HEAD", "OPTIONS"}
            or declared.budget
            or declared.state_changing
        )
    ]


def check_app(app: Flask) -> None:
    """Refuse to start when any route has no declared policy, or lets the dashboard's cookie
    reach a route that changes something."""
    missing = undeclared(app)
    if missing:
        raise UndeclaredPolicy(
            "Routes without a declared policy (add @policy(...) under the route decorator, "
            "see web.policy): " + ", ".join(missing)
        )
    writes = cookie_writes(app)
    if writes:
        raise UndeclaredPolicy(
            "Only read-only GET routes may accept the dashboard's session cookie "
            "(dashboard_session=True): " + ", ".join(writes)
        )
