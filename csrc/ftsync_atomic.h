/*
 * ftsync_atomic.h: the C11 atomic core of ftsync, one truth for every atomic operation.
 *
 * Every operation works on a lock-free `_Atomic int64_t` or `_Atomic bool` and comes in two
 * forms: the plain name is sequentially consistent (the fast path the Python types use), the
 * `_explicit` name takes an ftsync_order.  Orders that C11 forbids for an operation (release on
 * a load, acquire on a store, a compare-exchange failure order that is release, acq_rel or
 * stronger than the success order) are refused by the ftsync_*_order_ok() predicates; callers
 * check them before calling.  Should one slip through anyway, the explicit ops fall back to
 * seq_cst, which is never weaker than what was asked, so there is no undefined behaviour.
 *
 * Arithmetic wraps in two's complement, as C11 defines for atomic signed integers (7.17.7.5)
 * and as Go's sync/atomic does; the "new value" helpers compute through uint64_t for the same
 * reason.
 */
#ifndef FTSYNC_ATOMIC_H
#define FTSYNC_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if !defined(ATOMIC_LLONG_LOCK_FREE) || !defined(ATOMIC_BOOL_LOCK_FREE)
#error "ftsync needs C11 <stdatomic.h> with lock-free macros"
#endif
_Static_assert(sizeof(long long) == sizeof(int64_t), "ftsync expects a 64-bit long long");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "ftsync needs always-lock-free 64-bit atomics on this target");
_Static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "ftsync needs always-lock-free atomic bool on this target");

/* Memory orders, numbered as atomics.MemoryOrder numbers them (and as C11 lists them). */
typedef enum {
    FTSYNC_RELAXED = 0,
    FTSYNC_CONSUME = 1,
    FTSYNC_ACQUIRE = 2,
    FTSYNC_RELEASE = 3,
    FTSYNC_ACQ_REL = 4,
    FTSYNC_SEQ_CST = 5,
} ftsync_order;

typedef _Atomic int64_t ftsync_atomic_i64;
typedef _Atomic bool ftsync_atomic_bool;

/* ---- which orders each kind of operation accepts -------------------------------------- */

static inline bool ftsync_order_known(int order) {
    return order >= FTSYNC_RELAXED && order <= FTSYNC_SEQ_CST;
}

/* Loads may not release. */
static inline bool ftsync_load_order_ok(int order) {
    return ftsync_order_known(order) && order != FTSYNC_RELEASE && order != FTSYNC_ACQ_REL;
}

/* Stores may not acquire. */
static inline bool ftsync_store_order_ok(int order) {
    return order == FTSYNC_RELAXED || order == FTSYNC_RELEASE || order == FTSYNC_SEQ_CST;
}

/* Read-modify-write operations accept every order. */
static inline bool ftsync_rmw_order_ok(int order) {
    return ftsync_order_known(order);
}

/* How strong the load half of an order is: relaxed < consume < acquire < seq_cst. */
static inline int ftsync_load_strength(int order) {
    switch (order) {
    case FTSYNC_CONSUME: return 1;
    case FTSYNC_ACQUIRE: case FTSYNC_ACQ_REL: return 2;
    case FTSYNC_SEQ_CST: return 3;
    default: return 0; /* relaxed, release */
    }
}

/* A failed compare-exchange is a load: no release, and no stronger than the success order. */
static inline bool ftsync_cas_orders_ok(int success, int failure) {
    return ftsync_rmw_order_ok(success) && ftsync_load_order_ok(failure)
        && ftsync_load_strength(failure) <= ftsync_load_strength(success);
}

/* The strongest failure order a success order allows (what C++ picks when only one is given). */
static inline int ftsync_cas_failure_for(int success) {
    switch (success) {
    case FTSYNC_RELEASE: return FTSYNC_RELAXED;
    case FTSYNC_ACQ_REL: return FTSYNC_ACQUIRE;
    default: return ftsync_order_known(success) ? success : FTSYNC_SEQ_CST;
    }
}

/* Map to the C11 enum.  Unknown values become seq_cst; forbidden ones are mapped by the
   per-operation helpers below, so the C library never sees an order it forbids. */
static inline memory_order ftsync_c11_order(int order) {
    switch (order) {
    case FTSYNC_RELAXED: return memory_order_relaxed;
    case FTSYNC_CONSUME: return memory_order_consume;
    case FTSYNC_ACQUIRE: return memory_order_acquire;
    case FTSYNC_RELEASE: return memory_order_release;
    case FTSYNC_ACQ_REL: return memory_order_acq_rel;
    default: return memory_order_seq_cst;
    }
}

