"""Dashboard sign-in is rate limited and a principal's sessions are capped (attack: one token
made 80-140 sessions a second, each living 12 hours in Redis). Over HTTP against the real app
and Redis."""

from __future__ import annotations

import pytest
import requests

from tests.integration.trust_support import serve_api
from web.ui.guard import CSRF_COOKIE, SESSION_COOKIE
from web.ui.sessions import PREFIX

pytestmark = pytest.mark.integration

TOKEN = "signin-admin-token-0123"


def _serve(tmp_path, demo_home, redis_url, **env):
    return serve_api(tmp_path / "home", demo_home, redis_url, MLSYS_API_TOKENS=TOKEN, **env)


def _sign_in(url: str, token: str) -> requests.Response:
    csrf = "c" * 43
    return requests.post(
        f"{url}/ui/signin",
        data={"token": token, "csrf_token": csrf},
        cookies={CSRF_COOKIE: csrf},
        allow_redirects=False,
        timeout=10,
    )


def _sessions(api) -> list[str]:
    return list(api.redis.scan_iter(PREFIX + "*"))


def test_sign_in_is_rate_limited(tmp_path, demo_home, redis_url, redis_client):
    with _serve(tmp_path, demo_home, redis_url, MLSYS_SIGNIN_RATE_LIMIT="5/minute") as api:
        answers = [_sign_in(api.url, TOKEN).status_code for _ in range(8)]
        wrong = _sign_in(api.url, "guessed-token-xyz").status_code

        assert answers[:5] == [303] * 5 and set(answers[5:]) == {429}, answers
        assert wrong == 429  # the same address: guessing is limited too
        assert len(_sessions(api)) == 5
        assert not any(TOKEN in key for key in api.redis.scan_iter("mlsys:ratelimit*"))


def test_a_principals_oldest_sessions_end_beyond_the_cap(
    tmp_path, demo_home, redis_url, redis_client
):
    with _serve(
        tmp_path,
        demo_home,
        redis_url,
        MLSYS_SIGNIN_RATE_LIMIT="",
        MLSYS_UI_SESSIONS_PER_PRINCIPAL="3",
    ) as api:
        cookies = [_sign_in(api.url, TOKEN).cookies[SESSION_COOKIE] for _ in range(10)]

        assert len(_sessions(api)) == 3
        pages = [
            requests.get(
                f"{api.url}/ui/jobs", cookies={SESSION_COOKIE: c}, allow_redirects=False
            ).status_code
            for c in cookies
        ]
        assert pages == [303] * 7 + [200] * 3  # the oldest seven are signed out
