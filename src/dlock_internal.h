/* SPDX-License-Identifier: MIT */
/*
 * src/dlock_internal.h - what the portable delegation-lock code (src/dlock.c)
 * needs from the code that knows who "this thread" is: src/hosted/dlock_thread.c
 * (threads, TLS, mmap'd ephemeral stacks) or the freestanding part of
 * src/dlock.c (CPUs, static stacks).
 */
#ifndef ALTSTACK_SRC_DLOCK_INTERNAL_H
#define ALTSTACK_SRC_DLOCK_INTERNAL_H

#include "internal.h"

/*
 * A client's request slot.  The request line is written only by the client,
 * the response line only by whoever serves the request (rules 1 and 2 in
 * dlock.h); each sits alone on a 128-byte unit so that neither writer's
 * stores invalidate the other's line.
 */
struct as__dl_slot {
    struct {
        uint64_t  seq;              /* requests made (atomic; release)        */
        as_dlock *lock;             /* the lock asked for (atomic; release)   */
        as_ctx    ctx;              /* transparent: the client's context      */
        void   *(*cs)(void *);      /* closure: the critical section          */
        void     *arg;
        uintptr_t tp;               /* the client's thread pointer            */
    } __attribute__((aligned(AS_PADLINE))) req;
    struct {
        uint64_t  seq;              /* requests completed (atomic; release)   */
        as_ctx    ctx;              /* transparent: client's context in unlock */
        void     *ret;              /* closure: cs's result                   */
    } __attribute__((aligned(AS_PADLINE))) resp;
};

struct as__dl_self;

/* One nesting level of one waiter identity (thread or CPU): the slot it
 * publishes in and the ephemeral stack its transparent waits run on. */
struct as__dl_level {
    struct as__dl_slot *slot;
    as_ctx              eph;        /* the suspended wait loop; NULL: fresh   */
    as_stack            stack;      /* the ephemeral stack (lo NULL: none)    */
    uint64_t            seq;        /* seq of this level's last request       */
    as_dlock           *waits_for;  /* lock being waited for (self-deadlock check) */
    struct as__dl_self *self;
};

struct as__dl_self {
    unsigned            depth;      /* levels in use                          */
    struct as__dl_level lv[AS_DLOCK_NEST];
    /* hosted: levels AS_DLOCK_NEST.. , allocated one by one as nesting
     * first reaches them (each stays where it is: waits point into it) */
    struct as__dl_level **more;
    unsigned            nmore;
};

/* The slot table, its high-water mark (slots [0, hwm) have ever been used)
 * and whether servers may run critical sections under the client's thread
 * pointer; all defined by the environment code. */
AS_HIDDEN extern struct as__dl_slot as__dl_slots[];
AS_HIDDEN extern unsigned as__dl_hwm;           /* atomic */
AS_HIDDEN extern bool as__dl_tp_ok;

/*
 * as__dl_level_get - the current identity's next free level, with a slot
 * and, if `stack`, an ephemeral stack; its depth is raised.  NULL if the
 * nesting is too deep or a slot or stack cannot be had now.  Reads the
 * identity from TLS (hosted) or the CPU index (freestanding): call it only
 * under the thread pointer of the thread running the code.
 */
AS_HIDDEN struct as__dl_level *as__dl_level_get(bool stack);
static inline void as__dl_level_put(struct as__dl_level *lv)
{
    lv->waits_for = NULL;
    lv->self->depth--;
}

/* Wait a little: spin, then (hosted) sched_yield.  Touches no TLS. */
AS_HIDDEN void as__dl_relax(unsigned *spins);
/* A monotonic clock in nanoseconds; 0 where there is none. */
AS_HIDDEN uint64_t as__dl_now(void);
/* Slots registered now. */
AS_HIDDEN unsigned as__dl_slots_used(void);

/* src/arch/<arch>/dlock.S: write `tp` to the thread pointer, as_switch(to,
 * data), and put the caller's thread pointer back once switched back to. */
AS_HIDDEN as_transfer as__dl_enter(as_ctx to, void *data, uintptr_t tp);
/* The live thread pointer, where as__dl_tp_ok. */
AS_HIDDEN uintptr_t as__dl_tp(void);

/* Called by a server right after a transparent critical section it ran
 * under the client's thread pointer, with its own thread pointer back and
 * the client's response published; NULL: nothing to do.  Hosted
 * preemption (src/hosted/preempt.c) sets it to deliver a tick that was
 * held while the section ran. */
AS_HIDDEN extern void (*as__dl_section_end)(void);

static inline void as__cpu_relax(void)
{
#if AS_ARCH_X86_64
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
