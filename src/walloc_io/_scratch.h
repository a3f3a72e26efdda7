/* Per-thread work buffers for the C kernels, reused across calls: a fresh malloc of a few MB
 * per stream or image costs page faults comparable to the work itself. Each kernel names its
 * slots (an enum ending in S_SLOTS) and a SCRATCH_KEEP size before including this; buffers
 * larger than SCRATCH_KEEP are released after a call. Not freed at thread exit (bounded by
 * the largest call of each thread). */
#ifndef WALLOC_SCRATCH_H
#define WALLOC_SCRATCH_H

#include <stdlib.h>

typedef struct { void *p; size_t cap; } Slot;
static _Thread_local Slot slots[S_SLOTS];

static void *scratch(int i, size_t bytes) {
    Slot *s = &slots[i];
    if (s->cap < bytes || !s->p) {
        free(s->p);
        s->p = malloc(bytes ? bytes : 1);
        s->cap = s->p ? bytes : 0;
    }
    return s->p;
}

static void scratch_done(void) {
    for (int i = 0; i < S_SLOTS; i++)
        if (slots[i].cap > SCRATCH_KEEP) { free(slots[i].p); slots[i].p = NULL; slots[i].cap = 0; }
}

#endif
