"""Which BigQuery errors pass, and retrying them: bounded exponential backoff with jitter,
through tenacity (the one retry library of mlsys).

SDK-free: errors are read by duck typing (`errors[].reason` of a REST error response or of a
job's errorResult, `reason` of a gRPC ErrorInfo), so the rules are unit-tested anywhere. The
reasons are BigQuery's own (https://cloud.google.com/bigquery/docs/error-messages).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Conditions that pass: rate and quota limits, and trouble on BigQuery's side. A query or
#: load job failing with one of these is run again as a new job.
TRANSIENT_REASONS = frozenset(
    {
        "backendError",
        "internalError",
        "badGateway",
        "rateLimitExceeded",
        "quotaExceeded",
        "jobRateLimitExceeded",
        "jobBackendError",
        "jobInternalError",
        "tableUnavailable",
    }
)

#: The one reason that means the caller's identity lacks a permission.
PERMISSION_REASONS = frozenset({"accessDenied"})


def reasons(exc: BaseException) -> set[str]:
    """Every reason an API error carries (REST `errors[].reason`, gRPC ErrorInfo `reason`)."""
    found = set()
    for error in getattr(exc, "errors", None) or []:
        if isinstance(error, dict) and error.get("reason"):
            found.add(str(error["reason"]))
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        found.add(reason)
    return found


def is_transient(exc: BaseException, transient_types: tuple[type, ...] = ()) -> bool:
    """Whether `exc` passes by itself: a transient reason (and no accessDenied), or, for an
    error without any reason, one of `transient_types` (5xx, 429, connection trouble)."""
    found = reasons(exc)
    if found:
        return bool(found & TRANSIENT_REASONS) and not found & PERMISSION_REASONS
    return isinstance(exc, transient_types)


def is_permission(exc: BaseException) -> bool:
    return bool(reasons(exc) & PERMISSION_REASONS)


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff with full jitter: attempt n waits a random time up to
    min(cap, base * 2**(n-1)) seconds; at most `attempts` tries within `deadline` seconds."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 32.0
    deadline: float = 600.0

    def delay(self, attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        return rng(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))

    def call(
        self,
        fn: Callable[[], T],
        transient: Callable[[BaseException], bool],
        what: str = "BigQuery call",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> T:
        """`fn()`, again after a transient error, until it succeeds, an error does not pass,
        the attempts are spent or the next wait would cross the deadline (then the last error
        is raised)."""
        started = clock()

        def past_deadline(state: RetryCallState) -> bool:
            return clock() - started + state.upcoming_sleep > self.deadline

        def warn(state: RetryCallState) -> None:
            exc = state.outcome.exception()  # set: tenacity sleeps only after a failure
            log.warning(
                "%s: %s (%s); attempt %s, again in %.1fs",
                what,
                type(exc).__name__,
                ", ".join(sorted(reasons(exc))) or exc,
                state.attempt_number,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            retry=retry_if_exception(transient),
            wait=lambda state: self.delay(state.attempt_number),
            stop=stop_after_attempt(self.attempts) | past_deadline,
            before_sleep=warn,
            sleep=sleep,
            reraise=True,
        )
        return retrying(fn)
