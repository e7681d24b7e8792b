"""Label types and tasks read off estimators and metadata (mlsys.labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from mlsys import labels
from mlsys.errors import ModelFailed

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ([0, 1], pa.int64()),
        (np.array([0, 1], dtype=np.int32), pa.int64()),
        (np.array([np.int8(1), np.int16(2)], dtype=object), pa.int64()),
        ([False, True], pa.bool_()),
        (np.array([np.bool_(False), np.bool_(True)], dtype=object), pa.bool_()),
        (["no", "yes"], pa.string()),
        (np.array([np.str_("a"), np.str_("b")], dtype=object), pa.string()),
        ([0.5, 1.5], pa.float64()),
        ([1, "x"], pa.string()),
    ],
)
def test_label_type_follows_the_classes(classes, expected):
    assert labels.label_type(classes) == expected


def test_regression_is_float_and_unknown_classes_are_strings():
    assert labels.target_type("regression", [0, 1]) == pa.float64()
    assert labels.target_type("classification", None) == pa.string()


def test_label_arrays_convert_any_label_kind():
    assert labels.label_array(np.array([1, 0]), pa.int64()).to_pylist() == [1, 0]
    assert labels.label_array(np.array([True]), pa.bool_()).to_pylist() == [True]
    objects = np.array([np.int32(3), None, np.int32(3)], dtype=object)
    assert labels.label_array(objects, pa.int64()).to_pylist() == [3, None, 3]
    categorical = pd.Categorical(["x", "y", "x"])
    assert labels.label_array(categorical, pa.string()).to_pylist() == ["x", "y", "x"]
    assert labels.label_array(np.array([1, 2]), pa.string()).to_pylist() == ["1", "2"]
    with pytest.raises(ModelFailed, match="2 values per row"):
        labels.label_array(np.zeros((3, 2)), pa.float64())


def test_task_from_metadata_uses_the_seeds_model_type_as_a_hint():
    assert labels.task_from_metadata({"task": "regression"}) == "regression"
    assert labels.task_from_metadata({"model_type": "RandomForestRegressor"}) == "regression"
    assert labels.task_from_metadata({"model_type": "LinearRegression"}) == "regression"
    assert labels.task_from_metadata({"model_type": "LogisticRegression"}) == "classification"
    assert labels.task_from_metadata({}) == "classification"


class OldStyleRegressor:
    """Declares its kind only through `_estimator_type`, as older libraries do."""

    _estimator_type = "regressor"

    def predict(self, X):
        return np.ones(len(X))


def test_model_task_reads_tags_estimator_type_or_classes():
    X, y = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}), [0, 0, 1, 1]
    fitted = LogisticRegression().fit(X, y)
    assert labels.model_task(fitted) == "classification"
    assert labels.model_classes(fitted) == [0, 1]
    assert labels.model_task(OldStyleRegressor()) == "regression"
    assert labels.model_task(object()) is None


def test_a_failing_estimator_is_named_with_its_error():
    class Broken(LogisticRegression):
        def predict_proba(self, X):
            raise ValueError("bad row")

    model = Broken().fit(pd.DataFrame({"a": [0.0, 1.0]}), [0, 1])
    with pytest.raises(ModelFailed, match="Broken raised ValueError on a batch of 2 rows: bad"):
        labels.predict(model, pd.DataFrame({"a": [0.0, 1.0]}), "classification")
