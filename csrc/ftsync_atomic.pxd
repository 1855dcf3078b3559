# Cython's view of ftsync_atomic.h, the one declaration every .pyx cimports
# (``from ftsync_atomic cimport ...``; setup.py puts csrc/ on cythonize's include path).
# Extern declarations only: cimporting it imports nothing at run time.
from libc.stdint cimport int64_t


cdef extern from "ftsync_atomic.h" nogil:
    # The real types are _Atomic int64_t / _Atomic bool; Cython only ever takes their address.
    ctypedef int64_t ftsync_atomic_i64
    ctypedef bint ftsync_atomic_bool
    ctypedef bint c_bool "bool"
    int ATOMIC_LLONG_LOCK_FREE
    int ATOMIC_BOOL_LOCK_FREE
    int FTSYNC_RELAXED

    int64_t ftsync_i64_load(const ftsync_atomic_i64 *p)
    void ftsync_i64_store(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_exchange(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_add(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_sub(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_add(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_sub(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_and(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_or(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_xor(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_max(ftsync_atomic_i64 *p, int64_t v)
    int64_t ftsync_i64_fetch_min(ftsync_atomic_i64 *p, int64_t v)
    bint ftsync_i64_compare_exchange(ftsync_atomic_i64 *p, int64_t *expected, int64_t desired)
    int64_t ftsync_i64_fetch_add_explicit(ftsync_atomic_i64 *p, int64_t v, int order)
    int64_t ftsync_i64_exchange_explicit(ftsync_atomic_i64 *p, int64_t v, int order)

    bint ftsync_bool_load(const ftsync_atomic_bool *p)
    void ftsync_bool_store(ftsync_atomic_bool *p, bint v)
    bint ftsync_bool_exchange(ftsync_atomic_bool *p, bint v)
    bint ftsync_bool_compare_exchange(ftsync_atomic_bool *p, c_bool *expected, bint desired)
