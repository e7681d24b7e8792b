"""Synthetic Titanic-like passengers, of any size, the same every time.

Realistic columns (the Kaggle Titanic ones), missing values where the real data has them, and a
survival signal a model can learn (sex, class, age, fare, family size). Generated in chunks so
10M rows never sit in memory at once; chunk k depends only on (seed, k), so any slice can be
regenerated independently.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

FEATURES = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
TARGET = "Survived"
ID_COLUMN = "PassengerId"
CHUNK_ROWS = 500_000

_SURNAMES = np.array(
    "Smith Johnson Brown Taylor Anderson Thomas Jackson White Harris Martin Thompson Garcia "
    "Martinez Robinson Clark Rodriguez Lewis Lee Walker Hall Allen Young Kelly Murphy Sullivan "
    "Andersson Karlsson Nilsson Olsen Hansen".split()
)
_GIVEN_M = np.array("John William James George Charles Frederick Karl Johan Patrick Ernst".split())
_GIVEN_F = np.array("Mary Anna Elizabeth Margaret Helen Alice Ellen Maria Bridget Hilda".split())


def _chunk(start: int, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, start // CHUNK_ROWS, start % CHUNK_ROWS])
    pclass = rng.choice([1, 2, 3], size=rows, p=[0.24, 0.21, 0.55])
    female = rng.random(rows) < np.where(pclass == 3, 0.30, 0.44)
    age = np.clip(rng.normal(np.select([pclass == 1, pclass == 2], [38, 30], 25), 13), 0.4, 80)
    age = np.round(age, 1)
    sibsp = rng.choice([0, 1, 2, 3, 4], size=rows, p=[0.68, 0.23, 0.04, 0.03, 0.02])
    parch = rng.choice([0, 1, 2, 3], size=rows, p=[0.76, 0.13, 0.09, 0.02])
    base_fare = np.select([pclass == 1, pclass == 2], [84.0, 20.0], 13.0)
    fare = np.round(base_fare * rng.lognormal(0.0, 0.45, rows) * (1 + 0.3 * sibsp), 4)
    embarked = rng.choice(np.array(["S", "C", "Q"], dtype=object), size=rows, p=[0.72, 0.19, 0.09])

    logit = (
        -1.6
        + 2.5 * female
        - 0.95 * (pclass - 2)
        - 0.025 * (age - 30)
        + 0.25 * np.log1p(fare / 10)
        - 0.35 * np.maximum(sibsp + parch - 3, 0)
        + 0.8 * (age < 10)
    )
    survived = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")

    # Missing values where the real Titanic data has them.
    age_missing = rng.random(rows) < 0.2
    embarked[rng.random(rows) < 0.002] = None
    cabin_present = rng.random(rows) < np.where(pclass == 1, 0.8, 0.08)
    deck = rng.choice(np.array(list("ABCDEFG"), dtype=object), size=rows)
    cabin = np.where(cabin_present, deck + rng.integers(1, 130, rows).astype(str), None)

    surname = _SURNAMES[rng.integers(0, len(_SURNAMES), rows)]
    given = np.where(
        female,
        _GIVEN_F[rng.integers(0, len(_GIVEN_F), rows)],
        _GIVEN_M[rng.integers(0, len(_GIVEN_M), rows)],
    )
    title = np.where(
        female, np.where(age < 18, "Miss.", "Mrs."), np.where(age < 13, "Master.", "Mr.")
    )
    name = pd.Series(surname, dtype=object) + ", " + title + " " + given

    return pd.DataFrame(
        {
            ID_COLUMN: np.arange(start + 1, start + rows + 1, dtype="int64"),
            "Pclass": pclass.astype("int64"),
            "Name": name.to_numpy(),
            "Sex": np.where(female, "female", "male").astype(object),
            "Age": np.where(age_missing, np.nan, age),
            "SibSp": sibsp.astype("int64"),
            "Parch": parch.astype("int64"),
            "Ticket": (rng.integers(100_000, 3_999_999, rows)).astype(str).astype(object),
            "Fare": fare,
            "Cabin": cabin,
            "Embarked": embarked,
            TARGET: survived,
        }
    )


def titanic_chunks(
    rows: int, seed: int = 0, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield `rows` passengers in chunks of at most `chunk_rows` (a divisor of CHUNK_ROWS keeps
    the output identical to other chunkings)."""
    if rows < 0:
        raise ValueError("rows must be >= 0")
    start = 0
    while start < rows:
        block = min(CHUNK_ROWS - start % CHUNK_ROWS, rows - start)
        frame = _chunk(start, block, seed)
        for offset in range(0, block, chunk_rows):
            yield frame.iloc[offset : offset + chunk_rows].reset_index(drop=True)
        start += block


def titanic(rows: int = 891, seed: int = 0) -> pd.DataFrame:
    """`rows` passengers in one frame (891 is the size of Kaggle's training set)."""
    chunks = list(titanic_chunks(rows, seed))
    return pd.concat(chunks, ignore_index=True) if chunks else _chunk(0, 0, seed)


def write_titanic(warehouse, table, rows: int, seed: int = 0) -> int:
    """Create (or replace) `table` in `warehouse` with `rows` passengers, chunk by chunk."""
    written = 0
    for index, chunk in enumerate(titanic_chunks(rows, seed)):
        written += warehouse.write(chunk, table, "WRITE_TRUNCATE" if index == 0 else "WRITE_APPEND")
    if rows == 0:
        warehouse.write(_chunk(0, 0, seed), table, "WRITE_TRUNCATE")
    return written
