"""Strict stand-ins for the Google Cloud clients: an autospec of the real class (unknown
attributes and calls its signature refuses raise) whose every method raises until the test
scripts it, so a mocked test sees exactly the calls the code makes, answered with real
objects (or other strict fakes), never a permissive MagicMock."""

from __future__ import annotations

import inspect
from typing import Any
from unittest import mock


class UnscriptedCall(AssertionError):
    """The code called a client method the test did not expect."""


def _unscripted(cls: type, name: str):
    def refuse(*args, **kwargs):
        raise UnscriptedCall(f"unexpected call {cls.__name__}.{name}(*{args}, **{kwargs})")

    return refuse


def strict(cls: type, /, **script: Any) -> Any:
    """An instance-like fake of `cls`. `script` sets what a method returns (a value), raises
    (an exception instance) or does (a callable, as side_effect); other attributes by value."""
    fake = mock.create_autospec(cls, instance=True, spec_set=True)
    for name, attr in inspect.getmembers(cls):
        static = inspect.getattr_static(cls, name, None)
        if name.startswith("_") or isinstance(static, property) or not callable(attr):
            continue
        getattr(fake, name).side_effect = _unscripted(cls, name)
    for name, value in script.items():
        answer(fake, name, value)
    return fake


def answer(fake: Any, name: str, value: Any) -> Any:
    """Script one method (or attribute) of a strict fake; returns the method's mock."""
    method = getattr(fake, name)
    if not callable(method) or not hasattr(method, "side_effect"):
        setattr(fake, name, value)
        return value
    if isinstance(value, BaseException) or inspect.isfunction(value):
        method.side_effect = value
    else:
        method.side_effect = None
        method.return_value = value
    return method
