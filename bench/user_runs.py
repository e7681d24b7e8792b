"""What users run, measured from outside: whole commands and submitted jobs, against the model.

    uv run python bench/user_runs.py                         # small sizes (100k, 300k rows)
    uv run python bench/user_runs.py --rows 1000000 5000000 10000000 --cache-dir /var/tmp/mb

For each table size, every measurement is a process of its own, timed by the wall clock of
this (lean) parent and measured with the kernel's figures:

- raw:     the limit. One process loads the feature columns into memory, then only
           `predict_proba` over batches of MLSYS_BATCH_ROWS rows is timed (one core).
- predict: the whole `mlsys predict` command as a user types it (start-up, imports, model
           load, snapshot, every core through --workers' default, commit).
- job:     a job submitted over HTTP to a running stack (gunicorn + a Celery worker with one
           pool process per core), from POST /predict until GET /jobs/{id} says succeeded.

Peak memory of a process tree is sampled every 50 ms as the sum of its processes' PSS
(/proc/PID/smaps_rollup: pages shared by forked children count once); the largest single
process's peak comes from wait4's ru_maxrss. For the job it is the worker's whole tree.
Also: start-up (`mlsys --help` and a 1,000-row `mlsys predict`, each with the seconds its
imports take by `python -X importtime`), a 1,000-row job on a warm worker (fixed cost), and
the registry at 10,000 versions (sync, re-sync, GET /models).

Writes a JSON result file and a plot (rows vs seconds, rows vs peak memory) next to it, and
prints every target with its figure and ok/missed. Figures on a shared machine are noisy; the
targets are defined at the sizes the issue names (ratio at 5M, memory growth 1M -> 10M) and are
reported at the nearest sizes run. No test asserts any of this.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

ENV = "dev"
MODEL = "titanic-survival"
PROJECT = "mlsys-local"
SMALL = 1_000
VENV_BIN = Path(sys.executable).parent


def _table(rows: int, kind: str = "passengers") -> str:
    return f"{PROJECT}.bench.{kind}_{rows}"


# --- measuring a process tree ------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler:
    """Peak of the summed PSS of a process and its descendants, sampled in a thread.

    A PSS read walks every page table of the process: measured, one sample of a 5M-row
    predict's three processes cost 22 ms of CPU. At a fixed 50 ms that took a third of a core
    from a run that uses both, so the pause stretches to keep the sampler under `share` of one
    core: small processes are still read every `interval`, big flat ones less often.
    """

    def __init__(self, pid: int, interval: float = 0.05, share: float = 0.03) -> None:
        self.pid, self.interval, self.share, self.peak_kb = pid, interval, share, 0
        self.samples, self.cpu_s = 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.thread_time()
            total = sum(_pss_kb(p) for p in _tree(self.pid))
            cost = time.thread_time() - started
            self.peak_kb = max(self.peak_kb, total)
            self.samples, self.cpu_s = self.samples + 1, self.cpu_s + cost
            self._stop.wait(max(self.interval, cost / self.share))

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024


def run_measured(args: list[str], env: dict[str, str]) -> dict:
    """Run a command to its end: wall seconds, peak tree PSS and wait4's ru_maxrss."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, cwd=env["BENCH_CWD"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    with TreeSampler(proc.pid) as sampler:
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}... failed (exit {proc.returncode})")
    return {
        "seconds": seconds,
        "peak_mb": sampler.peak_mb,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "sampler_cpu_s": sampler.cpu_s,
        "stdout": out.decode(),
    }


# --- children (imports stay out of the parent, so its wait4 figures stay honest) ---------------
def _backends():
    from mlsys.settings import get_settings
    from mlsys.store import open_store
    from mlsys.warehouse import open_warehouse

    settings = get_settings()
    return settings, open_warehouse(settings=settings), open_store(settings=settings)


