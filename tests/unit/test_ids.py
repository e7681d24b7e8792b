"""Validated identifiers: good values pass, hostile ones are refused with a useful message."""

from __future__ import annotations

import pytest

from mlsys.errors import InvalidIdentifier
from mlsys.ids import ModelRef, TableId, VersionSpec, check_alias, check_column, check_model_name

pytestmark = pytest.mark.unit

CYRILLIC_A = "\u0430"  # looks exactly like the Latin 'a'


# --- TableId -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("my-project.titanic.passengers", ("my-project", "titanic", "passengers")),
        ("`my-project.titanic.passengers`", ("my-project", "titanic", "passengers")),
        ("  my-project.titanic.passengers  ", ("my-project", "titanic", "passengers")),
        ("mlsys-local.mlsys_dev.model_registry", ("mlsys-local", "mlsys_dev", "model_registry")),
        ("p1.Data_Set.table-with-hyphens", ("p1", "Data_Set", "table-with-hyphens")),
        ("ab._private._t", ("ab", "_private", "_t")),
        ("a" * 30 + ".d.t", ("a" * 30, "d", "t")),
    ],
)
def test_table_id_accepts_bigquery_names(text, parts):
    table = TableId.parse(text)
    assert (table.project, table.dataset, table.table) == parts
    assert str(table) == ".".join(parts)
    assert TableId.parse(str(table)) == table


def test_table_id_two_parts_take_the_default_project():
    assert TableId.parse("titanic.passengers", default_project="my-proj") == TableId(
        "my-proj", "titanic", "passengers"
    )
    assert TableId.parse("`titanic.passengers`", default_project="my-proj").project == "my-proj"


def test_table_id_two_parts_without_default_project_are_refused():
    with pytest.raises(InvalidIdentifier, match="project.dataset.table"):
        TableId.parse("titanic.passengers")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("my-proj.titanic.passengers; DROP TABLE x", "table name"),
        ("my-proj.titanic.passengers -- comment", "table name"),
        ("my-proj.titanic.pass'engers", "table name"),
        ('my-proj.titanic.pass"engers', "table name"),
        ("my-proj.titanic.pass`engers", "table name"),
        ("my-proj.`titanic`.passengers", "dataset name"),
        ("my-proj.titanic.passengers/*x*/", "table name"),
        ("my-proj.tita nic.passengers", "dataset name"),
        ("my-proj.titanic-x.passengers", "dataset name"),
        ("my-proj..passengers", "project.dataset.table"),
        ("my-proj.titanic.", "project.dataset.table"),
        (".titanic.passengers", "project.dataset.table"),
        ("my-proj.titanic.passengers.extra", "project.dataset.table"),
        ("passengers", "project.dataset.table"),
        ("", "project.dataset.table"),
        ("My-Proj.titanic.passengers", "project name"),
        ("1proj.titanic.passengers", "project name"),
        ("my_proj.titanic.passengers", "project name"),
        ("my-proj-.titanic.passengers", "project name"),
        ("p.titanic.passengers", "project name"),  # too short
        ("a" * 31 + ".titanic.passengers", "project name"),  # too long
        ("my-proj." + "d" * 1025 + ".t", "dataset name"),
        ("my-proj.titanic." + "t" * 1025, "table name"),
        ("my-proj.1titanic.passengers", "dataset name"),
        (f"my-proj.titanic.p{CYRILLIC_A}ssengers", "non-ASCII"),
        (f"my-pr{CYRILLIC_A}j.titanic.passengers", "non-ASCII"),
        ("my-proj.titanic.passengers\u200b", "non-ASCII"),  # zero-width space
        ("my-proj.titanic.pass\nengers", "table name"),
        ("my-proj.titanic.pass\x00engers", "table name"),
        ("x" * 3000, "too long"),
    ],
)
def test_table_id_refuses_hostile_values(text, says):
    with pytest.raises(InvalidIdentifier) as caught:
        TableId.parse(text, default_project="my-proj")
    assert says in str(caught.value)
    assert caught.value.hint or "too long" in str(caught.value)


@pytest.mark.parametrize("value", [None, 42, ["a", "b", "c"], b"p.d.t"])
def test_table_id_refuses_non_strings(value):
    with pytest.raises(InvalidIdentifier, match="must be a string"):
        TableId.parse(value)


