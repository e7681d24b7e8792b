"""A small HTTP client for the mlsys API (used by the CLI and notebooks).

A problem the API answers with comes back as the exception the server raised: its problem+json
`type` names the class of `mlsys.errors`, so `except ModelNotFound` (or its family, `NotFound`)
works the same against the API as in-process. Every such error is also an `ApiError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from mlsys import errors
from mlsys.errors import MlsysError
from mlsys.jobs.names import TERMINAL
from mlsys.settings import Settings

TERMINAL_STATES = {str(state) for state in TERMINAL}


class ApiError(MlsysError):
    """The API answered with a problem (4xx/5xx) or could not be reached."""


#: The problem type URIs of the API (`web.errors.problem_type`) end with the class's slug.
_TYPE_PREFIX = "urn:mlsys:problem:"
#: The family of a problem whose type names no class of mlsys.errors (a route that does not
#: exist, a refused token), by HTTP status.
_FAMILIES: dict[int, type[MlsysError]] = {
    400: errors.BadInput,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.BadInput,
    500: errors.ServerFault,
    503: errors.Unavailable,
}


def _error_classes() -> dict[str, type[MlsysError]]:
    """mlsys.errors' classes by the slug of their problem type."""
    found: dict[str, type[MlsysError]] = {}
    pending = [MlsysError]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__ == errors.__name__:
            found[errors.slug_of(cls)] = cls
    return found


_REMOTE: dict[type[MlsysError], type[ApiError]] = {}


def remote_error(cls: type[MlsysError] | None) -> type[ApiError]:
    """The class a problem of `cls` is raised as here: a subclass of both `cls` and ApiError,
    with the same name (so it names the same problem type)."""
    if cls is None:
        return ApiError
    if cls not in _REMOTE:
        doc = f"{cls.__name__}, as the API answered it."
        _REMOTE[cls] = type(cls.__name__, (cls, ApiError), {"__doc__": doc})
    return _REMOTE[cls]


def problem_error(status: int, problem: dict[str, Any]) -> type[ApiError]:
    """The exception class of a problem+json body answered with `status`."""
    kind = str(problem.get("type") or "")
    named = (
        _error_classes().get(kind.removeprefix(_TYPE_PREFIX))
        if kind.startswith(_TYPE_PREFIX)
        else None
    )
    return remote_error(named or _FAMILIES.get(status))


class MlsysClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> MlsysClient:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        return cls(settings.api_url, token)

    def _call(self, method: str, path: str, wait: float | None = None, **kwargs) -> Any:
        url = f"{self.base_url}{path}"
        timeout = self.timeout
        if wait:
            # RFC 7240: the server may hold the answer until the job ends (at most `wait` s).
            kwargs["headers"] = {**kwargs.get("headers", {}), "Prefer": f"wait={int(wait)}"}
            timeout = self.timeout + wait
        try:
            response = self.session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as error:
            unreachable = remote_error(errors.BackendUnavailable)(
                f"Cannot reach the mlsys API at {self.base_url} ({type(error).__name__}).",
                hint="Start it (see README: Local stack) or set MLSYS_API_URL.",
            )
            unreachable.status = 503  # the service's trouble, not the caller's input
            raise unreachable from None
        if response.status_code >= 400:
            problem: dict[str, Any] = {}
            try:
                problem = response.json()
                message = problem.get("detail") or problem.get("title") or response.text
                if problem.get("error_id"):  # the server's log repeats it
                    message = f"{message} (error_id {problem['error_id']})"
            except (ValueError, AttributeError):
                problem, message = {}, response.text[:200]
            error = problem_error(response.status_code, problem)(
                f"{response.status_code}: {message}"
            )
            error.status = response.status_code
            raise error
        return response.json() if response.content else None

    def submit_predict(self, wait: float | None = None, **params: Any) -> dict:
        """Submit a predict job. With `wait`, ask the server to answer once the job ended
        (Prefer: wait=N): a finished job comes back whole (it has a `state`), else {job_id}."""
        return self._call("POST", "/predict", wait=wait, json=params)

    def submit_registry_sync(self, env: str, wait: float | None = None) -> dict:
        return self._call("POST", "/model-registry", wait=wait, json={"env": env})

    def run_predict(self, wait: float = 30.0, **params: Any) -> dict:
        """Submit a predict job and return it once it ended: the server waits first
        (Prefer: wait), then this polls."""
        job = self.submit_predict(wait=wait, **params)
        return job if job.get("state") in TERMINAL_STATES else self.wait(job["job_id"])

    def job(self, job_id: str) -> dict:
        return self._call("GET", f"/jobs/{job_id}")

    def jobs(self, **filters: Any) -> dict:
        return self._call("GET", "/jobs", params={k: v for k, v in filters.items() if v})

    def cancel(self, job_id: str) -> dict:
        return self._call("DELETE", f"/jobs/{job_id}")

    # --- schedules ----------------------------------------------------------------------
    def create_schedule(
        self,
        predict: dict[str, Any],
        *,
        cron: str | None = None,
        interval_seconds: float | None = None,
        timezone: str = "UTC",
        name: str | None = None,
        paused: bool = False,
    ) -> dict:
        """POST /schedules: run `predict` (the fields of submit_predict) on a cron expression
        in `timezone`, or every `interval_seconds`."""
        body = {
            "predict": predict,
            "cron": cron,
            "interval_seconds": interval_seconds,
            "timezone": timezone,
            "name": name,
            "paused": paused,
        }
        return self._call(
            "POST", "/schedules", json={k: v for k, v in body.items() if v is not None}
        )

    def schedules(self) -> list[dict]:
        return self._call("GET", "/schedules")["schedules"]

    def schedule(self, schedule_id: str) -> dict:
        """One schedule with its latest runs."""
        return self._call("GET", f"/schedules/{schedule_id}")

    def update_schedule(self, schedule_id: str, **changes: Any) -> dict:
        """PATCH: paused, cron, interval_seconds, timezone, name."""
        return self._call("PATCH", f"/schedules/{schedule_id}", json=changes)

    def pause_schedule(self, schedule_id: str) -> dict:
        return self.update_schedule(schedule_id, paused=True)

    def resume_schedule(self, schedule_id: str) -> dict:
        return self.update_schedule(schedule_id, paused=False)

    def delete_schedule(self, schedule_id: str) -> dict:
        return self._call("DELETE", f"/schedules/{schedule_id}")

    # --- evaluation -------------------------------------------------------------------------
    def submit_evaluation(self, **params: Any) -> dict:
        """POST /evaluations: `env`, `output_table`, `labels_table` and the optional
        key_columns, label_column, prediction_column, model_name, model_version, since,
        until, days, label_delay, threshold. Returns {job_id, status_url}."""
        return self._call("POST", "/evaluations", json=params)

    def evaluate(self, timeout: float | None = None, **params: Any) -> dict:
        """Evaluate predictions against labels on the service and return the job's result
        (metrics per version and day, degraded days, comparisons).

        Raises:
            ApiError: the request was refused, or the job failed (its error says why).
        """
        job = self.wait(self.submit_evaluation(**params)["job_id"], timeout=timeout)
        if job["state"] != "succeeded":
            error = job.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ApiError(f"Evaluation {job['job_id']} {job['state']}: {message}")
        return job["result"]

    def evaluations(
        self, env: str, name: str, version: str, details: bool = False, limit: int = 1000
    ) -> list[dict]:
        """A model version's stored evaluations, one row per evaluate job and UTC day."""
        answer = self._call(
            "GET",
            f"/models/{name}/versions/{version}/evaluations",
            params={"env": env, "details": str(details).lower(), "limit": limit},
        )
        return answer["evaluations"]

    # --- monitoring -------------------------------------------------------------------------
    def monitoring(self, env: str, name: str, version: str, limit: int = 100) -> dict:
        """Per-feature drift of every job that ran `version` of `name`, oldest first."""
        return self._call(
            "GET",
            f"/models/{name}/versions/{version}/monitoring",
            params={"env": env, "limit": limit},
        )

    def wait(
        self,
        job_id: str,
        on_update: Callable[[dict], None] | None = None,
        interval: float = 0.5,
        timeout: float | None = None,
    ) -> dict:
        """Poll a job until it is succeeded, failed or cancelled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_update is not None:
                on_update(job)
            if job["state"] in TERMINAL_STATES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(f"Job {job_id} is still {job['state']} after {timeout}s.")
            time.sleep(interval)