def child_setup(rows_list: list[int]) -> None:
    """Train and register the issue's model (100-tree forest pipeline) once; make each table."""
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
        train = datasets.titanic(20_000, seed=1)
        model = titanic_pipeline(n_jobs=1).fit(train[NUMERIC + CATEGORICAL], train["Survived"])
        save_model(model, store, bucket, MODEL, 1, target="Survived", id_columns=["PassengerId"])
    sync_registry(warehouse, store, settings, ENV)
    for rows in sorted({SMALL, *rows_list}):
        table = TableId.parse(_table(rows))
        if warehouse.exists(table) and warehouse.count_rows(table) == rows:
            continue
        started = time.perf_counter()
        datasets.write_titanic(warehouse, table, rows)
        print(f"  generated {rows:,} rows in {time.perf_counter() - started:.1f}s", flush=True)


def child_raw(rows: int) -> None:
    """predict_proba alone over in-memory batches, one process (prints seconds as JSON)."""
    from mlsys.ids import ModelRef, TableId
    from mlsys.models.artifacts import load_verified
    from mlsys.registry import resolve

    settings, warehouse, store = _backends()
    entry = resolve(warehouse, settings, ENV, ModelRef.parse(MODEL, "v1"))
    model = load_verified(
        store,
        entry.gcs_bucket,
        entry.blob_path,
        sha256=entry.sha256,
        generation=entry.generation,
        artifact_format=entry.artifact_format,
    )
    frame = warehouse.read_table(TableId.parse(_table(rows)), entry.features).to_pandas()
    step = settings.batch_rows
    batches = [frame.iloc[i : i + step] for i in range(0, len(frame), step)]
    started = time.perf_counter()
    done = sum(len(model.predict_proba(batch)) for batch in batches)
    seconds = time.perf_counter() - started
    assert done == rows
    print(json.dumps({"seconds": seconds}))


def child_registry(versions: int) -> None:
    """Write `versions` model versions to the store, sync twice, print timings as JSON."""
    import hashlib

    from mlsys.registry import sync_registry

    settings, warehouse, store = _backends()
    root = Path(settings.model_store.removeprefix("file://")) / settings.bucket_for("staging")
    data = b"not a real model; the sync hashes bytes and never loads a pickle"
    digest = hashlib.sha256(data).hexdigest()
    meta = json.dumps(
        {"features": ["a", "b"], "target": "y", "task": "classification", "sha256": digest}
    ).encode()
    per_model = 100
    started = time.perf_counter()
    for i in range(versions):
        folder = root / f"model-{i // per_model:04d}" / f"v{i % per_model + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.pkl").write_bytes(data)
        (folder / "metadata.json").write_bytes(meta)
    written = time.perf_counter() - started
    started = time.perf_counter()
    first = sync_registry(warehouse, store, settings, "staging")
    sync_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = sync_registry(warehouse, store, settings, "staging")
    resync_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "versions": versions,
                "write_files_s": written,
                "sync_s": sync_seconds,
                "sync": first.to_json(),
                "resync_s": resync_seconds,
                "resync": again.to_json(),
            }
        )
    )


# --- the parent --------------------------------------------------------------------------------
def _child(step: str, *args: str) -> list[str]:
    return [sys.executable, __file__, "--child", step, *args]


def _predict_cmd(rows: int, out_kind: str) -> list[str]:
    return [
        str(VENV_BIN / "mlsys"),
        "predict",
        "--env",
        ENV,
        "--input-table",
        _table(rows),
        "--output-table",
        _table(rows, out_kind),
        "--model-name",
        MODEL,
        "--model-version",
        "v1",
        "--write-disposition",
        "WRITE_TRUNCATE",
    ]


