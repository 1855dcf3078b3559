/*
 * Stress and unit test of the C core, built and run under ThreadSanitizer and under
 * AddressSanitizer + UndefinedBehaviorSanitizer by .ci/run (see the Makefile's `csan` target).
 *
 * THREADS threads each do ITERATIONS fetch_add increments, ITERATIONS CAS-loop increments and
 * ITERATIONS fetch_max calls on shared atomics, and every 8th step adds through the exported
 * address functions of ftsync_atomic.c; every total must come out exact.  The order
 * predicates, wrap-around and boolean ops are checked single-threaded first.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../ftsync_atomic.h"
#include "../ftsync_atomic_api.h"

#define THREADS 4
#define ITERATIONS 1000000

static ftsync_atomic_i64 counter_xadd;
static ftsync_atomic_i64 counter_cas;
static ftsync_atomic_i64 counter_weak_cas;
static ftsync_atomic_i64 high_water;
static ftsync_atomic_i64 low_water;
static ftsync_atomic_bool spin;
static int64_t guarded; /* plain int, protected by the `spin` test-and-set lock */
static _Alignas(8) int64_t slots[4]; /* plain memory, used through the exported functions */

static int failures;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                         \
        }                                                                       \
    } while (0)

static void *worker(void *arg) {
    int64_t id = (int64_t)(intptr_t)arg;
    for (int64_t i = 0; i < ITERATIONS; i++) {
        ftsync_i64_fetch_add(&counter_xadd, 1);

        int64_t seen = ftsync_i64_load(&counter_cas);
        while (!ftsync_i64_compare_exchange(&counter_cas, &seen, seen + 1)) {
        }
        seen = ftsync_i64_load_explicit(&counter_weak_cas, FTSYNC_RELAXED);
        while (!ftsync_i64_compare_exchange_weak_explicit(&counter_weak_cas, &seen, seen + 1,
                                                          FTSYNC_ACQ_REL, FTSYNC_ACQUIRE)) {
        }

        ftsync_i64_fetch_max(&high_water, id * ITERATIONS + i);
        ftsync_i64_fetch_min(&low_water, -(id * ITERATIONS + i));

        if (i % 8 == 0) {
            ftsync_addr_fetch_add(slots, 2, 1, FTSYNC_RELAXED);
            int64_t seen = ftsync_addr_load(slots, 3, FTSYNC_ACQUIRE);
            for (;;) {
                int64_t witnessed = ftsync_addr_compare_exchange(slots, 3, seen, seen + 2, FTSYNC_ACQ_REL,
                                                                 FTSYNC_ACQUIRE);
                if (witnessed == seen) {
                    break;
                }
                seen = witnessed;
            }
        }
        if (i % 16 == 0) {
            while (ftsync_bool_exchange_explicit(&spin, true, FTSYNC_ACQUIRE)) {
            }
            guarded++;
            ftsync_bool_store_explicit(&spin, false, FTSYNC_RELEASE);
        }
    }
    return NULL;
}

static void check_orders(void) {
    CHECK(ftsync_load_order_ok(FTSYNC_RELAXED) && ftsync_load_order_ok(FTSYNC_CONSUME));
    CHECK(ftsync_load_order_ok(FTSYNC_ACQUIRE) && ftsync_load_order_ok(FTSYNC_SEQ_CST));
    CHECK(!ftsync_load_order_ok(FTSYNC_RELEASE) && !ftsync_load_order_ok(FTSYNC_ACQ_REL));
    CHECK(ftsync_store_order_ok(FTSYNC_RELAXED) && ftsync_store_order_ok(FTSYNC_RELEASE));
    CHECK(ftsync_store_order_ok(FTSYNC_SEQ_CST) && !ftsync_store_order_ok(FTSYNC_ACQUIRE));
    CHECK(!ftsync_store_order_ok(FTSYNC_CONSUME) && !ftsync_store_order_ok(FTSYNC_ACQ_REL));
    for (int o = FTSYNC_RELAXED; o <= FTSYNC_SEQ_CST; o++) {
        CHECK(ftsync_rmw_order_ok(o));
        CHECK(ftsync_cas_orders_ok(o, ftsync_cas_failure_for(o)));
        CHECK(!ftsync_cas_orders_ok(o, FTSYNC_RELEASE));
        CHECK(!ftsync_cas_orders_ok(o, FTSYNC_ACQ_REL));
    }
    CHECK(!ftsync_rmw_order_ok(-1) && !ftsync_rmw_order_ok(6) && !ftsync_load_order_ok(6));
    CHECK(!ftsync_cas_orders_ok(FTSYNC_RELAXED, FTSYNC_ACQUIRE)); /* failure stronger */
    CHECK(!ftsync_cas_orders_ok(FTSYNC_RELEASE, FTSYNC_ACQUIRE));
    CHECK(!ftsync_cas_orders_ok(FTSYNC_ACQ_REL, FTSYNC_SEQ_CST));
    CHECK(ftsync_cas_orders_ok(FTSYNC_ACQ_REL, FTSYNC_ACQUIRE));
    CHECK(ftsync_cas_orders_ok(FTSYNC_SEQ_CST, FTSYNC_RELAXED));
}

