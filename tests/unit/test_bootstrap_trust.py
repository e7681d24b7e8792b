"""Who may deploy what (infra/bootstrap), on the parsed Terraform: a deployer per environment
that writes only its own state, a read-only planner for pull requests, Workload Identity
bindings by GitHub environment with staging and production only from main, and nothing created
before the APIs it needs are on."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra import INFRA, blocks, resources

pytestmark = pytest.mark.unit

BOOTSTRAP = INFRA / "bootstrap"
REPO = "acme/mlsys"


def _resource(kind: str, name: str) -> dict:
    [body] = [b.body for b in resources(BOOTSTRAP) if b.kind == kind and b.name == name]
    return body


def _locals() -> dict:
    found = {}
    for block in blocks(BOOTSTRAP, "locals"):
        found |= block
    return found


def _default(variable: str):
    [body] = [v[variable] for v in blocks(BOOTSTRAP, "variable") if variable in v]
    return body["default"]


def _admits(sub: str, ref: str, repository: str = REPO) -> bool:
    """The provider's attribute condition (CEL), evaluated for one token: translated into
    Python, with this repository and the subjects the locals list."""
    condition = _resource("google_iam_workload_identity_pool_provider", "github")[
        "attribute_condition"
    ]
    main_only = [f"repo:{REPO}:{s}" for s in _locals()["main_only"]]
    assert "${jsonencode(local.main_only_subjects)}" in condition
    subjects = '[for s in local.main_only : "repo:${local.repo}:${s}"]'
    assert _locals()["main_only_subjects"] == subjects
    expression = (
        condition.replace("${jsonencode(local.main_only_subjects)}", json.dumps(main_only))
        .replace("${local.repo}", REPO)
        .replace('\\"', '"')
        .replace("&&", " and ")
        .replace("||", " or ")
        .replace("!(", " not (")
    )
    assert re.fullmatch(r"[\w\s.\"=/:!\-()\[\],]+", expression), expression
    assertion = type("Assertion", (), {"repository": repository, "sub": sub, "ref": ref})
    return bool(eval(expression, {"__builtins__": {}}, {"assertion": assertion}))  # noqa: S307


@pytest.mark.parametrize(
    ("sub", "ref", "admitted"),
    [
        (f"repo:{REPO}:environment:production", "refs/heads/main", True),
        (f"repo:{REPO}:environment:production", "refs/heads/feature", False),
        (f"repo:{REPO}:environment:production-plan", "refs/heads/feature", False),
        (f"repo:{REPO}:environment:staging", "refs/heads/feature", False),
        (f"repo:{REPO}:environment:staging", "refs/heads/main", True),
        (f"repo:{REPO}:environment:dev", "refs/pull/7/merge", True),
        (f"repo:{REPO}:pull_request", "refs/pull/7/merge", True),
    ],
)
def test_staging_and_production_tokens_come_only_from_main(sub, ref, admitted):
    assert _admits(sub, ref) is admitted


def test_no_other_repository_gets_a_token():
    assert not _admits("repo:evil/mlsys:environment:dev", "refs/heads/main", "evil/mlsys")


def test_each_account_is_bound_to_its_own_subjects_only():
    subjects = _locals()["deployer_subjects"]
    assert subjects == {
        "dev": ["environment:dev"],
        "staging": ["environment:staging"],
        "prod": ["environment:production", "environment:production-plan"],
    }
    assert _locals()["planner_subjects"] == ["pull_request"]
    # Bindings name one subject each (principal://.../subject/...), never the whole repository.
    for name in ("deployer_wif", "planner_wif"):
        member = _resource("google_service_account_iam_member", name)["member"]
        assert member.startswith("principal://iam.googleapis.com/")
        assert "/subject/repo:${local.repo}:${each.value" in member
        assert "attribute.repository" not in member
    deployer = _resource("google_service_account_iam_member", "deployer_wif")
    assert deployer["service_account_id"] == "google_service_account.deployer[each.value.env].name"


def test_each_environment_has_a_deployer_that_writes_only_its_own_state():
    deployer = _resource("google_service_account", "deployer")
    assert deployer["for_each"] == "toset(local.environments)"
    assert deployer["account_id"] == "mlsys-deployer-${each.value}"
    state = _resource("google_storage_bucket_iam_member", "deployer_state")
    assert state["for_each"] == "google_storage_bucket.tf_state"
    assert state["member"] == "google_service_account.deployer[each.key].member"


def test_the_planner_only_reads_the_state():
    granted = [
        b
        for b in resources(BOOTSTRAP)
        if "iam" in b.kind and "google_service_account.planner" in str(b.body.get("member"))
    ]
    assert [(b.kind, b.body["role"]) for b in granted] == [
        ("google_storage_bucket_iam_member", "roles/storage.objectViewer")
    ]


def test_nothing_is_created_before_the_apis_it_needs():
    for block in resources(BOOTSTRAP):
        if block.kind in {"google_project_service", "google_storage_bucket_iam_member"}:
            continue
        if block.kind == "google_service_account_iam_member":
            continue  # refers to the accounts, which wait themselves
        assert block.body.get("depends_on") == ["google_project_service.apis"], block.address


def test_the_predecessors_state_buckets_are_adopted_in_the_first_apply():
    [adopt] = blocks(BOOTSTRAP, "import")
    assert adopt["for_each"] == "var.adopt_state_buckets ? local.state_buckets : {}"
    assert adopt["to"] == "google_storage_bucket.tf_state[each.key]"
    assert adopt["id"] == "${var.project_id}/${each.value}"
    assert _default("adopt_state_buckets") is False
