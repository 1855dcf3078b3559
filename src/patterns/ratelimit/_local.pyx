# cython: language_level=3, freethreading_compatible=True, binding=False, embedsignature=True
"""In-process rate limiters, compiled: TokenBucket (lock-free); SlidingWindowLog,
SlidingWindowCounter and FixedWindow (one short PyMutex section per limiter, no Python inside).

Times are float seconds from ``clock`` (default: the C monotonic clock ``time.monotonic``
reads); ``sleep`` (default: real sleeps) is what ``wait`` sleeps with.  A clock that goes
backwards is treated as standing still: nothing is minted or charged for the step.  A
TokenBucket then refills from the new reading on (Go's rule); a window limiter stands still
until the clock passes the latest reading it saw again.

TokenBucket is Go's ``x/time/rate.Limiter`` as GCRA: the state is one "theoretical arrival
time" ``tat`` (a float64 bit-cast into one int64 atomic, relative to the limiter's creation so
it keeps full precision).  ``tokens = burst - max(tat - now, 0) * rate``; taking ``n`` is
``tat = max(tat, now) + n / rate``, allowed while ``tat - now <= burst / rate``.  One
compare-and-swap decides; nothing else is written on the hot path.
"""

cimport cython
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.float cimport DBL_MAX
from libc.math cimport INFINITY, ceil, floor, isfinite, isnan
from libc.stdint cimport int64_t, uint64_t

from ftsync_atomic cimport (
    ftsync_atomic_i64,
    ftsync_i64_load,
    ftsync_i64_store,
    ftsync_i64_fetch_add,
    ftsync_i64_compare_exchange,
)

import numbers
import time as _time
from datetime import timedelta as _timedelta

from .._validate import check_wait
from .._waiting import sleep as _real_sleep
from ._protocol import wait_budget as _wait_budget  # one home for the Redis twins and these


cdef extern from *:
    """
    #include <string.h>
    #if defined(_WIN32)
    #include <windows.h>
    static double ftsync_rl_monotonic(void) {
        LARGE_INTEGER freq, count;
        QueryPerformanceFrequency(&freq);
        QueryPerformanceCounter(&count);
        return (double)count.QuadPart / (double)freq.QuadPart;
    }
    #else
    #include <time.h>
    static double ftsync_rl_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    #endif
    static inline double ftsync_rl_i2d(int64_t v) { double d; memcpy(&d, &v, sizeof d); return d; }
    static inline int64_t ftsync_rl_d2i(double d) { int64_t v; memcpy(&v, &d, sizeof v); return v; }
    """
    double ftsync_rl_monotonic() nogil
    double ftsync_rl_i2d(int64_t v) nogil
    int64_t ftsync_rl_d2i(double d) nogil


#: The rate of an unlimited TokenBucket (Go's ``rate.Inf``).
INF = float("inf")

# While set_rate/set_burst convert the state, ``_tat`` holds this NaN pattern (no arithmetic
# ever produces it); a decision that sees it waits on the limiter's mutex and retries.
cdef int64_t BUSY = <int64_t>0x7FF8DEAD00000001
# Float tolerance of a decision, in tokens: rounding never refuses an exactly-due token.
cdef double EPS_TOKENS = 1e-9
cdef int64_t MAX_COUNT = (<int64_t>1) << 53  # n, burst, limit: exact as a float64
cdef int64_t MAX_LOG = 10_000_000  # SlidingWindowLog keeps limit timestamps (8 bytes each)


cdef str _type_name(object value):
    return type(value).__name__


cdef int64_t _int_arg(object value, str name, int64_t upper) except -1:
    """``value`` as an int in [0, upper], else TypeError/ValueError naming ``name``."""
    if type(value) is not int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {_type_name(value)}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if value > upper:
        raise ValueError(f"{name} must be <= {upper}, got {value}")
    return value


cdef inline int64_t _count(object n) except -1:
    """``n`` as a count >= 0; anything above 2**53 becomes 2**53 (more than any burst/limit)."""
    cdef int overflow = 0
    cdef long long v
    if type(n) is int:  # the hot path: one C conversion, no Python comparisons
        v = PyLong_AsLongLongAndOverflow(n, &overflow)
        if overflow == 0 and 0 <= v <= MAX_COUNT:
            return v
    elif not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"n must be an int, got {_type_name(n)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return MAX_COUNT if n > MAX_COUNT else n


cdef double _rate_arg(object rate) except? -1.0:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"rate must be a number of tokens per second, got {_type_name(rate)}")
    cdef double r = float(rate)
    if isnan(r) or r < 0:
        raise ValueError(f"rate must be >= 0 (or INF), got {rate!r}")
    return r


cdef double _window_arg(object window) except? -1.0:
    if isinstance(window, bool) or not isinstance(window, numbers.Real):
        raise TypeError(f"window must be a number of seconds, got {_type_name(window)}")
    cdef double w = float(window)
    if not (w > 0 and isfinite(w)):
        raise ValueError(f"window must be a finite number of seconds > 0, got {window!r}")
    return w


