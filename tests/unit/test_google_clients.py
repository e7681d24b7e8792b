"""The one place Google clients are built records their calls only when asked to."""

from __future__ import annotations

import json

import pytest
from google.cloud import bigquery

from mlsys import google_clients
from tests.gcp.fakes import strict

pytestmark = pytest.mark.unit


def test_clients_are_the_libraries_own_unless_recording_is_on(monkeypatch):
    monkeypatch.delenv(google_clients.CALL_LOG_ENV, raising=False)
    client = strict(bigquery.Client)
    assert google_clients.recorded(client, "Client") is client


def test_a_recorded_call_names_its_process_method_and_table(monkeypatch, tmp_path):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(google_clients.CALL_LOG_ENV, str(log))
    monkeypatch.setenv(google_clients.PROCESS_ENV, "web")
    table = bigquery.Table("p.d.t")
    client = google_clients.recorded(strict(bigquery.Client, get_table=table), "Client")

    assert client.get_table(table, retry=None) is table

    [line] = [json.loads(x) for x in log.read_text().splitlines()]
    assert line == {
        "process": "web", "call": "Client.get_table", "on": None, "args": ["p.d.t"], "kwargs": {},
    }  # fmt: skip
