"""Configuration dumps with every credential masked: the `conf` and `report` remote commands.

Flower's worker pages and `/api/workers` show what workers answer to `inspect conf` and
`inspect report`. Celery masks settings by name (broker_url, *_backend, *PASSWORD*, ...) and
would show `redbeat_redis_url` - the same Redis, password included - in clear. These versions
mask the password of every URL in the dump, whatever the setting is called.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from celery.utils.serialization import jsonify
from celery.worker.control import inspect_command, ok

MASK = "*" * 8
#: scheme://user:password@host - the part between "://" and "@" holds the credentials.
_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


def mask_url(value: str) -> str:
    """`value` with the credentials (user and password) of every URL it holds masked."""
    return _CREDENTIALS.sub(lambda m: f"{m.group(1)}{MASK}@", value)


def masked(value: Any) -> Any:
    """A configuration value (or table) with every URL's credentials masked."""
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, Mapping):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked(item) for item in value)
    return value


def _wanted(key: Any) -> bool:
    return isinstance(key, str) and not key.startswith("__")


@inspect_command(
    signature="[include_defaults=False]",
    args=[("with_defaults", lambda text: str(text).lower() in ("1", "true", "yes", "on"))],
)
def conf(state, with_defaults: bool = False, **kwargs: Any) -> Any:
    """List configuration (every URL's credentials masked)."""
    table = masked(state.app.conf.table(with_defaults=with_defaults))
    return jsonify(table, keyfilter=_wanted, unknown_type_filter=repr)


@inspect_command()
def report(state) -> Any:
    """Information about the Celery installation, credentials masked."""
    return ok(mask_url(state.app.bugreport()))
