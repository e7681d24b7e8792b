"""The test servers' ports: picked where no client socket lands, and picked again when another
listener took one first. A port taken between the pick and the server's bind once failed a whole
CI run (bqemulator's gRPC port, inside the kernel's ephemeral range)."""

from __future__ import annotations

import itertools
import shutil
import socket

import pytest
import redis

from tests import services
from tests.gcp.emulators import servers

pytestmark = pytest.mark.integration


def test_a_free_port_lies_below_the_range_client_sockets_are_given():
    floor = services._ephemeral_floor()
    ports = {services.free_port() for _ in range(50)}
    assert all(services.LISTEN_PORTS_FLOOR <= port < floor for port in ports), ports
    assert len(ports) > 1  # random, so two sessions' servers rarely meet


@pytest.fixture
def taken_port():
    """A port someone else listens on, and a picker that hands it out first."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    yield taken
    holder.close()


def _picks(first: int):
    """free_port() that returns `first`, then ports really free."""
    sequence = itertools.chain([first], iter(services.free_port, None))
    return lambda: next(sequence)


def test_the_gcs_emulator_starts_on_another_port_when_its_first_was_taken(
    taken_port, tmp_path, monkeypatch
):
    monkeypatch.setattr(servers, "free_port", _picks(taken_port))
    proc, url = servers.start_fake_gcs(tmp_path / "gcs.log")
    try:
        assert not url.endswith(f":{taken_port}")
        assert servers._http_ok(f"{url}/storage/v1/b")
    finally:
        servers._stop(proc)


def test_a_server_that_cannot_bind_fails_after_its_attempts(taken_port, tmp_path, monkeypatch):
    monkeypatch.setattr(servers, "free_port", lambda: taken_port)
    with pytest.raises(servers.PortTaken, match="fake-gcs-server exited"):
        servers.start_fake_gcs(tmp_path / "gcs.log")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_private_redis_is_ours_even_when_its_first_port_answers_for_another_redis(
    tmp_path, monkeypatch
):
    with services.redis_server(tmp_path / "other") as other_url:
        other = redis.Redis.from_url(other_url)
        other_port = other.connection_pool.connection_kwargs["port"]
        monkeypatch.setattr(services, "free_port", _picks(other_port))
        with services.redis_server(tmp_path / "ours") as url:
            assert url != other_url
            ours = redis.Redis.from_url(url)
            ours.set("mine", "1")
            assert other.get("mine") is None
