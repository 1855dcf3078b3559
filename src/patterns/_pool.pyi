# Stub for WorkerPool's compiled core (patterns._pool); internal, used by pool.py and pipeline.py.
import threading
from typing import Any, Callable, Iterator, final

from ._future import Future
from .context import Context

def takes_ctx(fn: Callable[..., Any]) -> bool: ...

@final
class PoolCore:
    threads: list[threading.Thread]
    def __new__(
        cls, workers: int, slots: Any, future_type: type[Future], ctx: Context, pass_ctx: bool, name: str,
        on_end: Callable[[], None] | None = None,
    ) -> PoolCore: ...
    @property
    def closed(self) -> bool: ...
    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future: ...
    def close(self, cancel_queued: bool) -> list[tuple[Future, Callable[..., Any], tuple[Any, ...], dict[str, Any]]]: ...
    def work(self, index: int) -> None: ...
    def running_jobs(self) -> list[tuple[Future, Callable[..., Any], tuple[Any, ...], dict[str, Any]]]: ...
    def counts(self) -> tuple[int, int, int, int, int]: ...

def ordered_results(
    submit: Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Future],
    fn: Callable[..., Any],
    items: Iterator[Any],
    window: int,
    ctx: Context | None,
    pass_ctx: bool,
    wait: Callable[[Future], None],
) -> Iterator[Any]: ...
def stage_loop(
    fn: Callable[[Any], Any],
    recv: Callable[[float | None, Context], Any],
    send: Callable[[Any, float | None, Context], None],
    ctx: Context,
    closed: type[BaseException],
) -> None: ...
def feed_loop(items: Iterator[Any], send: Callable[[Any, float | None, Context], None], ctx: Context) -> None: ...
