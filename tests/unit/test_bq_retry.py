"""Retrying what passes: bounded exponential backoff with full jitter."""

from __future__ import annotations

import pytest

from mlsys.warehouse.bq_retry import Backoff, is_permission, is_transient, reasons

pytestmark = pytest.mark.unit


class Failure(Exception):
    def __init__(self, *why: str) -> None:
        super().__init__(", ".join(why))
        self.errors = [{"reason": r, "message": r} for r in why]


def _flaky(*outcomes):
    calls = []

    def fn():
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return fn, calls


def test_transient_reasons_are_retried_until_success_with_growing_bounded_waits():
    fn, calls = _flaky(Failure("rateLimitExceeded"), Failure("jobInternalError"), "done")
    waits = []
    backoff = Backoff(attempts=6, base=1.0, cap=32.0)
    assert backoff.call(fn, is_transient, sleep=waits.append) == "done"
    assert len(calls) == 3 and len(waits) == 2
    assert 0 <= waits[0] <= 1.0 and 0 <= waits[1] <= 2.0


def test_jitter_stays_under_the_exponential_ceiling_and_the_cap():
    backoff = Backoff(base=1.0, cap=8.0)
    assert [backoff.delay(n, rng=lambda lo, hi: hi) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert {backoff.delay(3, rng=lambda lo, hi: lo) for _ in range(3)} == {0.0}
    spread = {round(backoff.delay(4), 6) for _ in range(50)}
    assert len(spread) > 1 and all(0 <= d <= 8 for d in spread)  # jittered, never beyond


def test_attempts_are_bounded_and_the_last_error_is_raised():
    fn, calls = _flaky(*[Failure("backendError")] * 10)
    with pytest.raises(Failure, match="backendError"):
        Backoff(attempts=4).call(fn, is_transient, sleep=lambda _: None)
    assert len(calls) == 4


def test_the_deadline_stops_retries_before_a_wait_would_cross_it():
    fn, calls = _flaky(*[Failure("quotaExceeded")] * 10)
    now = [0.0]
    backoff = Backoff(attempts=10, base=10.0, cap=10.0, deadline=25.0)
    with pytest.raises(Failure):
        backoff.call(
            fn,
            is_transient,
            sleep=lambda s: now.__setitem__(0, now[0] + s),
            clock=lambda: now[0],
        )
    assert 1 < len(calls) < 10


@pytest.mark.parametrize(
    "why", ["accessDenied", "invalidQuery", "notFound", "billingNotEnabled", "responseTooLarge"]
)
def test_what_does_not_pass_is_raised_at_once(why):
    fn, calls = _flaky(Failure(why), "never")
    with pytest.raises(Failure):
        Backoff().call(fn, is_transient, sleep=lambda _: pytest.fail("no wait"))
    assert len(calls) == 1


def test_access_denied_is_a_permission_error_even_beside_a_transient_reason():
    both = Failure("quotaExceeded", "accessDenied")
    assert is_permission(both) and not is_transient(both)
    assert not is_permission(Failure("quotaExceeded"))
    assert reasons(Failure("a", "b")) == {"a", "b"}


def test_an_error_without_a_reason_passes_only_if_its_type_does():
    assert is_transient(TimeoutError(), (TimeoutError,))
    assert not is_transient(ValueError(), (TimeoutError,))
