"""Dashboard sign-in: a token once, then a server-side session behind an HttpOnly cookie.

The cookie holds a random session id and a one-time pad as long as the token; Redis keeps the
token XOR the pad under a hash of the id, for `SESSION_SECONDS`. Neither half alone reveals the
token, signing out deletes the record, and every request resolves the token again through
`web.auth` - so a session acts as exactly the principal its token does, and a token revoked in
the configuration ends its sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass

import redis

from mlsys.jobs import keys

#: Where a session's key starts (built in mlsys.jobs.keys, with every other key).
PREFIX = keys.UI_SESSION_PREFIX
SESSION_SECONDS = 12 * 3600
SESSIONS_PER_PRINCIPAL = 20
_ID_BYTES = 32


@dataclass(frozen=True)
class Session:
    """An open session: the token it was signed in with and its CSRF token."""

    token: str
    csrf: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


class SessionStore:
    """Sessions of the dashboard in Redis, under their own prefix."""

    def __init__(
        self,
        client: redis.Redis,
        seconds: int = SESSION_SECONDS,
        per_principal: int = SESSIONS_PER_PRINCIPAL,
    ) -> None:
        self._redis = client
        self.seconds = seconds
        self.per_principal = per_principal

    @classmethod
    def from_url(cls, url: str, per_principal: int = SESSIONS_PER_PRINCIPAL) -> SessionStore:
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10
        )
        return cls(client, per_principal=per_principal)

    @staticmethod
    def _key(session_id: bytes) -> str:
        # Only a hash of the id is stored: a Redis dump does not yield usable cookies.
        return keys.ui_session(hashlib.sha256(session_id).hexdigest())

    def create(self, token: str, principal: str | None = None) -> tuple[str, Session]:
        """Open a session for `token`; returns the cookie value and the session. With
        `principal`, its sessions are capped: beyond `per_principal` the oldest ones end."""
        session_id = secrets.token_bytes(_ID_BYTES)
        secret = token.encode("utf-8")
        pad = secrets.token_bytes(len(secret))
        session = Session(token=token, csrf=secrets.token_urlsafe(32))
        record = {"sealed": _b64(_xor(secret, pad)), "csrf": session.csrf}
        key = self._key(session_id)
        self._redis.set(key, json.dumps(record), ex=self.seconds)
        if principal is not None:
            self._cap(principal, key)
        return f"{_b64(session_id)}.{_b64(pad)}", session

    def _cap(self, principal: str, key: str) -> None:
        index = keys.ui_sessions_of(principal)
        now = time.time()
        with self._redis.pipeline() as pipe:
            pipe.zremrangebyscore(index, "-inf", now)  # sessions that expired on their own
            pipe.zadd(index, {key: now + self.seconds})
            pipe.expire(index, self.seconds)
            pipe.zrange(index, 0, -self.per_principal - 1)  # all but the newest per_principal
            oldest = pipe.execute()[-1]
        if oldest:
            with self._redis.pipeline() as pipe:
                pipe.delete(*oldest)
                pipe.zrem(index, *oldest)
                pipe.execute()

    def open(self, cookie: str | None) -> Session | None:
        """The session a cookie names, or None (absent, malformed, expired or signed out)."""
        parsed = _parse(cookie)
        if parsed is None:
            return None
        session_id, pad = parsed
        raw = self._redis.get(self._key(session_id))
        if raw is None:
            return None
        record = json.loads(raw)
        sealed = _unb64(record["sealed"])
        if len(sealed) != len(pad):
            return None
        try:
            token = _xor(sealed, pad).decode("utf-8")
        except UnicodeDecodeError:
            return None
        return Session(token=token, csrf=record["csrf"])

    def close(self, cookie: str | None) -> None:
        """Sign out: forget the session (the cookie then names nothing)."""
        parsed = _parse(cookie)
        if parsed is not None:
            self._redis.delete(self._key(parsed[0]))


def _parse(cookie: str | None) -> tuple[bytes, bytes] | None:
    if not cookie or cookie.count(".") != 1 or len(cookie) > 4096:
        return None
    id_text, pad_text = cookie.split(".")
    try:
        session_id, pad = _unb64(id_text), _unb64(pad_text)
    except ValueError:
        return None
    if len(session_id) != _ID_BYTES or not pad:
        return None
    return session_id, pad
