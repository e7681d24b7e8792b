"""The workflows: an apply is never cancelled halfway, one concurrency group per environment,
and Terraform applies the committed configuration of its environment."""

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
    steps = [s.get("run", "") for s in deploy["jobs"]["terraform"]["steps"]]
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