cdef object _clock_arg(object clock):
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be a zero-argument callable or None, got {_type_name(clock)}")
    if clock is _time.monotonic:
        return None  # the same clock, read without a Python call
    return clock


cdef inline double _read_clock(object clock) except? -1.0:
    if clock is None:
        return ftsync_rl_monotonic()
    cdef object t = clock()
    if type(t) is float:
        return <double>t
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise TypeError(f"clock() must return a number of seconds, got {_type_name(t)}")
    return float(t)


cdef object _sleep_arg(object sleep):
    if sleep is not None and not callable(sleep):
        raise TypeError(f"sleep must be a callable taking seconds, or None, got {_type_name(sleep)}")
    return sleep


cdef int _pause(double delay, object ctx, object clock, object sleep) except -1:
    """Wait ``delay`` seconds; 1 if ``ctx`` ended first, else 0.

    Without an injected ``sleep``: real time (patterns._waiting.sleep: any length, Ctrl-C
    lands).  With one: ``sleep(left)`` until ``clock`` has moved ``delay`` on (so a test clock
    drives the wait), ``ctx`` checked between sleeps.
    """
    cdef double end, left
    if delay <= 0:
        return 0
    if sleep is None:
        return 1 if _real_sleep(delay, ctx) else 0
    end = _read_clock(clock) + delay
    while True:
        if ctx is not None and ctx.err() is not None:
            return 1
        left = end - _read_clock(clock)
        if left <= 0:
            return 0
        sleep(left)


def every(interval):
    """The rate of one token per ``interval`` seconds (Go's ``rate.Every``): ``1 / interval``.

    ``interval`` is a number of seconds or a ``datetime.timedelta``; 0 or less gives ``INF``.
    """
    if isinstance(interval, _timedelta):
        interval = interval.total_seconds()
    if isinstance(interval, bool) or not isinstance(interval, numbers.Real):
        raise TypeError(f"interval must be a number of seconds or a timedelta, got {_type_name(interval)}")
    cdef double i = float(interval)
    if isnan(i):
        raise ValueError(f"interval must be a number of seconds, got {interval!r}")
    if i <= 0:
        return INFINITY
    return 1.0 / i


# ==============================================================================================
# TokenBucket
# ==============================================================================================


cdef inline int _decide(double n, double now, double max_wait, double rate, double burst,
                        double tat, double *new, double *act, double *base) noexcept nogil:
    """GCRA: take ``n`` (<= burst) at ``now`` with a finite rate; 1 and the new state if granted
    within ``max_wait`` seconds (rate 0: only ``max_wait == INFINITY`` grants on credit, with an
    infinite delay, as Go's ``reserveN``)."""
    cdef double due
    if rate == 0:  # no refill: tat counts the tokens used
        base[0] = tat
        new[0] = tat + n
        act[0] = now
        if new[0] > burst + EPS_TOKENS:
            if max_wait != INFINITY:
                return 0
            act[0] = INFINITY
        return 1
    base[0] = tat if tat > now else now
    new[0] = base[0] + n / rate
    act[0] = new[0] - burst / rate
    due = act[0] - now
    if due > 0 and due > max_wait and (due - max_wait) * rate > EPS_TOKENS * (burst + 1):
        return 0
    return 1


@cython.final
@cython.auto_pickle(False)
cdef class Reservation:
    """Tokens taken from a TokenBucket now, to be used ``delay()`` seconds from now (Go's
    ``rate.Reservation``).  ``ok`` is False when the request can never be granted (``n`` above
    the burst); such a reservation took nothing.  ``cancel()`` gives back what it can.
    """

    cdef readonly bint ok
    cdef TokenBucket _bucket
    cdef double _n
    cdef double _rate     # the bucket's rate when reserved (Go's Reservation.limit)
    cdef double _now      # the decision's time, on the bucket's timeline
    cdef double _act      # the time to act, on the bucket's timeline
    cdef double _act_raw  # ... and as the clock read it then (relative to the epoch)
    cdef double _tat      # the bucket's tat right after this reservation
    cdef double _prev     # ... and right before it (what cancel restores if nothing came after)
    cdef int64_t _gen
    cdef ftsync_atomic_i64 _done  # 1 once cancelled

    @property
    def tokens(self):
        """How many tokens this reservation holds."""
        return int(self._n) if self.ok else 0

    @property
    def time_to_act(self):
        """The clock reading at which the tokens may be used (``-inf`` when ``not ok``,
        ``inf`` when they never will: rate 0 and the bucket empty)."""
        if not self.ok:
            return -INFINITY
        return self._act_raw + self._bucket._epoch

    def delay(self):
        """Seconds to wait before acting: 0 if now, ``inf`` if never (not ok; rate 0)."""
        if not self.ok:
            return INFINITY
        cdef double d = self._act_raw - self._bucket._rel()
        return d if d > 0 else 0.0

    def cancel(self):
        """Give the tokens back, as if never reserved, so far as later reservations allow.

        Go's rule: once the time to act has passed nothing comes back; otherwise the tokens
        not already claimed by reservations made after this one are returned (counted at the
        rate this reservation was made under, also after ``set_rate``/``set_burst``).
        Idempotent.
        """
        cdef int64_t zero = 0
        if not self.ok or self._n == 0:
            return
        if not ftsync_i64_compare_exchange(&self._done, &zero, 1):
            return
        self._bucket._cancel(self)

    def __repr__(self):
        if not self.ok:
            return "<Reservation not ok>"
        return f"<Reservation {self.tokens} tokens, delay {self.delay():.6f} s>"


