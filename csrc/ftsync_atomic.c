/*
 * ftsync_atomic.c: the atomic core as exported functions over raw addresses, for cffi.
 *
 * cffi cannot declare `_Atomic` types, so these take plain `int64_t *` and treat the pointee
 * as `_Atomic int64_t` (same size and alignment, asserted below; callers guarantee 8-byte
 * alignment).  Each takes a base pointer and an element index (callers check the bounds):
 * indexing in C spares the Python caller a pointer object per call.  Every operation takes an ftsync_order; callers refuse forbidden orders with the
 * ftsync_*_order_ok predicates first.  Compare-exchange returns the value it saw, which equals
 * `expected` exactly when the (strong) exchange succeeded: no out-parameter to allocate.
 */
#include "ftsync_atomic.h"
#include "ftsync_atomic_api.h"

_Static_assert(sizeof(ftsync_atomic_i64) == sizeof(int64_t), "_Atomic int64_t must be as wide as int64_t");
_Static_assert(_Alignof(ftsync_atomic_i64) == 8, "_Atomic int64_t must be 8-byte aligned");

#define AT(p, i) ((ftsync_atomic_i64 *)(p) + (i))

int ftsync_load_order_valid(int order) { return ftsync_load_order_ok(order); }
int ftsync_store_order_valid(int order) { return ftsync_store_order_ok(order); }
int ftsync_rmw_order_valid(int order) { return ftsync_rmw_order_ok(order); }
int ftsync_cas_orders_valid(int success, int failure) { return ftsync_cas_orders_ok(success, failure); }
int ftsync_cas_failure_order(int success) { return ftsync_cas_failure_for(success); }
int ftsync_i64_is_lock_free(void) { return ATOMIC_LLONG_LOCK_FREE == 2; }

int64_t ftsync_addr_load(const int64_t *p, intptr_t i, int order) {
    return ftsync_i64_load_explicit((const ftsync_atomic_i64 *)p + i, order);
}

void ftsync_addr_store(int64_t *p, intptr_t i, int64_t v, int order) { ftsync_i64_store_explicit(AT(p, i), v, order); }

int64_t ftsync_addr_exchange(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_exchange_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_fetch_add(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_fetch_add_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_fetch_sub(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_fetch_sub_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_add(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_wrapping_add(ftsync_i64_fetch_add_explicit(AT(p, i), v, order), v);
}

int64_t ftsync_addr_sub(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_wrapping_sub(ftsync_i64_fetch_sub_explicit(AT(p, i), v, order), v);
}

int64_t ftsync_addr_fetch_and(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_fetch_and_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_fetch_or(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_fetch_or_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_fetch_xor(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_fetch_xor_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_fetch_max(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_fetch_max_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_fetch_min(int64_t *p, intptr_t i, int64_t v, int order) {
    return ftsync_i64_fetch_min_explicit(AT(p, i), v, order);
}

int64_t ftsync_addr_compare_exchange(int64_t *p, intptr_t i, int64_t expected, int64_t desired, int success, int failure) {
    ftsync_i64_compare_exchange_explicit(AT(p, i), &expected, desired, success, failure);
    return expected;
}
