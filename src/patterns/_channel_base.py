"""What both Channel implementations share: errors, select cases, the case check."""

from __future__ import annotations

import struct
import sys
from typing import Any, NamedTuple

__all__ = ["ChannelClosed", "Recv", "Selected", "Send"]

NO_DEFAULT = object()  # select(): no default given

#: The largest buffer a channel can address: one pointer per slot, as a Python list holds them.
MAX_CAPACITY = sys.maxsize // struct.calcsize("P")


def check_capacity(capacity: object) -> int:
    """``capacity`` as a buffer size (TypeError/ValueError naming it and the limit)."""
    if not isinstance(capacity, int) or isinstance(capacity, bool):
        raise TypeError(f"capacity must be an int, got {type(capacity).__name__}")
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    if capacity > MAX_CAPACITY:
        raise ValueError(f"capacity must be <= {MAX_CAPACITY} (the most slots a buffer can address), got {capacity}")
    return capacity


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