@cython.final
@cython.auto_pickle(False)
cdef class TokenBucket:
    """A token bucket of ``burst`` tokens refilled at ``rate`` per second; starts full.

    Go's ``x/time/rate.Limiter`` semantics, lock-free: ``allow``/``reserve``/``wait`` decide
    with one compare-and-swap on one atomic word.  ``rate`` may be ``INF`` (everything is
    allowed, burst ignored) or 0 (the burst is all there ever is); ``every(interval)`` turns
    an interval into a rate.  ``clock`` is a zero-argument callable returning monotonic
    seconds (default ``time.monotonic``); ``sleep`` (a callable taking seconds) is what
    ``wait`` sleeps with: pass a test clock's pair and the test drives ``wait`` too.

    A clock that steps back (an injected one; ``time.monotonic`` never does) is time standing
    still: a decision at the earlier reading sees the tokens of the latest one, and refill
    goes on from the new reading (Go's rule).  Internally that is a running "skew" added to
    the clock, changed only by a decision taken at an earlier reading than the last one.
    """

    cdef ftsync_atomic_i64 _tat    # float64 bits: theoretical arrival time (rate 0: tokens used)
    cdef ftsync_atomic_i64 _rate   # float64 bits
    cdef ftsync_atomic_i64 _burst  # float64 bits, integral
    cdef ftsync_atomic_i64 _gen    # bumped by set_rate/set_burst
    cdef ftsync_atomic_i64 _skew   # float64 bits: the backward clock steps so far, summed
    cdef ftsync_atomic_i64 _last   # float64 bits: the clock reading of the last state change
    cdef double _epoch
    cdef double _event             # lock held: latest time to act when parameters last changed
    cdef bint _steps               # an injected clock: watch for backward steps
    cdef object _clock
    cdef object _sleep
    cdef cython.pymutex _lock      # serialises the slow paths: set_*, cancel, a backward step
    cdef object __weakref__

    def __init__(self, rate, burst, *, clock=None, sleep=None):
        cdef double r = _rate_arg(rate)
        cdef int64_t b = _int_arg(burst, "burst", MAX_COUNT)
        self._clock = _clock_arg(clock)
        self._sleep = _sleep_arg(sleep)
        self._steps = self._clock is not None
        self._epoch = _read_clock(self._clock)
        self._event = -INFINITY
        ftsync_i64_store(&self._rate, ftsync_rl_d2i(r))
        ftsync_i64_store(&self._burst, ftsync_rl_d2i(<double>b))
        ftsync_i64_store(&self._tat, ftsync_rl_d2i(0.0 if r == 0 else -INFINITY))
        ftsync_i64_store(&self._gen, 0)
        ftsync_i64_store(&self._skew, ftsync_rl_d2i(0.0))
        ftsync_i64_store(&self._last, ftsync_rl_d2i(0.0))

    cdef inline double _rel(self) except? -1.0:
        """The clock reading, relative to the epoch."""
        return _read_clock(self._clock) - self._epoch

    cdef inline double _timeline(self, double rel) noexcept:
        """Where reading ``rel`` falls on the bucket's timeline, changing nothing: a reading
        before the last state change's is that change's time (no time passes backwards)."""
        cdef double last
        if not self._steps:
            return rel
        last = ftsync_rl_i2d(ftsync_i64_load(&self._last))
        if rel < last:
            rel = last
        return rel + ftsync_rl_i2d(ftsync_i64_load(&self._skew))

    cdef inline double _step(self, double rel) noexcept:
        """A state change at reading ``rel`` (lock held, word BUSY): record it, absorbing a
        backward step into the skew; returns its time on the timeline."""
        cdef double last, skew
        if not self._steps:
            return rel
        last = ftsync_rl_i2d(ftsync_i64_load(&self._last))
        skew = ftsync_rl_i2d(ftsync_i64_load(&self._skew))
        if rel < last:
            skew += last - rel
            ftsync_i64_store(&self._skew, ftsync_rl_d2i(skew))
        if rel != last:
            ftsync_i64_store(&self._last, ftsync_rl_d2i(rel))
        return rel + skew

    cdef inline int64_t _load_tat(self):
        """The state word, waiting out a slow path in progress."""
        cdef int64_t cur = ftsync_i64_load(&self._tat)
        while cur == BUSY:
            with self._lock:  # the slow path holds it while the word is BUSY
                pass
            cur = ftsync_i64_load(&self._tat)
        return cur

    cdef inline int64_t _busy(self) noexcept:
        """Mark the word BUSY (lock held) and return what it held."""
        cdef int64_t cur = ftsync_i64_load(&self._tat)
        while not ftsync_i64_compare_exchange(&self._tat, &cur, BUSY):
            pass
        return cur

    # -- the decision ---------------------------------------------------------------------------

    cdef int _take(self, double n, double max_wait, Reservation res) except -1:
        """Take ``n`` tokens if available within ``max_wait`` seconds; reads the clock.

        1 if taken (``res``, when given, records where), 0 if refused: then nothing changed.
        """
        cdef int64_t cur
        cdef double rel, now, skew = 0.0, last = 0.0
        cdef double rate, burst, new, act, base
        if self._steps:
            skew = ftsync_rl_i2d(ftsync_i64_load(&self._skew))
            rel = self._rel()
            last = ftsync_rl_i2d(ftsync_i64_load(&self._last))
            if rel < last:
                return self._take_back(n, rel, max_wait, res)
            now = rel + skew
        else:
            rel = now = self._rel()
        while True:
            cur = self._load_tat()
            rate = ftsync_rl_i2d(ftsync_i64_load(&self._rate))
            if rate == INFINITY:
                if res is not None:
                    self._record(res, now, now, skew, now, now, rate, -1)
                return 1
            burst = ftsync_rl_i2d(ftsync_i64_load(&self._burst))
            if n > burst:
                return 0
            if not _decide(n, now, max_wait, rate, burst, ftsync_rl_i2d(cur), &new, &act, &base):
                return 0
            if ftsync_i64_compare_exchange(&self._tat, &cur, ftsync_rl_d2i(new)):
                if self._steps and rel != last:  # Go: the state's time is this reading
                    ftsync_i64_store(&self._last, ftsync_rl_d2i(rel))
                if res is not None:
                    self._record(res, now, act, skew, new, base, rate, ftsync_i64_load(&self._gen))
                return 1

    cdef int _take_back(self, double n, double rel, double max_wait, Reservation res) except -1:
        """``_take`` at a reading before the last state change's: under the lock, the word
        BUSY, so the skew, the last reading and the state change together."""
        cdef int64_t cur
        cdef int ok = 0
        cdef double rate, burst, last, skew, now, tat, new, act, base, decided
        with self._lock:
            cur = self._busy()
            tat = new = ftsync_rl_i2d(cur)
            rate = ftsync_rl_i2d(ftsync_i64_load(&self._rate))
            burst = ftsync_rl_i2d(ftsync_i64_load(&self._burst))
            last = ftsync_rl_i2d(ftsync_i64_load(&self._last))
            skew = ftsync_rl_i2d(ftsync_i64_load(&self._skew))
            now = (last if rel < last else rel) + skew
            if rate == INFINITY:
                ok = 1
                act = base = now
            elif n <= burst and _decide(n, now, max_wait, rate, burst, tat, &decided, &act, &base):
                ok = 1
                new = decided
                now = self._step(rel)  # the same time: the skew absorbs the step
                skew = now - rel
            ftsync_i64_store(&self._tat, ftsync_rl_d2i(new))
        if ok and res is not None:
            self._record(res, now, act, skew, new, base, rate,
                         -1 if rate == INFINITY else ftsync_i64_load(&self._gen))
        return ok

    cdef inline void _record(self, Reservation res, double now, double act, double skew,
                             double new, double base, double rate, int64_t gen) noexcept:
        if act < now:
            act = now
        res._now = now
        res._act = act
        res._act_raw = act - skew
        res._tat = new
        res._prev = base
        res._rate = rate
        res._gen = gen

    cdef int _cancel(self, Reservation res) except -1:
        cdef double rel = self._rel()
        cdef int64_t cur
        cdef double rate, burst, tat, new, restore, later, event
        if res._gen < 0 or res._act_raw + 1e-9 < rel:  # nothing held, or acted already (Go)
            return 0
        with self._lock:
            cur = self._busy()
            tat = new = ftsync_rl_i2d(cur)
            rate = ftsync_rl_i2d(ftsync_i64_load(&self._rate))
            burst = ftsync_rl_i2d(ftsync_i64_load(&self._burst))
            restore = 0.0
            if rate == INFINITY:
                pass  # nothing to give back to an unlimited bucket
            elif ftsync_i64_load(&self._gen) == res._gen and tat == res._tat:
                # nothing reserved since: restore the state from before, exactly.  (Go's
                # formula computes 2*tat - mine - n/rate, doubling any rounding error at
                # every link of a chain of cancels.)
                new = res._prev
            else:
                if ftsync_i64_load(&self._gen) == res._gen:
                    # the tokens reserved after this one: (tat - res._tat) * rate
                    later = (tat - res._tat) * (1.0 if rate == 0 else rate)
                elif res._rate == 0:
                    later = 0.0  # Go: a zero rate counts no tokens in any duration
                else:
                    # parameters changed since: Go's rule, at this reservation's own rate,
                    # from the latest time to act ("lastEvent") to this one's
                    event = self._event
                    if rate > 0:
                        if tat - burst / rate > event:
                            event = tat - burst / rate
                    elif tat > burst + EPS_TOKENS:
                        event = INFINITY
                    later = (event - res._act) * res._rate
                restore = res._n - later
                if restore > res._n:
                    restore = res._n
                if restore > 0:
                    if rate == 0:
                        new = tat - restore
                        if new < 0:
                            new = 0.0
                    else:
                        new = tat - restore / rate
            if new != tat:
                self._step(rel)
            ftsync_i64_store(&self._tat, ftsync_rl_d2i(new))
        return 0

    # -- the API --------------------------------------------------------------------------------

    def allow(self, n=1):
        """Take ``n`` tokens if available now; True if taken (``allow(0)`` is always True).

        A refusal changes nothing.
        """
        cdef int64_t k = _count(n)
        if k == 0:
            return True
        return self._take(<double>k, 0.0, None) == 1

    def reserve(self, n=1):
        """Take ``n`` tokens now, possibly on credit: the Reservation says how long to wait.

        Not ok (and nothing taken) only when ``n`` exceeds the burst (and the rate is finite).
        With rate 0 and too few tokens left it is ok with an infinite delay (current Go):
        ``cancel()`` gives the tokens back.
        """
        cdef int64_t k = _count(n)
        cdef Reservation res = Reservation.__new__(Reservation)
        cdef double rel
        res._bucket = self
        res._n = <double>k
        if k == 0:
            rel = self._rel()
            res.ok = True
            self._record(res, rel, rel, 0.0, rel, rel, 0.0, -1)
            return res
        res.ok = self._take(<double>k, INFINITY, res) == 1
        return res

    def wait(self, n=1, timeout=None, ctx=None):
        """Block until ``n`` tokens are granted; returns True.

        Fails at once, taking nothing, when ``n`` exceeds the burst (ValueError), when the
        needed delay is longer than ``timeout`` or than ``ctx``'s deadline allows
        (TimeoutError; with rate 0, whenever the tokens left are too few), or when ``ctx`` is
        already done (``ctx.err()``).  With rate 0, too few tokens and neither a timeout nor a
        deadline, the wait could never end: ValueError.  If ``ctx`` ends during the wait the
        tokens are given back (``Reservation.cancel``) and ``ctx.err()`` is raised.  Sleeps
        with ``sleep`` when the bucket has one (else real time, in short slices, so any delay
        works, however long).
        """
        cdef int64_t k
        cdef double budget, rate, burst
        cdef Reservation res
        timeout, ctx = check_wait(timeout, ctx)
        k = _count(n)
        if k == 0:
            return True
        rate = ftsync_rl_i2d(ftsync_i64_load(&self._rate))
        burst = ftsync_rl_i2d(ftsync_i64_load(&self._burst))
        if rate != INFINITY and k > burst:
            raise ValueError(f"n must be <= burst ({int(burst)}) to ever be granted, got {n}")
        budget = _wait_budget(timeout, ctx)
        res = Reservation.__new__(Reservation)
        res._bucket = self
        res._n = <double>k
        # an infinite budget still refuses an infinite delay (rate 0): DBL_MAX, not INFINITY
        if not self._take(<double>k, budget if budget != INFINITY else DBL_MAX, res):
            if budget == INFINITY:
                raise ValueError(
                    f"wait({n}) could never end: the rate is 0 and fewer than {n} tokens are "
                    "left (give a timeout to get TimeoutError)"
                )
            raise TimeoutError(
                f"wait({n}) would need longer than the timeout or the context's deadline allows"
            )
        res.ok = True
        try:
            if _pause(res._act - res._now, ctx, self._clock, self._sleep):
                res.cancel()
                ctx.raise_if_done()
        except BaseException:
            res.cancel()
            raise
        return True

    def retry_after(self, n=1):
        """Seconds until ``allow(n)`` could succeed (0: now; ``inf``: never, n above the burst
        or the rate 0).  A snapshot: other callers may take the tokens first."""
        cdef int64_t k = _count(n)
        cdef double now = self._timeline(self._rel())
        cdef double rate = ftsync_rl_i2d(ftsync_i64_load(&self._rate))
        cdef double burst = ftsync_rl_i2d(ftsync_i64_load(&self._burst))
        cdef double tat = ftsync_rl_i2d(self._load_tat())
        cdef double due
        if k == 0 or rate == INFINITY:
            return 0.0
        if k > burst:
            return INFINITY
        if rate == 0:
            return 0.0 if tat + k <= burst + EPS_TOKENS else INFINITY
        due = (tat if tat > now else now) + k / rate - burst / rate - now
        return due if due * rate > EPS_TOKENS * (burst + 1) else 0.0

    def tokens(self):
        """Tokens available now (a float; negative while reservations are on credit)."""
        cdef double now = self._timeline(self._rel())
        cdef double rate = ftsync_rl_i2d(ftsync_i64_load(&self._rate))
        cdef double burst = ftsync_rl_i2d(ftsync_i64_load(&self._burst))
        cdef double tat = ftsync_rl_i2d(self._load_tat())
        if rate == INFINITY:
            return INFINITY
        if rate == 0:
            return burst - tat
        if tat <= now:
            return burst
        return burst - (tat - now) * rate

    @property
    def rate(self):
        """Tokens added per second (``INF``: unlimited)."""
        return ftsync_rl_i2d(ftsync_i64_load(&self._rate))

    @property
    def burst(self):
        """The bucket's capacity."""
        return int(ftsync_rl_i2d(ftsync_i64_load(&self._burst)))

    def set_rate(self, rate):
        """Change the rate from now on, keeping the tokens there are now (Go's ``SetLimit``).

        Decisions made concurrently use the old or the new rate; outstanding reservations
        can still be cancelled (counted at the rate they were made under, as Go).  Going from
        ``INF`` to a finite rate starts full.
        """
        cdef double r = _rate_arg(rate)
        with self._lock:
            self._convert(r, ftsync_rl_i2d(ftsync_i64_load(&self._burst)))

    def set_burst(self, burst):
        """Change the capacity; tokens above the new burst are dropped (Go's ``SetBurst``)."""
        cdef int64_t b = _int_arg(burst, "burst", MAX_COUNT)
        with self._lock:
            self._convert(ftsync_rl_i2d(ftsync_i64_load(&self._rate)), <double>b)

    cdef int _convert(self, double new_rate, double new_burst) except -1:
        """Re-express the state for new parameters, keeping the token count (lock held)."""
        cdef double rel = self._rel()  # the only Python call: made before the word is BUSY
        cdef int64_t cur = self._busy()
        cdef double now = self._step(rel)
        cdef double rate = ftsync_rl_i2d(ftsync_i64_load(&self._rate))
        cdef double burst = ftsync_rl_i2d(ftsync_i64_load(&self._burst))
        cdef double tat = ftsync_rl_i2d(cur)
        cdef double tokens
        if rate == INFINITY:
            tokens = new_burst
        elif rate == 0:
            tokens = burst - tat
            if tat > burst + EPS_TOKENS:
                self._event = INFINITY  # reservations on credit at rate 0 act never
        else:
            tokens = burst if tat <= now else burst - (tat - now) * rate
            if tat - burst / rate > self._event:
                self._event = tat - burst / rate  # the latest time to act so far (Go's lastEvent)
        if tokens > new_burst:
            tokens = new_burst
        if new_rate == 0:
            tat = new_burst - tokens
        elif new_rate == INFINITY:
            tat = -INFINITY
        else:
            tat = now + (new_burst - tokens) / new_rate
        ftsync_i64_fetch_add(&self._gen, 1)
        ftsync_i64_store(&self._rate, ftsync_rl_d2i(new_rate))
        ftsync_i64_store(&self._burst, ftsync_rl_d2i(new_burst))
        ftsync_i64_store(&self._tat, ftsync_rl_d2i(tat))
        return 0

    def __repr__(self):
        return f"<TokenBucket rate={self.rate!r}/s burst={self.burst} tokens={self.tokens():.3f}>"


