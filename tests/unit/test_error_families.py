"""Errors come in families, and a problem's type names its class again on the client side."""

from __future__ import annotations

import inspect

import pytest

from mlsys import errors
from mlsys.client import ApiError, problem_error

pytestmark = pytest.mark.unit

FAMILIES = (
    errors.BadInput,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.Unavailable,
    errors.ServerFault,
)
MEMBERS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.MlsysError) and cls not in (errors.MlsysError, *FAMILIES)
]


@pytest.mark.parametrize("cls", MEMBERS, ids=lambda cls: cls.__name__)
def test_every_error_is_in_exactly_one_family_that_shares_its_status_class(cls):
    families = [family for family in FAMILIES if issubclass(cls, family)]
    assert len(families) == 1
    assert cls.status // 100 == families[0].status // 100


@pytest.mark.parametrize("cls", MEMBERS, ids=lambda cls: cls.__name__)
def test_a_problem_type_comes_back_as_its_class(cls):
    slug = errors.slug_of(cls)
    remote = problem_error(cls.status, {"type": f"urn:mlsys:problem:{slug}"})

    assert issubclass(remote, cls) and issubclass(remote, ApiError)
    assert remote.__name__ == cls.__name__  # so it names the same problem type again
    assert remote("x").type_slug == slug


def test_a_problem_naming_no_class_comes_back_as_its_status_family():
    assert issubclass(problem_error(404, {"type": "about:blank"}), errors.NotFound)
    assert issubclass(problem_error(503, {}), errors.Unavailable)
    assert problem_error(401, {"type": "urn:mlsys:problem:auth-required"}) is ApiError


def test_the_families_keep_the_names_problem_types_are_made_of():
    assert errors.ModelNotFound("m").type_slug == "model-not-found"
    assert errors.ProtectedTable("t").status == 403
    assert errors.SchemaMismatch("s").status == 422
