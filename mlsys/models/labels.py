"""What a model predicts, and in which column type: read off the fitted estimator.

Metadata may lack the task and the classes (the seed's `metadata.json` has neither), so the
worker, which loads the model anyway, asks the model: `classes_`, `predict_proba`, and the
scikit-learn tags (`is_classifier`, which also reads `_estimator_type`). Labels of any type
(int, bool, str, numpy scalars, pandas categoricals) land in a column of their own type;
regression lands as FLOAT64. Works for anything with the scikit-learn API (LightGBM, XGBoost,
Pipelines of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from mlsys.errors import ModelFailed

Task = Literal["classification", "regression"]

#: Final estimators whose `predict` is, by construction, the class of highest `predict_proba`
#: (ties go to the first class, as `argmax`): for these one `predict_proba` call gives both
#: columns. Any other classifier (a tuned threshold, SVC's Platt scaling, user code) is asked
#: `predict` for its labels, so the output is always exactly what the model predicts.
_ARGMAX_CONSISTENT = {
    "sklearn": {
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "LogisticRegression",
        "LogisticRegressionCV",
        "BaggingClassifier",
        "GaussianNB",
        "MultinomialNB",
        "BernoulliNB",
        "ComplementNB",
        "CategoricalNB",
    },
    "lightgbm": {"LGBMClassifier"},
    "xgboost": {"XGBClassifier"},
}


def final_estimator(model: Any) -> Any:
    """The last step of a Pipeline (recursively), else the model itself."""
    while hasattr(model, "steps") and model.steps:
        model = model.steps[-1][1]
    return model


def model_task(model: Any) -> Task | None:
    """classification / regression as the estimator declares it (tags, `_estimator_type`),
    else guessed from `classes_`; None when it cannot tell."""
    from sklearn.base import is_classifier, is_regressor

    try:
        if is_classifier(model):
            return "classification"
        if is_regressor(model):
            return "regression"
    except Exception:  # an estimator with broken tags: fall back to its attributes
        pass
    declared = getattr(final_estimator(model), "_estimator_type", None)
    if declared in ("classifier", "regressor"):
        return "classification" if declared == "classifier" else "regression"
    if getattr(model, "classes_", None) is not None:
        return "classification"
    return None


def model_classes(model: Any) -> list[Any] | None:
    """The fitted estimator's classes as plain Python values, or None."""
    try:
        classes = getattr(model, "classes_", None)
    except Exception:  # a property that raises on an unusual estimator
        return None
    if classes is None:
        return None
    return [plain(c) for c in np.asarray(classes).ravel()]


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds."""
    return value.item() if isinstance(value, np.generic) else value


def label_type(classes: Any) -> pa.DataType:
    """The column type for labels drawn from `classes` (a list or an array)."""
    values = np.asarray(classes)
    kind = values.dtype.kind
    if kind == "b":
        return pa.bool_()
    if kind in "iu":
        return pa.int64()
    if kind == "f":
        return pa.float64()
    if kind in "US" or values.size == 0:
        return pa.string()
    items = [plain(v) for v in values.ravel()]
    if all(isinstance(v, bool) for v in items):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        return pa.float64()
    return pa.string()


def target_type(task: str, classes: Any | None) -> pa.DataType:
    """The prediction column's type: FLOAT64 for regression, the labels' type otherwise
    (STRING when the classes are unknown: anything converts to it)."""
    if task == "regression":
        return pa.float64()
    return label_type(classes) if classes is not None and len(classes) else pa.string()


def label_array(labels: Any, type_: pa.DataType) -> pa.Array:
    """Predicted labels as an Arrow array of `type_`."""
    values = np.asarray(labels)
    if values.ndim > 1:
        values = values.reshape(len(values), -1)
        if values.shape[1] != 1:
            raise ModelFailed(
                f"The model predicts {values.shape[1]} values per row; mlsys writes one.",
                hint="Save a single-output estimator.",
            )
        values = values[:, 0]
    if pa.types.is_floating(type_):
        return pa.array(values.astype(np.float64), type=type_, from_pandas=True)
    if values.dtype.kind in "biu" and not pa.types.is_string(type_):
        return pa.array(values.astype(np.bool_ if pa.types.is_boolean(type_) else np.int64))
    if values.dtype.kind == "U" and pa.types.is_string(type_):
        return pa.array(values, type=type_)
    # Objects (numpy scalars, categoricals' values, mixed): convert each distinct label once.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    dictionary = pa.array([_convert(plain(u), type_) for u in uniques], type=type_)
    return dictionary.take(pa.array(codes, mask=codes < 0))


def _convert(value: Any, type_: pa.DataType) -> Any:
    return str(value) if pa.types.is_string(type_) else value


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray
    #: Probability of each row's predicted class; None for models without predict_proba.
    probability: np.ndarray | None


def predict(model: Any, frame: Any, task: str) -> Predictions:
    """Run the model on one batch.

    Raises:
        ModelFailed: the estimator raised; the message names the estimator and its error.
    """
    try:
        return _predict(model, frame, task)
    except ModelFailed:
        raise
    except Exception as error:
        raise ModelFailed(
            f"{type(final_estimator(model)).__name__} raised {type(error).__name__} on a batch "
            f"of {len(frame)} rows: {error}",
            hint="Check the input rows and the model (the worker log has the traceback).",
        ) from error


def _predict(model: Any, frame: Any, task: str) -> Predictions:
    if task == "regression":
        return Predictions(np.asarray(model.predict(frame), dtype=np.float64), None)
    if not hasattr(model, "predict_proba"):
        return Predictions(np.asarray(model.predict(frame)), None)
    proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
    classes = np.asarray(model.classes_)
    rows = np.arange(len(proba))
    if _argmax_consistent(model) or not hasattr(model, "predict"):
        best = proba.argmax(axis=1)
        return Predictions(classes[best], proba[rows, best])
    labels = np.asarray(model.predict(frame))
    position = {plain(c): i for i, c in enumerate(classes)}
    index = np.array([position.get(plain(v), -1) for v in labels.ravel()], dtype=np.int64)
    probability = np.where(index >= 0, proba[rows, np.maximum(index, 0)], np.nan)
    return Predictions(labels, probability)


def _argmax_consistent(model: Any) -> bool:
    final = type(final_estimator(model))
    package = final.__module__.split(".")[0]
    return final.__name__ in _ARGMAX_CONSISTENT.get(package, ())


def task_from_metadata(meta: dict[str, Any]) -> Task:
    """The task metadata.json declares; else a guess from the seed's `model_type` (or the
    estimator name) that the worker corrects once it has the model."""
    if meta.get("task") in ("classification", "regression"):
        return meta["task"]
    name = str(meta.get("model_type") or meta.get("estimator") or "")
    regression = name.endswith("Regressor") or (
        name.endswith(("Regression", "SVR")) and "Logistic" not in name
    )
    return "regression" if regression else "classification"
