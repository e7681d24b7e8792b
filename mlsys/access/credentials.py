"""Which bearer tokens the API accepts, and the principal each one acts as.

Two forms, both may be set at once:

- `MLSYS_API_TOKENS=tok1,tok2`: plain tokens, each acting as the principal `admin` with every
  scope (the simple case; several tokens so they can rotate).
- `MLSYS_API_PRINCIPALS` (JSON) or `MLSYS_API_PRINCIPALS_FILE` (a path, e.g. a Secret Manager
  volume) holding a list of principals:

      [{"name": "analytics", "token_sha256": ["<hex>", "<hex>"],
        "scopes": ["predict"], "input_datasets": ["my-project.titanic"],
        "output_datasets": ["my-project.scores_*"]}]

  Only SHA-256 hashes of tokens are stored (`mlsys token new` prints a token and its hash);
  several per principal, for rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mlsys.access.principal import ALL_SCOPES, Principal, Scope
from mlsys.errors import InvalidRequest
from mlsys.settings import Settings

PLAIN_TOKEN_PRINCIPAL = "admin"
_HEX = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_GLOB = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_*?.\[\]-]{1,300}$")]


class PrincipalEntry(BaseModel):
    """One principal of MLSYS_API_PRINCIPALS."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
    token_sha256: list[_HEX] = Field(min_length=1)
    scopes: list[Scope] = Field(min_length=1)
    input_datasets: list[_GLOB] = []
    output_datasets: list[_GLOB] = []


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a bearer token, the form MLSYS_API_PRINCIPALS stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """Token hashes and the principals they act as."""

    entries: tuple[tuple[bytes, Principal], ...]

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    def named(self, name: str) -> Principal | None:
        """The configured principal called `name` (a schedule's owner at fire time), or None."""
        return next((p for _, p in self.entries if p.name == name), None)

    def resolve(self, presented: str) -> Principal | None:
        """The principal of `presented`, comparing in constant time against every hash (no
        early exit, so timing tells neither which entry matched nor how many there are)."""
        candidate = token_hash(presented).encode("ascii")
        found: Principal | None = None
        for digest, principal in self.entries:
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found


def load_credentials(settings: Settings) -> Credentials:
    """Read both forms from the settings.

    Raises:
        InvalidRequest: the principals JSON is malformed, or one token hash is listed twice.
    """
    entries: list[tuple[bytes, Principal]] = []
    admin = Principal(name=PLAIN_TOKEN_PRINCIPAL, scopes=ALL_SCOPES)
    for token in settings.api_tokens:
        if value := token.get_secret_value():
            entries.append((token_hash(value).encode("ascii"), admin))
    for entry in _principal_entries(settings):
        principal = Principal(
            name=entry.name,
            scopes=frozenset(entry.scopes),
            input_datasets=tuple(entry.input_datasets),
            output_datasets=tuple(entry.output_datasets),
        )
        entries += [(digest.encode("ascii"), principal) for digest in entry.token_sha256]
    digests = [digest for digest, _ in entries]
    if len(set(digests)) != len(digests):
        raise InvalidRequest(
            "One token is configured twice (the same SHA-256 in MLSYS_API_TOKENS or "
            "MLSYS_API_PRINCIPALS).",
            hint="Give every principal tokens of its own.",
        )
    names = [e.name for e in _principal_entries(settings)]
    if len(set(names)) != len(names):
        raise InvalidRequest(
            "A principal name appears twice in MLSYS_API_PRINCIPALS.",
            hint="List each principal once, with all its token hashes.",
        )
    return Credentials(tuple(entries))


def _principal_entries(settings: Settings) -> list[PrincipalEntry]:
    sources = []
    if settings.api_principals is not None:
        sources.append(("MLSYS_API_PRINCIPALS", settings.api_principals.get_secret_value()))
    if settings.api_principals_file is not None:
        path = settings.api_principals_file
        try:
            sources.append((f"MLSYS_API_PRINCIPALS_FILE {path}", path.read_text("utf-8")))
        except OSError as error:
            raise InvalidRequest(
                f"Cannot read MLSYS_API_PRINCIPALS_FILE {path}: {error.strerror}.",
                hint="Point it at a readable JSON file, or unset it.",
            ) from None
    entries: list[PrincipalEntry] = []
    for where, text in sources:
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
            if not isinstance(raw, list):
                raise ValueError("expected a JSON list of principals")
            entries += [PrincipalEntry.model_validate(item) for item in raw]
        except (ValueError, ValidationError) as error:
            # Never echo the input: it is a secret's content.
            detail = (
                "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in error.errors(include_input=False, include_url=False)
                )
                if isinstance(error, ValidationError)
                else str(error).split(":")[0]
            )
            raise InvalidRequest(
                f"{where} is not a valid principals list ({detail}).",
                hint='Write [{"name": ..., "token_sha256": [...], "scopes": ["predict"]}].',
            ) from None
    return entries
