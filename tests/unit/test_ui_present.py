"""How the dashboard words and derives what it shows: ages, rates, ETAs, errors, charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from web.ui import present

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def _job(state="running", done=0, total=1000, started=10.0, finished=None, **extra):
    def at(seconds_ago):
        return None if seconds_ago is None else (NOW - timedelta(seconds=seconds_ago)).isoformat()

    return {
        "job_id": "0123456789abcdef0123456789abcdef",
        "kind": "predict",
        "state": state,
        "phase": state,
        "progress": {
            "rows_done": done,
            "rows_total": total,
            "percent": round(100 * done / total, 1) if total else 0.0,
        },
        "params": {
            "input_table": "p.d.in",
            "output_table": "p.d.out",
            "model_name": "titanic",
            "model_version": "champion",
        },
        "result": None,
        "error": None,
        "submitted_at": at(60),
        "started_at": at(started),
        "finished_at": at(finished),
        "shards": [],
        **extra,
    }


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (42.4, "42 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (3600, "1 h"),
        (7800, "2 h 10 min"),
        (86400 * 3 + 3600 * 4, "3 d 4 h"),
        (None, "-"),
    ],
)
def test_durations_use_at_most_two_units(seconds, words):
    assert present.duration(seconds) == words


def test_rate_and_eta_come_from_rows_done_since_start():
    job = _job(done=400, total=1000, started=10.0)
    assert present.rows_per_second(job, NOW) == pytest.approx(40.0)
    assert present.eta_seconds(job, NOW) == pytest.approx(15.0)
    row = present.job_row(job, NOW)
    assert (row["rate"], row["eta"], row["percent"]) == ("40 rows/s", "15 s", 40.0)
    assert (row["source"], row["sink"]) == ("p.d.in", "p.d.out")
    assert row["age"] == "1 min ago"


def test_no_rate_or_eta_before_rows_or_after_the_end():
    assert present.rows_per_second(_job(done=0), NOW) is None
    assert present.eta_seconds(_job(state="queued", started=None), NOW) is None
    finished = _job(state="succeeded", done=1000, started=20.0, finished=10.0)
    assert present.rows_per_second(finished, NOW) == pytest.approx(100.0)
    assert present.eta_seconds(finished, NOW) is None
    assert present.eta_seconds(_job(done=10, total=None), NOW) is None


def test_model_label_shows_what_ran_when_an_alias_resolved():
    job = _job(state="succeeded", result={"model": {"name": "titanic", "version": "v3"}})
    assert present.model_label(job) == "titanic @ champion \u2192 v3"
    job = _job(state="succeeded", result={"model": "titanic/v4"})
    assert present.model_label(job) == "titanic @ champion \u2192 v4"
    assert present.model_label(_job()) == "titanic @ champion"


def test_errors_are_said_in_plain_words_before_their_detail():
    said = present.plain_error({"type": "WorkerLost", "message": "shard:1 lost 3 times"})
    assert said["summary"].startswith("The worker running the job stopped")
    assert said["detail"] == "shard:1 lost 3 times"
    assert present.plain_error({"type": "Weird"})["summary"] == present._UNKNOWN_ERROR
    assert present.plain_error(None) is None


def _subclasses(cls: type) -> set[type]:
    return {cls, *(grand for sub in cls.__subclasses__() for grand in _subclasses(sub))}


def test_every_error_a_user_can_cause_has_plain_words():
    import mlsys.warehouse.bigquery.landing  # noqa: F401  (its TableExists)
    from mlsys.errors import MlsysError

    unsaid = {
        cls.__name__
        for cls in _subclasses(MlsysError)
        if cls is not MlsysError
        and cls.__module__.startswith("mlsys.")
        and present.plain_error({"type": cls.__name__})["summary"] == present._UNKNOWN_ERROR
    }
    unsaid -= {"ApiError"}  # the client's view of an API answer: never a job's error
    assert unsaid == set()
    said = present.plain_error({"type": "ModelFailed", "message": "shard:0: could not convert"})
    assert said["summary"].startswith("The model raised an error on the input rows")


def test_an_evaluation_row_names_its_tables_and_counts_queries_not_rows():
    job = _job(done=3, total=6, kind="evaluate")
    job["params"] = {"output_table": "p.d.preds", "labels_table": "p.d.labels"}
    job["params"] |= {"model_name": "titanic", "model_version": "v2"}
    row = present.job_row(job, NOW)
    assert (row["source"], row["joins"], row["sink"]) == ("p.d.preds", "+", "p.d.labels")
    assert row["unit"] == "queries" and row["rate"].endswith("queries/s")
    assert row["model"] == "titanic @ v2"


def test_registry_jobs_say_what_they_did():
    move = {"kind": "alias_move", "state": "succeeded"}
    move["params"] = {"model_name": "m", "alias": "@champion", "version": "v2"}
    move["result"] = {"model_version": "v2", "previous_version": "v1"}
    assert present.what_it_did(move) == "alias champion: v1 \u2192 v2"
    move["result"]["previous_version"] = None
    assert present.what_it_did(move) == "alias champion: none \u2192 v2"
    assert present.what_it_did({**move, "state": "running"}) == "m@champion \u2192 v2"
    sync = {"kind": "registry_sync", "state": "succeeded", "params": {"env": "dev"}}
    sync["result"] = {"scanned": 12, "inserted": 2, "updated": 1, "invalid": 0, "missing": 0}
    assert present.what_it_did(sync) == "12 versions synced (2 new, 1 updated)"
    sync["result"] = {"scanned": 1, "inserted": 0, "updated": 0}
    assert present.what_it_did(sync) == "1 version synced, no changes"
    assert present.what_it_did(_job(state="succeeded")) is None  # predict jobs count rows


def test_a_histogram_has_axes_people_can_read():
    chart = present.histogram({"edges": [i / 10 for i in range(11)], "counts": [5] * 9 + [100]})
    assert chart["y_ticks"] == ["100", "50", "0"]
    shown = [label for label in chart["x_labels"] if label]
    assert len(chart["x_labels"]) == 10 and 2 <= len(shown) <= 6
    assert shown[0] == "0\u20130.1" and shown[-1] == "0.9\u20131"  # both ends labelled


def test_histogram_from_edges_or_labels_and_nothing_else():
    chart = present.histogram({"edges": [0, 0.5, 1], "counts": [30, 10]})
    assert [b["label"] for b in chart["bars"]] == ["0\u20130.5", "0.5\u20131"]
    assert [b["height"] for b in chart["bars"]] == [100.0, pytest.approx(33.333)]
    assert chart["total"] == "40"
    labelled = present.histogram({"counts": {"0": 5, "1": 15}})
    assert [b["label"] for b in labelled["bars"]] == ["0", "1"]
    for bad in (None, [], {"counts": [1, 2]}, {"counts": {"a": -1}}, {"counts": {}}):
        assert present.histogram(bad) is None


def test_no_output_query_for_a_job_whose_rows_never_landed():
    for state in ("queued", "running", "failed", "cancelled"):
        assert present.output_query("proj-1.ds.preds", "abc123", "duckdb", state) is None


def test_output_query_names_the_job_and_escapes_backticks_for_a_shell():
    out = present.output_query("proj-1.ds.preds", "abc123", "duckdb")
    assert out["sql"] == "SELECT * FROM `proj-1.ds.preds` WHERE JobId = 'abc123' LIMIT 100"
    assert "\\`proj-1.ds.preds\\`" in out["command"]
    assert "console_url" not in out
    cloud = present.output_query("proj-1.ds.preds", "abc123", "bigquery")
    assert cloud["console_url"].startswith("https://console.cloud.google.com/bigquery?project=")
    assert "!1sproj-1!2sds!3spreds" in cloud["console_url"]
    assert present.output_query(None, "abc", "duckdb") is None


def test_clock_reads_in_utc():
    assert present.clock("2026-11-30T23:37:57.894+01:00") == "2026-11-30 22:37:57 UTC"
    assert present.clock(None) == present.clock("garbage") == "-"


def test_numbers_and_sizes():
    assert present.number(1234567) == "1,234,567"
    assert present.number(None) == "-"
    assert present.size(999) == "999 B"
    assert present.size(1843201) == "1.8 MB"


def test_shards_show_worker_and_time_taken_when_recorded():
    job = _job(
        shards=[
            {
                "index": 0,
                "state": "done",
                "attempt": 2,
                "worker": "w1:42",
                "rows_done": 500,
                "started_at": (NOW - timedelta(seconds=30)).isoformat(),
                "finished_at": (NOW - timedelta(seconds=5)).isoformat(),
            },
            {"index": 1, "state": "queued", "attempt": 1, "rows_done": 0},
        ]
    )
    first, second = present.shard_rows(job, NOW)
    assert (first["worker"], first["took"], first["attempt"]) == ("w1:42", "25 s", 2)
    assert (second["worker"], second["took"]) == ("-", "-")


def test_monitoring_profiles_become_chart_input():
    from mlsys.monitoring import reference_feature

    numbers = reference_feature(pa.array([0.1, 0.2, 0.2, 0.6, 0.9, 0.95]), bins=3)
    chart = present.histogram(present.profile_distribution(numbers.to_json()))
    assert chart["total"] == "6"
    assert chart["bars"][0]["label"].startswith("0.1\u2013")
    assert chart["bars"][-1]["label"].endswith("\u20130.95")
    classes = reference_feature(pa.array(["1", "0", "0", None]))
    assert present.profile_distribution(classes.to_json()) == {"counts": {"0": 2, "1": 1}}
    many = reference_feature(pa.array([str(n % 20) for n in range(100)]))
    counts = present.profile_distribution(many.to_json(), top=5)["counts"]
    assert len(counts) == 6 and counts["other"] == 75
    assert present.profile_distribution({"kind": "number", "edges": [], "bins": []}) is None
    assert present.profile_distribution(None) is None
