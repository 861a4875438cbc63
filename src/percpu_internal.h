/* SPDX-License-Identifier: MIT */
/*
 * src/percpu_internal.h - the aux-stack words src/percpu.c works on, which
 * live in the per-CPU record (freestanding) or in thread-locals (hosted,
 * src/hosted/percpu.c).
 */
#ifndef ALTSTACK_SRC_PERCPU_INTERNAL_H
#define ALTSTACK_SRC_PERCPU_INTERNAL_H

#include "internal.h"

struct as__aux {
    uintptr_t top;      /* top of the aux stack, 16-byte aligned; 0: none  */
    uintptr_t lo;       /* its lowest address                              */
    uintptr_t depth;    /* as_call_on_aux calls of this thread/CPU on it   */
};

#if AS_HOSTED
/* The calling thread's words (never NULL). */
AS_HIDDEN struct as__aux *as__aux_slot(void);
#endif

#endif
