"""Small typed helpers for test bodies."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def one(value: T | None) -> T:
    """``value``, which the test expects to be there: fails the test (not a type check) when None."""
    assert value is not None, "expected a value, got None"
    return value
