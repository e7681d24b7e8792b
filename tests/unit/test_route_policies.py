"""Every route the app serves declares who may call it (web.policy), and an undeclared one
keeps the app from starting."""

from __future__ import annotations

import pytest
from flask import Blueprint

from web import create_app
from web.policy import (
    Access,
    Datasets,
    UndeclaredPolicy,
    check_app,
    cookie_writes,
    policy,
    policy_of,
    undeclared,
)

pytestmark = pytest.mark.unit

#: Routes anyone may call without credentials; anything else public is a leak.
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/docs/assets/<path:filename>"),
    ("GET", "/ui/static/<path:filename>"),
    ("GET", "/ui/signin"),
    ("POST", "/ui/signin"),
}


@pytest.fixture
def app(settings):
    return create_app({"SETTINGS": settings})


def _routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, policy_of(app, rule.endpoint)


#: API routes a signed-in dashboard session (its cookie) may call: the documentation only.
DASHBOARD_SESSION = {("GET", "/docs"), ("GET", "/openapi.json")}


def test_every_route_of_the_app_declares_a_policy(app):
    routes = list(_routes(app))

    assert len(routes) >= 30
    assert undeclared(app) == []
    assert all(declared is not None for _, _, declared in routes)


def test_only_the_known_routes_are_public(app):
    public = {(method, rule) for method, rule, declared in _routes(app) if declared.public}

    assert public == PUBLIC


def test_every_route_that_names_tables_checks_the_datasets_and_spends_the_budget(app):
    for method, rule, declared in _routes(app):
        if declared.datasets == Datasets.REQUEST:
            assert declared.scope is not None and declared.budget, (method, rule)


def test_a_route_without_a_policy_keeps_the_app_from_starting(app):
    stray = Blueprint("stray", __name__)
    stray.add_url_rule("/stray", "page", lambda: "hi")
    app.register_blueprint(stray)

    assert undeclared(app) == ["/stray (stray.page)"]
    with pytest.raises(UndeclaredPolicy, match="/stray"):
        check_app(app)


def test_only_the_documentation_accepts_the_dashboard_cookie(app):
    accepting = {(m, rule) for m, rule, declared in _routes(app) if declared.dashboard_session}

    assert accepting == DASHBOARD_SESSION
    assert cookie_writes(app) == []


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_writing_route_that_accepts_the_cookie_keeps_the_app_from_starting(app, method):
    stray = Blueprint("stray", __name__)
    stray.add_url_rule(
        "/stray",
        "write",
        policy(Access.SIGNED_IN, dashboard_session=True)(lambda: "hi"),
        methods=[method],
    )
    app.register_blueprint(stray)

    assert cookie_writes(app) == ["/stray (stray.write)"]
    with pytest.raises(UndeclaredPolicy, match="read-only GET"):
        check_app(app)
