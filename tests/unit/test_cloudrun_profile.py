"""The local Cloud Run profile (docker-compose.cloudrun.yml) behaves like Cloud Run where it
matters and passes each process the settings Terraform passes it (infra/modules/mlsys/run.tf),
checked on the parsed files."""

from __future__ import annotations

import pytest
import yaml

from tests.infra import MODULE, ROOT, blocks, resources

pytestmark = pytest.mark.unit

BASE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROFILE = yaml.safe_load((ROOT / "docker-compose.cloudrun.yml").read_text())
#: Compose service of each Cloud Run resource of the module.
SERVICES = {"web": "web", "pool": "worker", "flower": "flower-iam"}
#: Settings of the Google backends (BigQuery, GCS) and of the project, which the local stack
#: replaces with its embedded ones; MLSYS_API_TOKENS comes from .env (the smoke sets it).
CLOUD_ONLY = {
    "GCP_PROJECT_ID",
    "GCP_REGION",
    "MLSYS_BQ_LOCATION",
    "MLSYS_WAREHOUSE",
    "MLSYS_MODEL_STORE",
    "GCS_BUCKET_MODELS_${upper(local.env)}",
    "MLSYS_API_TOKENS",
}


def _terraform_env(resource: str) -> dict[str, object]:
    """Variables Terraform gives the resource's container: literal values, or None where it
    is an expression or a secret."""
    [body] = [
        b.body
        for b in resources(MODULE)
        if b.kind.startswith("google_cloud_run_v2") and b.name == resource
    ]
    [container] = body["template"][0]["containers"]
    found = {e["name"]: e.get("value") for e in container.get("env", [])}
    if any("env" in d for d in container.get("dynamic", [])):
        [common] = [b["common_env"] for b in blocks(MODULE, "locals") if "common_env" in b]
        found |= dict.fromkeys(common)
    return {
        name: (value if isinstance(value, str) and "${" not in value and "." not in value else None)
        for name, value in found.items()
    }


def _compose_env(service: str) -> dict[str, str]:
    base = BASE["services"].get(service, {})
    merged = {}
    for layer in (BASE["x-app"], base, PROFILE["services"][service]):
        merged |= layer.get("environment") or {}
    return merged


@pytest.mark.parametrize(("resource", "service"), sorted(SERVICES.items()))
def test_each_process_gets_the_settings_terraform_gives_it(resource, service):
    expected = _terraform_env(resource)
    local = _compose_env(service)
    missing = set(expected) - CLOUD_ONLY - set(local)
    assert not missing, f"{service} lacks what Cloud Run passes: {sorted(missing)}"
    for name, value in expected.items():
        if value is not None and name not in CLOUD_ONLY:
            assert str(local[name]) == value, name


@pytest.mark.parametrize("service", ["web", "worker", "beat", "flower-iam"])
def test_every_instance_is_localhost_and_stops_like_cloud_run(service):
    profile = PROFILE["services"][service]
    merged = {**PROFILE["x-cloud-run"], **profile}
    assert merged["hostname"] == "localhost"
    assert merged["stop_signal"] == "SIGTERM"
    assert merged["stop_grace_period"] == "10s"


def test_flower_is_reached_only_through_the_bearer_proxy():
    services = PROFILE["services"]
    assert services["flower"]["profiles"] == ["basic-auth"]  # the basic-auth Flower stays off
    assert "ports" not in services["flower-iam"]
    assert _compose_env("flower-iam")["MLSYS_FLOWER_GATE"] == "cloud-run-iam"
    assert "FLOWER_BASIC_AUTH" not in _compose_env("flower-iam")
    proxy = services["flower-proxy"]
    assert proxy["ports"] == ["127.0.0.1:5555:5555"]
    assert "http://flower-iam:5555" in proxy["command"]
    assert "docker/cloudrun-proxy.py" in proxy["volumes"][0]
