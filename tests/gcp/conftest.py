"""Fixtures of the Google Cloud backend tests: local emulators, backends on them."""

from __future__ import annotations

import pytest

pytest.importorskip("google.cloud.bigquery", reason="needs the gcp extra: uv sync --extra gcp")

from tests.gcp.emulators.servers import (  # noqa: E402,F401 - fixtures
    bigquery_emulator,
    bigquery_warehouse,
    gcs_emulator,
    gcs_store,
)
from tests.gcp.real import real_bigquery_warehouse  # noqa: E402,F401 - fixture
