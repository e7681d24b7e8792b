"""Who may do what, for the API and the worker alike: principals, credentials, datasets, budgets.

It owns the principal type and its scopes, loading the configured tokens and principals
(MLSYS_API_TOKENS, MLSYS_API_PRINCIPALS(_FILE)), the rules over a principal's datasets (which
tables a predict or evaluate job may touch) and the per-principal submit budget on Redis. The
API (web) checks requests with it; the worker checks a schedule's principal again at every
firing with the same code, so neither imports the other.
"""

from mlsys.access.budget import SUBMIT_SCOPE, principal_key, spend_submit
from mlsys.access.credentials import (
    PLAIN_TOKEN_PRINCIPAL,
    Credentials,
    PrincipalEntry,
    load_credentials,
    token_hash,
)
from mlsys.access.datasets import (
    allowed_dataset,
    check_evaluation,
    check_predict,
    dataset_of,
    may_read,
)
from mlsys.access.principal import ALL_SCOPES, LOCAL_ADMIN, Principal, Scope

__all__ = [
    "ALL_SCOPES",
    "LOCAL_ADMIN",
    "PLAIN_TOKEN_PRINCIPAL",
    "SUBMIT_SCOPE",
    "Credentials",
    "Principal",
    "PrincipalEntry",
    "Scope",
    "allowed_dataset",
    "check_evaluation",
    "check_predict",
    "dataset_of",
    "load_credentials",
    "may_read",
    "principal_key",
    "spend_submit",
    "token_hash",
]