static inline memory_order ftsync_c11_load_order(int order) {
    return ftsync_load_order_ok(order) ? ftsync_c11_order(order) : memory_order_seq_cst;
}

static inline memory_order ftsync_c11_store_order(int order) {
    return ftsync_store_order_ok(order) ? ftsync_c11_order(order) : memory_order_seq_cst;
}

/* ---- 64-bit integers --------------------------------------------------------------------- */

static inline int64_t ftsync_wrapping_add(int64_t a, int64_t b) {
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static inline int64_t ftsync_wrapping_sub(int64_t a, int64_t b) {
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

static inline int64_t ftsync_i64_load(const ftsync_atomic_i64 *p) { return atomic_load(p); }
static inline void ftsync_i64_store(ftsync_atomic_i64 *p, int64_t v) { atomic_store(p, v); }
static inline int64_t ftsync_i64_exchange(ftsync_atomic_i64 *p, int64_t v) { return atomic_exchange(p, v); }
static inline int64_t ftsync_i64_fetch_add(ftsync_atomic_i64 *p, int64_t v) { return atomic_fetch_add(p, v); }
static inline int64_t ftsync_i64_fetch_sub(ftsync_atomic_i64 *p, int64_t v) { return atomic_fetch_sub(p, v); }
static inline int64_t ftsync_i64_fetch_and(ftsync_atomic_i64 *p, int64_t v) { return atomic_fetch_and(p, v); }
static inline int64_t ftsync_i64_fetch_or(ftsync_atomic_i64 *p, int64_t v) { return atomic_fetch_or(p, v); }
static inline int64_t ftsync_i64_fetch_xor(ftsync_atomic_i64 *p, int64_t v) { return atomic_fetch_xor(p, v); }

/* Returns the new value: one `lock xadd` plus a register add, not a CAS loop. */
static inline int64_t ftsync_i64_add(ftsync_atomic_i64 *p, int64_t v) {
    return ftsync_wrapping_add(atomic_fetch_add(p, v), v);
}

static inline int64_t ftsync_i64_sub(ftsync_atomic_i64 *p, int64_t v) {
    return ftsync_wrapping_sub(atomic_fetch_sub(p, v), v);
}

/* Strong compare-exchange: on failure *expected receives the value seen. */
static inline bool ftsync_i64_compare_exchange(ftsync_atomic_i64 *p, int64_t *expected, int64_t desired) {
    return atomic_compare_exchange_strong(p, expected, desired);
}

/* Weak compare-exchange: may fail spuriously (on LL/SC machines such as ARM64); use in loops. */
static inline bool ftsync_i64_compare_exchange_weak(ftsync_atomic_i64 *p, int64_t *expected, int64_t desired) {
    return atomic_compare_exchange_weak(p, expected, desired);
}

/* Store max(current, v); returns the previous value.  Stops as soon as current >= v. */
static inline int64_t ftsync_i64_fetch_max(ftsync_atomic_i64 *p, int64_t v) {
    int64_t seen = atomic_load_explicit(p, memory_order_relaxed);
    while (seen < v && !atomic_compare_exchange_weak(p, &seen, v)) {
    }
    return seen;
}

static inline int64_t ftsync_i64_fetch_min(ftsync_atomic_i64 *p, int64_t v) {
    int64_t seen = atomic_load_explicit(p, memory_order_relaxed);
    while (seen > v && !atomic_compare_exchange_weak(p, &seen, v)) {
    }
    return seen;
}

/* Explicit-order forms. */

static inline int64_t ftsync_i64_load_explicit(const ftsync_atomic_i64 *p, int order) {
    return atomic_load_explicit(p, ftsync_c11_load_order(order));
}

static inline void ftsync_i64_store_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    atomic_store_explicit(p, v, ftsync_c11_store_order(order));
}

static inline int64_t ftsync_i64_exchange_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    return atomic_exchange_explicit(p, v, ftsync_c11_order(order));
}

static inline int64_t ftsync_i64_fetch_add_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    return atomic_fetch_add_explicit(p, v, ftsync_c11_order(order));
}

static inline int64_t ftsync_i64_fetch_sub_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    return atomic_fetch_sub_explicit(p, v, ftsync_c11_order(order));
}

