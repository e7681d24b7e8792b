"""Synthetic passengers: the same every time, however they are chunked, realistic and learnable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from mlsys import datasets

pytestmark = pytest.mark.unit

COLUMNS = [
    "PassengerId",
    "Pclass",
    "Name",
    "Sex",
    "Age",
    "SibSp",
    "Parch",
    "Ticket",
    "Fare",
    "Cabin",
    "Embarked",
    "Survived",
]


@pytest.fixture(scope="module")
def passengers() -> pd.DataFrame:
    return datasets.titanic(20_000)


def test_kaggle_columns_and_types(passengers):
    assert list(passengers.columns) == COLUMNS
    assert datasets.FEATURES == ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
    assert passengers["PassengerId"].tolist() == list(range(1, 20_001))
    for column in ("PassengerId", "Pclass", "SibSp", "Parch", "Survived"):
        assert passengers[column].dtype == np.int64, column
    for column in ("Age", "Fare"):
        assert passengers[column].dtype == np.float64, column
    assert set(passengers["Pclass"]) == {1, 2, 3}
    assert set(passengers["Sex"]) == {"male", "female"}
    assert set(passengers["Embarked"].dropna()) == {"S", "C", "Q"}
    assert set(passengers["Survived"]) == {0, 1}
    assert passengers["Age"].dropna().between(0.4, 80).all()
    assert (passengers["Fare"] > 0).all()
    assert passengers["Name"].str.contains(r"^\w+, (?:Mr|Mrs|Miss|Master)\. \w+$").all()


def test_same_rows_every_time():
    first, second = datasets.titanic(3_000), datasets.titanic(3_000)
    pd.testing.assert_frame_equal(first, second)
    other_seed = datasets.titanic(3_000, seed=7)
    assert not first["Survived"].equals(other_seed["Survived"])
    assert not first["Age"].equals(other_seed["Age"])


def test_default_size_is_kaggles_training_set():
    assert len(datasets.titanic()) == 891


@pytest.mark.parametrize("chunk_rows", [13, 999, 1_000, 4_096, 10_000])
def test_chunking_does_not_change_the_rows(chunk_rows):
    whole = datasets.titanic(10_000)
    chunks = list(datasets.titanic_chunks(10_000, chunk_rows=chunk_rows))
    assert all(len(c) <= chunk_rows for c in chunks)
    assert sum(len(c) for c in chunks) == 10_000
    assert all(c.index[0] == 0 for c in chunks)  # each chunk stands alone
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_chunking_is_invariant_across_the_generation_block():
    """Across the CHUNK_ROWS boundary too, and blocks regenerate independently."""
    rows = datasets.CHUNK_ROWS + 20_000
    whole = pd.concat(datasets.titanic_chunks(rows), ignore_index=True)
    rechunked = pd.concat(datasets.titanic_chunks(rows, chunk_rows=125_000), ignore_index=True)
    pd.testing.assert_frame_equal(rechunked, whole)
    assert whole["PassengerId"].is_unique
    assert whole["PassengerId"].iloc[-1] == rows
    # The second block does not repeat the first one.
    first = whole.iloc[:1000].reset_index(drop=True)
    second = whole.iloc[datasets.CHUNK_ROWS : datasets.CHUNK_ROWS + 1000].reset_index(drop=True)
    assert not first["Fare"].equals(second["Fare"])


def test_zero_rows_and_negative_rows():
    empty = datasets.titanic(0)
    assert len(empty) == 0
    assert list(empty.columns) == COLUMNS
    assert list(datasets.titanic_chunks(0)) == []
    with pytest.raises(ValueError, match="rows"):
        list(datasets.titanic_chunks(-1))


def test_missing_values_where_the_real_data_has_them(passengers):
    missing = passengers.isna().mean()
    assert 0.17 < missing["Age"] < 0.23  # Kaggle: 19.9%
    assert 0.70 < missing["Cabin"] < 0.80  # Kaggle: 77.1%
    assert 0.0003 < missing["Embarked"] < 0.006  # Kaggle: 2 of 891
    complete = [c for c in COLUMNS if c not in ("Age", "Cabin", "Embarked")]
    assert missing[complete].sum() == 0
    # First class has cabins far more often, as on the ship.
    by_class = passengers.groupby("Pclass")["Cabin"].apply(lambda s: s.notna().mean())
    assert by_class[1] > 0.6 > 0.2 > by_class[3]


def test_survival_rates_look_like_the_titanic(passengers):
    assert 0.32 < passengers["Survived"].mean() < 0.45  # Kaggle: 38.4%
    by_sex = passengers.groupby("Sex")["Survived"].mean()
    assert by_sex["female"] > by_sex["male"] + 0.3
    by_class = passengers.groupby("Pclass")["Survived"].mean()
    assert by_class[1] > by_class[2] > by_class[3]


def test_survival_signal_is_learnable(passengers):
    x = pd.DataFrame(
        {
            "female": (passengers["Sex"] == "female").astype(float),
            "pclass": passengers["Pclass"].astype(float),
            "age": passengers["Age"].fillna(passengers["Age"].median()),
            "log_fare": np.log1p(passengers["Fare"]),
            "family": (passengers["SibSp"] + passengers["Parch"]).astype(float),
        }
    )
    x_train, x_test, y_train, y_test = train_test_split(
        x, passengers["Survived"], test_size=0.3, random_state=0
    )
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    assert auc > 0.78
    # And noise is not: a shuffled label is not learnable, so the signal is in the features.
    shuffled = y_train.sample(frac=1.0, random_state=1).to_numpy()
    noise = LogisticRegression(max_iter=1000).fit(x_train, shuffled)
    assert roc_auc_score(y_test, noise.predict_proba(x_test)[:, 1]) < 0.56
