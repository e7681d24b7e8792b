"""Imports point one way. Read from the source (every `import`, at module level, inside
functions and under TYPE_CHECKING alike), never by importing it:

- no import cycle anywhere in mlsys/, web/ or worker/;
- mlsys' packages form layers, each importing only its own layer or lower ones:
  the command and the notebook helpers → predict, evaluation → registry → models →
  monitoring → warehouse | store (independent of each other) → the shared base;
- the job engine (mlsys.jobs, with the schedule and shard-profile stores) is imported only
  by web, worker, the command and mlsys.access (the budget's keys), and imports nothing above
  the shared base;
- web and worker both import mlsys, and the worker never imports web (what both need, such as
  principals and budgets, lives in mlsys.access); the API imports of the worker only what it
  sends tasks and writes schedule entries with;
- the product's code uses the new paths of moved modules, never the old ones kept for users.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from mlsys._moved import MOVED

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mlsys", "web", "worker")

#: mlsys' layers, top first: a module belongs to the layer that names it or a package above
#: it (the root package `mlsys` itself is the shared base's). Modules of one layer may import
#: each other (no cycle, though); warehouse and store never do.
LAYERS: list[tuple[str, ...]] = [
    ("mlsys.cli", "mlsys.client", "mlsys.bq", "mlsys.gcs", "mlsys.vis", "mlsys.datasets"),
    ("mlsys.predict", "mlsys.evaluation"),
    ("mlsys.registry",),
    ("mlsys.models",),
    ("mlsys.monitoring",),
    ("mlsys.warehouse", "mlsys.tables", "mlsys.store"),
    ("mlsys.access",),
    (
        "mlsys.settings",
        "mlsys.ids",
        "mlsys.errors",
        "mlsys.dispositions",
        "mlsys.urls",
        "mlsys.resources",
        "mlsys.google_clients",
        "mlsys._moved",
        "mlsys.google_clients",
    ),
]
#: The job engine (with the schedule store): beside the layers, not in them.
JOB_ENGINE = ("mlsys.jobs",)
#: Who may import the job engine (mlsys.access for the Redis keys of the submit budget).
JOB_ENGINE_USERS = ("web", "worker", "mlsys.cli", "mlsys.client", "mlsys.access", *JOB_ENGINE)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path) -> list[str]:
    """Every name `module` imports, resolved to a module of ours where it names one."""
    known = modules()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.append(sub if sub in known or sub in MOVED else base)
    return names


@cache
def graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports (old paths read as the modules they name)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for module, path in known.items():
        targets = {MOVED.get(name, name) for name in _imported(module, path)}
        edges[module] = {t for t in targets if t in known and t != module}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int | None:
    """The number of the module's layer (0 the top), or None outside the layers."""
    if module == "mlsys":
        return len(LAYERS) - 1
    for number, layer in enumerate(LAYERS):
        if any(_within(module, member) for member in layer):
            return number
    return None


def _in_job_engine(module: str) -> bool:
    return any(_within(module, prefix) for prefix in JOB_ENGINE)


def test_the_reader_finds_imports_of_every_form():
    edges = graph()
    assert "mlsys.predict.steps" in edges["mlsys.predict.local"]  # from x import y
    assert "mlsys.predict.pool" in edges["mlsys.predict.local"]  # inside a function
    assert "mlsys.registry.entry" in edges["mlsys.registry.pinned"]  # under TYPE_CHECKING
    assert "mlsys.models.labels" in edges["mlsys.predict.steps"]  # from package import module
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = _cycles(graph())
    assert cycles == [], "modules that import each other, directly or around a loop: " + "; ".join(
        " ↔ ".join(cycle) for cycle in cycles
    )


def test_every_mlsys_module_has_a_place():
    homeless = [
        m for m in modules() if _within(m, "mlsys") and _layer(m) is None and not _in_job_engine(m)
    ]
    assert homeless == [], f"add {homeless} to a layer (or the job engine) in this test's LAYERS"


