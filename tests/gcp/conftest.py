"""Fixtures of the Google Cloud backend tests: local emulators, clients on them."""

from __future__ import annotations

import pytest

pytest.importorskip("google.cloud.storage", reason="needs the gcp extra: uv sync --extra gcp")

from tests.gcp.emulators.servers import bigquery_emulator, gcs_emulator  # noqa: E402,F401
