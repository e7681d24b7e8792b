"""Monitoring's cost on the demo job: `predict_table` over N rows (default 1M) on DuckDB, one
shard, the demo's RandomForest saved with its training profile, with MLSYS_MONITORING on and
off, alternating, fastest of --repeat each. Also the profiling alone (ShardMonitor.observe over
the same batches, no model), which is what the on/off difference should be.

    uv run python bench/monitoring_overhead.py                 # 1M rows, 2 repeats
    uv run python bench/monitoring_overhead.py --rows 200000 --repeat 3

Target: monitoring <= 5% of end-to-end time. Figures only; no test asserts them.
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
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from mlsys import datasets
    from mlsys.cli.demo import CATEGORICAL, NUMERIC, titanic_pipeline
    from mlsys.ids import TableId
    from mlsys.models.artifacts import save_model
    from mlsys.predict import PredictSpec, predict_table, prepare_predict
    from mlsys.predict.monitored import shard_monitor
    from mlsys.registry import sync_registry
    from mlsys.settings import Settings
    from mlsys.store import open_store
    from mlsys.warehouse import JobScope, open_warehouse

    home = Path(tempfile.mkdtemp(prefix="mlsys-bench-monitoring-"))
    settings = Settings(_env_file=None, MLSYS_HOME=str(home))
    warehouse, store = open_warehouse(settings=settings), open_store(settings=settings)
    source = TableId(PROJECT, "titanic", "passengers")
    output = TableId(PROJECT, "titanic", "predictions")
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
        training_data=train,
        training_target=train[datasets.TARGET],
    )
    sync_registry(warehouse, store, settings, ENV)
    print(f"setup: {args.rows:,} rows in {time.monotonic() - started:.1f}s ({home})")

    def run(monitoring: bool, n: int) -> float:
        s = settings.model_copy(update={"monitoring": monitoring})
        spec = PredictSpec.parse(
            env=ENV,
            input_table=str(source),
            output_table=str(output),
            model_name="titanic-survival",
            model_version="v1",
            write_disposition="WRITE_TRUNCATE",
            shards=1,
            settings=s,
        )
        result = predict_table(spec, warehouse, store, s, job_id=f"bench-{monitoring}-{n}")
        assert (result.monitoring is not None) == monitoring
        return result.seconds

    times: dict[bool, list[float]] = {True: [], False: []}
    for n in range(args.repeat):
        for monitoring in (False, True):
            times[monitoring].append(run(monitoring, n))
            print(
                f"  run {n + 1} monitoring={'on ' if monitoring else 'off'} "
                f"{times[monitoring][-1]:.2f}s"
            )

    # The profiling alone, over the same batches and predictions (the model runs once here).
    spec = PredictSpec.parse(
        env=ENV, input_table=str(source), output_table=str(output),
        model_name="titanic-survival", model_version="v1", settings=settings,
    )  # fmt: skip
    prepared = prepare_predict(spec, warehouse, settings)
    from mlsys.predict import load_model, plan_shards, predict_batch

    plan = plan_shards(prepared, warehouse, settings, "bench-profile", 1)
    model = load_model(prepared.model, store, settings)
    pairs = [
        (batch, predict_batch(model, batch, prepared, prepared.output_schema, "bench-profile"))
        for batch in warehouse.read_shard(plan.shards[0], settings.batch_rows)
    ]
    monitor = shard_monitor(prepared)
    tick = time.monotonic()
    for batch, out in pairs:
        monitor.observe(batch, out)
    profiling = time.monotonic() - tick
    warehouse.discard(JobScope("bench-profile", ENV))

    off, on = min(times[False]), min(times[True])
    print()
    print(f"rows                      {args.rows:,}")
    print(f"end to end, monitoring off {off:.2f}s  (fastest of {args.repeat})")
    print(f"end to end, monitoring on  {on:.2f}s  (fastest of {args.repeat})")
    print(f"difference                 {on - off:+.2f}s = {100 * (on - off) / off:+.1f}%")
    print(f"profiling alone            {profiling:.2f}s = {100 * profiling / off:.1f}% of off")
    print(
        f"target <= 5%: {'ok' if (on - off) / off <= 0.05 else 'missed'} (difference), "
        f"{'ok' if profiling / off <= 0.05 else 'missed'} (profiling alone)"
    )


if __name__ == "__main__":
    main()
