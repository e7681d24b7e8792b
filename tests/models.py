"""Tiny estimators whose speed and failures tests control. Workers unpickle them, so they live
in an importable module (the worker runs from the repository root)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

FEATURES = ["Sex", "Pclass"]


class ScriptedClassifier(ClassifierMixin, BaseEstimator):
    """Predicts survival from Sex and Pclass, sleeping `delay` seconds per batch.

    A batch with a row whose Sex is "poison" raises (a bad row); one whose Sex is "crash" kills
    the process scoring it (a segfault, an OOM kill): every worker that runs it dies.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        return self

    def predict_proba(self, X):
        if self.delay:
            time.sleep(self.delay)
        return self._scores(X)

    def predict(self, X):
        """The likelier class (the pipeline asks for both; only predict_proba sleeps)."""
        return self.classes_[self._scores(X).argmax(axis=1)]

    def _scores(self, X):
        sex = X["Sex"].to_numpy()
        if (sex == "poison").any():
            raise ValueError("cannot score a passenger whose Sex is 'poison'")
        if (sex == "crash").any():
            os.kill(os.getpid(), signal.SIGKILL)
        female = sex == "female"
        p1 = np.clip(0.2 + 0.6 * female - 0.05 * (X["Pclass"].to_numpy() - 2), 0.01, 0.99)
        return np.column_stack([1 - p1, p1])
