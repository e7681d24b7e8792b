"""A principal: the named caller a bearer token acts as, its scopes and its datasets."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    """What a principal may do."""

    PREDICT = "predict"  # submit predict jobs (append / write-empty)
    TRUNCATE = "truncate"  # submit predict jobs that replace their output (WRITE_TRUNCATE)
    REGISTRY = "registry"  # sync the registry and move aliases
    ADMIN = "admin"  # see and cancel every principal's jobs


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class Principal:
    """A named caller with scopes and, optionally, the datasets its jobs may read and write.

    `input_datasets` / `output_datasets` are glob patterns over `project.dataset`; empty means
    any dataset (mlsys' own datasets stay refused whatever they say).
    """

    name: str
    scopes: frozenset[Scope] = ALL_SCOPES
    input_datasets: tuple[str, ...] = field(default=())
    output_datasets: tuple[str, ...] = field(default=())

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes


#: The principal of every request when authentication is off.
LOCAL_ADMIN = Principal(name="local", scopes=ALL_SCOPES)
