"""What both Channel implementations share: errors, select cases, argument checks."""

from __future__ import annotations

from typing import Any, NamedTuple

from ._validate import check_timeout
from .context import Context

__all__ = ["ChannelClosed", "Recv", "Selected", "Send"]

WAITING = -1
TIMED_OUT = -2
CANCELED = -3
NO_DEFAULT = object()  # select(): no default given


class ChannelClosed(Exception):
    """Send on a closed channel, close of a closed channel, or receive from a drained closed one."""


class Recv(NamedTuple):
    """A select case: receive from ``channel``."""

    channel: Any


class Send(NamedTuple):
    """A select case: send ``value`` on ``channel``."""

    channel: Any
    value: Any


class Selected(NamedTuple):
    """Which case of a select ran: its index, and for a receive the value and ``ok``."""

    index: int
    value: Any
    ok: bool


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


def check_cases(cases: tuple, channel_type: type) -> None:
    for i, case in enumerate(cases):
        if not isinstance(case, (Recv, Send)) or not isinstance(case.channel, channel_type):
            raise TypeError(f"case {i} must be Recv(channel) or Send(channel, value), got {case!r}")
