"""Token resolution, principal configuration and the Host / dataset rules, as pure logic."""

from __future__ import annotations

import json

import pytest

from mlsys.access import allowed_dataset
from mlsys.errors import InvalidRequest
from mlsys.ids import TableId
from mlsys.settings import Settings
from web.credentials import load_credentials, token_hash
from web.guards import host_allowed
from web.principal import Scope

pytestmark = pytest.mark.unit


def _settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def _principals(*entries) -> str:
    return json.dumps(list(entries))


def test_plain_tokens_act_as_one_admin_principal():
    credentials = load_credentials(_settings(MLSYS_API_TOKENS="old-token-abc,new-token-xyz"))

    for token in ("old-token-abc", "new-token-xyz"):
        principal = credentials.resolve(token)
        assert principal is not None and principal.name == "admin" and principal.is_admin


@pytest.mark.parametrize(
    "presented", ["", "old-token-ab", "old-token-abcd", "OLD-TOKEN-ABC", "old-token-abc ", "ø"]
)
def test_anything_else_resolves_to_nobody(presented):
    credentials = load_credentials(_settings(MLSYS_API_TOKENS="old-token-abc"))

    assert credentials.resolve(presented) is None


def test_no_credentials_means_auth_is_off():
    assert not load_credentials(_settings()).enabled


def test_principals_store_hashes_and_rotate_tokens():
    entry = {
        "name": "analytics",
        "token_sha256": [token_hash("first-token"), token_hash("second-token")],
        "scopes": ["predict"],
        "output_datasets": ["mlsys-local.scores_*"],
    }
    credentials = load_credentials(_settings(MLSYS_API_PRINCIPALS=_principals(entry)))

    for token in ("first-token", "second-token"):
        principal = credentials.resolve(token)
        assert principal.name == "analytics"
        assert principal.scopes == {Scope.PREDICT} and not principal.has(Scope.TRUNCATE)
        assert principal.output_datasets == ("mlsys-local.scores_*",)
    assert credentials.resolve(token_hash("first-token")) is None  # the hash is not a token


def test_principals_load_from_a_file(tmp_path):
    path = tmp_path / "principals.json"
    path.write_text(
        _principals({"name": "ops", "token_sha256": [token_hash("t")], "scopes": ["admin"]})
    )

    assert load_credentials(_settings(MLSYS_API_PRINCIPALS_FILE=str(path))).resolve("t").is_admin


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("{not json", "not a valid principals list"),
        ('{"name": "x"}', "expected a JSON list"),
        (
            _principals({"name": "x", "token_sha256": ["abc"], "scopes": ["predict"]}),
            "token_sha256",
        ),
        (
            _principals({"name": "x", "token_sha256": [token_hash("t")], "scopes": ["root"]}),
            "scopes",
        ),
        (_principals({"name": "x", "token": "t", "scopes": ["predict"]}), "token"),
    ],
)
def test_bad_principals_refuse_to_load_without_echoing_them(text, phrase):
    with pytest.raises(InvalidRequest) as error:
        load_credentials(_settings(MLSYS_API_PRINCIPALS=text))

    assert phrase in str(error.value)
    assert token_hash("t") not in str(error.value)


def test_a_token_shared_by_two_principals_is_refused():
    digest = token_hash("shared")
    entries = _principals(
        {"name": "a", "token_sha256": [digest], "scopes": ["predict"]},
        {"name": "b", "token_sha256": [digest], "scopes": ["admin"]},
    )

    with pytest.raises(InvalidRequest, match="configured twice"):
        load_credentials(_settings(MLSYS_API_PRINCIPALS=entries))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost:8000", True),
        ("127.0.0.1", True),
        ("[::1]:8000", True),
        ("LOCALHOST", True),
        ("evil.example", False),
        ("localhost.evil.example:8000", False),
        ("", False),
    ],
)
def test_host_names_are_checked_against_the_allowed_list(host, allowed):
    assert host_allowed(host, ["localhost", "127.0.0.1", "::1"]) is allowed


def test_host_globs():
    assert host_allowed("mlsys-dev-abc.a.run.app", ["*.run.app"])
    assert not host_allowed("run.app.evil.example", ["*.run.app"])


def test_dataset_globs():
    table = TableId.parse("mlsys-local.scores_daily.out")

    assert allowed_dataset(table, ())
    assert allowed_dataset(table, ("mlsys-local.scores_*",))
    assert not allowed_dataset(table, ("mlsys-local.titanic",))
    assert not allowed_dataset(table, ("other-project.scores_*",))
