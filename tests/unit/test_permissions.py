"""The permission matrix (infra/permissions.toml) is exactly what infra/ grants, and minimal."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.infra import INFRA, MODULE, blocks, resources

pytestmark = pytest.mark.unit

MATRIX = tomllib.loads((INFRA / "permissions.toml").read_text())
_ACCOUNT = re.compile(r"google_service_account\.(\w+)\.member")
_TOSET = re.compile(r"toset\((?P<inner>.*)\)", re.S)


def _roles(block) -> list[str]:
    role = block.body["role"]
    if role == "each.value":
        return re.findall(r'"(roles/[^"]+)"', block.body["for_each"])
    return [role]


def _scope(block) -> str:
    """The matrix scope a binding is on, from the Terraform expression naming its target."""
    if block.kind == "google_project_iam_member":
        target = block.body["project"]
    elif block.kind == "google_storage_bucket_iam_member":
        target = block.body["bucket"]
    else:
        target = block.body["dataset_id"]
    if target == "each.value":
        target = _TOSET.fullmatch(block.body["for_each"])["inner"]
    by_expr = {expr: name for name, expr in MATRIX["scopes"].items()}
    assert target in by_expr, f"{block.address} grants on {target!r}, a scope the matrix lacks"
    return by_expr[target]


def _granted() -> set[tuple[str, str, str]]:
    """(account, scope, role) of every runtime-account binding in the module."""
    kinds = {
        "google_project_iam_member",
        "google_bigquery_dataset_iam_member",
        "google_storage_bucket_iam_member",
    }
    found = set()
    for block in resources(MODULE):
        if block.kind not in kinds:
            continue
        account = _ACCOUNT.fullmatch(block.body["member"])
        if account is None:  # people: invokers, model writers (variables)
            assert block.body["member"] == "each.value", block.address
            continue
        for role in _roles(block):
            found.add((account[1], _scope(block), role))
    return found


def _secret_grants() -> set[tuple[str, str, str]]:
    [readers] = [b["secret_readers"] for b in blocks(MODULE, "locals") if "secret_readers" in b]
    return {
        (account, f"secret:{secret}", "roles/secretmanager.secretAccessor")
        for secret, accounts in readers.items()
        for account in accounts
    }


def _matrix() -> set[tuple[str, str, str]]:
    accounts = MATRIX["processes"]
    return {(accounts[g["process"]], g["scope"], g["role"]) for g in MATRIX["grant"]}


def test_iam_grants_exactly_the_matrix():
    granted = _granted() | _secret_grants()
    assert granted - _matrix() == set(), "granted but not in infra/permissions.toml"
    assert _matrix() - granted == set(), "in infra/permissions.toml but not granted"


def test_the_web_account_only_reads():
    web = [g for g in MATRIX["grant"] if MATRIX["processes"][g["process"]] == "web"]
    permissions = {c["permission"] for g in web for c in g["calls"]}
    writes = {p for p in permissions if re.search(r"create|update|delete|readsessions", p)}
    # Query jobs for the monitoring reads; data it may read only in mlsys' own dataset.
    assert writes == {"bigquery.jobs.create"}
    project = [g for g in web if g["scope"] == "project"]
    assert [g["role"] for g in project] == ["roles/bigquery.jobUser"]
    readable = {g["scope"] for g in web if "bigquery.tables.getData" in MATRIX["roles"][g["role"]]}
    assert readable == {"mlsys_dataset"}


@pytest.mark.parametrize("grant", MATRIX["grant"], ids=lambda g: f"{g['process']}-{g['scope']}")
def test_each_role_allows_its_calls_and_no_smaller_role_would(grant):
    roles = MATRIX["roles"]
    needed = {c["permission"] for c in grant["calls"]}
    # A project-level role grants table permissions nowhere; the dataset role covers those.
    if grant["scope"] == "project":
        needed = {p for p in needed if not p.startswith("bigquery.tables.")}
    assert needed <= set(roles[grant["role"]]), (
        f"{grant['role']} lacks {needed - set(roles[grant['role']])}"
    )
    smaller = [
        name
        for name, perms in roles.items()
        if needed <= set(perms) and len(perms) < len(roles[grant["role"]])
    ]
    assert smaller == [], f"{grant['role']} is broader than needed: {smaller} would do"


def test_beat_and_flower_call_no_google_api_beyond_their_secrets():
    for grant in MATRIX["grant"]:
        if grant["process"] in ("beat", "flower"):
            assert grant["scope"].startswith("secret:"), grant
