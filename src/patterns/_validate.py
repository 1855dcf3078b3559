"""Argument checks shared by the blocking calls of patterns: one wording everywhere."""

from __future__ import annotations

import numbers


def check_timeout(timeout: object, *, positive: bool = False) -> float | None:
    """``timeout`` as float seconds (or None), else TypeError/ValueError, before anything happens.

    ``positive``: zero is refused too (where "no time at all" cannot be meant).  NaN is refused.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    if positive:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 or None, got {timeout!r}")
    elif not timeout >= 0:  # also refuses NaN
        raise ValueError(f"timeout must be >= 0 or None, got {timeout!r}")
    return float(timeout)
