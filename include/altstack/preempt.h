/* SPDX-License-Identifier: MIT */
/*
 * altstack/preempt.h - hosted: timer-signal upcalls delivering activations.
 *
 * Scheduler activations in userspace.  as_preempt_start arms a per-thread
 * timer on the thread's own CPU-time clock (timer_create with
 * CLOCK_THREAD_CPUTIME_ID and SIGEV_THREAD_ID, the real-time signal
 * as_preempt_signal()).  Each tick interrupts whatever the thread runs;
 * the handler captures the interrupted state into a record taken from
 * cfg->pool (an AS_ACT_FULL activation: every register and the FP/SIMD
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
 * (examples/preempt_threads.c is a round-robin scheduler in one OS thread;
 * examples/green_threads.c an M:N one: 1,000 green threads on 2 threads.)
 *
 * Time slices are thread CPU time.  A thread blocked in the kernel uses no
 * CPU time and gets no tick, so sleeping and waiting calls run to the end.
 * Linux notices CPU-time expiry at its scheduler tick, so the effective
 * period is at least one kernel tick (CONFIG_HZ: 4 ms at 250 Hz), whatever
 * interval_us says; and kernels built with CONFIG_POSIX_CPU_TIMERS_TASK_WORK
 * (x86_64 selects it since Linux 5.11; elsewhere see the kernel's config)
 * send the signal on the way back to user mode, never into a call that is
 * about to sleep.
 *
 * EINTR, exactly:
 *   - timer ticks on such a kernel: no call ever sees EINTR from one;
 *   - timer ticks on an older kernel: a tick whose expiry the kernel notices
 *     during the microseconds of CPU time a call spends in the kernel before
 *     it sleeps interrupts it: calls the kernel restarts under SA_RESTART
 *     (read/write on pipes, sockets and terminals, wait4, futex waits
 *     without a timeout, flock, ...) are restarted; nanosleep,
 *     clock_nanosleep, poll, ppoll, select, pselect, epoll_wait,
 *     sigtimedwait, futex waits with a timeout and the calls signal(7) lists
 *     as never restarted return EINTR (pthread_cond_timedwait and
 *     sem_timedwait retry inside glibc; POSIX lets the first wake spuriously);
 *   - extra ticks sent with pthread_kill(thread, as_preempt_signal()), and
 *     the program's own signals, interrupt calls like any handled signal:
 *     the same two lists apply.
 *
 * Whose tick it is.  The handler never reads thread-local storage: it finds
 * the thread's state from the timer's si_value and from the sigaltstack the
 * kernel ran it on (the top of that thread's upcall stack), so the upcall
 * always runs on the OS thread whose timer fired, with that thread's cfg.
 * A tick that lands while the thread runs another thread's transparent
 * delegation-lock critical section under that thread's thread pointer
 * (dlock.h; as_dlock_tls_is_clients()) is deferred to the end of that
 * section: the server delivers it right after the section has switched
 * back and its own thread pointer is live again.  Where sections run under
 * the server's own thread pointer, a tick in one is the server's like any
 * other and its upcall runs at once (on the server, with the section's
 * state in the record).  A client's upcall never runs on a server's thread.
 *
 * Guarantees:
 *   - The upcall never nests.  A tick that arrives while the handler or the
 *     upcall runs, while as_act_resume is still reading the record it
 *     resumes, while preemption is disabled, inside a foreign critical
 *     section (above) or with the pool empty is *deferred*: the thread's one
 *     pending flag is set and nothing is re-armed (one signal per tick, no
 *     storm; further ticks fold into the same pending one).  The pending
 *     tick is delivered once, as a CALL record of that point: by the
 *     outermost as_preempt_enable, at the end of the foreign section, or -
 *     after an upcall or a held handler - by the next tick, at most one
 *     period of CPU time after the upcall resumed something.
 *   - The resumed code runs with the signal mask it had when interrupted:
 *     the handler runs with every signal blocked and the upcall starts by
 *     restoring the mask the signal frame saved; the handler is never left
 *     through sigreturn.  The mask belongs to the OS thread; a record
 *     resumed on a thread runs with that thread's mask (aarch64 FULL
 *     records: with the mask saved in their frame, activation.h).  So on
 *     x86_64 a green thread preempted inside one of the program's signal
 *     handlers leaves that handler's mask to whatever the upcall resumes
 *     next, until it runs again and its handler returns.
 *   - The upcall runs on the region of upcall_stack below its top 32 KiB,
 *     which is the thread's sigaltstack while preemption is on, so the
 *     preempted stacks never receive a signal frame and need no room for
 *     one.  The program's own SA_ONSTACK handlers run in that 32 KiB too
 *     (ticks that land in them are deferred); calling sigaltstack while
 *     preemption runs is undefined.  If the upcall returns, the
 *     interrupted record is resumed.
 *   - fork: the child has no timer and no preemption (as_preempt_stop
 *     returns -EINVAL there, as_preempt_start works, the sigaltstack from
 *     before the parent's start is back); the parent keeps its own.
 *   - A thread that exits with preemption on is stopped at its exit.
 *
 * Who may call what, concurrently:
 *
 *   function                   from
 *   as_preempt_start/stop      the thread itself, not from the upcall;
 *                              any number of threads at once, each its own
 *   as_preempt_disable/enable  the thread itself (async-signal-safe)
 *   as_preempt_yield           the thread itself, not from the upcall
 *   the upcall                 runs on the thread that was interrupted
 *
 * The upcall runs where a signal handler would: the code it interrupted may
 * hold a libc lock (malloc, stdio), so the upcall itself calls only
 * async-signal-safe functions, and green threads that call non-reentrant
 * functions bracket them with as_preempt_disable/enable.  Green threads on
 * one OS thread share its errno and thread-local storage.  A green thread
 * that takes a delegation lock brackets the whole lock..unlock (or the
 * as_dlock_call) with as_preempt_disable/enable: the lock's waiting state
 * belongs to the OS thread and is used last-in first-out.  Inside a
 * transparent critical section run under a client's thread pointer,
 * disable/enable and get_stats act on the client's counters (they use TLS);
 * the server's ticks are deferred there anyway.  A system call a tick
 * interrupts is restarted when its record is resumed (SA_RESTART); calls the
 * kernel restarts through restart_syscall keep their state per OS thread,
 * so bracket those with disable/enable if another green thread may run in
 * between.
 *
 * Undefined (not detected): resuming a thread's records on a thread whose
 * upcall is not prepared for them is the scheduler's business, not ours;
 * changing the sigaltstack, the tick signal's disposition or its mask in
 * the upcall while preemption runs; as_preempt_start/stop from the upcall.
 *
 * A pool may be shared by several preempted threads.  Mode: hosted only.
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

/* At most this many threads run preemption at once. */
#define AS_PREEMPT_MAX_THREADS 256

