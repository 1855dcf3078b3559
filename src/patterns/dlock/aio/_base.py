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

from .._base import RenewalSchedule
from .._errors import LockConnectionError, LockError, LockLost, LockNotAcquired, LockNotOwned, QuorumNotReached
from .._validate import check_bool, check_callback, check_name, check_timeout, check_ttl

__all__ = ["AsyncDistributedLock"]

_log = logging.getLogger("patterns.dlock")


class AsyncDistributedLock:
    """The common face of the asyncio locks; every method of the sync face is a coroutine here
    (``acquire``, ``release``, ``extend``, ``owned``, ``locked``, ``aclose``), plus ``async with``."""

    def __init__(
        self,
        name: str,
        ttl: float,
        *,
        timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[AsyncDistributedLock], object] | None = None,
    ) -> None:
        self._name = check_name(name)
        self._ttl = check_ttl(ttl)
        self._timeout = check_timeout(timeout)
        self._auto_renew = check_bool(auto_renew, "auto_renew")
        self.on_lost = check_callback(on_lost, "on_lost")
        self.lost = asyncio.Event()
        self._held = False
        self._busy = False
        self._token: int | None = None
        self._lost_reason: str | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._hold_sent: float | None = None
        self._closed = False

    name = property(lambda self: self._name, doc="The lock's name, shared by every process that locks the same thing.")
    ttl = property(lambda self: self._ttl, doc="Seconds a hold lasts without extension.")
    timeout = property(lambda self: self._timeout, doc="How long ``async with lock:`` waits.")
    auto_renew = property(lambda self: self._auto_renew, doc="Whether a background task extends the hold at ttl/3.")

    @property
    def token(self) -> int | None:
        """Fencing token of the current hold (belongs to this object, not to a task); None while
        not held and for AsyncRedlock."""
        return self._token

    def __repr__(self) -> str:
        state = "lost" if self.lost.is_set() else ("held" if self._held else "free")
        return f"<{type(self).__name__} {self._name!r} ttl={self._ttl:g} {state} token={self._token}>"

    # backend hooks (coroutines)
    async def _acquire_impl(self, blocking: bool, deadline: float | None) -> bool:
        raise NotImplementedError

    async def _release_impl(self) -> bool:
        raise NotImplementedError

    async def _extend_impl(self, ttl: float) -> bool:
        raise NotImplementedError

    async def _renew_impl(self, ttl: float, budget: float) -> bool:
        """One renewal for the renewal task, given up after ``budget`` seconds (the validity left)."""
        return await asyncio.wait_for(self._extend_impl(ttl), budget)

    async def _owned_impl(self) -> bool:
        raise NotImplementedError

    async def _locked_impl(self) -> bool:
        raise NotImplementedError

    async def _forget_impl(self) -> None:
        pass

    async def _close_impl(self) -> None:
        pass

    # the face
    async def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; True when held (see DistributedLock.acquire)."""
        check_bool(blocking, "blocking")
        timeout = check_timeout(timeout)
        if not blocking and timeout:
            raise ValueError("timeout must be None or 0 when blocking is False")
        if self._closed:
            raise LockError(f"{self._name!r}: this lock is closed (make a new lock object)")
        if self._busy:
            raise LockError(f"{self._name!r}: another acquire() on this lock object is in progress")
        if self._held and not self.lost.is_set():
            raise LockError(f"{self._name!r} is already held by this lock object (not reentrant)")
        self._busy = True
        try:
            if self._held:  # a lost hold never released: tidy up first
                await self._stop_renewer()
                await self._forget_impl()
                self._held, self._token = False, None
            deadline = None
            began = time.monotonic()
            if not blocking:
                deadline = began
            elif timeout is not None:
                deadline = began + timeout
            self._hold_sent = None
            got = await self._acquire_impl(blocking, deadline)
            if got:
                if self._hold_sent is None:
                    self._hold_sent = began
                self._held = True
                self._lost_reason = None
                self.lost.clear()
                if self._auto_renew:
                    self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())
            return got
        finally:
            self._busy = False

    async def release(self) -> None:
        """Release the hold: LockNotOwned if not held, LockLost if the server no longer had it."""
        if not self._held:
            raise LockNotOwned(f"{self._name!r} is not held by this lock object")
        await self._stop_renewer()
        try:
            ok = await self._release_impl()
        finally:
            self._held, self._token = False, None
        if not ok:
            await self._mark_lost("the server no longer had it at release (expired or taken)")
            raise LockLost(f"{self._name!r} was lost before release: {self._lost_reason}")

    async def extend(self, ttl: float | None = None) -> None:
        """Give the hold a fresh ``ttl`` (default: the lock's); LockLost if it expired or was taken."""
        new_ttl = self._ttl if ttl is None else check_ttl(ttl)
        self._check_held()
        if not await self._extend_impl(new_ttl):
            await self._mark_lost("the server no longer had it at extend (expired or taken)")
            raise LockLost(f"{self._name!r} was lost: {self._lost_reason}")

    async def owned(self) -> bool:
        """True if this object holds the lock on the server; False if not held; LockLost if lost."""
        if not self._held:
            return False
        self._check_held()
        if not await self._owned_impl():
            await self._mark_lost("the server no longer has it (expired or taken)")
            raise LockLost(f"{self._name!r} was lost: {self._lost_reason}")
        return True

    async def locked(self) -> bool:
        """True if anyone holds the lock now (a snapshot)."""
        return await self._locked_impl()

    async def aclose(self) -> None:
        """Release if held (a lost hold is forgotten quietly), stop renewing, close owned clients.
        Afterwards ``acquire()`` raises LockError: make a new lock object."""
        try:
            if self._held and self.lost.is_set():  # nothing of ours to release: drop the rest
                await self._stop_renewer()
                try:
                    await self._forget_impl()
                except LockError:
                    pass
                self._held, self._token = False, None
            elif self._held:
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
            raise LockNotAcquired(f"{self._name!r} was not acquired within {self._timeout} s")
        if self.lost.is_set():  # lost before the body could start: the body must not run
            try:
                await self.release()
            except (LockNotOwned, LockConnectionError):
                pass
            raise LockLost(f"{self._name!r} was lost as it was acquired: {self._lost_reason}")
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            await self.release()
        except (LockNotOwned, LockConnectionError) as problem:
            if exc is None:
                raise
            add = getattr(exc, "add_note", None)
            if add is not None:
                add(f"and releasing the lock failed: {type(problem).__name__}: {problem}")

    # machinery
    def _check_held(self) -> None:
        if not self._held:
            raise LockNotOwned(f"{self._name!r} is not held by this lock object")
        if self.lost.is_set():
            raise LockLost(f"{self._name!r} was lost: {self._lost_reason}")

    async def _mark_lost(self, reason: str) -> None:
        if self.lost.is_set():
            return
        self._lost_reason = reason
        self.lost.set()
        if self.on_lost is not None:
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
        while True:
            await asyncio.sleep(schedule.wait(time.monotonic()))
            sent = time.monotonic()
            budget = schedule.budget(sent)
            if budget is None:
                await self._mark_lost(schedule.expired_reason())
                return
            try:  # the call is cancelled when the validity runs out, whatever it waits on
                ok = await self._renew_impl(ttl, budget)
            except (LockConnectionError, QuorumNotReached, asyncio.TimeoutError) as exc:
                schedule.failed(exc if str(exc) else LockConnectionError(f"no answer within {budget:.3f} s"))
                if schedule.budget(time.monotonic()) is None:
                    await self._mark_lost(schedule.expired_reason())
                    return
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                await self._mark_lost(f"renewal raised {type(exc).__name__}: {exc}")
                return
            if not ok:
                await self._mark_lost("a renewal found it gone (expired or taken)")
                return
            schedule.renewed(sent)
