"""Workers started as Cloud Run starts them: the image's entry point (docker/start), a hostname
of `localhost` for every instance, and a stop that is SIGTERM to the entry point's process
then SIGKILL of everything once the grace period is over.
https://cloud.google.com/run/docs/container-contract#lifecycle
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import process, repo_root

#: Cloud Run's grace between SIGTERM and SIGKILL.
GRACE_SECONDS = 10


def _uts_namespace() -> list[str]:
    """A command prefix that runs its command with a hostname of its own (a UTS namespace:
    as root directly, otherwise inside a user namespace)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is needed to give a worker the hostname localhost")
    prefix = (
        [unshare, "--uts"] if os.geteuid() == 0 else [unshare, "--user", "--map-root-user", "--uts"]
    )
    probe = subprocess.run([*prefix, "hostname", "localhost"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no UTS namespace here: {probe.stderr.decode().strip()}")
    return prefix


@contextlib.contextmanager
def cloud_run_worker(
    env: dict[str, str], log: Path, concurrency: int = 1
) -> Iterator[subprocess.Popen]:
    """`start worker` (the image's entry point) on an instance whose hostname is localhost."""
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    env.pop("MLSYS_WORKER_NAME", None)  # the entry point names the worker
    script = 'hostname localhost && exec bash "$0" worker "$@"'
    args = [
        *_uts_namespace(),
        "sh",
        "-c",
        script,
        str(repo_root() / "docker" / "start"),
        f"--concurrency={concurrency}",
        "--without-mingle",
        "--without-gossip",
    ]
    with process(args, env, repo_root(), log) as proc:
        yield proc


def scale_in(proc: subprocess.Popen) -> int:
    """Stop an instance as Cloud Run does: SIGTERM to its main process, and after the grace
    period SIGKILL to whatever of it is still there. Returns the main process's exit code
    (negative: it was killed)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)