/* Counters of the calling thread since its as_preempt_start (after
 * as_preempt_stop: the values it ended with). */
typedef struct as_preempt_stats {
    uint64_t ticks;         /* signals of this thread the handler saw         */
    uint64_t upcalls;       /* upcalls entered (ticks, held ticks, yields)    */
    uint64_t deferred;      /* ticks held: in the handler, the upcall, a busy
                               resume, a disabled section or a foreign
                               critical section; any number fold into one
                               pending tick                                   */
    uint64_t dropped;       /* ticks held because the pool was empty          */
    uint64_t yields;        /* as_preempt_yield calls that were not refused   */
} as_preempt_stats;

/*
 * as_preempt_start - preempt the calling thread every interval_us.
 * Returns 0; -EINVAL if cfg, upcall, pool or upcall_stack is NULL,
 * interval_us is 0, the pool was never initialised (all zero) or the
 * upcall stack has less than 48 KiB; -EFAULT if part of the upcall stack
 * is not mapped; -EBUSY if the
 * thread already runs preemption; -ENOSPC if the kernel's signal frames
 * would not fit the 32 KiB signal area; or the -errno of sigaction,
 * sigaltstack, timer_create or timer_settime; -EAGAIN if
 * AS_PREEMPT_MAX_THREADS threads run preemption already.  interval_us is
 * thread CPU time (see above).  Not async-signal-safe.
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

/* as_preempt_yield - enter the upcall now, as a tick would, with a CALL
 * record of this call; returns 0 once that record is resumed (perhaps on
 * another OS thread).  -EINVAL if preemption is not running, -EBUSY when
 * called from the upcall, with preemption disabled or inside a foreign
 * critical section, -EAGAIN if the pool has no free record.
 * Async-signal-safe. */
AS_API int  as_preempt_yield(void);

/* as_preempt_signal - the real-time signal the timer uses (SIGRTMIN + 4).
 * Sending it to a preempted thread (pthread_kill) is an extra tick. */
AS_API int  as_preempt_signal(void);

/* as_preempt_get_stats - the calling thread's counters. */
AS_API as_preempt_stats as_preempt_get_stats(void);
#endif

AS_END_DECLS

#endif /* ALTSTACK_PREEMPT_H */
