# Stub for WorkerPool's compiled core (patterns._pool); internal, used by pool.py.
import threading
from collections import deque
from typing import Any, Callable, Iterator, final

from ._future import Future
from .context import Context

BROKEN_BY_INITIALIZER: str

def takes_ctx(fn: Callable[..., Any]) -> bool: ...

@final
class PoolCore:
    def __new__(
        cls, workers: int, slots: Any, future_type: type[Future[Any]], ctx: Context, pass_ctx: bool, name: str,
        on_end: Callable[[], None] | None = None, initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> PoolCore: ...
    @property
    def closed(self) -> bool: ...
    @property
    def broken(self) -> str | None: ...
    @property
    def threads(self) -> list[threading.Thread]: ...
    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]: ...
    def close(
        self, cancel_queued: bool, by_cancel: bool = False
    ) -> list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]]: ...
    def work(self, index: int) -> None: ...
    def running_jobs(self) -> list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]]: ...
    def counts(self) -> tuple[int, int, int, int, int]: ...

def ordered_results(
    submit: Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Future[Any]],
    fn: Callable[..., Any],
    items: Iterator[Any],
    window: int,
    ctx: Context | None,
    pass_ctx: bool,
    wait: Callable[[Future[Any]], None],
    pool_ctx: Context | None = None,
    in_flight: deque[Future[Any]] | None = None,
) -> Iterator[Any]: ...
