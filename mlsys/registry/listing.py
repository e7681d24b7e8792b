"""Pages of the registry, read in the warehouse: `GET /models` at 10,000 versions.

Reading the whole registry table into Python costs seconds at that size; a page is one short
query ordered by (model_name, model_version) that resumes after the last row of the previous
page (a keyset, so pages stay consistent while versions are added). The page token is that
position, opaque to callers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from mlsys.errors import InvalidRequest, MlsysError
from mlsys.ids import check_model_name
from mlsys.registry.entry import RegistryEntry, registry_table
from mlsys.registry.read import trusted_entries
from mlsys.settings import Settings
from mlsys.warehouse.base import Warehouse

MAX_PAGE_SIZE = 1000
_ENV = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class VersionPage:
    entries: list[RegistryEntry]
    #: Where the next page starts; None on the last page.
    next_token: str | None


def encode_token(name: str, version: int) -> str:
    raw = json.dumps([name, version], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, int]:
    """The (model_name, model_version) a page token resumes after.

    Raises:
        InvalidRequest: not a token this server handed out.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        name, version = json.loads(raw)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise ValueError(version)
        return check_model_name(name), version
    except (ValueError, TypeError, binascii.Error, MlsysError):
        raise InvalidRequest(
            "Invalid page_token.",
            hint="Pass the next_page_token of the previous page unchanged, or none for the "
            "first page.",
        ) from None


def page_sql(
    table: str, env: str, limit: int, after: tuple[str, int] | None, model_name: str | None
) -> str:
    """BigQuery SQL for one page. Every value is validated before it is written in."""
    if not _ENV.fullmatch(env):
        raise InvalidRequest(f"Invalid environment {env!r}.")
    where = [f"environment = '{env}'"]
    if model_name is not None:
        where.append(f"model_name = '{check_model_name(model_name)}'")
    if after is not None:
        name, version = check_model_name(after[0]), int(after[1])
        where.append(
            f"(model_name > '{name}' OR (model_name = '{name}' AND model_version > {version}))"
        )
    return (
        f"SELECT * FROM `{table}` WHERE {' AND '.join(where)} "
        f"ORDER BY model_name, model_version LIMIT {int(limit)}"
    )


def list_versions(
    warehouse: Warehouse,
    settings: Settings,
    env: str,
    *,
    page_size: int = 100,
    page_token: str | None = None,
    model_name: str | None = None,
) -> VersionPage:
    """One page of the env's registered versions (of one model, or all), by name then version.
    Rows that may never load (see `untrusted_reason`) are left out, as `read_registry` does."""
    settings.check_env(env)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
    after = decode_token(page_token) if page_token else None
    table = registry_table(settings, env)
    with warehouse.session(write=False):
        if not warehouse.exists(table):
            return VersionPage([], None)
        # One row more than the page tells whether another page follows.
        sql = page_sql(str(table), env, page_size + 1, after, model_name)
        rows = warehouse.query_arrow(sql).to_pylist()
    more = len(rows) > page_size
    rows = rows[:page_size]
    entries = trusted_entries(rows, settings, env, table)
    last = rows[-1] if rows else None
    token = encode_token(last["model_name"], int(last["model_version"])) if more and last else None
    return VersionPage(entries, token)
