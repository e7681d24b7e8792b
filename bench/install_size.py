"""What each install command puts on disk: packages and megabytes, one fresh venv each.

    uv run python bench/install_size.py [--only base default]

Each install is `uv sync --frozen` into a temporary environment (UV_PROJECT_ENVIRONMENT), so
the repository's own .venv is untouched; uv's cache makes every install after the first one
a copy. Figures: distributions installed (`*.dist-info` folders) and the environment's size
on disk (du). No test asserts any of this.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: name -> (the command a user types, the arguments of `uv sync`)
INSTALLS = {
    "base": ("uv sync --no-dev", ["--no-dev"]),
    "image": ("uv sync --no-dev --extra gcp", ["--no-dev", "--extra", "gcp"]),
    "default": ("uv sync", []),
    "notebooks": ("uv sync --extra notebooks", ["--extra", "notebooks"]),
    "everything": ("uv sync --all-extras --all-groups", ["--all-extras", "--all-groups"]),
}


def measure(name: str, args: list[str], workdir: Path) -> dict[str, float]:
    venv = workdir / name
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    started = time.monotonic()
    subprocess.run(["uv", "sync", "--frozen", "--quiet", *args], cwd=ROOT, env=env, check=True)
    seconds = time.monotonic() - started
    packages = len(list(venv.glob("lib/python*/site-packages/*.dist-info")))
    size = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True, check=True)
    return {"packages": packages, "mb": int(size.stdout.split()[0]), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(INSTALLS), default=list(INSTALLS))
    args = parser.parse_args()
    print(f"{'install':<11} {'packages':>8} {'MB':>6} {'sync s':>7}  command", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlsys-install-") as tmp:
        for name in args.only:
            command, sync_args = INSTALLS[name]
            figures = measure(name, sync_args, Path(tmp))
            print(
                f"{name:<11} {figures['packages']:>8} {figures['mb']:>6} "
                f"{figures['seconds']:>7.1f}  {command}",
                flush=True,
            )
    sys.exit(0)


if __name__ == "__main__":
    main()
