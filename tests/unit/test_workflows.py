"""The workflows: an apply is never cancelled halfway, one concurrency group per environment,
Terraform applies the committed configuration of its environment, each environment deploys
with its own identity, pull requests plan with a read-only one, prod applies the saved plan its
reviewers approved and deploys the image digest staging runs."""

from __future__ import annotations

import re

import pytest

from tests.infra import ENVS, WORKFLOWS, workflow

pytestmark = pytest.mark.unit

DEPLOY = "./.github/workflows/deploy.yml"
NAMES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def _callers() -> list[tuple[str, str, dict]]:
    """(workflow, job id, job) of every job that runs deploy.yml."""
    return [
        (name, job_id, job)
        for name in NAMES
        for job_id, job in workflow(name)["jobs"].items()
        if job.get("uses") == DEPLOY
    ]


def _cancels(concurrency) -> bool:
    return isinstance(concurrency, dict) and concurrency.get("cancel-in-progress") not in (
        False,
        None,
        "false",
    )


def test_every_environment_deploys_under_its_one_group_never_cancelled():
    groups = {}
    for name, job_id, job in _callers():
        env = job["with"]["environment"]
        concurrency = job.get("concurrency")
        assert isinstance(concurrency, dict), f"{name}:{job_id} runs deploy.yml without a group"
        assert concurrency["group"] == f"mlsys-deploy-{env}", f"{name}:{job_id}"
        assert concurrency.get("cancel-in-progress") is False, f"{name}:{job_id}"
        groups.setdefault(env, set()).add(concurrency["group"])
    assert set(groups) == set(ENVS)
    assert all(len(g) == 1 for g in groups.values())


def test_no_workflow_that_deploys_can_cancel_itself_as_a_whole():
    for name in {n for n, _, _ in _callers()} | {"deploy.yml"}:
        assert not _cancels(workflow(name).get("concurrency")), name


def test_deploy_sets_no_group_of_its_own_and_applies_what_it_planned():
    deploy = workflow("deploy.yml")
    assert "concurrency" not in deploy  # the callers' group; the same here would deadlock
    for job_id, job in deploy["jobs"].items():
        assert "concurrency" not in job, job_id
    steps = [s.get("run", "") for s in deploy["jobs"]["release"]["steps"]]
    assert any("terraform apply" in run and "tfplan" in run for run in steps)


def test_cancelled_check_jobs_never_lead_to_an_apply_of_their_own():
    for name in NAMES:
        for job_id, job in workflow(name)["jobs"].items():
            if _cancels(job.get("concurrency")):
                runs = " ".join(s.get("run", "") for s in job.get("steps", []))
                assert "terraform apply" not in runs and "uses" not in job, f"{name}:{job_id}"


def test_terraform_runs_in_the_environment_folder_with_only_project_and_region_as_variables():
    for name in NAMES:
        for job_id, job in workflow(name)["jobs"].items():
            runs = " ".join(s.get("run", "") for s in job.get("steps", []))
            if "terraform plan" not in runs and "terraform apply" not in runs:
                continue
            folder = job["defaults"]["run"]["working-directory"]
            assert re.fullmatch(r"infra/envs/\$\{\{ (inputs|matrix)\.environment \}\}", folder)
            assert " -var " not in runs and "-var=" not in runs and "-var-file" not in runs
            env = {**workflow(name).get("env", {}), **job.get("env", {})}
            tf_vars = {k for k in env if k.startswith("TF_VAR_")}
            assert tf_vars == {"TF_VAR_project_id", "TF_VAR_region"}, f"{name}:{job_id}"
            assert "-backend-config=" in runs, f"{name}:{job_id}: state bucket is named at init"


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _auth_accounts(job: dict) -> list[str]:
    return [
        s["with"]["service_account"]
        for s in _steps(job)
        if str(s.get("uses", "")).startswith("google-github-actions/auth")
    ]


def test_each_environment_deploys_with_its_own_deployer():
    deploy = workflow("deploy.yml")
    chooser = deploy["env"]["DEPLOYER"]
    for env in ENVS:
        assert f"inputs.environment == '{env}' && vars.GCP_DEPLOYER_{env.upper()}" in chooser
    assert chooser.rstrip("} ").endswith("|| ''"), "an unknown environment gets no identity"
    for job_id, job in deploy["jobs"].items():
        assert _auth_accounts(job) == ["${{ env.DEPLOYER }}"], job_id
    for name in NAMES:  # the one shared deployer is gone
        assert "GCP_SERVICE_ACCOUNT" not in (WORKFLOWS / name).read_text(), name


