"""Incremental predictions after a small append, against a full run: `predict_table` on DuckDB
(one shard, the demo's RandomForest) over N rows (default 2M), then 1% more rows appended, then
mode "incremental" (the anti-join against the output runs inside DuckDB while snapshotting)
and, for reference, a full run over the grown table. Also times an incremental run that finds
nothing new.

    uv run python bench/incremental.py                    # 2M rows, 1% append
    uv run python bench/incremental.py --rows 10000000    # the issue's size (minutes)

Target: incremental after a 1% append <= 10% of a full run. Figures only; no test asserts them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ENV = "dev"
PROJECT = "mlsys-local"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--append", type=float, default=0.01, help="Share of rows appended.")
    args = parser.parse_args()

    from mlsys import datasets
    from mlsys.cli.demo import CATEGORICAL, NUMERIC, titanic_pipeline
    from mlsys.ids import TableId
    from mlsys.models.artifacts import save_model
    from mlsys.predict import PredictSpec, predict_table
    from mlsys.registry import sync_registry
    from mlsys.settings import Settings
    from mlsys.store import open_store
    from mlsys.warehouse import open_warehouse

    home = Path(tempfile.mkdtemp(prefix="mlsys-bench-incremental-"))
    settings = Settings(_env_file=None, MLSYS_HOME=str(home))
    warehouse, store = open_warehouse(settings=settings), open_store(settings=settings)
    source = TableId(PROJECT, "titanic", "passengers")
    started = time.monotonic()
    datasets.write_titanic(warehouse, source, args.rows, seed=0)
    train = datasets.titanic(20_000, seed=1)
    features = NUMERIC + CATEGORICAL
    model = titanic_pipeline(n_jobs=1).fit(train[features], train[datasets.TARGET])
    save_model(
        model,
        store,
        settings.bucket_for(ENV),
        "titanic-survival",
        1,
        target=datasets.TARGET,
        id_columns=[datasets.ID_COLUMN],
    )
    sync_registry(warehouse, store, settings, ENV)
    print(f"setup: {args.rows:,} rows in {time.monotonic() - started:.1f}s ({home})")

    def run(output: str, mode: str, job: str):
        spec = PredictSpec.parse(
            env=ENV,
            input_table=str(source),
            output_table=f"{PROJECT}.titanic.{output}",
            model_name="titanic-survival",
            model_version="v1",
            mode=mode,
            shards=1,
            settings=settings,
        )
        tick = time.monotonic()
        result = predict_table(spec, warehouse, store, settings, job_id=job)
        return time.monotonic() - tick, result.rows_written

    full, full_rows = run("scores", "incremental", "first")  # nothing predicted yet: all rows
    print(f"  first run (all rows)        {full:7.2f}s  {full_rows:,} rows")
    extra = max(1, int(args.rows * args.append))
    tick = time.monotonic()
    grown = datasets.titanic(extra, seed=9)  # new passengers, numbered after the others
    grown[datasets.ID_COLUMN] += args.rows
    warehouse.write(grown, source, "WRITE_APPEND")
    print(f"  appended {extra:,} rows in {time.monotonic() - tick:.1f}s")
    incremental, inc_rows = run("scores", "incremental", "second")
    print(f"  incremental after append    {incremental:7.2f}s  {inc_rows:,} rows")
    nothing, none_rows = run("scores", "incremental", "third")
    print(f"  incremental, nothing new    {nothing:7.2f}s  {none_rows:,} rows")
    again, again_rows = run("rescored", "full", "full")
    print(f"  full run over grown table   {again:7.2f}s  {again_rows:,} rows")

    print()
    ratio = incremental / again
    print(
        f"incremental / full = {incremental:.2f}s / {again:.2f}s = {100 * ratio:.1f}% "
        f"(target <= 10%: {'ok' if ratio <= 0.10 else 'missed'})"
    )
    print(f"nothing new / full = {100 * nothing / again:.1f}%")


if __name__ == "__main__":
    main()
