"""Turns at one file between processes and threads: readers share it, a writer has it alone,
and a writer that is waiting goes before readers that come after it.

The embedded warehouse is one DuckDB file that the web app, every worker and beat open for one
short call at a time. DuckDB itself lets any number of read-only connections share a file but a
read-write one only alone, and it does not wait: an open that meets the lock fails, so callers
retried with backoff, sleeping while the file was free and paying milliseconds of CPU for every
failed open. Here they wait their turn on two lock files beside it instead (`flock`, polled
every two milliseconds; a failed attempt is one system call):

- `{file}.lock`: shared by readers, exclusive for a writer;
- `{file}.gate`: taken for the moment of getting in line, so that once a writer waits for the
  readers inside to leave, no new reader gets past it (else a stream of readers, such as the
  checks of a burst of API requests, would keep the workers' commits out forever).

filelock's `ReadWriteLock` was not used: it waits in SQLite's busy handler, whose sleeps grow to
100 ms, which is the latency this module exists to remove.

Each thread holds its own descriptors (`flock` locks belong to an open file, so two threads of a
process exclude each other like two processes do), and a forked child opens its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

POLL_SECONDS = 0.002


class FileTurnTimeout(TimeoutError):
    """The file was not free for the caller within its timeout."""


class FileQueue:
    def __init__(self, path: Path) -> None:
        self.lock_path = Path(f"{path}.lock")
        self.gate_path = Path(f"{path}.gate")
        self._local = threading.local()

    def _descriptors(self) -> tuple[int, int]:
        """(gate, lock) descriptors of this thread in this process."""
        held = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid():
            held = self._local.held = _Descriptors(self.gate_path, self.lock_path)
        return held.gate, held.lock

    @contextlib.contextmanager
    def turn(self, write: bool, timeout: float) -> Iterator[None]:
        """Hold the file, shared (`write=False`) or alone, for the block; raises
        FileTurnTimeout if that does not happen within `timeout` seconds."""
        gate, lock = self._descriptors()
        deadline = time.monotonic() + timeout
        _take(gate, fcntl.LOCK_EX, deadline)
        try:
            _take(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH, deadline)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _Descriptors:
    """One thread's open lock files, closed when the thread (its thread-local) goes away; a
    forked child's copy is left alone (its parent still uses them)."""

    def __init__(self, gate_path: Path, lock_path: Path) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self.pid = os.getpid()
        self.gate = os.open(gate_path, flags, 0o644)
        self.lock = os.open(lock_path, flags, 0o644)

    def __del__(self) -> None:
        if self.pid == os.getpid():
            for fd in (self.gate, self.lock):
                with contextlib.suppress(OSError):
                    os.close(fd)


def _take(fd: int, mode: int, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise FileTurnTimeout from None
            time.sleep(POLL_SECONDS)