def test_pull_requests_plan_with_the_read_only_planner_and_apply_nothing_themselves():
    pr = workflow("pr.yml")
    plan = pr["jobs"]["terraform"]
    assert _auth_accounts(plan) == ["${{ vars.GCP_PLANNER_SERVICE_ACCOUNT }}"]
    runs = " ".join(s.get("run", "") for s in _steps(plan))
    assert "terraform plan" in runs and "-refresh=false" in runs and "-lock=false" in runs
    assert "terraform apply" not in runs
    for job_id, job in pr["jobs"].items():
        if job_id != "deploy-dev":
            assert "uses" not in job and "GCP_DEPLOYER" not in str(job), job_id
    assert pr["jobs"]["deploy-dev"]["with"]["github_environment"] == "dev"


def test_release_applies_the_saved_plan_and_deploys_the_pinned_image():
    jobs = workflow("deploy.yml")["jobs"]
    plan, image, release = jobs["plan"], jobs["image"], jobs["release"]
    [upload] = [s for s in _steps(plan) if str(s.get("uses", "")).startswith("actions/upload")]
    [download] = [
        s for s in _steps(release) if str(s.get("uses", "")).startswith("actions/download")
    ]
    assert upload["with"]["name"] == download["with"]["name"]
    assert "run_attempt" in upload["with"]["name"], "a re-run never applies another run's plan"
    assert upload["with"]["path"].endswith("/tfplan")
    plan_runs = " ".join(s.get("run", "") for s in _steps(plan))
    assert "-out=tfplan" in plan_runs and "terraform apply" not in plan_runs
    release_runs = [s.get("run", "") for s in _steps(release)]
    assert not any("terraform plan" in run for run in release_runs)
    [apply] = [run for run in release_runs if "terraform apply" in run]
    assert apply.split()[-1] == "tfplan"
    # Approval (the release's environment) comes after the plan and the image exist.
    assert release["needs"] == ["plan", "image"]
    assert release["environment"] == "${{ inputs.github_environment }}"
    for job in (plan, image):
        assert job["environment"] == "${{ inputs.plan_environment || inputs.github_environment }}"
    # Every deploy runs the image job's digest-pinned reference.
    deploys = [s for s in _steps(release) if "gcloud run deploy" in s.get("run", "")]
    deploys += [s for s in _steps(release) if "worker-pools deploy" in s.get("run", "")]
    assert len(deploys) == 3
    for step in deploys:
        assert step["env"]["IMAGE"] == "${{ needs.image.outputs.image }}"
    assert image["outputs"]["image"] == "${{ steps.pinned.outputs.image }}"
    [pinned] = [s for s in _steps(image) if s.get("id") == "pinned"]
    assert "image=${REPOSITORY}@${digest}" in pinned["run"] and "sha256:*" in pinned["run"]


def test_prod_is_approved_after_its_plan_and_promotes_what_staging_runs():
    prod = workflow("prod.yml")
    assert not any("environment" in job for job in prod["jobs"].values()), "no approval first"
    [(_, _, call)] = [c for c in _callers() if c[0] == "prod.yml"]
    options = call["with"]
    assert options["github_environment"] == "production"
    assert options["plan_environment"] == "production-plan"
    assert options["promote_from"] == "staging"
    image = workflow("deploy.yml")["jobs"]["image"]
    [build] = [s for s in _steps(image) if s.get("id") == "build"]
    assert build["if"] == "inputs.promote_from == ''", "prod never rebuilds"
    [promote] = [s for s in _steps(image) if s.get("id") == "promote"]
    assert promote["if"] == "inputs.promote_from != ''"
    for needed in ("status.imageDigest", "imagetools create", '"${copied}" != "${running}"'):
        assert needed in promote["run"], needed
    for name in ("staging.yml", "pr.yml"):
        [(_, _, caller)] = [c for c in _callers() if c[0] == name]
        assert caller["with"].get("promote_from", "") == ""