# ==============================================================================================
# Window limiters: SlidingWindowLog, SlidingWindowCounter, FixedWindow
# ==============================================================================================


@cython.auto_pickle(False)
cdef class _Window:
    """What the window limiters share: ``limit`` per ``window`` seconds, the clock, the calls.

    Their state is several words that change together (a ring of timestamps; two counts and a
    window index), so each decision runs under the limiter's own ``PyMutex``: a few
    arithmetic operations, no Python code, no allocation.  The clock is read before the lock.
    """

    cdef int64_t _limit
    cdef double _window
    cdef object _clock
    cdef object _sleep
    cdef double _last  # the latest clock reading seen: time never runs backwards here
    cdef cython.pymutex _lock
    cdef object __weakref__

    def __cinit__(self):
        self._window = 1.0  # until __init__ runs: no division by a zero window, limit 0 admits nothing

    cdef int _setup(self, object limit, object window, object clock, object sleep) except -1:
        self._limit = _int_arg(limit, "limit", MAX_COUNT)
        self._window = _window_arg(window)
        self._clock = _clock_arg(clock)
        self._sleep = _sleep_arg(sleep)
        self._last = -INFINITY
        return 0

    cdef inline double _now(self) except? -1.0:
        return _read_clock(self._clock)

    cdef inline double _forward(self, double now) noexcept:
        """``now``, or the latest reading if the clock went backwards (lock held)."""
        if now < self._last:
            return self._last
        self._last = now
        return now

    # subclasses: take k (0 < k <= limit) at ``now`` and return -1.0, or return the seconds
    # until it may succeed without taking anything; count the admissions in the window; say
    # when the last admission leaves it.
    cdef double _attempt(self, double k, double now) except -2.0:
        raise NotImplementedError

    cdef double _used(self, double now) except -1.0:
        raise NotImplementedError

    cdef double _until_reset(self, double now) except -1.0:
        raise NotImplementedError

    @property
    def limit(self):
        """Admissions allowed per window."""
        return self._limit

    @property
    def window(self):
        """The window, in seconds."""
        return self._window

    def allow(self, n=1):
        """Admit ``n`` calls if the window has room now; True if admitted.

        ``allow(0)`` is always True; ``n`` above the limit is always False; a refusal changes
        nothing.
        """
        cdef int64_t k = _count(n)
        if k == 0:
            return True
        if k > self._limit:
            return False
        return self._attempt(<double>k, self._now()) < 0

    def remaining(self):
        """How many more calls would be admitted right now."""
        cdef double left = self._limit - self._used(self._now())
        return int(floor(left + 1e-9)) if left > 0 else 0

    def reset_after(self):
        """Seconds until the window holds nothing admitted so far (``remaining() == limit``)."""
        return self._until_reset(self._now())

    def retry_after(self, n=1):
        """Seconds until ``allow(n)`` could succeed (0: now; ``inf``: never, n > limit)."""
        cdef int64_t k = _count(n)
        if k == 0:
            return 0.0
        if k > self._limit:
            return INFINITY
        return self._probe(<double>k, self._now())

    cdef double _probe(self, double k, double now) except -1.0:
        raise NotImplementedError

    def wait(self, n=1, timeout=None, ctx=None):
        """Block until ``n`` calls are admitted; returns True.

        Fails at once, admitting nothing, when ``n`` exceeds the limit (ValueError), when the
        time until there is room is longer than ``timeout`` or ``ctx``'s deadline allows
        (TimeoutError), or when ``ctx`` is done (``ctx.err()``, also if it ends mid-wait).
        Waiters are not queued: after sleeping, a waiter competes again for the room.
        """
        cdef int64_t k
        cdef double budget, start, delay
        timeout, ctx = check_wait(timeout, ctx)
        k = _count(n)
        if k == 0:
            return True
        if k > self._limit:
            raise ValueError(f"n must be <= limit ({self._limit}) to ever be admitted, got {n}")
        budget = _wait_budget(timeout, ctx)
        start = _time.monotonic()
        while True:
            delay = self._attempt(<double>k, self._now())
            if delay < 0:
                return True
            if delay > budget - (_time.monotonic() - start):
                raise TimeoutError(
                    f"wait({n}) would need {delay:.6f} s, longer than the timeout or the "
                    "context's deadline allows"
                )
            if _pause(delay, ctx, self._clock, self._sleep):
                ctx.raise_if_done()
            if ctx is not None:
                ctx.raise_if_done()


