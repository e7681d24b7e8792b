"""The embedded warehouse's turns at its file: a thread's lock files close when it ends."""

from __future__ import annotations

import gc
import os
import threading

import pytest

from mlsys.warehouse.file_queue import FileQueue

pytestmark = pytest.mark.unit


def _open_descriptors(folder) -> int:
    """Descriptors of this process open on files in `folder` (the whole process's count moves
    with whatever else the test session opens or closes meanwhile)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed between the listing and the look
        count += target.startswith(str(folder))
    return count


def test_threads_that_took_turns_leave_no_descriptor_open(tmp_path):
    queue = FileQueue(tmp_path / "warehouse.duckdb")

    def take_turns() -> None:
        with queue.turn(write=False, timeout=5):
            pass
        with queue.turn(write=True, timeout=5):
            pass

    before = _open_descriptors(tmp_path)
    for _ in range(20):
        thread = threading.Thread(target=take_turns)
        thread.start()
        thread.join()
    gc.collect()
    assert _open_descriptors(tmp_path) == before
    assert (tmp_path / "warehouse.duckdb.lock").exists()
    assert (tmp_path / "warehouse.duckdb.gate").exists()
