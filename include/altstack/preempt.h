/* SPDX-License-Identifier: MIT */
/*
 * altstack/preempt.h - hosted: timer-signal upcalls delivering activations.
 *
 * Scheduler activations in userspace.  as_preempt_start arms a per-thread
 * timer (timer_create with SIGEV_THREAD_ID, CLOCK_MONOTONIC, the real-time
 * signal as_preempt_signal()).  Each tick interrupts whatever the thread
 * runs; the handler captures the interrupted state into a record taken
 * from cfg->pool (an AS_ACT_FULL activation: every register and the FP/SIMD
 * state) and, instead of returning into it, calls cfg->upcall(record, arg)
 * on cfg->upcall_stack.  The upcall decides what runs next and resumes it
 * with as_act_resume: the same record, or one it kept from an earlier tick
 * (another green thread).  Resuming a pooled record puts it back in the
 * pool, so a scheduler that always resumes what it keeps leaks nothing.
 *
 *     static void schedule(as_act *cur, void *arg)
 *     {
 *         struct sched *s = arg;
 *         s->saved[s->cur] = cur;              // the thread that was running
 *         s->cur = (s->cur + 1) % s->n;
 *         as_act_resume(s->saved[s->cur]);     // the next one; never returns
 *     }
 *
 *     as_preempt_cfg cfg = { .interval_us = 1000, .upcall = schedule,
 *                            .arg = &sched, .pool = &pool,
 *                            .upcall_stack = &upcall_stack };
 *     as_preempt_start(&cfg);
 *
 * (examples/preempt_threads.c is a complete round-robin scheduler.)
 *
 * Guarantees:
 *   - The upcall never nests: a tick that arrives while the handler or the
 *     upcall runs, or while as_act_resume is still reading the record it
 *     resumes, is deferred (stats.deferred): the timer is re-armed to fire
 *     again 20 us later (or after one period, if that is shorter), so it
 *     lands in whatever the upcall resumed.
 *   - Ticks inside as_preempt_disable/enable sections are held: one tick is
 *     delivered at the outermost enable (as a CALL record of that point).
 *   - With the pool empty the tick is held the same way (stats.dropped),
 *     never a crash.
 *   - The resumed code runs with the signal mask it had when interrupted:
 *     the handler does not change the mask (SA_NODEFER, empty sa_mask) and
 *     is never left through sigreturn.  The mask belongs to the OS thread;
 *     a record resumed on a thread runs with that thread's mask.
 *   - The upcall runs on the region of upcall_stack below its top 32 KiB,
 *     which is the thread's sigaltstack while preemption is on, so the
 *     preempted stacks never receive a signal frame and need no room for
 *     one.  If the upcall returns, the interrupted record is resumed.
 *
 * Who may call what, concurrently:
 *
 *   function                   from
 *   as_preempt_start/stop      the thread itself, not from the upcall;
 *                              each thread has its own timer and state
 *   as_preempt_disable/enable  the thread itself (async-signal-safe)
 *   the upcall                 runs on the thread that was interrupted
 *
 * The upcall runs where a signal handler would: the code it interrupted may
 * hold a libc lock (malloc, stdio), so the upcall itself calls only
 * async-signal-safe functions, and green threads that call non-reentrant
 * functions bracket them with as_preempt_disable/enable.  Green threads on
 * one OS thread share its errno and thread-local storage.  A system call
 * a tick interrupts is restarted when its record is resumed (SA_RESTART);
 * calls the kernel restarts through restart_syscall (nanosleep, poll, ...)
 * keep their state per OS thread, so bracket those with disable/enable
 * too if another green thread may run in between.
 *
 * A pool may be shared by several preempted threads.  Call as_preempt_stop
 * before the thread exits.  Mode: hosted only.
 */
#ifndef ALTSTACK_PREEMPT_H
#define ALTSTACK_PREEMPT_H

#include "config.h"
#include "stack.h"
#include "activation.h"

AS_BEGIN_DECLS

#if AS_HOSTED
typedef void (*as_upcall)(as_act *interrupted, void *arg);
typedef struct as_preempt_cfg {
    unsigned     interval_us;   /* timer period                               */
    as_upcall    upcall;
    void        *arg;
    as_act_pool *pool;          /* where interrupted states are captured       */
    const as_stack *upcall_stack;
} as_preempt_cfg;

/* Counters of the calling thread since its as_preempt_start. */
typedef struct as_preempt_stats {
    uint64_t ticks;         /* signals the handler saw                        */
    uint64_t upcalls;       /* upcalls entered                                */
    uint64_t deferred;      /* ticks that landed in the handler, the upcall
                               or a busy resume                               */
    uint64_t dropped;       /* ticks held because the pool was empty          */
} as_preempt_stats;

/*
 * as_preempt_start - preempt the calling thread every interval_us.
 * Returns 0; -EINVAL if cfg, upcall, pool or upcall_stack is NULL,
 * interval_us is 0, the pool was never initialised (all zero) or the
 * upcall stack has less than 48 KiB; -EFAULT if part of the upcall stack
 * is not mapped; -EBUSY if the
 * thread already runs preemption; -ENOSPC if the kernel's signal frames
 * would not fit the 32 KiB signal area; or the -errno of sigaction,
 * sigaltstack, timer_create or timer_settime.  Not async-signal-safe.
 */
AS_API int  as_preempt_start(const as_preempt_cfg *cfg);

/* as_preempt_stop - disarm the thread's timer and restore its previous
 * sigaltstack.  Returns 0, or -EINVAL if preemption is not running. */
AS_API int  as_preempt_stop(void);

/* as_preempt_disable / as_preempt_enable - nestable; a tick that arrives
 * in between is delivered at the outermost enable.  Async-signal-safe.
 * Calls without a running preemption only count. */
AS_API void as_preempt_disable(void);
AS_API void as_preempt_enable(void);

/* as_preempt_signal - the real-time signal the timer uses (SIGRTMIN + 4).
 * Sending it to a preempted thread (pthread_kill) is an extra tick. */
AS_API int  as_preempt_signal(void);

/* as_preempt_get_stats - the calling thread's counters. */
AS_API as_preempt_stats as_preempt_get_stats(void);
#endif

AS_END_DECLS

#endif /* ALTSTACK_PREEMPT_H */
