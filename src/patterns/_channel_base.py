"""What both Channel implementations share: errors, select cases, the case check."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ChannelClosed", "Recv", "Selected", "Send"]

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


def check_cases(cases: tuple, channel_type: type) -> None:
    for i, case in enumerate(cases):
        if not isinstance(case, (Recv, Send)) or not isinstance(case.channel, channel_type):
            raise TypeError(f"case {i} must be Recv(channel) or Send(channel, value), got {case!r}")