static void check_single_thread(void) {
    ftsync_atomic_i64 x = INT64_MAX;
    CHECK(ftsync_i64_add(&x, 1) == INT64_MIN); /* wraps like Go, no UB */
    CHECK(ftsync_i64_sub(&x, 1) == INT64_MAX);
    CHECK(ftsync_i64_fetch_add_explicit(&x, 2, FTSYNC_RELAXED) == INT64_MAX);
    CHECK(ftsync_i64_load(&x) == INT64_MIN + 1);
    CHECK(ftsync_i64_exchange(&x, 0x0F) == INT64_MIN + 1);
    CHECK(ftsync_i64_fetch_and(&x, 0x3C) == 0x0F && ftsync_i64_load(&x) == 0x0C);
    CHECK(ftsync_i64_fetch_or(&x, 0x03) == 0x0C && ftsync_i64_load(&x) == 0x0F);
    CHECK(ftsync_i64_fetch_xor(&x, 0xFF) == 0x0F && ftsync_i64_load(&x) == 0xF0);
    CHECK(ftsync_i64_fetch_max(&x, 5) == 0xF0 && ftsync_i64_load(&x) == 0xF0);
    CHECK(ftsync_i64_fetch_min(&x, 5) == 0xF0 && ftsync_i64_load(&x) == 5);
    int64_t expected = 4;
    CHECK(!ftsync_i64_compare_exchange(&x, &expected, 9) && expected == 5);
    CHECK(ftsync_i64_compare_exchange(&x, &expected, 9) && ftsync_i64_load(&x) == 9);
    /* a forbidden order pair falls back to seq_cst instead of reaching C11 as UB */
    expected = 9;
    CHECK(ftsync_i64_compare_exchange_explicit(&x, &expected, 10, FTSYNC_RELAXED, FTSYNC_SEQ_CST));
    ftsync_i64_store_explicit(&x, 11, FTSYNC_ACQUIRE);
    CHECK(ftsync_i64_load_explicit(&x, FTSYNC_RELEASE) == 11);

    ftsync_atomic_bool b = false;
    CHECK(!ftsync_bool_exchange(&b, true) && ftsync_bool_load(&b));
    bool bexp = false;
    CHECK(!ftsync_bool_compare_exchange(&b, &bexp, false) && bexp);
    CHECK(ftsync_bool_compare_exchange(&b, &bexp, false) && !ftsync_bool_load(&b));
}

int main(void) {
    check_orders();
    check_single_thread();

    ftsync_i64_store(&low_water, 0);
    pthread_t threads[THREADS];
    for (intptr_t t = 0; t < THREADS; t++) {
        if (pthread_create(&threads[t], NULL, worker, (void *)t) != 0) {
            perror("pthread_create");
            return 2;
        }
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
    }
    const int64_t total = (int64_t)THREADS * ITERATIONS;
    CHECK(ftsync_i64_load(&counter_xadd) == total);
    CHECK(ftsync_i64_load(&counter_cas) == total);
    CHECK(ftsync_i64_load(&counter_weak_cas) == total);
    CHECK(ftsync_i64_load(&high_water) == total - 1);
    CHECK(ftsync_i64_load(&low_water) == -(total - 1));
    CHECK(guarded == THREADS * (ITERATIONS / 16));
    CHECK(ftsync_addr_load(slots, 2, FTSYNC_SEQ_CST) == THREADS * (ITERATIONS / 8));
    CHECK(ftsync_addr_load(slots, 3, FTSYNC_SEQ_CST) == 2 * THREADS * (ITERATIONS / 8));
    CHECK(slots[0] == 0 && slots[1] == 0); /* indexing touched only its own slots */

    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("atomic core: %d threads x %d iterations, all totals exact (%" PRId64 ")\n", THREADS,
           ITERATIONS, total);
    return 0;
}
