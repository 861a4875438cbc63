/* SPDX-License-Identifier: MIT */
/*
 * src/percpu.c - the auxiliary stack, both modes.
 *
 * Where the aux stack is kept differs by mode (the per-CPU record in
 * freestanding builds, thread-locals in src/hosted/percpu.c), so both hand
 * this file the same three words through as__aux_slot():
 *
 *     slot->top    top of the aux stack, 16-byte aligned; 0: none
 *     slot->lo     its lowest address
 *     slot->depth  as_call_on_aux calls of this thread/CPU now running on it
 *
 * Invariant: while depth > 0, fn of the outermost as_call_on_aux owns the
 * aux stack from its top down, so a nested call must not start again at
 * the top.  depth is changed only by its own thread (or CPU), and a signal
 * or interrupt that arrives between the load and the store of an update
 * leaves it as it found it, so plain accesses separated by compiler
 * barriers are enough: no atomics.
 */
#include "percpu_internal.h"

#if AS_FREESTANDING
_Static_assert(offsetof(as_percpu, self) == AS_PERCPU_SELF, "layout");
_Static_assert(offsetof(as_percpu, aux_top) == AS_PERCPU_AUX_TOP, "layout");
_Static_assert(offsetof(as_percpu, aux_lo) == AS_PERCPU_AUX_LO, "layout");
_Static_assert(offsetof(as_percpu, aux_depth) == AS_PERCPU_DEPTH, "layout");
_Static_assert(offsetof(as_percpu, scratch) == AS_PERCPU_SCRATCH, "layout");
_Static_assert(sizeof(as_percpu) == AS_PERCPU_SIZE, "layout");
_Static_assert(AS_PERCPU_AUX_LO == AS_PERCPU_AUX_TOP + 8 &&
               AS_PERCPU_DEPTH == AS_PERCPU_AUX_TOP + 16,
               "struct as__aux overlays the record from aux_top");

/* The record's aux_top, aux_lo and aux_depth, in that order. */
static struct as__aux *as__aux_slot(void)
{
    as_percpu *p = as_percpu_get();
    return p ? (struct as__aux *)(void *)&p->aux_top : NULL;
}
#endif

#define AS_BARRIER() __asm__ volatile("" ::: "memory")

void as_auxstack_set(const as_stack *s)
{
    struct as__aux *a = as__aux_slot();
    if (!a)
        return;
    uintptr_t top = as__stack_top(s);
    uintptr_t lo = top ? (uintptr_t)s->lo : 0;
    /* Clear top first: an interrupt in between sees "no aux stack" rather
     * than a half-written one. */
    a->top = 0;
    AS_BARRIER();
    a->lo = lo;
    a->depth = 0;
    AS_BARRIER();
    a->top = top;
}

static inline bool as__inside(const struct as__aux *a, uintptr_t sp)
{
    return sp - a->lo < a->top - a->lo;
}

bool as_on_auxstack(void)
{
    const struct as__aux *a = as__aux_slot();
    return a && a->top && as__inside(a, (uintptr_t)__builtin_frame_address(0));
}

void *as_call_on_aux(void *(*fn)(void *), void *arg)
{
    struct as__aux *a = as__aux_slot();
    if (!fn || !a || !a->top)
        return NULL;
    if (a->depth || as__inside(a, (uintptr_t)__builtin_frame_address(0)))
        return fn(arg);
    as_stack s = { (void *)a->lo, (void *)a->top, NULL, 0 };
    a->depth++;
    AS_BARRIER();
    void *r = as_call_on(&s, fn, arg);
    AS_BARRIER();
    a->depth--;
    return r;
}

#if AS_FREESTANDING && AS_ARCH_AARCH64
AS_HIDDEN void as__sp_el0_set(uintptr_t sp);      /* src/arch/aarch64/percpu.S */

int as_el1_stacks_set(void *buf, size_t half)
{
    uintptr_t b = (uintptr_t)buf;
    if (!buf || b % 16 || !half || half % 4096 || half > (UINTPTR_MAX - b) / 2)
        return -AS_EINVAL;
    as__sp_el0_set(b + half);
    as_stack s = { (void *)(b + half), (void *)(b + 2 * half), NULL, 0 };
    as_auxstack_set(&s);
    return 0;
}
#endif
