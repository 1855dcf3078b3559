"""The async face shared by the asyncio locks: the twin of patterns.dlock._base for one event loop.

Ownership belongs to the lock object, not to a task: one task may acquire and another release.
``lost`` is an ``asyncio.Event``; ``on_lost(lock)`` may be a plain function or a coroutine
function.  ``auto_renew`` runs an asyncio task (cancelled and awaited by ``release()``/``aclose()``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any, Callable

from .._errors import LockConnectionError, LockError, LockNotOwned
from .._hold import GONE_AT_EXTEND, GONE_AT_OWNED, GONE_AT_RELEASE, RETRYABLE, Hold, RenewalSchedule
from .._hold import add_note, deadline_of, renewal_crashed
from .._validate import check_ttl

__all__ = ["AsyncDistributedLock"]

_log = logging.getLogger("patterns.dlock")


class AsyncDistributedLock(Hold):
    """The common face of the asyncio locks; every method of the sync face is a coroutine here
    (``acquire``, ``release``, ``extend``, ``owned``, ``locked``, ``aclose``), plus ``async with``."""

    # the shared properties, bound here too so that the class documents them as its own
    name, ttl, timeout, auto_renew, token = Hold.name, Hold.ttl, Hold.timeout, Hold.auto_renew, Hold.token

    def __init__(self, name: str, ttl: float, *, timeout: float | None = None, auto_renew: bool = False,
                 on_lost: Callable[[AsyncDistributedLock], object] | None = None) -> None:
        super().__init__(name, ttl, timeout=timeout, auto_renew=auto_renew, on_lost=on_lost)
        self.lost = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    # backend hooks (coroutines)
    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        raise NotImplementedError

    async def _release_impl(self) -> bool:
        raise NotImplementedError

    async def _extend_impl(self, ttl: float) -> bool:
        raise NotImplementedError

    async def _renew_impl(self, ttl: float, budget: float) -> bool:
        """One renewal for the renewal task, given up after ``budget`` seconds (the validity
        left): a call that cannot answer in time raises LockConnectionError, as in the sync face."""
        try:
            return await asyncio.wait_for(self._extend_impl(ttl), budget)
        except asyncio.TimeoutError as exc:
            if str(exc):
                raise LockConnectionError(str(exc)) from exc
            raise LockConnectionError(f"no answer within {budget:.3f} s") from exc

    async def _owned_impl(self) -> bool:
        raise NotImplementedError

    async def _locked_impl(self) -> bool:
        raise NotImplementedError

    async def _forget_impl(self) -> None:
        pass

    async def _after_acquire(self) -> None:
        """Called once the hold counts as held, for a last check that may mark it lost."""

    async def _close_impl(self) -> None:
        pass

    # the face
    async def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; True when held (see DistributedLock.acquire)."""
        timeout = self._acquire_args(blocking, timeout)
        stale = self._begin_acquire()
        try:
            if stale:  # a lost hold never released: tidy up first
                await self._stop_renewer()
                await self._forget_impl()
                self._let_go()
            began = time.monotonic()
            self._hold_sent = None
            if await self._acquire_impl(blocking, deadline_of(blocking, timeout, began)):
                self._took_hold(began)
                if self._auto_renew:
                    self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())
                await self._after_acquire()
                return True
            return False
        finally:
            self._busy = False

    async def release(self) -> None:
        """Release the hold: LockNotOwned if not held, LockLost if the server no longer had it."""
        if not self._held:
            raise self._not_owned()
        await self._stop_renewer()
        try:
            ok = await self._release_impl()
        finally:
            self._let_go()
        if not ok:
            await self._mark_lost(GONE_AT_RELEASE)
            raise self._lost_error("before release")

    async def extend(self, ttl: float | None = None) -> None:
        """Give the hold a fresh ``ttl`` (default: the lock's); LockLost if it expired or was taken."""
        new_ttl = self._ttl if ttl is None else check_ttl(ttl)
        self._check_held()
        if not await self._extend_impl(new_ttl):
            await self._mark_lost(GONE_AT_EXTEND)
            raise self._lost_error()

    async def owned(self) -> bool:
        """True if this object holds the lock on the server; False if not held; LockLost if lost."""
        if not self._held:
            return False
        self._check_held()
        if await self._owned_impl():
            return True
        await self._mark_lost(GONE_AT_OWNED)
        raise self._lost_error()

    async def locked(self) -> bool:
        """True if anyone holds the lock now (a snapshot)."""
        return await self._locked_impl()

    async def aclose(self) -> None:
        """Release if held (a lost hold is forgotten quietly), stop renewing, close owned clients.
        Afterwards ``acquire()`` raises LockError: make a new lock object."""
        try:
            if not self._held:
                pass
            elif self.lost.is_set():  # nothing of ours to release: drop the rest
                await self._stop_renewer()
                try:
                    await self._forget_impl()
                except LockError:
                    pass
                self._let_go()
            else:
                try:
                    await self.release()
                except LockNotOwned:
                    pass
        finally:
            self._closed = True
            await self._stop_renewer()
            await self._close_impl()

    async def __aenter__(self) -> AsyncDistributedLock:
        if not await self.acquire(timeout=self._timeout):
            raise self._not_acquired()
        if not self.lost.is_set():
            return self
        try:  # lost before the body could start: the body must not run
            await self.release()
        except (LockNotOwned, LockConnectionError):
            pass
        raise self._lost_error("as it was acquired")

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            await self.release()
        except (LockNotOwned, LockConnectionError) as problem:
            if exc is None:
                raise
            add_note(exc, f"and releasing the lock failed: {type(problem).__name__}: {problem}")

    # machinery
    async def _mark_lost(self, reason: str) -> None:
        if not self._note_lost(reason) or self.on_lost is None:
            return
        try:
            result = self.on_lost(self)
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001
            _log.exception("on_lost callback of %r raised", self)

    async def _stop_renewer(self) -> None:
        task, self._renewer = self._renewer, None
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def _renew_loop(self) -> None:
        ttl = self._ttl
        schedule = RenewalSchedule(ttl, self._hold_sent or time.monotonic())
        lost: str | None = None
        while lost is None:
            await asyncio.sleep(schedule.wait(time.monotonic()))
            sent = time.monotonic()
            budget = schedule.budget(sent)
            if budget is None:
                lost = schedule.expired_reason()
                continue
            try:  # the call is cancelled when the validity runs out, whatever it waits on
                lost = schedule.answered(sent, await self._renew_impl(ttl, budget))
            except RETRYABLE as exc:
                lost = schedule.failed(exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                lost = renewal_crashed(exc)
        await self._mark_lost(lost)
