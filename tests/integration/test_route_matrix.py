"""Every route, called as every kind of caller, answers what its declared policy promises.

The routes come from the app's URL map and the promises from each route's `Policy`
(web.policy), so a new route is in the matrix the moment it exists. Callers: nobody, a
revoked token, predict on dataset A, predict on dataset B, registry only, predict + truncate
on dataset C, and an admin. Path ids name objects of the principal on dataset A, so the
others are "another principal's object ids". Over HTTP, against the real app and Redis.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
import requests

from mlsys.settings import Settings
from tests.integration.trust_support import PASSENGERS, PROJECT, Api, bearer, serve_api
from web import create_app
from web.credentials import token_hash
from web.policy import Datasets, Owner, Policy, policy_of
from web.principal import Scope
from web.ui.guard import SESSION_COOKIE
from web.ui.sessions import SessionStore

pytestmark = pytest.mark.integration

ADMIN = "matrix-admin-token-0123"
REVOKED = "matrix-revoked-token-4567"  # belonged to a principal no longer configured
OUTPUT_A = f"{PROJECT}.scores_a.out"


@dataclass(frozen=True)
class Caller:
    name: str
    token: str | None
    scopes: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.name == "admin"

    def has(self, scope: Scope | None) -> bool:
        return scope is None or self.is_admin or scope.value in self.scopes


NOBODY = Caller("nobody", None)
REVOKED_CALLER = Caller("revoked", REVOKED)
PREDICT_A = Caller(
    "predict-a",
    "matrix-predict-a-token",
    ("predict",),
    (f"{PROJECT}.titanic", f"{PROJECT}.scores_a"),
)
PREDICT_B = Caller("predict-b", "matrix-predict-b-token", ("predict",), (f"{PROJECT}.data_b",))
REGISTRY_ONLY = Caller("registry", "matrix-registry-token", ("registry",))
TRUNCATE_C = Caller(
    "truncate-c", "matrix-truncate-c-token", ("predict", "truncate"), (f"{PROJECT}.data_c",)
)
ADMIN_CALLER = Caller("admin", ADMIN)
CALLERS = (NOBODY, REVOKED_CALLER, PREDICT_A, PREDICT_B, REGISTRY_ONLY, TRUNCATE_C, ADMIN_CALLER)
PRINCIPALS = [
    {
        "name": c.name,
        "token_sha256": [token_hash(c.token)],
        "scopes": list(c.scopes),
        "input_datasets": list(c.datasets),
        "output_datasets": list(c.datasets),
    }
    for c in (PREDICT_A, PREDICT_B, REGISTRY_ONLY, TRUNCATE_C)
]


def _predict() -> dict:
    """A predict request on dataset A (only predict-a and the admin may run it)."""
    return {
        "env": "dev",
        "input_table": PASSENGERS,
        "output_table": OUTPUT_A,
        "model_name": "titanic-survival",
        "model_version": "v1",
        "id_columns": ["PassengerId"],
    }


#: What each route is called with, beyond its path (routes not named here get nothing).
JSON_BODIES = {
    ("POST", "/predict"): _predict(),
    ("POST", "/model-registry"): {"env": "dev"},
    ("PUT", "/models/<name>/aliases/<alias>"): {"env": "dev", "version": "v1"},
    ("POST", "/schedules"): {"interval_seconds": 3600, "paused": True, "predict": _predict()},
    ("PATCH", "/schedules/<schedule_id>"): {"paused": True},
    # Both tables are read: both are in dataset A (titanic).
    ("POST", "/evaluations"): {
        "env": "dev",
        "output_table": f"{PROJECT}.titanic.predictions",
        "labels_table": PASSENGERS,
    },
}
QUERIES = {
    ("GET", "/predict"): _predict() | {"id_columns": "PassengerId"},
    ("GET", "/model-registry"): {"env": "dev"},
    ("GET", "/models"): {"env": "dev"},
    ("GET", "/models/<name>"): {"env": "dev"},
    ("GET", "/models/<name>/versions/<version>/monitoring"): {"env": "dev"},
    ("GET", "/models/<name>/versions/<version>/evaluations"): {"env": "dev"},
}
_PREDICT_FORM = {**_predict(), "id_columns": "PassengerId"}
FORMS = {
    ("POST", "/ui/predict"): _PREDICT_FORM,
    ("POST", "/ui/schedules/new"): {**_PREDICT_FORM, "interval_seconds": "3600", "paused": "1"},
    ("POST", "/ui/models/<name>/aliases"): {"env": "dev", "alias": "champion", "version": "v1"},
    ("POST", "/ui/models/sync"): {"env": "dev"},
}


@dataclass
class Objects:
    """Ids of objects that belong to predict-a (fresh for each call: calls may delete them)."""

    job_id: str
    schedule_id: str


@pytest.fixture
def api(tmp_path, demo_home, redis_url, redis_client):
    with serve_api(
        tmp_path / "home",
        demo_home,
        redis_url,
        MLSYS_API_TOKENS=ADMIN,
        MLSYS_API_PRINCIPALS=json.dumps(PRINCIPALS),
        MLSYS_SUBMIT_RATE_LIMIT="100000/minute",
        MLSYS_SCHEDULES_PER_PRINCIPAL="100000",
        MLSYS_ALIAS_WAIT_SECONDS="0",
    ) as api:
        yield api


def _objects(api: Api) -> Objects:
    headers = bearer(PREDICT_A.token)
    job = api.call("POST", "/predict", json=_predict(), headers=headers)
    schedule = api.call(
        "POST", "/schedules", json=JSON_BODIES[("POST", "/schedules")], headers=headers
    )
    assert job.status_code == 202 and schedule.status_code == 201, (job.text, schedule.text)
    return Objects(job.json()["job_id"], schedule.json()["schedule_id"])


def _path(rule: str, objects: Objects) -> str:
    values = {
        "job_id": objects.job_id,
        "schedule_id": objects.schedule_id,
        "name": "titanic-survival",
        "version": "v1",
        "alias": "champion",
        "action": "pause",
        "filename": "viewer.js",
    }
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values.get(m.group(1), "x"), rule)


def _static(rule: str) -> str:
    return rule.replace("<path:filename>", "ui.css" if rule.startswith("/ui") else "viewer.js")


def _call(api: Api, caller: Caller, method: str, rule: str, objects: Objects) -> requests.Response:
    path = _static(rule) if "<path:filename>" in rule else _path(rule, objects)
    kwargs: dict = {"allow_redirects": False}
    if rule.startswith("/ui"):
        cookies = {}
        form = dict(FORMS.get((method, rule), {}))
        if rule == "/ui/signin":
            form["token"] = caller.token or ""
        if caller.token is not None:
            cookie, session = SessionStore.from_url(api.settings.redis_url).create(caller.token)
            cookies[SESSION_COOKIE] = cookie
            form["csrf_token"] = session.csrf
        if method == "POST":
            kwargs["data"] = form
        kwargs["cookies"] = cookies
        return requests.request(method, api.url + path, timeout=30, **kwargs)
    headers = bearer(caller.token) if caller.token else {}
    if (method, rule) in JSON_BODIES:
        kwargs["json"] = JSON_BODIES[(method, rule)]
    kwargs["params"] = QUERIES.get((method, rule))
    return requests.request(method, api.url + path, headers=headers, timeout=30, **kwargs)


def _refused_unknown(response: requests.Response, rule: str, method: str) -> bool:
    """The answer to a caller with no valid credentials."""
    if rule.startswith("/ui"):
        if method == "GET" and not rule.endswith("/live"):
            return response.status_code == 303 and "/ui/signin" in response.headers["Location"]
        return response.status_code == 401
    return response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def _expected(declared: Policy, caller: Caller, method: str, rule: str) -> str:
    """What the policy promises this caller: refused-unknown, 403, 404, or allowed."""
    if declared.public:
        return "allowed"
    if caller.token is None or caller is REVOKED_CALLER:
        return "unknown"
    if not caller.has(declared.scope):
        return "403"
    if declared.datasets == Datasets.REQUEST and (method, rule) in {
        **JSON_BODIES,
        **QUERIES,
        **FORMS,
    }:
        if not caller.is_admin and caller is not PREDICT_A:
            return "403"  # the request names dataset A
    if declared.owner == Owner.OWN and "_id>" in rule and caller not in (PREDICT_A, ADMIN_CALLER):
        return "404"
    return "allowed"


def _routes(settings: Settings) -> list[tuple[str, str, Policy]]:
    app = create_app({"SETTINGS": settings})
    return sorted(
        (method, rule.rule, policy_of(app, rule.endpoint))
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def test_every_route_answers_every_caller_as_its_policy_declares(api):
    routes = _routes(api.settings)
    assert len(routes) >= 30
    wrong = []
    for method, rule, declared in routes:
        for caller in CALLERS:
            response = _call(api, caller, method, rule, _objects(api))
            expected = _expected(declared, caller, method, rule)
            status = response.status_code
            if expected == "unknown":
                ok = _refused_unknown(response, rule, method)
            elif expected in ("403", "404"):
                ok = status == int(expected)
            elif declared.public:
                # Reached the view: the sign-in form itself answers 401 to a wrong token.
                ok = status not in (403, 404) and status != 500
            else:
                # Past every guard: what the view answers (400, 503 with no worker) is its own.
                ok = status not in (401, 403, 404) and status != 500
            if not ok:
                wrong.append(f"{method} {rule} as {caller.name}: {status}, expected {expected}")
    assert wrong == [], "\n".join(wrong)


def test_listings_show_a_principal_only_its_own_objects(api):
    objects = _objects(api)
    for path, key, field in (
        ("/jobs", "jobs", "job_id"),
        ("/schedules", "schedules", "schedule_id"),
    ):
        seen = {
            caller.name: {
                item[field]
                for item in api.call("GET", path, headers=bearer(caller.token)).json()[key]
            }
            for caller in (PREDICT_A, PREDICT_B, TRUNCATE_C, ADMIN_CALLER)
        }
        own = getattr(objects, field)
        assert own in seen["predict-a"] and own in seen["admin"], path
        assert own not in seen["predict-b"] and own not in seen["truncate-c"], path
