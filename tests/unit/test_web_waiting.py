"""Parsing `Prefer: wait=N` (RFC 7240) and sizing the waiting-request cap."""

from __future__ import annotations

import pytest
from flask import Flask

from mlsys.resources import WEB_THREADS_ENV as THREADS_ENV
from mlsys.settings import Settings
from web.waiting import DEFAULT_WAITERS, preferred_wait, waiter_limit

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([("Prefer", "wait=30")], 30),
        ([("Prefer", "respond-async, wait=10")], 10),
        ([("Prefer", 'WAIT="5"; foo=bar')], 5),
        ([("Prefer", "return=minimal"), ("Prefer", "wait=0")], 0),
        ([("Prefer", "wait=soon")], None),
        ([("Prefer", "waiting=3")], None),
    ],
)
def test_preferred_wait(headers, expected):
    with Flask(__name__).test_request_context(headers=headers):
        assert preferred_wait() == expected


def test_waiters_take_half_the_threads_unless_configured(monkeypatch, tmp_path):
    settings = Settings(_env_file=None, MLSYS_HOME=str(tmp_path))
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert waiter_limit(settings) == DEFAULT_WAITERS
    monkeypatch.setenv(THREADS_ENV, "16")
    assert waiter_limit(settings) == 8
    monkeypatch.setenv(THREADS_ENV, "1")
    assert waiter_limit(settings) == 1
    configured = Settings(_env_file=None, MLSYS_HOME=str(tmp_path), MLSYS_MAX_WAITING_REQUESTS=3)
    assert waiter_limit(configured) == 3
