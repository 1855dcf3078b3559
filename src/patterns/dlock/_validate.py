"""Argument checks of patterns.dlock: parameter-named messages, raised before any state changes."""

from __future__ import annotations

import numbers
from typing import Any, Callable

from .._validate import check_name, check_timeout

__all__ = ["check_bool", "check_callback", "check_name", "check_timeout", "check_ttl"]


def check_ttl(ttl: object, *, param: str = "ttl") -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, numbers.Real):
        raise TypeError(f"{param} must be a number of seconds, got {type(ttl).__name__}")
    if not ttl > 0:  # also refuses NaN
        raise ValueError(f"{param} must be > 0 seconds, got {ttl!r}")
    if ttl == float("inf"):
        raise ValueError(f"{param} must be finite, got {ttl!r}")
    return float(ttl)


def check_bool(value: object, param: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{param} must be a bool, got {type(value).__name__}")
    return value


def check_callback(value: object, param: str) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise TypeError(f"{param} must be callable or None, got {type(value).__name__}")
    return value  # type: ignore[return-value]
