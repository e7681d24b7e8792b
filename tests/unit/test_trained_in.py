"""A saved model records where it was saved from: its notebook or script, by file name."""

from __future__ import annotations

import sys
import types

import pytest

from mlsys.models.artifacts import trained_in

pytestmark = pytest.mark.unit


def test_a_notebook_is_named_by_its_file_only(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/work/titanic.ipynb")
    assert trained_in() == {"notebook": "titanic.ipynb"}


def test_a_script_is_named_by_its_file_only(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    main = types.ModuleType("__main__")
    main.__file__ = "/srv/jobs/train_model.py"
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert trained_in() == {"script": "train_model.py"}
    del main.__file__  # an interactive session has no file
    assert trained_in() == {}