def import_seconds(args: list[str], env: dict[str, str]) -> tuple[float, list[tuple[str, float]]]:
    """Seconds a command spends importing (`python -X importtime`: the sum of every module's
    own time), and the five top-level packages that take most of it."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=env,
        cwd=env["BENCH_CWD"],
        capture_output=True,
        text=True,
        check=True,
    )
    by_package: dict[str, float] = {}
    for line in run.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header, or a line the command itself wrote
        package = parts[2].strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(parts[0]) / 1e6
    top = sorted(by_package.items(), key=lambda item: -item[1])[:5]
    return sum(by_package.values()), top


def measure_startup(env: dict[str, str]) -> dict:
    """`mlsys --help` (median of 5 runs) and the imports of it and of a 1,000-row predict."""
    runs = [run_measured([str(VENV_BIN / "mlsys"), "--help"], env) for _ in range(5)]
    help_imports, help_top = import_seconds(["-m", "mlsys.cli", "--help"], env)
    predict_imports, predict_top = import_seconds(
        ["-m", "mlsys.cli", *_predict_cmd(SMALL, "out_cli")[1:]], env
    )
    result = {
        "help_s": statistics.median(run["seconds"] for run in runs),
        "help_cpu_s": statistics.median(run["cpu_s"] for run in runs),
        "help_all": [run["seconds"] for run in runs],
        "help_imports_s": help_imports,
        "help_top_imports": help_top,
        "predict_small_imports_s": predict_imports,
        "predict_small_top_imports": predict_top,
    }
    top = ", ".join(f"{name} {seconds:.2f}" for name, seconds in predict_top)
    print(
        f"  mlsys --help {result['help_s']:.2f}s (imports {help_imports:.2f}s); "
        f"mlsys predict {SMALL:,} rows imports {predict_imports:.2f}s ({top})",
        flush=True,
    )
    return result


def measure_commands(rows_list: list[int], env: dict[str, str]) -> dict:
    results: dict = {"raw": {}, "predict": {}}
    results["startup"] = measure_startup(env)
    small = run_measured(_predict_cmd(SMALL, "out_cli"), env)
    results["predict_small"] = small
    print(f"  mlsys predict {SMALL:>11,} rows {small['seconds']:7.2f}s  {small['peak_mb']:7.0f} MB")
    # The floor under any command that runs the model: a bare Python loading it as saved
    # (joblib; it imports what the model is made of: scikit-learn, with SciPy and pandas).
    model_file = Path(env["MLSYS_HOME"], "models", f"mlsys-models-{ENV}", MODEL, "v1", "model.pkl")
    load = f"import joblib; joblib.load({str(model_file)!r})"
    floor = [run_measured([sys.executable, "-c", load], env) for _ in range(3)]
    results["model_load_s"] = statistics.median(run["seconds"] for run in floor)
    print(f"  the model's own start-up (python loading it) {results['model_load_s']:.2f}s")
    for rows in rows_list:
        raw = run_measured(_child("raw", str(rows)), env)
        raw["predict_proba_s"] = json.loads(raw["stdout"].strip().splitlines()[-1])["seconds"]
        results["raw"][rows] = raw
        print(
            f"  raw predict_proba {rows:>9,} rows {raw['predict_proba_s']:7.2f}s  "
            f"{raw['peak_mb']:7.0f} MB (process)"
        )
        cli = run_measured(_predict_cmd(rows, "out_cli"), env)
        results["predict"][rows] = cli
        print(f"  mlsys predict {rows:>13,} rows {cli['seconds']:7.2f}s  {cli['peak_mb']:7.0f} MB")
    for mode in ("raw", "predict", "predict_small"):
        for value in results[mode].values() if mode != "predict_small" else [results[mode]]:
            value.pop("stdout", None)
    return results


def measure_service(rows_list: list[int], env: dict[str, str], cpus: int) -> dict:
    import requests
    from _stack import celery_worker, free_port, gunicorn, wait_for

    results: dict = {"job": {}}
    port = free_port()
    home = Path(env["MLSYS_HOME"])
    with (
        gunicorn(env, port) as url,
        celery_worker(env, ROOT, concurrency=cpus, name="bench") as worker,
    ):
        http = requests.Session()
        wait_for(lambda: _up(http, url), timeout=120, what="API")

        def job(rows: int, kind: str) -> dict:
            body = {
                "env": ENV,
                "input_table": _table(rows),
                "output_table": _table(rows, kind),
                "model_name": MODEL,
                "model_version": "v1",
                "write_disposition": "WRITE_TRUNCATE",
            }
            # As `mlsys submit --wait` and MlsysClient.run_predict do: the API answers when the
            # job ends (`Prefer: wait`, on the job engine's completion signal). Polling every
            # 10 ms instead cost the API a fifth of a core, which the measured job lost.
            with TreeSampler(worker.pid) as sampler:
                started = time.perf_counter()
                response = http.post(
                    f"{url}/predict", json=body, headers={"Prefer": "wait=50"}, timeout=120
                )
                assert response.status_code in (200, 202), response.text
                final = response.json()
                if response.status_code == 202:  # longer than the API waits: poll, gently
                    job_id = final["job_id"]
                    final = wait_for(lambda: _finished(http, url, job_id), 7200, interval=0.2)
                seconds = time.perf_counter() - started
            assert final["state"] == "succeeded", final.get("error")
            return {
                "seconds": seconds,
                "worker_peak_mb": sampler.peak_mb,
                "shards": len(final.get("shards") or []),
            }

        # Warm every pool process (imports, model cache), as a long-lived worker is.
        for _ in range(cpus + 1):
            job(SMALL, "warm")
        small = [job(SMALL, "out_job")["seconds"] for _ in range(5)]
        results["job_small_s"] = statistics.median(small)
        results["job_small_all"] = small
        print(f"  job {SMALL:>19,} rows {results['job_small_s']:7.2f}s (median of 5, warm)")
        for rows in rows_list:
            r = job(rows, "out_job")
            results["job"][rows] = r
            print(
                f"  job {rows:>19,} rows {r['seconds']:7.2f}s  worker {r['worker_peak_mb']:7.0f} MB"
                f"  ({r['shards']} shards)"
            )
        registry = measure_registry_listing(http, url)
        results["models_list"] = registry
    (home / "gunicorn.log").unlink(missing_ok=True)
    return results


def measure_registry_listing(http, url: str) -> dict:
    """GET /models over the 10,000-version registry of 'staging' (first page), 20 times."""
    times = []
    for _ in range(20):
        started = time.perf_counter()
        response = http.get(f"{url}/models", params={"env": "staging"}, timeout=60)
        times.append(time.perf_counter() - started)
        assert response.ok, response.text
    body = response.json()
    return {
        "median_s": statistics.median(times),
        "max_s": max(times),
        "returned": len(body.get("models", [])),
        "paged": "next_page_token" in body or "next" in body,
    }


def _up(http, url) -> bool:
    try:
        return http.get(f"{url}/health", timeout=2).ok
    except Exception:
        return False


def _finished(http, url, job_id):
    job = http.get(f"{url}/jobs/{job_id}", timeout=30).json()
    if job["state"] in ("succeeded", "failed", "cancelled"):
        return job
    return None


# --- targets -----------------------------------------------------------------------------------
def _nearest(rows_list: list[int], want: int) -> int:
    return min(rows_list, key=lambda r: abs(r - want))


def _crash_rows(results: dict, rows_list: list[int]) -> int:
    """The table for the Redis crash: the one whose job took nearest 10 s on the service (the
    crash lands mid-job with room to spare), else the one nearest 1M rows."""
    jobs = results.get("job") or {}
    if jobs:
        return min(jobs, key=lambda rows: abs(jobs[rows]["seconds"] - 10))
    return _nearest(rows_list, 1_000_000)


def targets(results: dict, rows_list: list[int]) -> list[tuple[str, str, bool | None]]:
    out: list[tuple[str, str, bool | None]] = []

    def add(name: str, figure: str, ok: bool | None) -> None:
        out.append((name, figure, ok))

    if "startup" in results:
        up = results["startup"]
        add(
            "mlsys --help <= 0.3 s (median of 5)",
            f"{up['help_s']:.2f} s (CPU {up['help_cpu_s']:.2f} s, "
            f"imports {up['help_imports_s']:.2f} s)",
            up["help_s"] <= 0.3,
        )
    if "predict_small" in results:
        s, cpu = results["predict_small"]["seconds"], results["predict_small"]["cpu_s"]
        imports = results.get("startup", {}).get("predict_small_imports_s")
        add(
            f"mlsys predict, {SMALL:,} rows, wall incl. start-up <= 1.5 s",
            f"{s:.2f} s (CPU {cpu:.2f} s"
            + (f", imports {imports:.2f} s" if imports is not None else "")
            + (
                f"; the model's own start-up {results['model_load_s']:.2f} s)"
                if "model_load_s" in results
                else ")"
            ),
            s <= 1.5,
        )
    if "job_small_s" in results:
        s = results["job_small_s"]
        add(
            f"{SMALL:,}-row job on a warm worker, submit -> succeeded <= 0.5 s",
            f"{s:.2f} s",
            s <= 0.5,
        )
    if results.get("predict"):
        at = _nearest(rows_list, 5_000_000)
        raw = results["raw"][at]["predict_proba_s"]
        for mode, label in (("predict", "mlsys predict"), ("job", "submitted job")):
            if at in results.get(mode, {}):
                ratio = results[mode][at]["seconds"] / raw
                add(
                    f"{label} / raw predict_proba at {at:,} rows <= 0.65 (defined at 5M)",
                    f"{ratio:.2f} ({results[mode][at]['seconds']:.1f} s / {raw:.1f} s)",
                    ratio <= 0.65,
                )
    if len(rows_list) >= 2:
        small, large = _nearest(rows_list, 1_000_000), _nearest(rows_list, 10_000_000)
        if small != large:
            for mode, key, label in (
                ("predict", "peak_mb", "mlsys predict peak memory"),
                ("job", "worker_peak_mb", "worker peak memory"),
            ):
                if large in results.get(mode, {}):
                    growth = results[mode][large][key] / results[mode][small][key]
                    add(
                        f"{label} at {large:,} / at {small:,} rows <= 1.3 (defined 10M / 1M)",
                        f"{growth:.2f} ({results[mode][large][key]:.0f} / "
                        f"{results[mode][small][key]:.0f} MB)",
                        growth <= 1.3,
                    )
    if "registry" in results:
        r = results["registry"]
        add(
            f"registry sync of {r['versions']:,} versions <= 5 s",
            f"{r['sync_s']:.2f} s",
            r["sync_s"] <= 5 and r["versions"] >= 10_000,
        )
        changed = r["resync"]["inserted"] + r["resync"]["updated"]
        add(
            "registry re-sync with no change writes nothing", f"{changed} rows written", not changed
        )
    if "models_list" in results:
        m = results["models_list"]
        add(
            f"GET /models with {results.get('registry', {}).get('versions', 0):,} versions "
            "<= 100 ms (paged)",
            f"median {m['median_s'] * 1000:.0f} ms, max {m['max_s'] * 1000:.0f} ms, "
            f"{m['returned']} on the page, paged: {m['paged']}",
            m["median_s"] <= 0.1 and m["paged"],
        )
    for name in ("fairness", "recovery"):
        for target in results.get(name, {}).get("targets", []):
            add(*target)
    return out


def plot(results: dict, rows_list: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [
        ("raw predict_proba (1 process)", "raw", "predict_proba_s", "peak_mb"),
        ("mlsys predict (whole command)", "predict", "seconds", "peak_mb"),
        ("submitted job (client's view)", "job", "seconds", "worker_peak_mb"),
    ]
    for label, mode, t_key, m_key in series:
        xs = [r for r in rows_list if r in results.get(mode, {})]
        if not xs:
            continue
        ax_t.plot(xs, [results[mode][r][t_key] for r in xs], marker="o", label=label)
        ax_m.plot(xs, [results[mode][r][m_key] for r in xs], marker="o", label=label)
    ax_t.set(xlabel="rows", ylabel="seconds", title="Time")
    ax_m.set(xlabel="rows", ylabel="peak memory, MB (PSS of the process tree)", title="Memory")
    for ax in (ax_t, ax_m):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main_parent(args: argparse.Namespace) -> None:
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="mlsys-bench-"))
    cache.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSYS_", "GCP_", "GCS_"))}
    env.update(
        MLSYS_HOME=str(cache / "home"),
        MLSYS_REGISTRY_SYNC_INTERVAL="0",
        BENCH_CWD=str(cache),
        PYTHONPATH=str(ROOT),
    )
    # Measured as users run them: with bytecode compiled (once, here), not recompiled by every
    # process of a shell that says not to write it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "mlsys", "web", "worker"], cwd=ROOT, check=True
    )
    if args.batch_rows:
        env["MLSYS_BATCH_ROWS"] = str(args.batch_rows)
    os.environ.update(env)
    cpus = len(os.sched_getaffinity(0))
    rows_list = sorted(args.rows)
    print(
        f"cache {cache}; {cpus} CPUs; load average {os.getloadavg()[0]:.1f} "
        "(other work on the machine moves every figure)",
        flush=True,
    )
    subprocess.run(_child("setup", *map(str, rows_list)), env=env, cwd=cache, check=True)
    results: dict = {"rows": rows_list, "cpus": cpus, "started": time.time()}
    results.update(measure_commands(rows_list, env))
    if not args.skip_registry:
        reg = run_measured(_child("registry", str(args.versions)), env)
        results["registry"] = json.loads(reg["stdout"].strip().splitlines()[-1])
        print(
            f"  registry: sync {args.versions:,} versions {results['registry']['sync_s']:.2f}s, "
            f"re-sync {results['registry']['resync_s']:.2f}s",
            flush=True,
        )
    if not args.skip_service:
        from _stack import redis_server

        with redis_server(cache / "redis") as redis_url:
            service_env = {**env, "REDIS_URL": redis_url}
            os.environ.update(service_env)
            results.update(measure_service(rows_list, service_env, cpus))
    if not args.skip_fairness:
        import fairness

        small = _table(SMALL)
        print(f"  burst of {args.burst:,} small jobs, and a Redis crash mid-job", flush=True)
        results["fairness"] = fairness.burst(env, cpus, small, args.burst)
        crash_rows = _crash_rows(results, rows_list)
        results["recovery"] = fairness.redis_crash(env, cpus, _table(crash_rows))
    results["load_average_end"] = os.getloadavg()[0]
    checks = targets(results, rows_list)
    results["targets"] = [{"target": n, "figure": f, "ok": ok} for n, f, ok in checks]
    out = Path(args.out or cache / "user_runs.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    plot(results, rows_list, out.with_suffix(".png"))
    print(f"\nresults {out}\nplot    {out.with_suffix('.png')}\n")
    width = max(len(n) for n, _f, _ok in checks)
    for name, figure, ok in checks:
        verdict = "ok" if ok else "missed" if ok is not None else "n/a"
        print(f"{name:<{width}}  {figure:<44} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--cache-dir", help="Keep the generated warehouse here (reused).")
    parser.add_argument("--out", help="JSON result file (the plot goes next to it).")
    parser.add_argument("--batch-rows", type=int, help="MLSYS_BATCH_ROWS for every mode.")
    parser.add_argument("--versions", type=int, default=10_000, help="Registry size.")
    parser.add_argument("--skip-registry", action="store_true")
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--skip-fairness", action="store_true", help="No burst, no Redis crash.")
    parser.add_argument("--burst", type=int, default=100, help="Jobs in the burst (issue: 1000).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        step = {"setup": child_setup, "raw": child_raw, "registry": child_registry}[args.child]
        values = [int(v) for v in rest] or args.rows
        step(values if args.child == "setup" else values[0])
        return
    main_parent(args)


if __name__ == "__main__":
    main()
