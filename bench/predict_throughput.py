"""Predict throughput on the embedded backends: mlsys end to end against the model's own limit.

For each table size it measures, each in a fresh child process (so peak RSS is that mode's):

- raw:   the limit. The feature columns are loaded into memory first; only `predict_proba`
         over batches of MLSYS_BATCH_ROWS rows is timed.
- mlsys: `predict_table` on DuckDB with one shard (what one worker process does): snapshot,
         stream batches through the model, stage Parquet, commit.
- seed:  the seed service's way: the whole table into pandas (`warehouse.query`), `predict` and
         `predict_proba` over all of it, one `write`.

The model is the demo's RandomForest pipeline (`titanic_pipeline(n_jobs=1)`) trained on 20k rows.
The generated warehouse is cached in --cache-dir (default: a new temp dir, reused by every mode
of this run; pass the same --cache-dir again to skip generation next time).

    uv run python bench/predict_throughput.py                  # 1M and 10M rows
    uv run python bench/predict_throughput.py --rows 1000000
    uv run python bench/predict_throughput.py --cache-dir /tmp/mlsys-bench --rows 1000000
    uv run python bench/predict_throughput.py --repeat 3   # fastest of 3 on a busy machine

Targets: mlsys / raw <= 1.2 and mlsys peak RSS at 10M / at 1M <= 1.3. Figures only; no test
asserts them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = "dev"
MODEL = "titanic-survival"
PROJECT = "mlsys-local"
MODES = ("raw", "mlsys", "seed")
DEFAULT_ROWS = (1_000_000, 10_000_000)


def _table(rows: int, kind: str = "passengers") -> str:
    return f"{PROJECT}.bench.{kind}_{rows}"


def _backends():
    from mlsys.settings import get_settings
    from mlsys.store import open_store
    from mlsys.warehouse import open_warehouse

    settings = get_settings()
    return settings, open_warehouse(settings=settings), open_store(settings=settings)


# --- parent: data, model, children ------------------------------------------------------------
def prepare(rows_list: list[int]) -> None:
    """Train and register the model once, and generate each table once (cached)."""
    from mlsys import datasets
    from mlsys.cli.demo import CATEGORICAL, NUMERIC, titanic_pipeline
    from mlsys.errors import BlobNotFound
    from mlsys.ids import TableId
    from mlsys.models.artifacts import artifact_path, save_model
    from mlsys.registry import sync_registry

    settings, warehouse, store = _backends()
    bucket = settings.bucket_for(ENV)
    try:
        store.stat(bucket, artifact_path(MODEL, 1, "model.pkl"))
    except BlobNotFound:
        started = time.perf_counter()
        train = datasets.titanic(20_000, seed=1)
        model = titanic_pipeline(n_jobs=1).fit(train[NUMERIC + CATEGORICAL], train["Survived"])
        save_model(model, store, bucket, MODEL, 1, target="Survived", id_columns=["PassengerId"])
        print(f"trained {MODEL}/v1 in {time.perf_counter() - started:.1f}s", flush=True)
    sync_registry(warehouse, store, settings, ENV)
    for rows in rows_list:
        table = TableId.parse(_table(rows))
        if warehouse.exists(table) and warehouse.count_rows(table) == rows:
            continue
        started = time.perf_counter()
        datasets.write_titanic(warehouse, table, rows)
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f}s", flush=True)


def run_child(mode: str, rows: int, env: dict[str, str]) -> dict:
    """Run one measurement in a fresh process; its report includes its peak RSS (VmHWM).

    (wait4's ru_maxrss would not do: a forked child starts with the parent's high-water mark.)
    """
    proc = subprocess.Popen(
        [sys.executable, __file__, "--mode", mode, "--rows", str(rows)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} at {rows:,} rows failed (exit {proc.returncode})")
    report = json.loads(out.strip().splitlines()[-1])
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    return report


def main_parent(args: argparse.Namespace) -> None:
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="mlsys-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSYS_", "GCP_", "GCS_"))}
    env["MLSYS_HOME"] = str(cache / "home")
    if args.batch_rows:
        env["MLSYS_BATCH_ROWS"] = str(args.batch_rows)
    os.environ.update(env)
    for name in set(os.environ) - set(env):
        del os.environ[name]

    from mlsys.settings import get_settings

    settings = get_settings()
    print(f"cache {cache}  batch_rows {settings.batch_rows:,}  python {sys.version.split()[0]}")
    _print_blas()
    prepare(args.rows)

    results: dict[tuple[int, str], dict] = {}
    for rows in args.rows:
        # raw and mlsys alternate, so a burst of other load on the machine hits both alike;
        # the fastest of --repeat runs counts. The seed's way runs once: it is far off anyway.
        plan = [*(["raw", "mlsys"] * args.repeat), "seed"]
        for mode in plan:
            report = run_child(mode, rows, env)
            best = results.get((rows, mode))
            if best is None or report["seconds"] < best["seconds"]:
                results[(rows, mode)] = report
            print(
                f"  {mode:<5} {rows:>11,} rows  {report['seconds']:8.2f}s  "
                f"peak RSS {report['peak_rss_mb']:8.0f} MB",
                flush=True,
            )
    _print_table(args.rows, results)


def _print_blas() -> None:
    try:
        from threadpoolctl import threadpool_info

        kernels = {i.get("internal_api"): i.get("architecture") for i in threadpool_info()}
        print(f"BLAS {kernels}  OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    except ImportError:
        pass


def _print_table(rows_list: list[int], results: dict) -> None:
    print()
    header = (
        f"{'rows':>11} | {'mode':<5} | {'seconds':>8} | {'rows/s':>10} | "
        f"{'vs raw':>6} | {'peak RSS MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for rows in rows_list:
        raw = results[(rows, "raw")]["seconds"]
        for mode in MODES:
            r = results[(rows, mode)]
            print(
                f"{rows:>11,} | {mode:<5} | {r['seconds']:8.2f} | {rows / r['seconds']:10,.0f} | "
                f"{r['seconds'] / raw:6.2f} | {r['peak_rss_mb']:11.0f}"
            )
    print()
    for rows in rows_list:
        ratio = results[(rows, "mlsys")]["seconds"] / results[(rows, "raw")]["seconds"]
        verdict = "ok" if ratio <= 1.2 else "MISSED"
        print(f"end-to-end / raw at {rows:,} rows: {ratio:.2f} (target <= 1.2: {verdict})")
    if len(rows_list) >= 2:
        small, large = min(rows_list), max(rows_list)
        growth = results[(large, "mlsys")]["peak_rss_mb"] / results[(small, "mlsys")]["peak_rss_mb"]
        verdict = "ok" if growth <= 1.3 else "MISSED"
        print(
            f"mlsys peak RSS at {large:,} / at {small:,}: {growth:.2f} (target <= 1.3: {verdict})"
        )


# --- children: one measurement each -----------------------------------------------------------
def _load_registered_model(settings, warehouse, store):
    from mlsys.ids import ModelRef
    from mlsys.models.artifacts import load_verified
    from mlsys.registry import resolve

    entry = resolve(warehouse, settings, ENV, ModelRef.parse(MODEL, "v1"))
    return entry, load_verified(
        store,
        entry.gcs_bucket,
        entry.blob_path,
        sha256=entry.sha256,
        generation=entry.generation,
        artifact_format=entry.artifact_format,
    )


def measure_raw(rows: int) -> dict:
    """The limit: predict_proba alone, over in-memory batches of the size mlsys uses."""
    from mlsys.ids import TableId

    settings, warehouse, store = _backends()
    entry, model = _load_registered_model(settings, warehouse, store)
    frame = warehouse.read_table(TableId.parse(_table(rows)), entry.features).to_pandas()
    step = settings.batch_rows
    batches = [frame.iloc[i : i + step] for i in range(0, len(frame), step)]
    started = time.perf_counter()
    done = 0
    for batch in batches:
        done += len(model.predict_proba(batch))
    seconds = time.perf_counter() - started
    assert done == rows
    return {"mode": "raw", "rows": rows, "seconds": seconds}


def measure_mlsys(rows: int) -> dict:
    """What one worker does for a one-shard job, end to end."""
    from mlsys.predict import PredictSpec, predict_table

    settings, warehouse, store = _backends()
    spec = PredictSpec.parse(
        env=ENV,
        input_table=_table(rows),
        output_table=_table(rows, "predictions_mlsys"),
        model_name=MODEL,
        model_version="v1",
        write_disposition="WRITE_TRUNCATE",
        shards=1,
        settings=settings,
    )
    # A worker imports scikit-learn and loads a model version once, then keeps it (the cache in
    # mlsys.models.artifacts) for every shard and job: time the job as a warm worker runs it,
    # like the raw mode, and report the one-off cold start apart.
    started = time.perf_counter()
    _load_registered_model(settings, warehouse, store)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    result = predict_table(spec, warehouse, store, settings, job_id=f"bench-{rows}")
    seconds = time.perf_counter() - started
    assert result.rows_written == rows and result.shards == 1
    print(
        f"  (mlsys cold start: imports + model load {cold:.2f}s, paid once per worker)",
        file=sys.stderr,
    )
    return {"mode": "mlsys", "rows": rows, "seconds": seconds}


def measure_seed(rows: int) -> dict:
    """The seed service: whole table into pandas, predict + predict_proba, one write."""
    from datetime import UTC, datetime

    from mlsys.ids import TableId

    settings, warehouse, store = _backends()
    started = time.perf_counter()
    entry, model = _load_registered_model(settings, warehouse, store)
    df = warehouse.query(f"SELECT * FROM `{_table(rows)}`")
    features = df[entry.features]
    out = df[["PassengerId"]].copy()
    out["Survived"] = model.predict(features)
    out["PredictionProbability"] = model.predict_proba(features)[:, 1]
    out["PredictionTimestamp"] = datetime.now(UTC)
    out["ModelName"] = MODEL
    out["ModelVersion"] = "v1"
    warehouse.write(out, TableId.parse(_table(rows, "predictions_seed")), "WRITE_TRUNCATE")
    seconds = time.perf_counter() - started
    return {"mode": "seed", "rows": rows, "seconds": seconds}


def _peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=list(DEFAULT_ROWS),
        help="Table sizes (default: 1,000,000 and 10,000,000).",
    )
    parser.add_argument("--cache-dir", help="Keep the generated warehouse here (reused).")
    parser.add_argument("--batch-rows", type=int, help="MLSYS_BATCH_ROWS for every mode.")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Runs of raw and mlsys per size; the fastest counts."
    )
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one child measurement
    args = parser.parse_args()
    if args.mode:
        measure = {"raw": measure_raw, "mlsys": measure_mlsys, "seed": measure_seed}[args.mode]
        report = measure(args.rows[0])
        report["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(report), flush=True)
    else:
        main_parent(args)


if __name__ == "__main__":
    main()
