"""Strict stand-ins for the Google Cloud clients: an autospec of the real class (unknown
attributes and calls its signature refuses raise) whose every method raises until the test
scripts it, so a mocked test sees exactly the calls the code makes, answered with real
objects (or other strict fakes), never a permissive MagicMock."""

from __future__ import annotations

import inspect
from typing import Any
from unittest import mock

from tests.gcp.zetasql import capture


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
    """Script one method (or attribute) of a strict fake; returns the method's mock.

    A fake `bigquery.Client` reports the statements it is sent, and the tables it answers
    `get_table` with, to the GoogleSQL check (`tests/gcp/zetasql`), as the real client does."""
    method = getattr(fake, name)
    if not callable(method) or not hasattr(method, "side_effect"):
        setattr(fake, name, value)
        return value
    if _is_bigquery_client(fake) and name in _REPORTED:
        value = _REPORTED[name](value)
    if isinstance(value, BaseException) or inspect.isfunction(value):
        method.side_effect = value
    else:
        method.side_effect = None
        method.return_value = value
    return method


def _is_bigquery_client(fake: Any) -> bool:
    try:
        from google.cloud import bigquery
    except ImportError:
        return False
    return isinstance(fake, bigquery.Client)


def _then(value: Any) -> Any:
    """What a scripted value does when called: raise it, call it, or return it."""
    if isinstance(value, BaseException):
        raise value
    return value


def _reporting_query(value: Any):
    def query(query, *args, **kwargs):
        capture.sent(query, kwargs.get("job_config"))
        return value(query, *args, **kwargs) if inspect.isfunction(value) else _then(value)

    return query


def _reporting_get_table(value: Any):
    if inspect.isfunction(value):  # the fake's cloud: ask it for tables a statement names
        capture.resolver(value)

    def get_table(*args, **kwargs):
        table = value(*args, **kwargs) if inspect.isfunction(value) else _then(value)
        capture.answered(table)
        return table

    return get_table


def _reporting_load(value: Any):
    def load_table_from_file(file_obj, destination, *args, **kwargs):
        config = kwargs.get("job_config")
        if config is not None and config.schema:
            capture.loaded(str(destination), config.schema)
        return (
            value(file_obj, destination, *args, **kwargs)
            if inspect.isfunction(value)
            else (_then(value))
        )

    return load_table_from_file


def _reporting_create(value: Any):
    def create_table(table, *args, **kwargs):
        capture.answered(table)
        return value(table, *args, **kwargs) if inspect.isfunction(value) else _then(value)

    return create_table


_REPORTED = {
    "query": _reporting_query,
    "query_and_wait": _reporting_query,
    "get_table": _reporting_get_table,
    "create_table": _reporting_create,
    "load_table_from_file": _reporting_load,
}