@cython.final
@cython.auto_pickle(False)
cdef class SlidingWindowLog(_Window):
    """Exact: at most ``limit`` admissions in any ``window`` seconds.

    Keeps the times of the last ``limit`` admissions in a ring (8 bytes each, so memory is
    bounded by ``limit``; at most 10,000,000).  Admitting ``n`` checks one slot and overwrites
    ``n``: O(1) per call, flat however full the window is.  A per-limiter PyMutex guards the
    ring (a decision reads and writes several slots, which no single CAS covers).
    """

    cdef double *_ring
    cdef int64_t _head  # the oldest admission

    def __cinit__(self):
        self._ring = NULL

    def __init__(self, limit, window, *, clock=None, sleep=None):
        cdef int64_t i
        if self._ring != NULL:
            raise RuntimeError("SlidingWindowLog is already initialised")
        _int_arg(limit, "limit", MAX_LOG)
        self._setup(limit, window, clock, sleep)
        self._ring = <double *>PyMem_Malloc(<size_t>(self._limit if self._limit > 0 else 1) * sizeof(double))
        if self._ring == NULL:
            raise MemoryError()
        for i in range(self._limit):
            self._ring[i] = -INFINITY
        self._head = 0

    def __dealloc__(self):
        PyMem_Free(self._ring)

    cdef inline double _slot(self, int64_t i) noexcept:
        """The i-th oldest admission kept (0 = oldest)."""
        return self._ring[(self._head + i) % self._limit]

    cdef double _attempt(self, double k, double now) except -2.0:
        cdef int64_t i, n = <int64_t>k
        cdef double t
        with self._lock:
            now = self._forward(now)
            t = self._slot(n - 1)
            if t > now - self._window:
                return t + self._window - now
            for i in range(n):
                self._ring[self._head] = now
                self._head += 1
                if self._head == self._limit:
                    self._head = 0
        return -1.0

    cdef double _probe(self, double k, double now) except -1.0:
        cdef double t
        with self._lock:
            if now < self._last:
                now = self._last
            t = self._slot(<int64_t>k - 1)
        t = t + self._window - now
        return t if t > 0 else 0.0

    cdef int64_t _expired(self, double now) noexcept:
        """How many kept times are out of the window (binary search: the ring is sorted)."""
        cdef int64_t lo = 0, hi = self._limit, mid
        cdef double edge = now - self._window
        while lo < hi:
            mid = (lo + hi) // 2
            if self._slot(mid) <= edge:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef double _used(self, double now) except -1.0:
        with self._lock:
            if now < self._last:
                now = self._last
            return <double>(self._limit - self._expired(now))

    cdef double _until_reset(self, double now) except -1.0:
        cdef double newest
        if self._limit == 0:
            return 0.0
        with self._lock:
            if now < self._last:
                now = self._last
            newest = self._slot(self._limit - 1)
        newest = newest + self._window - now
        return newest if newest > 0 else 0.0

    def __repr__(self):
        return f"<SlidingWindowLog {self.remaining()}/{self._limit} left per {self._window} s>"


