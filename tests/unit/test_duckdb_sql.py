"""BigQuery -> DuckDB translation and identifier quoting, tested as strings (and parsed back)."""

from __future__ import annotations

import random
import string

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from mlsys.errors import InvalidIdentifier, InvalidRequest
from mlsys.ids import TableId
from mlsys.warehouse.duckdb_sql import bigquery_to_duckdb, duckdb_table, quote_ident

pytestmark = pytest.mark.unit

DEFAULT = "default-proj"


def to_duckdb(sql: str) -> str:
    return bigquery_to_duckdb(sql, DEFAULT)


def test_backticked_three_part_name_becomes_schema_and_table():
    assert to_duckdb("SELECT * FROM `my-proj.titanic.passengers`") == (
        'SELECT * FROM "my-proj.titanic"."passengers"'
    )


def test_unquoted_three_part_name():
    assert to_duckdb("SELECT a FROM myproj.titanic.passengers") == (
        'SELECT a FROM "myproj.titanic"."passengers"'
    )


def test_two_part_names_take_the_default_project():
    assert to_duckdb("SELECT a FROM titanic.passengers") == (
        'SELECT a FROM "default-proj.titanic"."passengers"'
    )
    assert to_duckdb("SELECT a FROM `titanic.passengers`") == (
        'SELECT a FROM "default-proj.titanic"."passengers"'
    )


def test_cte_names_and_aliases_are_left_alone():
    sql = (
        "WITH adults AS (SELECT * FROM `p-1.titanic.passengers` WHERE Age >= 18) "
        "SELECT a.Sex, COUNT(*) AS n FROM adults AS a JOIN titanic.extra e USING (PassengerId) "
        "GROUP BY a.Sex"
    )
    assert to_duckdb(sql) == (
        'WITH adults AS (SELECT * FROM "p-1.titanic"."passengers" WHERE Age >= 18) '
        'SELECT a.Sex, COUNT(*) AS n FROM adults AS a JOIN "default-proj.titanic"."extra" AS e '
        "USING (PassengerId) GROUP BY a.Sex"
    )


def test_bare_table_names_are_not_given_a_project():
    assert to_duckdb("SELECT * FROM passengers") == "SELECT * FROM passengers"


@pytest.mark.parametrize(
    ("bigquery", "duckdb_sql"),
    [
        ("SELECT SAFE_DIVIDE(a, b) FROM t", "SELECT CASE WHEN b <> 0 THEN a / b ELSE NULL END"),
        ("SELECT IFNULL(a, 0) FROM t", "SELECT COALESCE(a, 0)"),
        ("SELECT COUNTIF(a > 1) FROM t", "SELECT COUNT_IF(a > 1)"),
        ("SELECT DATE_TRUNC(d, MONTH) FROM t", "SELECT DATE_TRUNC('MONTH', d)"),
        ("SELECT CURRENT_TIMESTAMP() FROM t", "SELECT CURRENT_TIMESTAMP"),
        ("SELECT CAST(x AS INT64) FROM t", "SELECT CAST(x AS BIGINT)"),
        ("SELECT CAST(x AS FLOAT64) FROM t", "SELECT CAST(x AS DOUBLE)"),
        ("SELECT CAST(x AS STRING) FROM t", "SELECT CAST(x AS TEXT)"),
        ('SELECT "it\'s" AS s FROM t', "SELECT 'it''s' AS s"),
    ],
)
def test_bigquery_functions_and_literals_are_translated(bigquery, duckdb_sql):
    assert to_duckdb(bigquery).startswith(duckdb_sql)


def test_translated_bigquery_runs_on_duckdb():
    """The translation is not just plausible text: DuckDB runs it and agrees with BigQuery."""
    con = duckdb.connect()
    con.execute('CREATE SCHEMA "my-proj.titanic"')
    con.execute(
        'CREATE TABLE "my-proj.titanic"."passengers" AS '
        "SELECT * FROM (VALUES (1, 'male', 22.0, 7.25), (2, 'female', 38.0, 71.28), "
        "(3, 'female', NULL, 7.92)) v(PassengerId, Sex, Age, Fare)"
    )
    sql = (
        "SELECT Sex, COUNTIF(Age IS NULL) AS no_age, "
        "ROUND(SAFE_DIVIDE(SUM(Fare), COUNT(*)), 2) AS mean_fare, "
        "CAST(COUNT(*) AS INT64) AS n "
        "FROM `my-proj.titanic.passengers` GROUP BY Sex ORDER BY Sex"
    )
    assert con.sql(to_duckdb(sql)).fetchall() == [("female", 1, 39.6, 2), ("male", 0, 7.25, 1)]


