/*
 * ftsync_atomic_api.h: the exported functions of ftsync_atomic.c.  This file is also the cffi
 * cdef (packaging/atomics_cffi_build.py reads it), so it holds plain declarations only: no macros,
 * no includes, no _Atomic.  `p` is a base address and `i` an element index into it.
 */
int ftsync_load_order_valid(int order);
int ftsync_store_order_valid(int order);
int ftsync_rmw_order_valid(int order);
int ftsync_cas_orders_valid(int success, int failure);
int ftsync_cas_failure_order(int success);
int ftsync_i64_is_lock_free(void);

int64_t ftsync_addr_load(const int64_t *p, intptr_t i, int order);
void ftsync_addr_store(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_exchange(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_fetch_add(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_fetch_sub(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_add(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_sub(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_fetch_and(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_fetch_or(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_fetch_xor(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_fetch_max(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_fetch_min(int64_t *p, intptr_t i, int64_t v, int order);
int64_t ftsync_addr_compare_exchange(int64_t *p, intptr_t i, int64_t expected, int64_t desired, int success, int failure);
