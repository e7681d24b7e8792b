"""Backends chosen by the scheme of a URL setting (MLSYS_WAREHOUSE, MLSYS_MODEL_STORE)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from mlsys.errors import InvalidRequest

T = TypeVar("T")


def by_scheme(url: str, openers: Mapping[str, T], what: str, variable: str) -> T:
    """The opener registered for `url`'s scheme; an unknown one is a clear error naming the
    setting and the schemes it takes."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    try:
        return openers[scheme]
    except KeyError:
        raise InvalidRequest(
            f"Unknown {what} URL {url!r}.",
            hint=f"{variable} takes one of: {', '.join(f'{k}://' for k in openers)}.",
        ) from None
