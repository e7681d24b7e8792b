"""Short reads of the embedded warehouse without starting a DuckDB instance for each: every
thread keeps one in-memory DuckDB and ATTACHes the file read-only for the length of a call,
then DETACHes it, so the file is held no longer than with a connection of its own (measured:
2-9 ms for an attach, two queries and a detach, against 20-40 ms to open and close the file).
An API submit's checks and a job's registry reads pay that instead of an instance each.

Forked processes (the local shard pool, Celery's prefork pool) inherit these instances. A child
must neither use nor drop one: DuckDB's state belongs to threads the child does not have, and
dropping an inherited instance was seen to hang. So every instance is registered here, and an
`os.register_at_fork` handler moves the registered ones, in the child, to a list that is never
released; the child's first read starts its own.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from mlsys.warehouse.duckdb.sql import quote_ident, sql_string

#: The catalog name the file is attached under for a call.
CATALOG = "mlsys_warehouse"

#: Files beside the database that DuckDB may read when it attaches it.
WAL_FILES = (".wal", ".wal.checkpoint", ".wal.recovery")
#: Instances alive in this process, by the token of the thread that owns each.
_LIVE: dict[int, duckdb.DuckDBPyConnection] = {}
#: Instances a forked child inherited: kept referenced, never used, never closed.
_INHERITED: list[duckdb.DuckDBPyConnection] = []
_TOKENS = itertools.count()


def _forget_inherited() -> None:
    _INHERITED.extend(_LIVE.values())
    _LIVE.clear()


os.register_at_fork(after_in_child=_forget_inherited)


class _Owned:
    """A thread's instance: closed when the thread ends (its thread-local goes), unless this
    is a forked child's inherited copy."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.pid, self.token, self.con = os.getpid(), next(_TOKENS), con
        _LIVE[self.token] = con

    def close(self) -> None:
        if self.pid == os.getpid() and _LIVE.pop(self.token, None) is not None:
            with contextlib.suppress(duckdb.Error):
                self.con.close()

    def __del__(self) -> None:
        self.close()


class AttachedReads:
    """Per-thread in-memory DuckDB instances that attach one warehouse file for a read."""

    def __init__(self, path: Path, config: dict[str, str | int], folders: list[str]) -> None:
        self.path = path
        # Reads are short: one thread (no pool of DuckDB threads per Python thread kept).
        self.config = {**config, "threads": 1}
        self.folders = folders
        self._local = threading.local()

    def _instance(self) -> duckdb.DuckDBPyConnection:
        owned = getattr(self._local, "owned", None)
        if owned is None or owned.pid != os.getpid():
            owned = self._local.owned = _Owned(self._start())
        return owned.con

    def _start(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:", config=self.config)
        # The sandbox of every mlsys connection (warehouse._sandbox), with the file itself
        # allowed so that it can be attached; set before access is turned off for good.
        # (DuckDB reads the write-ahead log a writer left, and looks for an unfinished
        # checkpoint of it.)
        files = [str(self.path)] + [f"{self.path}{end}" for end in WAL_FILES]
        con.execute(f"SET allowed_paths = [{', '.join(sql_string(f) for f in files)}]")
        con.execute(f"SET allowed_directories = [{', '.join(map(sql_string, self.folders))}]")
        con.execute("SET enable_external_access = false")
        return con

    def _drop(self) -> None:
        owned = getattr(self._local, "owned", None)
        self._local.owned = None
        if owned is not None:
            owned.close()

    @contextlib.contextmanager
    def attached(
        self, retry: Callable[[Callable[..., object]], Callable[..., object]]
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's instance with the file attached read-only and in use for the block.

        Args:
            retry: wraps the attach, which meets the lock of a process that is not mlsys'
                (a DuckDB shell) as an open would.
        """
        con = self._instance()
        catalog = quote_ident(CATALOG)
        try:
            retry(con.execute)(f"ATTACH {sql_string(str(self.path))} AS {catalog} (READ_ONLY)")
        except BaseException:
            self._drop()
            raise
        try:
            con.execute(f"USE {catalog}")
            yield con
        finally:
            try:
                con.execute("USE memory")
                con.execute(f"DETACH {catalog}")
            except duckdb.Error:
                self._drop()  # never reuse an instance that may still hold the file
