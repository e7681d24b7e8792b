"""The GoogleSQL check of every test: each statement a test sends to BigQuery (a real client on
the emulator, or a strict fake, in the test's process or in one it started) is analysed by
ZetaSQL when the test ends, and a rejection fails
the test (an error at teardown naming the statement and ZetaSQL's reason).

The emulator and DuckDB accept SQL BigQuery refuses (an unquoted reserved word, a STRING
compared with a FLOAT64); ZetaSQL is BigQuery's own analyzer. Without the analyzer installed
(`tests/gcp/zetasql/install`) statements go unchecked with a warning, and with
MLSYS_REQUIRE_EMULATORS=1 (CI) the first test that sends one fails instead.

A test that sends SQL BigQuery must refuse (to check how a refusal is reported) says so with
`@pytest.mark.googlesql_rejected`: its statements are then expected to be rejected.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gcp.zetasql import analyzer as zetasql
from tests.gcp.zetasql import capture

#: sitecustomize.py that makes the processes a test starts report their statements.
SUBPROCESS_HOOK = Path(__file__).resolve().parent / "subprocesses"
SUBPROCESS_ENV = ("GOOGLESQL_CAPTURE_LOG", "GOOGLESQL_CAPTURE_PREFIX", "PYTHONPATH")


class _Server:
    """The session's analyzer, started when the first statement needs it."""

    def __init__(self) -> None:
        self.analyzer: zetasql.Analyzer | None = None
        self.missing: str | None = None
        self.analysed = 0
        #: The file the processes tests start report their statements to.
        self.reported = ""

    def get(self, factory) -> zetasql.Analyzer | None:
        if self.analyzer is None and self.missing is None:
            try:
                self.analyzer = zetasql.start(factory.mktemp("zetasql"))
            except zetasql.AnalyzerUnavailable as exc:
                self.missing = str(exc)
        return self.analyzer

    def close(self) -> None:
        if self.analyzer is not None:
            self.analyzer.close()


#: The session's server (for the summary line).
_session: _Server | None = None


def pytest_terminal_summary(terminalreporter) -> None:
    if _session is not None and (_session.analysed or _session.missing):
        terminalreporter.write_line(
            f"GoogleSQL: ZetaSQL analysed {_session.analysed} statement(s) sent to BigQuery"
            + (f" ({_session.missing})" if _session.missing else "")
        )


@pytest.fixture(scope="session")
def googlesql_server(tmp_path_factory) -> Iterator[_Server]:
    global _session
    try:
        undo = capture.patch_client()
    except ImportError:  # no gcp extra: nothing can be sent to BigQuery
        undo = None
    server = _session = _Server()
    # The processes tests start (a Celery worker, the CLI) report theirs to a file.
    server.reported = str(tmp_path_factory.mktemp("googlesql") / "statements.jsonl")
    saved = {k: os.environ.get(k) for k in SUBPROCESS_ENV}
    os.environ.update(
        GOOGLESQL_CAPTURE_LOG=server.reported,
        GOOGLESQL_CAPTURE_PREFIX=sys.prefix,
        PYTHONPATH=os.pathsep.join(filter(None, [str(SUBPROCESS_HOOK), saved["PYTHONPATH"]])),
    )
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if undo is not None:
        undo()
    server.close()


@pytest.fixture(autouse=True)
def googlesql(request, googlesql_server, tmp_path_factory) -> Iterator[capture.Capture]:
    """Capture this test's statements; analyse them when it ends."""
    captured = capture.Capture(request.node.nodeid)
    capture.current = captured
    start = (
        os.path.getsize(googlesql_server.reported)
        if os.path.exists(googlesql_server.reported)
        else 0
    )
    try:
        yield captured
    finally:
        capture.current = None
    # What the processes this test started sent meanwhile.
    reported, _ = capture.read_reported(googlesql_server.reported, start)
    captured.statements.extend(reported)
    if not captured.statements:
        return
    analyzer = googlesql_server.get(tmp_path_factory)
    if analyzer is None:
        message = f"{googlesql_server.missing}; GoogleSQL statements were not checked"
        if os.environ.get("MLSYS_REQUIRE_EMULATORS"):
            pytest.fail(message, pytrace=False)
        warnings.warn(message, stacklevel=1)
        return
    verdicts = [(s, analyzer.problems(s)) for s in captured.statements]
    googlesql_server.analysed += len(verdicts)
    if request.node.get_closest_marker("googlesql_rejected"):
        if not any(problems for _, problems in verdicts):
            pytest.fail(
                "marked googlesql_rejected, but ZetaSQL accepts every statement it sent",
                pytrace=False,
            )
        return
    rejected = [
        f"{problems[0]}\n  in: {' '.join(s.sql.split())[:600]}\n  sent by: {s.origin}\n"
        f"  tables known: {sorted(s.tables) or 'none'}"
        for s, problems in verdicts
        if problems
    ]
    if rejected:
        pytest.fail(
            f"ZetaSQL (BigQuery's analyzer) rejects {len(rejected)} statement(s) this test sent:\n"
            + "\n".join(rejected),
            pytrace=False,
        )
