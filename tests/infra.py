"""Terraform (infra/) and workflow (.github/workflows/) files, parsed for tests.

python-hcl2 keeps string literals quoted (`'"roles/x"'`) and expressions wrapped (`'${var.x}'`);
`plain` turns both into what a reader of the .tf file sees.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import yaml

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MODULE = INFRA / "modules" / "mlsys"
ENVS = ("dev", "staging", "prod")
WORKFLOWS = ROOT / ".github" / "workflows"


_META = {"__is_block__", "__comments__"}


def plain(value: Any) -> Any:
    """`'"text"'` -> `text`, `'${expr}'` -> `expr`; lists and dicts recursively."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
        return value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k not in _META}
    return value


@dataclass(frozen=True)
class Block:
    kind: str  # resource type, or "module", "moved", ...
    name: str
    body: dict[str, Any]
    path: Path

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle)


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tf"))


def resources(directory: Path = MODULE) -> list[Block]:
    """Every `resource` block of the .tf files in `directory`."""
    found = []
    for path in files(directory):
        for entry in parse(path).get("resource", []):
            for kind, named in entry.items():
                for name, body in named.items():
                    found.append(Block(plain(kind), plain(name), plain(body), path))
    return found


def blocks(directory: Path, kind: str) -> list[dict[str, Any]]:
    """Top-level blocks of one kind (`module`, `moved`, `variable`, `locals`, ...), plain."""
    found = []
    for path in files(directory):
        for entry in parse(path).get(kind, []):
            found.append(plain(entry))
    return found


def tfvars(path: Path) -> dict[str, Any]:
    return plain(parse(path))


def workflow(name: str) -> dict[str, Any]:
    with (WORKFLOWS / name).open() as handle:
        data = yaml.safe_load(handle)
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data
