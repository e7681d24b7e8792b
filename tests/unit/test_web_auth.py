"""Bearer-token matching: constant-time over every configured token."""

from __future__ import annotations

import pytest

from web.auth import token_matches

pytestmark = pytest.mark.unit

TOKENS = [b"old-token-abc", b"new-token-xyz"]


@pytest.mark.parametrize("presented", ["old-token-abc", "new-token-xyz"])
def test_any_configured_token_matches(presented):
    assert token_matches(presented, TOKENS)


@pytest.mark.parametrize(
    "presented", ["", "old-token-ab", "old-token-abcd", "OLD-TOKEN-ABC", "new-token-xyz ", "ø"]
)
def test_anything_else_does_not(presented):
    assert not token_matches(presented, TOKENS)


def test_no_tokens_match_nothing():
    assert not token_matches("old-token-abc", [])
