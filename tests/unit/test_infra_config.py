"""Per-environment configuration, bucket names, protection of state and the Cloud Run settings,
checked on the parsed Terraform."""

from __future__ import annotations

import subprocess

import pytest

from tests.infra import ENVS, INFRA, MODULE, ROOT, blocks, resources, tfvars

pytestmark = pytest.mark.unit

FROM_CI = {"project_id", "region"}  # repository variables GCP_PROJECT_ID, GCP_REGION
STATEFUL = {
    "google_bigquery_dataset": "mlsys",
    "google_bigquery_table": "model_registry",
    "google_storage_bucket": "models",
    "google_redis_instance": "broker",
}


def _variables(directory) -> dict[str, dict]:
    return {name: body for v in blocks(directory, "variable") for name, body in v.items()}


def _module_args(env: str) -> dict:
    [call] = [m["mlsys"] for m in blocks(INFRA / "envs" / env, "module")]
    return call


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_commits_every_non_secret_setting(env):
    folder = INFRA / "envs" / env
    config = tfvars(folder / "config.auto.tfvars")
    declared = _variables(folder)
    assert set(config) == set(declared) - FROM_CI
    # Nothing CI would fall back on: every committed setting is required or explicit.
    assert "bq_location" in config and "default" not in declared["bq_location"]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(folder / "config.auto.tfvars")], cwd=ROOT
    )
    assert ignored.returncode == 1, "config.auto.tfvars must not be git-ignored"


@pytest.mark.parametrize("env", ENVS)
def test_the_module_gets_every_environment_setting(env):
    args = _module_args(env)
    for name in _variables(INFRA / "envs" / env):
        assert args.get(name) == f"var.{name}", name


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("staging", True), ("prod", True)])
def test_state_is_protected_in_staging_and_prod(env, protected):
    args = _module_args(env)
    assert args["prevent_destroy"] is protected
    moved = {(m["from"], m["to"]) for m in blocks(INFRA / "envs" / env, "moved")}
    expected = {
        (f"module.mlsys.{kind}.{name}", f"module.mlsys.{kind}.{name}_protected[0]")
        for kind, name in [*STATEFUL.items(), ("google_bigquery_table", "prediction_stats")]
    }
    assert moved == (expected if protected else set())


@pytest.mark.parametrize(("kind", "name"), sorted(STATEFUL.items()))
def test_every_stateful_resource_has_a_protected_twin_identical_but_for_the_lifecycle(kind, name):
    found = {b.name: b.body for b in resources(MODULE) if b.kind == kind}
    plain, twin = dict(found[name]), dict(found[f"{name}_protected"])
    assert twin.pop("lifecycle") == [{"prevent_destroy": True}]
    assert plain.pop("count") == "var.prevent_destroy ? 0 : 1"
    assert twin.pop("count") == "var.prevent_destroy ? 1 : 0"
    for body in (plain, twin):
        body.pop("__comments__", None)
    assert plain == twin


def test_bucket_names_carry_a_prefix_that_defaults_to_the_project():
    [local] = [b for b in blocks(MODULE, "locals") if "bucket_name" in b]
    assert (
        local["bucket_prefix"] == "var.bucket_prefix == null ? var.project_id : var.bucket_prefix"
    )
    assert local["bucket_name"] == (
        'join("-", compact([local.bucket_prefix, "${local.prefix}-models-${local.env}"]))'
    )
    [boot] = [b for b in blocks(INFRA / "bootstrap", "locals") if "state_buckets" in b]
    assert "compact([local.bucket_prefix" in boot["state_buckets"]
    buckets = [b for b in resources(MODULE) if b.kind == "google_storage_bucket"]
    assert {b.body["name"] for b in buckets} == {"local.bucket_name"}
    for env in ENVS:
        [backend] = blocks(INFRA / "envs" / env, "terraform")[0]["backend"]
        assert "bucket" not in backend["gcs"], "named at init: -backend-config=bucket=..."


def _service(name):
    [found] = [
        b.body
        for b in resources(MODULE)
        if b.kind.startswith("google_cloud_run_v2") and b.name == name
    ]
    return found


def test_flower_keeps_one_instance_with_cpu_while_enabled_and_is_reached_through_iam():
    flower = _service("flower")
    assert flower["count"] == "var.flower_enabled ? 1 : 0"
    [template] = flower["template"]
    [scaling] = template["scaling"]
    assert (scaling["min_instance_count"], scaling["max_instance_count"]) == (1, 1)
    [container] = template["containers"]
    [resources_] = container["resources"]
    assert resources_["cpu_idle"] is False
    iam = [b for b in resources(MODULE) if b.name == "flower_invokers"]
    assert "allUsers" not in str(iam)
    # Cloud Run IAM is the gate: the proxy's Bearer token would meet a basic-auth 401 forever.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLSYS_FLOWER_GATE"] == "cloud-run-iam"
    assert "FLOWER_BASIC_AUTH" not in env and "FLOWER_UNAUTHENTICATED_API" not in env


def test_workers_know_their_memory_limit_and_concurrency():
    pool = _service("pool")
    [container] = pool["template"][0]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLSYS_CONTAINER_MEMORY"] == "each.value.memory"
    assert env["MLSYS_WORKER_CONCURRENCY"] == "each.value.cpu"


def test_memorystore_is_encrypted_in_transit_from_the_start():
    redis = [b.body for b in resources(MODULE) if b.kind == "google_redis_instance"]
    assert {r["transit_encryption_mode"] for r in redis} == {"SERVER_AUTHENTICATION"}
    [url] = [
        b.body["secret_data"]
        for b in resources(MODULE)
        if b.name == "redis_url" and b.kind == "google_secret_manager_secret_version"
    ]
    assert url.startswith("rediss://") and "ssl_ca_certs=${local.redis_ca_path}" in url
    assert "redis_transit_encryption" not in _variables(MODULE)


@pytest.mark.parametrize("name", ["web", "pool", "flower"])
def test_every_service_waits_for_every_secret_it_reads_at_start(name):
    depends = set(_service(name)["depends_on"])
    assert {
        "google_secret_manager_secret_iam_member.readers",
        "google_secret_manager_secret_version.redis_url",
        "google_secret_manager_secret_version.redis_ca",
    } <= depends
