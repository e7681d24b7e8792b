"""The API's bearer tokens and principals: loaded by mlsys.access.credentials (re-exported here).

The worker reads the same configuration at a schedule's firing, so the loading lives in the
core package both import.
"""

from mlsys.access.credentials import (
    PLAIN_TOKEN_PRINCIPAL,
    Credentials,
    PrincipalEntry,
    load_credentials,
    token_hash,
)

__all__ = [
    "PLAIN_TOKEN_PRINCIPAL",
    "Credentials",
    "PrincipalEntry",
    "load_credentials",
    "token_hash",
]
