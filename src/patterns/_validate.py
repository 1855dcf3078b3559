"""Argument checks shared by the blocking calls of patterns: one wording everywhere."""

from __future__ import annotations

import numbers

from .context import Context


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


def check_name(name: object, param: str = "name") -> str:
    """``name`` as a non-empty str (a lock's, a limiter's, a key's), else TypeError/ValueError."""
    if not isinstance(name, str):
        raise TypeError(f"{param} must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError(f"{param} must be a non-empty str, got ''")
    return name


def check_count(name: str, value: object, *, allow_none: bool = False) -> int | None:
    """``value`` as an int >= 1 (or None if ``allow_none``), else TypeError/ValueError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        what = "a positive int or None" if allow_none else "a positive int"
        raise TypeError(f"{name} must be {what}, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_ctx(ctx: object) -> Context | None:
    """``ctx`` if it is a Context or None, else TypeError (the one wording for every ``ctx=``)."""
    if ctx is not None and not isinstance(ctx, Context):
        raise TypeError(f"ctx must be a Context or None, got {type(ctx).__name__}")
    return ctx


def check_wait(timeout: object, ctx: object) -> tuple[float | None, Context | None]:
    """Validate ``timeout``/``ctx`` before anything changes; a cancelled ctx raises at once."""
    timeout = check_timeout(timeout)
    if check_ctx(ctx) is not None:
        ctx.raise_if_done()
    return timeout, ctx
