"""Validated identifiers: the only way a user-supplied name reaches SQL, a path or a bucket.

Parsed once at the edge (API, CLI, notebook helper), trusted inside. Every part is checked
against a strict ASCII pattern, so a value that passed can be quoted safely by any dialect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlsys.errors import InvalidIdentifier

# BigQuery's own rules, narrowed to ASCII: project ids are lowercase letters, digits and
# hyphens; dataset names letters, digits and underscores; table names may add hyphens.
_PROJECT = re.compile(r"[a-z][a-z0-9-]{0,28}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,1023}")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,1023}")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")
_MODEL_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")
_VERSION = re.compile(r"v?([1-9][0-9]{0,8})")
_ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_VERSION_LIKE = re.compile(r"v?[0-9]+")  # never an alias, even v0
_MAX_TEXT = 2048


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{what} must be a string, got {type(value).__name__}.")
    if len(value) > _MAX_TEXT:
        raise InvalidIdentifier(f"{what} is too long ({len(value)} characters).")
    if not value.isascii():
        raise InvalidIdentifier(
            f"{what} {value!r} contains non-ASCII characters.",
            hint="Use ASCII letters, digits, '_' and '-' only.",
        )
    return value


@dataclass(frozen=True, order=True)
class TableId:
    """A warehouse table, always `project.dataset.table` (BigQuery's own form)."""

    project: str
    dataset: str
    table: str

    def __post_init__(self) -> None:
        for part, pattern, what, rule in (
            (
                self.project,
                _PROJECT,
                "project",
                "lowercase letters, digits and '-', starting with a letter, 2-30 characters",
            ),
            (
                self.dataset,
                _DATASET,
                "dataset",
                "letters, digits and '_', starting with a letter or '_'",
            ),
            (
                self.table,
                _TABLE,
                "table",
                "letters, digits, '_' and '-', starting with a letter or '_'",
            ),
        ):
            _check_text(part, f"The {what} name")
            if not pattern.fullmatch(part):
                raise InvalidIdentifier(
                    f"Invalid {what} name {part!r} in table id.", hint=f"A {what} name has {rule}."
                )

    @classmethod
    def parse(cls, value: object, default_project: str | None = None) -> TableId:
        """Parse `project.dataset.table` (optionally in backticks); `dataset.table` takes
        `default_project` when one is given. A TableId (parsed at the edge) is returned as is."""
        if isinstance(value, TableId):
            return value
        text = _check_text(value, "The table id").strip()
        if len(text) >= 2 and text[0] == text[-1] == "`":
            text = text[1:-1]
        parts = text.split(".")
        if len(parts) == 2 and default_project:
            parts = [default_project, *parts]
        if len(parts) != 3 or not all(parts):
            raise InvalidIdentifier(
                f"Invalid table id {value!r}.",
                hint="Write it as project.dataset.table, e.g. my-project.titanic.passengers.",
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"

    def with_table(self, table: str) -> TableId:
        return TableId(self.project, self.dataset, table)


def check_column(name: object) -> str:
    """A column name safe to quote in any dialect."""
    text = _check_text(name, "A column name")
    if not _COLUMN.fullmatch(text):
        raise InvalidIdentifier(
            f"Invalid column name {text!r}.",
            hint="Column names have letters, digits and '_', starting with a letter or '_'.",
        )
    return text


def check_model_name(name: object) -> str:
    text = _check_text(name, "The model name")
    if not _MODEL_NAME.fullmatch(text):
        raise InvalidIdentifier(
            f"Invalid model name {text!r}.",
            hint="Model names are lowercase letters, digits, '-' and '_' (e.g. titanic-survival),"
            " at most 64 characters.",
        )
    return text


@dataclass(frozen=True)
class VersionSpec:
    """What a request asks for: an exact version (`v3`), `latest`, or an alias (`champion`)."""

    number: int | None = None
    alias: str | None = None

    @property
    def is_latest(self) -> bool:
        return self.number is None and self.alias is None

    @classmethod
    def parse(cls, value: object) -> VersionSpec:
        if isinstance(value, VersionSpec):  # parsed at the edge already
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        text = _check_text(value, "The model version").strip()
        if text in ("", "latest"):
            return cls()
        if match := _VERSION.fullmatch(text):
            return cls(number=int(match.group(1)))
        alias = text.removeprefix("@")
        if _ALIAS.fullmatch(alias) and not _VERSION_LIKE.fullmatch(alias):
            return cls(alias=alias)
        raise InvalidIdentifier(
            f"Invalid model version {text!r}.",
            hint="Use vN (e.g. v3), latest, or an alias such as champion.",
        )

    def __str__(self) -> str:
        if self.number is not None:
            return f"v{self.number}"
        return self.alias or "latest"


def check_alias(name: object) -> str:
    text = _check_text(name, "The alias").strip().removeprefix("@")
    if not _ALIAS.fullmatch(text) or text == "latest" or _VERSION_LIKE.fullmatch(text):
        raise InvalidIdentifier(
            f"Invalid alias {text!r}.",
            hint="Aliases are lowercase words such as champion or challenger (not latest or vN).",
        )
    return text


@dataclass(frozen=True)
class ModelRef:
    """A model name and the version a caller asks for."""

    name: str
    version: VersionSpec

    @classmethod
    def parse(cls, name: object, version: object = "latest") -> ModelRef:
        return cls(check_model_name(name), VersionSpec.parse(version))

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"