static inline int64_t ftsync_i64_fetch_and_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    return atomic_fetch_and_explicit(p, v, ftsync_c11_order(order));
}

static inline int64_t ftsync_i64_fetch_or_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    return atomic_fetch_or_explicit(p, v, ftsync_c11_order(order));
}

static inline int64_t ftsync_i64_fetch_xor_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    return atomic_fetch_xor_explicit(p, v, ftsync_c11_order(order));
}

static inline int64_t ftsync_i64_fetch_max_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    int64_t seen = atomic_load_explicit(p, memory_order_relaxed);
    while (seen < v && !atomic_compare_exchange_weak_explicit(
               p, &seen, v, ftsync_c11_order(order), memory_order_relaxed)) {
    }
    return seen;
}

static inline int64_t ftsync_i64_fetch_min_explicit(ftsync_atomic_i64 *p, int64_t v, int order) {
    int64_t seen = atomic_load_explicit(p, memory_order_relaxed);
    while (seen > v && !atomic_compare_exchange_weak_explicit(
               p, &seen, v, ftsync_c11_order(order), memory_order_relaxed)) {
    }
    return seen;
}

static inline bool ftsync_i64_compare_exchange_explicit(ftsync_atomic_i64 *p, int64_t *expected,
                                                        int64_t desired, int success, int failure) {
    if (!ftsync_cas_orders_ok(success, failure)) {
        success = failure = FTSYNC_SEQ_CST;
    }
    return atomic_compare_exchange_strong_explicit(p, expected, desired, ftsync_c11_order(success),
                                                   ftsync_c11_order(failure));
}

static inline bool ftsync_i64_compare_exchange_weak_explicit(ftsync_atomic_i64 *p, int64_t *expected,
                                                             int64_t desired, int success, int failure) {
    if (!ftsync_cas_orders_ok(success, failure)) {
        success = failure = FTSYNC_SEQ_CST;
    }
    return atomic_compare_exchange_weak_explicit(p, expected, desired, ftsync_c11_order(success),
                                                 ftsync_c11_order(failure));
}

/* ---- booleans ---------------------------------------------------------------------------- */

static inline bool ftsync_bool_load(const ftsync_atomic_bool *p) { return atomic_load(p); }
static inline void ftsync_bool_store(ftsync_atomic_bool *p, bool v) { atomic_store(p, v); }
static inline bool ftsync_bool_exchange(ftsync_atomic_bool *p, bool v) { return atomic_exchange(p, v); }

static inline bool ftsync_bool_compare_exchange(ftsync_atomic_bool *p, bool *expected, bool desired) {
    return atomic_compare_exchange_strong(p, expected, desired);
}

static inline bool ftsync_bool_compare_exchange_weak(ftsync_atomic_bool *p, bool *expected, bool desired) {
    return atomic_compare_exchange_weak(p, expected, desired);
}

static inline bool ftsync_bool_load_explicit(const ftsync_atomic_bool *p, int order) {
    return atomic_load_explicit(p, ftsync_c11_load_order(order));
}

static inline void ftsync_bool_store_explicit(ftsync_atomic_bool *p, bool v, int order) {
    atomic_store_explicit(p, v, ftsync_c11_store_order(order));
}

static inline bool ftsync_bool_exchange_explicit(ftsync_atomic_bool *p, bool v, int order) {
    return atomic_exchange_explicit(p, v, ftsync_c11_order(order));
}

static inline bool ftsync_bool_compare_exchange_explicit(ftsync_atomic_bool *p, bool *expected,
                                                         bool desired, int success, int failure) {
    if (!ftsync_cas_orders_ok(success, failure)) {
        success = failure = FTSYNC_SEQ_CST;
    }
    return atomic_compare_exchange_strong_explicit(p, expected, desired, ftsync_c11_order(success),
                                                   ftsync_c11_order(failure));
}

static inline bool ftsync_bool_compare_exchange_weak_explicit(ftsync_atomic_bool *p, bool *expected,
                                                              bool desired, int success, int failure) {
    if (!ftsync_cas_orders_ok(success, failure)) {
        success = failure = FTSYNC_SEQ_CST;
    }
    return atomic_compare_exchange_weak_explicit(p, expected, desired, ftsync_c11_order(success),
                                                 ftsync_c11_order(failure));
}

#endif /* FTSYNC_ATOMIC_H */
