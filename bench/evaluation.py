"""Evaluating N predictions against N labels on the embedded warehouse: time and peak RSS of
the process that runs the evaluation (as a worker does), beside a plain pandas + scikit-learn
run on the same rows (read both tables, merge, compute the same metrics per day).

    uv run python bench/evaluation.py                      # 1M rows
    uv run python bench/evaluation.py --rows 1000000 10000000

Binary classification over 7 days of predictions with continuous probabilities (every score
distinct: the AUC's ranks are the worst case) and 1% of predictions without a label. Each
run is a fresh process, so its peak RSS is its own. Goal: peak RSS at 10M <= 1.3x at 1M.
Figures only; no test asserts them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROJECT = "mlsys-local"
CHUNK = 1_000_000
DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


def _tables():
    from mlsys.ids import TableId

    return (
        TableId(PROJECT, "bench", "predictions"),
        TableId(PROJECT, "bench", "outcomes"),
    )


def _settings(home: Path):
    from mlsys.settings import Settings

    return Settings(_env_file=None, MLSYS_HOME=str(home))


def setup(home: Path, rows: int) -> float:
    """Write `rows` predictions and labels, chunk by chunk."""
    import numpy as np
    import pyarrow as pa

    from mlsys.warehouse import open_warehouse

    started = time.monotonic()
    warehouse = open_warehouse(settings=_settings(home))
    output, labels = _tables()
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        rng = np.random.default_rng(start)
        ids = np.arange(start, start + n, dtype=np.int64)
        p_pos = rng.random(n)
        truth = (rng.random(n) < p_pos).astype(np.int64)
        predicted = (p_pos > 0.5).astype(np.int64)
        day0 = np.datetime64(DAY0.replace(tzinfo=None), "us")
        stamps = day0 + (ids % 7).astype("timedelta64[D]") + np.timedelta64(6, "h")
        disposition = "WRITE_TRUNCATE" if start == 0 else "WRITE_APPEND"
        warehouse.write(
            pa.table(
                {
                    "PassengerId": ids,
                    "Survived": predicted,
                    "PredictionProbability": np.where(predicted == 1, p_pos, 1 - p_pos),
                    "PredictionTimestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                    "ModelName": pa.array(["titanic-survival"] * n),
                    "ModelVersion": pa.array(["v1"] * n),
                    "JobId": pa.array(["bench"] * n),
                }
            ),
            output,
            disposition,
        )
        labelled = ids % 100 != 0
        warehouse.write(
            pa.table({"PassengerId": ids[labelled], "Survived": truth[labelled]}),
            labels,
            disposition,
        )
    warehouse.close()
    return time.monotonic() - started


def run_mlsys(home: Path) -> dict:
    """The evaluation as the worker runs it (queries in the warehouse under
    MLSYS_DUCKDB_EVALUATION_MEMORY, aggregates back)."""
    from mlsys.evaluation.pipeline import evaluation_warehouse, run_evaluation
    from mlsys.evaluation.spec import EvaluateSpec

    settings = _settings(home)
    warehouse = evaluation_warehouse(settings)
    output, labels = _tables()
    spec = EvaluateSpec.parse(
        env="dev",
        output_table=str(output),
        labels_table=str(labels),
        since=DAY0.isoformat(),
        until=(DAY0 + timedelta(days=7)).isoformat(),
        settings=settings,
    )
    started = time.monotonic()
    result = run_evaluation(spec, warehouse, settings, f"bench-{time.time_ns()}")
    seconds = time.monotonic() - started
    window = result["versions"][0]["window"]
    return {"seconds": seconds, "matched": window["matched"], **_pick(window["metrics"])}


def run_pandas(home: Path) -> dict:
    """The same metrics the plain way: both tables into pandas, merge, scikit-learn per day."""
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    from mlsys.warehouse import open_warehouse

    warehouse = open_warehouse(settings=_settings(home))
    output, labels = _tables()
    started = time.monotonic()
    predictions = warehouse.read_table(output).to_pandas()
    outcomes = warehouse.read_table(labels).to_pandas()
    frame = predictions.merge(outcomes, on="PassengerId", suffixes=("", "_true"))
    frame["p_pos"] = np.where(
        frame["Survived"] == 1, frame["PredictionProbability"], 1 - frame["PredictionProbability"]
    )
    frame["day"] = frame["PredictionTimestamp"].dt.floor("D")

    def metrics(part) -> dict:
        t, p, s = part["Survived_true"], part["Survived"], part["p_pos"]
        confusion_matrix(t, p)
        return {
            "accuracy": accuracy_score(t, p),
            "roc_auc": roc_auc_score(t, s),
            "log_loss": log_loss(t, s),
            "brier": brier_score_loss(t, s),
            "precision_macro": precision_score(t, p, average="macro"),
            "recall_macro": recall_score(t, p, average="macro"),
            "f1_macro": f1_score(t, p, average="macro"),
        }

    for _, part in frame.groupby("day"):
        metrics(part)
    overall = metrics(frame)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "matched": len(frame), **_pick(overall)}


def _pick(metrics: dict) -> dict:
    return {k: round(float(metrics[k]), 6) for k in ("accuracy", "roc_auc", "log_loss", "brier")}


def _child(what: str, home: Path) -> dict:
    """Run `what` in a fresh process; its own peak RSS comes back with its figures."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, "--home", str(home)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--skip-pandas", action="store_true", help="Only the mlsys run.")
    parser.add_argument("--child", choices=["mlsys", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = (run_mlsys if args.child == "mlsys" else run_pandas)(args.home)
        # Linux reports ru_maxrss in KiB.
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return

    rows_seen = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="mlsys-bench-evaluation-") as folder:
            home = Path(folder)
            print(f"{rows:,} rows: setup {setup(home, rows):.1f}s", flush=True)
            found = {"mlsys": _child("mlsys", home)}
            if not args.skip_pandas:
                found["pandas"] = _child("pandas", home)
        for name, figures in found.items():
            print(
                f"  {name:<7} {figures['seconds']:7.2f}s  peak RSS {figures['peak_rss_mb']:7.0f} MB"
                f"  matched {figures['matched']:,}  accuracy {figures['accuracy']:.6f}"
                f"  roc_auc {figures['roc_auc']:.6f}  log_loss {figures['log_loss']:.6f}",
                flush=True,
            )
        rows_seen.append((rows, found["mlsys"]["peak_rss_mb"]))
    if len(rows_seen) > 1:
        (small, small_rss), (large, large_rss) = rows_seen[0], rows_seen[-1]
        ratio = large_rss / small_rss
        print(
            f"mlsys peak RSS {large:,} / {small:,} rows: {ratio:.2f}x "
            f"(goal <= 1.3x: {'ok' if ratio <= 1.3 else 'missed'})"
        )


if __name__ == "__main__":
    main()
