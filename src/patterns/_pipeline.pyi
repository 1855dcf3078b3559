# Stub for Pipeline's compiled loops (patterns._pipeline); internal, used by pipeline.py.
from typing import Any, Callable, Iterator

from .context import Context

def feed_loop(items: Iterator[Any], send: Callable[[Any, float | None, Context], None], ctx: Context) -> None: ...
def stage_loop(
    fn: Callable[[Any], Any],
    recv: Callable[[float | None, Context], Any],
    send: Callable[[Any, float | None, Context], None],
    ctx: Context,
    closed: type[BaseException],
) -> None: ...
