"""Real services for tests: a private redis-server, the Flask app over HTTP, Celery workers."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TypeVar

import redis

T = TypeVar("T")

#: Variables that configure mlsys or the processes of its stack. The tests' servers never
#: inherit the developer's, and never read a `.env` (MLSYS_ENV_FILE empty): `bash
#: scripts/local-env` in the checkout turns auth on and points REDIS_URL elsewhere.
CONFIG_PREFIXES = ("MLSYS_", "GCP_", "GCS_", "BQ_", "REDIS_", "FLOWER_", "PROMETHEUS_", "GUNICORN_")
#: Where a test that names no Redis looks for one: nowhere (port 1 refuses at once).
NO_REDIS = "redis://127.0.0.1:1/0"
#: ... except these, which steer the tests themselves.
TEST_CONTROLS = ("MLSYS_TEST_", "MLSYS_REQUIRE_EMULATORS", "MLSYS_UPDATE_SCREENSHOTS")


def isolated_env(**values: str) -> dict[str, str]:
    """The environment for a server or CLI a test starts: this machine's (PATH, HOME, ...)
    without any mlsys configuration or dotenv file, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith((*CONFIG_PREFIXES, "PYTEST_"))}
    return {**env, "MLSYS_ENV_FILE": "", **values}


def isolate_this_process() -> None:
    """Drop the developer's mlsys configuration from this process (so from every child that
    inherits it) and stop every Settings() here from reading ./.env."""
    for name in list(os.environ):
        if name.startswith(CONFIG_PREFIXES) and not name.startswith(TEST_CONTROLS):
            del os.environ[name]
    os.environ["MLSYS_ENV_FILE"] = ""
    # Settings' default is the machine's Redis on 6379, which tests never use: a test that
    # forgets to name its own Redis fails to connect instead of writing there.
    os.environ["REDIS_URL"] = NO_REDIS


#: Where test servers listen: below the kernel's ephemeral range. A port the kernel picks with
#: bind(0) lies inside that range, so between the check and the server's own bind any client
#: socket (a Redis connection, an HTTP call) may take it as its local port, and the server fails
#: to start. Ports below the range are never handed to a client; only another listener can take
#: one, and a random pick among thousands makes that rare.
LISTEN_PORTS_FLOOR = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_floor() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default where the range cannot be read (macOS starts at 49152)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port no one listens on, outside the range client sockets are given."""
    ceiling = _ephemeral_floor()
    if ceiling - LISTEN_PORTS_FLOOR >= 1000:
        for _ in range(100):
            port = random.randrange(LISTEN_PORTS_FLOOR, ceiling)
            if _bindable(port):
                return port
    with socket.socket() as sock:  # a narrowed or moved range: let the kernel pick
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Starts on fresh ports after a bind failure; a second one in a row is already rare.
START_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """A server exited at start because another process took its port first."""


def on_free_ports(start: Callable[[], T]) -> T:
    """`start()` again, on the fresh ports it picks, while another process takes them first."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return start()
        except PortTaken:
            if attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll until `predicate()` is truthy; returns its value or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server on a free port; falls back to the machine's Redis (a spare db)
    where redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        base = os.environ.get("MLSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
        redis.Redis.from_url(base).flushdb()
        yield base
        return
    workdir.mkdir(parents=True, exist_ok=True)
    proc, url = on_free_ports(partial(_start_redis, binary, workdir))
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _start_redis(binary: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    """redis-server on a free port. If a listener took the port first, the server exits at
    once and the port answers for someone else, so only an answer naming our pid counts."""
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=2)

    def up():
        if proc.poll() is not None:
            raise PortTaken(f"redis-server exited at start on port {port}")
        try:
            return client.info("server")["process_id"] == proc.pid
        except redis.ConnectionError:
            return False

    wait_for(up, what="redis-server")
    return proc, f"redis://127.0.0.1:{port}/0"


class CrashableRedis:
    """A private redis-server with its AOF fsynced on every write, on a fixed port: killed -9
    and started again, it comes back as it was, at the same URL."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self._args = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
        ]  # fmt: skip
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self.answers, timeout=30, what="redis-server")

    def answers(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_timeout=2).ping()
        except redis.RedisError:
            return False

    def crash_and_restart(self, down_seconds: float = 1.0) -> None:
        """kill -9, stay down for `down_seconds`, start again from the AOF."""
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(10)
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


@contextlib.contextmanager
def crashable_redis(workdir: Path) -> Iterator[CrashableRedis]:
    server = CrashableRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def serve_wsgi(app) -> Iterator[str]:
    """Serve a WSGI app on a free port in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen]:
    """A subprocess in its own process group, output to `log`; stopped (TERM, then KILL with
    its children) on exit. Its own group lets a test kill -9 all of it, as a dying machine."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = open(log, "ab")
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        handle.close()


def gunicorn_command(port: int, workers: int = 2, threads: int = 1, *extra: str) -> list[str]:
    """`gunicorn "web:create_app()"` with the API's own config, on 127.0.0.1:`port`."""
    return [
        str(Path(sys.executable).parent / "gunicorn"),
        "--config", "python:web.gunicorn_conf",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        *extra,
        "web:create_app()",
    ]  # fmt: skip


def celery(*args: str) -> list[str]:
    """`celery -A worker ARGS` with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "worker", *args]


@contextlib.contextmanager
def celery_worker(
    env: dict[str, str],
    cwd: Path,
    concurrency: int = 1,
    name: str = "w1",
    pool: str = "prefork",
    log: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """A real `celery -A worker worker` subprocess named `name` (MLSYS_WORKER_NAME)."""
    log = log or Path(env.get("MLSYS_HOME", "/tmp")) / f"worker-{name}.log"
    args = celery(
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--hostname={name}@%h",
        "--without-mingle",
        "--without-gossip",
    )
    with process(args, {**env, "MLSYS_WORKER_NAME": name}, cwd, log) as proc:
        yield proc


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 a process and every child it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
