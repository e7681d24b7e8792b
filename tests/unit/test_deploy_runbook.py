"""The "Deploying to Google Cloud" runbook (infra/README.md) names only what infra/ and the
workflows define: resource addresses, variables, outputs, secrets, repository variables."""

from __future__ import annotations

import re

import pytest

from tests.infra import ENVS, INFRA, MODULE, ROOT, WORKFLOWS, blocks, resources, tfvars

pytestmark = pytest.mark.unit

# The runbook is a section of infra/README.md (the README links to it), up to the next section.
_, _, RUNBOOK = (ROOT / "infra" / "README.md").read_text().partition("## Deploying to Google Cloud")
RUNBOOK, _, _ = RUNBOOK.partition("\n## ")


def test_every_imported_or_targeted_address_is_a_module_resource():
    addresses = set(re.findall(r"module\.mlsys\.([a-z0-9_]+)\.([a-z0-9_]+)", RUNBOOK))
    assert addresses, "the runbook imports and targets resources"
    defined = {(b.kind, b.name) for b in resources(MODULE)}
    for kind, name in addresses:
        name = name.removesuffix("$P")
        assert (kind, name) in defined or (kind, f"{name}_protected") in defined, (kind, name)
    assert 'google_storage_bucket.tf_state["dev"]' in RUNBOOK
    assert any(
        b.kind == "google_storage_bucket" and b.name == "tf_state"
        for b in resources(INFRA / "bootstrap")
    )


def test_every_setting_it_names_is_committed_per_environment():
    config = set(tfvars(INFRA / "envs" / "dev" / "config.auto.tfvars"))
    named = set(re.findall(r"`([a-z_]+)`", RUNBOOK))
    for setting in (
        "bq_location",
        "bucket_prefix",
        "worker_instances",
        "flower_enabled",
        "invoker_members",
        "flower_members",
        "model_writers",
        "input_datasets",
        "output_datasets",
    ):
        assert setting in named and setting in config, setting
    for env in ENVS:
        assert set(tfvars(INFRA / "envs" / env / "config.auto.tfvars")) == config


def test_outputs_secrets_and_repository_variables_exist():
    for output in re.findall(r"terraform(?: -chdir=\S+)? output (?:-raw |-json )?(\w+)", RUNBOOK):
        found = [
            o
            for d in (INFRA / "bootstrap", INFRA / "envs" / "dev")
            for o in (k for b in blocks(d, "output") for k in b)
        ]
        assert output in found, output
    secrets = set(re.findall(r"--secret=mlsys-([a-z-]+)-\$ENV", RUNBOOK))
    secrets |= set(re.findall(r"versions add mlsys-([a-z-]+)-\$ENV", RUNBOOK))
    assert secrets == {"api-tokens"}
    secret_ids = " ".join(str(b.body.get("secret_id", "")) for b in resources(MODULE))
    for secret in secrets:
        assert f"{secret}-${{local.env}}" in secret_ids, secret
    workflows = " ".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))
    for variable in re.findall(r"`(GCP_[A-Z_]+)`", RUNBOOK):
        assert f"vars.{variable}" in workflows, variable
    assert "TF_STATE_BUCKET_${ENVIRONMENT^^}" in workflows


def test_the_runbook_logs_in_with_a_project_and_a_quota_project():
    project = RUNBOOK.index("gcloud config set project $PROJECT")
    adc = RUNBOOK.index("gcloud auth application-default login")
    quota = RUNBOOK.index("gcloud auth application-default set-quota-project $PROJECT")
    assert project < adc < quota


def test_the_first_real_image_is_deployed_before_the_first_call():
    deploy = RUNBOOK.index("gcloud run deploy mlsys-$ENV --image=$IMAGE")
    first_call = RUNBOOK.index('"$URL/jobs"')
    full_apply = RUNBOOK.index("terraform apply                  # Memorystore")
    assert full_apply < deploy < first_call
    assert "gcloud beta run worker-pools deploy $pool --image=$IMAGE" in RUNBOOK
    # The services start on Google's placeholder, whose image Terraform then ignores.
    run_tf = (MODULE / "run.tf").read_text()
    assert "template[0].containers[0].image" in run_tf
    assert "cloudrun/container/hello" in RUNBOOK


def test_a_migration_imports_before_any_apply_and_a_failed_revision_is_recoverable():
    init = RUNBOOK.index('terraform init -backend-config="bucket=$STATE"')
    note = RUNBOOK.index("run step 4's imports NOW")
    first_apply = RUNBOOK.index("terraform apply", init)
    assert init < note < first_apply
    bootstrap_apply = RUNBOOK.index("terraform init && terraform apply")
    assert RUNBOOK.index("adopt_state_buckets = true") < bootstrap_apply
    assert "terraform untaint module.mlsys.google_cloud_run_v2_service.web" in RUNBOOK
