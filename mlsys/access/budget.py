"""The submit budget of each principal, counted in the job Redis.

The API counts submits with flask-limiter (web.limits) on these counters; a job a schedule
starts is one more submit of the same principal, so the worker spends the same counters, with
the same library and keys (mlsys.jobs.keys), before it submits. Over the budget, the firing is
skipped.
"""

from __future__ import annotations

from functools import cache

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from mlsys.jobs import keys
from mlsys.settings import Settings

#: The budget every submitting route shares (the worker's schedule firings spend it too).
SUBMIT_SCOPE = "submit"


def principal_key(name: str) -> str:
    """The limiter's key of a principal's budget (keys.RATE_LIMIT_PREFIX in front)."""
    return keys.rate_limit_principal(name)


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
