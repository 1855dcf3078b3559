/*
 * ftsync_counter.h: cells of a striped counter (the idea of Java's LongAdder).
 *
 * A cell is one atomic int64 alone on its own FTSYNC_CELL_SIZE bytes, so two threads adding to
 * two cells never share a cache line.  128 bytes covers the 64-byte lines of x86-64 (whose
 * adjacent-line prefetcher pairs lines) and the 128-byte lines of Apple's ARM64 cores.
 * Cells are allocated by hand-aligning a malloc'd block, which works on every C runtime
 * (MSVC has no aligned_alloc).
 */
#ifndef FTSYNC_COUNTER_H
#define FTSYNC_COUNTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ftsync_atomic.h"

#define FTSYNC_CELL_SIZE 128

typedef struct ftsync_cell {
    ftsync_atomic_i64 value;
    struct ftsync_cell *prev; /* links of the owner's list of handle cells */
    struct ftsync_cell *next;
    char pad[FTSYNC_CELL_SIZE - sizeof(ftsync_atomic_i64) - 2 * sizeof(void *)];
} ftsync_cell;

_Static_assert(sizeof(ftsync_cell) == FTSYNC_CELL_SIZE, "a cell must fill exactly its cache lines");

/* `count` zeroed cells, FTSYNC_CELL_SIZE-aligned; free with ftsync_cells_free.  NULL if out of memory. */
static inline ftsync_cell *ftsync_cells_new(size_t count) {
    if (count == 0 || count > (SIZE_MAX - FTSYNC_CELL_SIZE - sizeof(void *)) / FTSYNC_CELL_SIZE) {
        return NULL;
    }
    size_t bytes = count * FTSYNC_CELL_SIZE;
    char *raw = (char *)malloc(bytes + FTSYNC_CELL_SIZE + sizeof(void *));
    if (raw == NULL) {
        return NULL;
    }
    uintptr_t first = (uintptr_t)(raw + sizeof(void *));
    uintptr_t aligned = (first + FTSYNC_CELL_SIZE - 1) & ~(uintptr_t)(FTSYNC_CELL_SIZE - 1);
    ftsync_cell *cells = (ftsync_cell *)aligned;
    memcpy((char *)cells - sizeof(void *), &raw, sizeof(void *)); /* remember the malloc'd block */
    for (size_t i = 0; i < count; i++) {
        atomic_init(&cells[i].value, 0);
        cells[i].prev = cells[i].next = NULL;
    }
    return cells;
}

static inline void ftsync_cells_free(ftsync_cell *cells) {
    if (cells != NULL) {
        void *raw;
        memcpy(&raw, (char *)cells - sizeof(void *), sizeof(void *));
        free(raw);
    }
}

/* Which of `mask + 1` stripes a thread without a handle adds to.  Thread ids from glibc are
   aligned addresses (their low bits are all zero), so `id % n` would put every thread on one
   stripe: mix all the bits first (the splitmix64 finaliser). */
static inline size_t ftsync_stripe_for(uint64_t thread_id, size_t mask) {
    uint64_t z = thread_id;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (size_t)(z & mask);
}

#endif /* FTSYNC_COUNTER_H */