@cython.final
@cython.auto_pickle(False)
cdef class SlidingWindowCounter(_Window):
    """Approximate sliding window in O(1) memory: two fixed windows weighted by overlap.

    The estimate is ``previous * (1 - elapsed/window) + current``, the count of the previous
    fixed window scaled by how much of it the sliding window still covers.  Never admits more
    than ``limit`` in one fixed window; over a sliding window it can differ from the exact log
    when traffic within the previous window was uneven.
    """

    cdef double _idx   # the current fixed window: floor(now / window)
    cdef double _cur
    cdef double _prev

    def __init__(self, limit, window, *, clock=None, sleep=None):
        self._setup(limit, window, clock, sleep)
        self._idx = -INFINITY
        self._cur = 0
        self._prev = 0

    cdef inline void _roll(self, double now) noexcept:
        """Move to the fixed window of ``now`` (lock held; ``now`` already forward)."""
        cdef double idx = floor(now / self._window)
        if idx > self._idx:
            if idx == self._idx + 1:
                self._prev = self._cur
            else:
                self._prev = 0
            self._cur = 0
            self._idx = idx

    cdef inline double _estimate(self, double now) noexcept:
        cdef double elapsed = now - self._idx * self._window
        if elapsed < 0:
            elapsed = 0
        if elapsed > self._window:
            elapsed = self._window
        return self._prev * (1.0 - elapsed / self._window) + self._cur

    cdef double _delay(self, double k, double now) noexcept:
        """Seconds until an estimate leaves room for k (lock held, state rolled to now)."""
        cdef double start = self._idx * self._window
        cdef double room = self._limit - self._cur - k
        cdef double prev = self._prev
        cdef double frac
        if room < 0:  # not in this fixed window: in the next, the current one is the previous
            start += self._window
            room = self._limit - k
            prev = self._cur
        if prev <= 0:
            frac = 0.0
        else:
            frac = 1.0 - room / prev  # the elapsed fraction at which the estimate fits
        frac = start + frac * self._window - now
        return frac if frac > 0 else 0.0

    cdef double _attempt(self, double k, double now) except -2.0:
        cdef double delay
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            if self._estimate(now) + k <= self._limit + EPS_TOKENS:
                self._cur += k
                return -1.0
            delay = self._delay(k, now)
        return delay if delay > 1e-9 else 1e-9

    cdef double _probe(self, double k, double now) except -1.0:
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            if self._estimate(now) + k <= self._limit + EPS_TOKENS:
                return 0.0
            return self._delay(k, now)

    cdef double _used(self, double now) except -1.0:
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            return self._estimate(now)

    cdef double _until_reset(self, double now) except -1.0:
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            if self._cur > 0:
                return (self._idx + 2) * self._window - now
            if self._prev > 0:
                return (self._idx + 1) * self._window - now
            return 0.0

    def __repr__(self):
        return f"<SlidingWindowCounter {self.remaining()}/{self._limit} left per {self._window} s>"