def test_several_statements_are_all_translated():
    out = to_duckdb("SELECT 1 FROM a.b; SELECT 2 FROM `p-x.c.d`")
    assert out == 'SELECT 1 FROM "default-proj.a"."b";\nSELECT 2 FROM "p-x.c"."d"'


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT * FROM (", "", "   ", ";"])
def test_sql_that_does_not_parse_is_an_invalid_request(sql):
    with pytest.raises(InvalidRequest) as caught:
        to_duckdb(sql)
    assert caught.value.hint


# --- identifiers ---------------------------------------------------------------------------
def test_quote_ident_doubles_quotes():
    assert quote_ident("a") == '"a"'
    assert quote_ident('a"b') == '"a""b"'
    assert quote_ident('"; DROP TABLE x; --') == '"""; DROP TABLE x; --"'


def test_duckdb_table_shape():
    assert duckdb_table(TableId("my-proj", "titanic", "pass-engers")) == (
        '"my-proj.titanic"."pass-engers"'
    )


def _random_table_ids(count: int) -> list[TableId]:
    """Valid ids built from every character the rules allow, reserved words included."""
    rng = random.Random(20240501)
    lower = string.ascii_lowercase
    tail_project = lower + string.digits + "-"
    dataset_chars = string.ascii_letters + string.digits + "_"
    table_chars = dataset_chars + "-"
    words = ["select", "from", "drop", "table", "where", "order", "group", "union", "null"]
    ids = [
        TableId("select", "from", "where"),
        TableId("ab", "_", "_"),
        TableId("my-proj", "titanic", "t--comment"),
        TableId("my-proj", "titanic", "x-"),
    ]
    for _ in range(count):
        project = rng.choice(lower) + "".join(
            rng.choice(tail_project) for _ in range(rng.randint(0, 20))
        )
        project += rng.choice(lower + string.digits)
        dataset = rng.choice(string.ascii_letters + "_") + "".join(
            rng.choice(dataset_chars) for _ in range(rng.randint(0, 40))
        )
        table = rng.choice([rng.choice(words), rng.choice(string.ascii_letters + "_")]) + "".join(
            rng.choice(table_chars) for _ in range(rng.randint(0, 40))
        )
        ids.append(TableId(project, dataset, table))
    return ids


def test_every_valid_table_id_quotes_to_exactly_one_table():
    for table in _random_table_ids(300):
        rendered = duckdb_table(table)
        parsed = sqlglot.parse_one(f"SELECT * FROM {rendered}", read="duckdb")
        tables = list(parsed.find_all(exp.Table))
        assert len(tables) == 1, rendered
        assert tables[0].db == f"{table.project}.{table.dataset}"
        assert tables[0].name == table.table
        assert tables[0].this.quoted and tables[0].args["db"].quoted


def test_every_valid_table_id_round_trips_through_the_translation():
    for table in _random_table_ids(300):
        sql = to_duckdb(f"SELECT * FROM `{table}` WHERE 1 = 1")
        assert sql == f"SELECT * FROM {duckdb_table(table)} WHERE 1 = 1"


def test_reserved_words_and_hyphens_work_in_a_real_duckdb():
    con = duckdb.connect()
    for table in [TableId("select", "from", "where"), TableId("my-proj", "drop", "t--x")]:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.project}.{table.dataset}"')
        con.execute(f"CREATE TABLE {duckdb_table(table)} (x INT)")
        con.execute(f"INSERT INTO {duckdb_table(table)} VALUES (1)")
        assert con.execute(to_duckdb(f"SELECT COUNT(*) FROM `{table}`")).fetchall() == [(1,)]


@pytest.mark.parametrize(
    "hostile",
    [
        'x"; DROP TABLE y; --',
        "x`; DROP TABLE y",
        "x' OR '1'='1",
        'x"',
        "x/*",
        "x;",
        "x y",
        "x\u0430",
    ],
)
def test_a_table_id_cannot_hold_a_breaking_character(hostile):
    with pytest.raises(InvalidIdentifier):
        TableId("my-proj", "titanic", hostile)
    with pytest.raises(InvalidIdentifier):
        TableId("my-proj", hostile, "t")
    with pytest.raises(InvalidIdentifier):
        TableId.parse(f"my-proj.titanic.{hostile}")
