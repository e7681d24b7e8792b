"""Answers to repeated reads of the embedded warehouse without opening it, while the tables
they depend on have not changed.

Every write mlsys makes to the file (a write, a merge, a job's commit) counts a new version of
the table it changed in a small file beside it (`{file}.versions`), while it still holds the
file alone: `rows` on every change, `schema` when the table was created or replaced. Tables
share a fixed number of counters (by a hash of their name), so the file stays small however
many tables come and go; two tables on one counter only cost each other a read. A read
that may be cached (the API's checks of a submit: does the table exist, its schema, its row
count, the registry) records the versions it was read at and is answered again, without
opening DuckDB or waiting for a turn at the file, until one of them moves. In a burst of
submits the workers' commits append to output tables, which moves only their `rows`: the
checks (input schema and count, output columns, the registry) all stay answered.

A process that writes the file outside mlsys (a DuckDB shell) moves no version: answers are
also dropped after `max_age` seconds, and workers check again before they run or commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

from mlsys.ids import TableId

T = TypeVar("T")
log = logging.getLogger(__name__)
Depends = Literal["rows", "schema"]

#: Answers kept per process at most (the oldest go first).
MAX_ENTRIES = 512
#: Group reads (a dataset's columns, each up to GROUP_TABLES answers) kept per process at
#: most: a caller naming a new dataset in every request must not grow the process.
MAX_GROUPS = 64
_MISSING = object()
_NO_LOCK = contextlib.nullcontext()
#: Counters per kind of change.
COUNTERS = 256


def _counter(table: TableId) -> int:
    return zlib.crc32(str(table).encode()) % COUNTERS


class TableVersions:
    """The `{file}.versions` counters. Written only by a holder of the file alone (the file
    queue's write turn), so read-modify-write loses nothing; replaced whole, so a reader never
    sees half of it."""

    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}.versions")

    def read(self) -> dict:
        """The counters (empty where there are none yet, or none this version can read: the
        next write starts them afresh under a new epoch)."""
        try:
            versions = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        counts = [versions.get(kind, [0] * COUNTERS) for kind in ("rows", "schema")]
        if not all(isinstance(c, list) and len(c) == COUNTERS for c in counts):
            return {}
        return versions

    def key(self, versions: dict, table: TableId, depends: Depends) -> tuple:
        """What an answer about `table` depends on: the counters' identity and the count."""
        counts = versions.get(depends) or [0] * COUNTERS
        return versions.get("epoch"), counts[_counter(table)]

    def bump(self, table: TableId, schema: bool) -> None:
        """Count a change of `table`'s rows (and of its schema). Call while writing alone."""
        versions = self.read()
        # A new epoch whenever the counters start afresh: a deleted file must not make old
        # answers match again at a count it reaches anew.
        versions.setdefault("epoch", uuid.uuid4().hex)
        for kind in ("rows", "schema") if schema else ("rows",):
            counts = versions.setdefault(kind, [0] * COUNTERS)
            counts[_counter(table)] += 1
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        try:
            tmp.write_text(json.dumps(versions))
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


class ReadCache:
    """Answers by (what was asked, table), each with the version key it was read at."""

    def __init__(self, versions: TableVersions, max_age: float) -> None:
        self.versions, self.max_age = versions, max_age
        self._answers: dict[tuple, tuple[tuple, float, object]] = {}
        self._reading: dict[tuple, threading.Lock] = {}
        #: Each group's last read: (the versions it was read at, when, its answers). A table
        #: the read did not see did not exist then: asked later, it is answered None while
        #: its own version has not moved.
        self._groups: dict[tuple, tuple[dict, float, dict]] = {}
        #: Groups being read again in the background, guarded by `_guard`.
        self._refreshing: set[tuple] = set()
        self._guard = threading.Lock()

    def _kept(self, question: tuple, table: TableId, depends: Depends) -> tuple[tuple, object]:
        """(the current version key, the kept answer if it is still good, else _MISSING)."""
        key = self.versions.key(self.versions.read(), table, depends)
        kept = self._answers.get(question)
        if kept is not None and kept[0] == key and time.monotonic() - kept[1] < self.max_age:
            return key, kept[2]
        return key, _MISSING

    def get(
        self,
        question: tuple,
        table: TableId,
        depends: Depends,
        read: Callable[[], T],
        coalesce: bool = True,
    ) -> T:
        """The answer to `question` about `table`: kept, or `read()` and kept. Threads that
        miss the same question at once read it once (the first of a burst of requests reads,
        the others wait for its answer instead of opening the file each), unless `coalesce`
        is off (the caller holds the file already, so must not wait on another reader)."""
        key, answer = self._kept(question, table, depends)
        if answer is not _MISSING:
            return answer  # type: ignore[return-value]
        lock = self._reading.setdefault(question, threading.Lock()) if coalesce else _NO_LOCK
        with lock:
            key, answer = self._kept(question, table, depends)
            if answer is not _MISSING:
                return answer  # type: ignore[return-value]
            answer = read()
            # The version read before the answer: a write in between only makes the next read
            # miss, never keeps an answer older than its key.
            self._answers[question] = (key, time.monotonic(), answer)
        self._evict()
        return answer

    def get_grouped(
        self,
        question: tuple,
        table: TableId,
        depends: Depends,
        group: tuple,
        read_group: Callable[[], dict[tuple, tuple[TableId, T]]],
        coalesce: bool = True,
        stale_ok: bool = False,
    ) -> T:
        """`get`, for a question that one read answers for a whole group of tables at once
        (the columns of every table of a dataset): `read_group()` returns {question: (table,
        answer)} for the tables it saw, `question` among them, and each answer is kept at its
        own table's version. Threads that miss any question of the group wait for one read.

        With `stale_ok`, an answer that a write has since moved, but younger than `max_age`,
        is given as it is while a thread reads the group again: a caller that checks again
        before it acts (a job's commit) need not wait behind the writers for an early look."""
        answer = self._kept_in_group(question, table, depends, group)
        if answer is not _MISSING:
            return answer  # type: ignore[return-value]
        if stale_ok:
            answer = self._kept_in_group(question, table, depends, group, stale=True)
            if answer is not _MISSING:
                self._refresh_later(group, depends, read_group)
                return answer  # type: ignore[return-value]
        lock = self._reading.setdefault(group, threading.Lock()) if coalesce else _NO_LOCK
        with lock:
            answer = self._kept_in_group(question, table, depends, group)
            if answer is not _MISSING:
                return answer  # type: ignore[return-value]
            answers = self._read_group(group, depends, read_group)
            answer = answers.get(question, (table, None))[1]
        self._evict()
        return answer

    def _kept_in_group(
        self, question: tuple, table: TableId, depends: Depends, group: tuple, stale: bool = False
    ) -> object:
        """The kept answer to `question`, or the group's last read of `table` (None where that
        read did not see it), while `table`'s version has not moved since (or, `stale`, has)
        and the answer is younger than `max_age`; else _MISSING."""
        key, answer = self._kept(question, table, depends)
        if answer is not _MISSING:
            return answer
        now = time.monotonic()
        kept = self._answers.get(question)
        if stale and kept is not None and now - kept[1] < self.max_age:
            return kept[2]
        last = self._groups.get(group)
        if last is None or now - last[1] >= self.max_age:
            return _MISSING
        then, _at, answers = last
        if not stale and self.versions.key(then, table, depends) != key:
            return _MISSING
        return answers.get(question, (table, None))[1]

    def _read_group(
        self, group: tuple, depends: Depends, read_group: Callable[[], dict]
    ) -> dict[tuple, tuple[TableId, object]]:
        # Every version read before the answers, as in `get`.
        versions = self.versions.read()
        answers = read_group()
        now = time.monotonic()
        for asked, (seen, value) in answers.items():
            self._answers[asked] = (self.versions.key(versions, seen, depends), now, value)
        with self._guard:  # re-inserted, so the groups read longest ago go first
            self._groups.pop(group, None)
            self._groups[group] = (versions, now, answers)
        return answers

    def _refresh_later(self, group: tuple, depends: Depends, read_group: Callable) -> None:
        """Read `group` again in a thread of its own (one at a time per group)."""
        with self._guard:
            if group in self._refreshing:
                return
            self._refreshing.add(group)

        def refresh() -> None:
            try:
                with self._reading.setdefault(group, threading.Lock()):
                    self._read_group(group, depends, read_group)
                self._evict()
            except Exception as error:  # the next caller reads for itself
                log.warning("could not read %s again for the read cache: %s", group, error)
            finally:
                with self._guard:
                    self._refreshing.discard(group)

        threading.Thread(target=refresh, name="mlsys-read-refresh", daemon=True).start()

    def _evict(self) -> None:
        while len(self._answers) > MAX_ENTRIES:
            oldest = next(iter(self._answers))
            self._answers.pop(oldest, None)
            self._reading.pop(oldest, None)
        with self._guard:
            while len(self._groups) > MAX_GROUPS:
                oldest = next(iter(self._groups))
                self._groups.pop(oldest)
                self._reading.pop(oldest, None)