def test_mlsys_imports_point_down_the_layers():
    upward = []
    for module, targets in graph().items():
        source = _layer(module)
        if source is None:
            continue
        for target in targets:
            destination = _layer(target)
            if destination is not None and destination < source:
                upward.append(f"{module} → {target}")
    assert upward == [], "imports against the layers (a lower layer imports a higher one): " + (
        ", ".join(sorted(upward))
    )


def test_warehouse_and_store_are_independent():
    crossing = [
        f"{module} → {target}"
        for module, targets in graph().items()
        for target in targets
        for a, b in (("mlsys.warehouse", "mlsys.store"), ("mlsys.store", "mlsys.warehouse"))
        if _within(module, a) and _within(target, b)
    ]
    assert crossing == []


def test_the_job_engine_is_imported_only_by_web_worker_and_the_command():
    outside = [
        f"{module} → {target}"
        for module, targets in graph().items()
        for target in targets
        if _in_job_engine(target) and not any(_within(module, u) for u in JOB_ENGINE_USERS)
    ]
    assert outside == [], f"only {JOB_ENGINE_USERS} may import the job engine: {outside}"


def test_the_job_engine_imports_only_the_shared_base():
    base = len(LAYERS) - 1
    above = [
        f"{module} → {target}"
        for module, targets in graph().items()
        if _in_job_engine(module)
        for target in targets
        if not _in_job_engine(target) and _layer(target) != base
    ]
    assert above == [], f"the job engine reaches above the shared base: {above}"


def test_mlsys_never_imports_web_or_worker():
    reaching = [
        f"{module} → {target}"
        for module, targets in graph().items()
        if _within(module, "mlsys")
        for target in targets
        if _within(target, "web") or _within(target, "worker")
    ]
    assert reaching == []


def _reaching(source: str, target: str, edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} → {imported}"
        for module, targets in edges.items()
        if _within(module, source)
        for imported in targets
        if _within(imported, target)
    )


def test_the_worker_never_imports_web():
    reaching = _reaching("worker", "web", graph())
    assert reaching == [], (
        "the worker imports the API's internals; move what both need into mlsys "
        f"(e.g. mlsys.access): {reaching}"
    )


#: What the API may import of the worker (DESIGN: the task signatures it enqueues, no task
#: code): the task names, queue and Celery app it sends with; how one unit of a job is sent;
#: and beat's schedule entries, which the API writes and whose next runs it shows.
WORKER_SURFACE = {"worker.app", "worker.dispatch", "worker.beat"}


def test_the_api_imports_only_the_workers_sending_surface():
    beyond = [
        edge
        for edge in _reaching("web", "worker", graph())
        if edge.split(" → ")[1] not in WORKER_SURFACE
    ]
    assert beyond == [], (
        "the API imports worker internals (task code runs only in workers); send by task "
        f"name through worker.dispatch, or move what both need into mlsys: {beyond}"
    )


def test_the_reader_catches_the_api_importing_task_code():
    edges = {**graph(), "web.jobs": {*graph()["web.jobs"], "worker.tasks"}}
    assert "web.jobs → worker.tasks" in _reaching("web", "worker", edges)
    assert {e.split(" → ")[1] for e in _reaching("web", "worker", graph())} <= WORKER_SURFACE


def test_the_reader_catches_a_worker_importing_web():
    # The rule above must be able to fail: an edge from worker to web is reported.
    edges = {**graph(), "worker.schedules": {*graph()["worker.schedules"], "web.auth"}}
    assert _reaching("worker", "web", edges) == ["worker.schedules → web.auth"]


def test_the_product_imports_moved_modules_by_their_new_paths():
    old = [
        f"{module} imports {name} (now {MOVED[name]})"
        for module, path in modules().items()
        if module != "mlsys._moved"
        for name in _imported(module, path)
        if name in MOVED
    ]
    assert old == []