@cython.final
@cython.auto_pickle(False)
cdef class FixedWindow(_Window):
    """At most ``limit`` admissions per fixed window ``[i*window, (i+1)*window)`` of the clock.

    The cheapest and the loosest: up to ``2 * limit`` can pass around a boundary.
    """

    cdef double _idx
    cdef double _count

    def __init__(self, limit, window, *, clock=None, sleep=None):
        self._setup(limit, window, clock, sleep)
        self._idx = -INFINITY
        self._count = 0

    cdef inline void _roll(self, double now) noexcept:
        cdef double idx = floor(now / self._window)
        if idx > self._idx:
            self._idx = idx
            self._count = 0

    cdef double _attempt(self, double k, double now) except -2.0:
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            if self._count + k <= self._limit:
                self._count += k
                return -1.0
            now = (self._idx + 1) * self._window - now
        return now if now > 1e-9 else 1e-9

    cdef double _probe(self, double k, double now) except -1.0:
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            if self._count + k <= self._limit:
                return 0.0
            return (self._idx + 1) * self._window - now

    cdef double _used(self, double now) except -1.0:
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            return self._count

    cdef double _until_reset(self, double now) except -1.0:
        with self._lock:
            now = self._forward(now)
            self._roll(now)
            if self._count > 0:
                return (self._idx + 1) * self._window - now
            return 0.0

    def __repr__(self):
        return f"<FixedWindow {self.remaining()}/{self._limit} left per {self._window} s>"
