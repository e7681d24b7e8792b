"""A schedule's firing spends its principal's submit budget, on the API's own counters.

The API counts submits with flask-limiter (web/limits.py) in the job Redis; a job a schedule
starts is one more submit of the same principal, so the worker spends the same counters, with
the same library and keys, before it submits. Over the budget, the firing is skipped.
"""

from __future__ import annotations

from functools import cache

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from mlsys.jobs import keys
from mlsys.settings import Settings
from web.limits import SUBMIT_SCOPE, principal_key


@cache
def _limiter(redis_url: str) -> FixedWindowRateLimiter:
    # flask-limiter's default strategy, on the storage its RATELIMIT_STORAGE_URI names.
    return FixedWindowRateLimiter(storage_from_string(redis_url))


@cache
def _limits(text: str) -> list[RateLimitItem]:
    return parse_many(text)


def spend_submit(settings: Settings, principal: str) -> str | None:
    """Spend one submit of `principal`'s budget; returns the limit it is over (nothing spent)
    or None (spent)."""
    text = settings.submit_rate_limit.strip()
    if not text:
        return None
    limiter = _limiter(settings.redis_url)
    args = (keys.RATE_LIMIT_PREFIX, principal_key(principal), SUBMIT_SCOPE)
    items = _limits(text)
    for item in items:
        if not limiter.test(item, *args):
            return str(item)
    for item in items:
        limiter.hit(item, *args)
    return None