def test_table_id_constructor_validates_each_part():
    with pytest.raises(InvalidIdentifier, match="table name"):
        TableId("my-proj", "titanic", 'x"; DROP TABLE y; --')
    with pytest.raises(InvalidIdentifier, match="dataset name"):
        TableId("my-proj", "", "t")
    with pytest.raises(InvalidIdentifier, match="dataset"):
        TableId("my-proj", "ti.tanic", "t")


def test_with_table_validates_the_new_name():
    base = TableId("my-proj", "titanic", "passengers")
    assert base.with_table("predictions") == TableId("my-proj", "titanic", "predictions")
    with pytest.raises(InvalidIdentifier):
        base.with_table("predictions; --")


# --- columns ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["PassengerId", "_x", "a1", "Survived", "x" * 300])
def test_check_column_accepts(name):
    assert check_column(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1abc",
        "a b",
        "a-b",
        "a.b",
        'a"b',
        "a`b",
        "a'b",
        "a;b",
        "a--",
        "x" * 301,
        f"{CYRILLIC_A}ge",
        "Age\n",
    ],
)
def test_check_column_refuses(name):
    with pytest.raises(InvalidIdentifier) as caught:
        check_column(name)
    assert "column name" in str(caught.value).lower()


# --- model names, versions, aliases --------------------------------------------------------
@pytest.mark.parametrize("name", ["titanic-survival", "m", "model_2", "a" * 64, "3d-model"])
def test_model_name_accepts(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Titanic",
        "titanic/survival",
        "..",
        "../etc",
        "/etc/passwd",
        "file:///etc/passwd",
        "gs://other-bucket/model",
        "a" * 65,
        "-titanic",
        "titanic-",
        "titanic_",
        "tit anic",
        "titanic.v1",
        f"tit{CYRILLIC_A}nic",
        "titanic\\survival",
    ],
)
def test_model_name_refuses(name):
    with pytest.raises(InvalidIdentifier) as caught:
        check_model_name(name)
    message = str(caught.value)
    assert "model name" in message
    if name.isascii():
        assert "lowercase letters" in message  # says how to fix it


@pytest.mark.parametrize(
    ("value", "number", "alias"),
    [
        ("v3", 3, None),
        ("3", 3, None),
        (3, 3, None),
        ("v123456789", 123456789, None),
        ("latest", None, None),
        ("", None, None),
        ("champion", None, "champion"),
        ("@champion", None, "champion"),
        ("challenger-2", None, "challenger-2"),
    ],
)
def test_version_spec_parses(value, number, alias):
    spec = VersionSpec.parse(value)
    assert (spec.number, spec.alias) == (number, alias)
    assert spec.is_latest == (number is None and alias is None)


def test_version_spec_str_round_trips():
    for text in ("v7", "latest", "champion"):
        assert str(VersionSpec.parse(text)) == text


@pytest.mark.parametrize(
    "value",
    ["Champion", "v1;--", "../v1", "v1.5", "@", "x y", f"ch{CYRILLIC_A}mpion", True, None, 1.5],
)
def test_version_spec_refuses(value):
    with pytest.raises(InvalidIdentifier, match="version"):
        VersionSpec.parse(value)


@pytest.mark.parametrize("alias", ["champion", "@champion", "challenger", "shadow_2"])
def test_check_alias_accepts(alias):
    assert check_alias(alias) == alias.lstrip("@")


@pytest.mark.parametrize("alias", ["latest", "v3", "3", "Champion", "a/b", "", "x;y", "@"])
def test_check_alias_refuses_reserved_and_hostile(alias):
    with pytest.raises(InvalidIdentifier) as caught:
        check_alias(alias)
    assert "not latest or vN" in str(caught.value)


def test_model_ref_parses_name_and_version():
    ref = ModelRef.parse("titanic-survival", "v2")
    assert ref == ModelRef("titanic-survival", VersionSpec(number=2))
    assert str(ref) == "titanic-survival/v2"
    assert ModelRef.parse("titanic-survival").version.is_latest
    assert str(ModelRef.parse("titanic-survival", "@champion")) == "titanic-survival/champion"


@pytest.mark.parametrize(
    ("name", "version"),
    [("../titanic", "v1"), ("titanic", "../v1"), ("gs://b/titanic", "v1"), ("/abs", "latest")],
)
def test_model_ref_refuses(name, version):
    with pytest.raises(InvalidIdentifier):
        ModelRef.parse(name, version)
