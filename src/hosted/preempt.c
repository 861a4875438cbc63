/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/preempt.c - scheduler activations in userspace: a per-thread
 * timer signal whose handler turns the interrupted execution into a pooled
 * activation record and enters the thread's upcall with it.
 *
 * The upcall stack doubles as the signal stack.  Its top AS__PREEMPT_ALT
 * bytes are the thread's sigaltstack (SA_ONSTACK); the upcall runs below
 * them:
 *
 *     hi +--------------------+
 *        | signal frames and  |  sigaltstack: the kernel puts the handler's
 *        | the handler        |  frame here (or below the current sp, if it
 *        +--------------------+  is already inside)
 *        | upcall frames      |  as_call_on(upcall region, ...)
 *     lo +--------------------+
 *
 * so "is the interrupted sp anywhere in [lo, hi)" answers "did the tick
 * land in the handler or the upcall", from the handler's first instruction
 * on, with no flag to set and clear.  Such a tick is deferred, never
 * nested onto the upcall stack: the handler re-arms the timer to fire again
 * in AS__PREEMPT_RETRY_US (20 us, or the period if shorter) and returns,
 * so the tick lands right after the upcall has resumed something.  The
 * green threads' own stacks never receive a signal frame.
 *
 * The signal mask.  The kernel blocks the tick signal while the handler
 * runs, so handlers never nest (real-time signals queue: with SA_NODEFER a
 * burst of queued ticks would stack one frame per tick before the first
 * handler ran an instruction).  Since we leave the handler by jumping
 * rather than through sigreturn, upcall_entry sets the mask back to the
 * one saved in the signal frame (one rt_sigprocmask, where sigreturn would
 * have been): the upcall, and the code it resumes, run with the mask the
 * interrupted code had.  Queued ticks then arrive on the upcall stack, one
 * at a time, and are deferred.
 *
 * Rules the handler follows, in order:
 *   1. not started on this thread (stale tick after stop)       ignore
 *   2. sp in the upcall stack                              defer (re-arm)
 *   3. pc in the busy part of as_act_resume (the record it is
 *      resuming is still being read)                       defer (re-arm)
 *   4. preemption disabled                              pending = 1, return
 *   5. no free record                                   pending = 1, return
 *   6. capture (as_act_from_ucontext, which rolls a resume tail forward)
 *      and enter the upcall; never return through sigreturn.
 * A pending tick is delivered by the outermost as_preempt_enable, or by
 * the next tick.
 */
#include "hosted.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/auxv.h>

#define AS__PREEMPT_ALT (32u << 10)     /* sigaltstack carved off the top */
#define AS__PREEMPT_MIN (AS__PREEMPT_ALT + (16u << 10))
#define AS__PREEMPT_RETRY_US 20         /* a deferred tick comes back after */

struct preempt_thread {
    as_preempt_cfg cfg;
    as_stack       up;              /* upcall region, below the altstack */
    uintptr_t      lo, hi;          /* the whole upcall stack            */
    timer_t        timer;
    stack_t        old_ss;
    sigset_t       mask;            /* the interrupted code's mask        */
    volatile sig_atomic_t active, disabled, pending;
    as_preempt_stats stats;
};

static __thread struct preempt_thread thr __attribute__((tls_model("initial-exec")));

static int preempt_sig(void) { return SIGRTMIN + 4; }

int as_preempt_signal(void) { return preempt_sig(); }

static void *upcall_entry(void *arg)
{
    as_act *a = arg;
    struct preempt_thread *t = &thr;
    if (as_act_kind(a) == AS_ACT_FULL) {
        /* From the handler: the kernel blocked the tick signal for it.
         * Back to the interrupted code's mask; queued ticks that arrive
         * now find us on the upcall stack and are deferred. */
        pthread_sigmask(SIG_SETMASK, &t->mask, NULL);
    }
    t->stats.upcalls++;
    t->cfg.upcall(a, t->cfg.arg);
    /* The upcall returned instead of resuming something: continue the
     * interrupted code, as if there had been no tick. */
    as_act_resume(a);
}

/* Capture what was interrupted into a pooled record and enter the
 * upcall.  `uc` is a signal frame, or NULL when as_preempt_enable
 * delivers a pending tick itself (then the record is a CALL capture). */
static int deliver(struct preempt_thread *t, const void *uc)
{
    as_act *a = as_act_alloc(t->cfg.pool);
    if (!a) {
        t->pending = 1;
        t->stats.dropped++;
        return 0;
    }
    t->pending = 0;
    if (uc) {
        as_act_from_ucontext(a, uc);
        t->mask = ((const ucontext_t *)uc)->uc_sigmask;
    } else if (as_act_capture(a))
        return 1;                   /* resumed */
    as_call_on(&t->up, upcall_entry, a);
    __builtin_unreachable();
}

/* Next tick in first_us, then every interval_us.  Async-signal-safe. */
static int arm(struct preempt_thread *t, unsigned first_us)
{
    unsigned every = t->cfg.interval_us;
    if (first_us > every)
        first_us = every;
    struct itimerspec its;
    its.it_interval.tv_sec = every / 1000000;
    its.it_interval.tv_nsec = (long)(every % 1000000) * 1000;
    its.it_value.tv_sec = first_us / 1000000;
    its.it_value.tv_nsec = (long)(first_us % 1000000) * 1000;
    return timer_settime(t->timer, 0, &its, NULL);
}

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si;
    struct preempt_thread *t = &thr;
    if (!t->active)
        return;
    t->stats.ticks++;
    const mcontext_t *mc = &((const ucontext_t *)uc)->uc_mcontext;
#if AS_ARCH_X86_64
    uintptr_t sp = mc->gregs[REG_RSP], pc = mc->gregs[REG_RIP];
#else
    uintptr_t sp = mc->sp, pc = mc->pc;
#endif
    if ((sp >= t->lo && sp < t->hi) || as_act_resume_busy(pc)) {
        t->stats.deferred++;
        arm(t, AS__PREEMPT_RETRY_US);   /* come back soon, not a period */
        return;
    }
    if (t->disabled) {
        t->pending = 1;
        return;
    }
    deliver(t, uc);
}

static int install_handler(void)
{
    static int installed;
    if (__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);       /* the kernel adds the signal itself */
    if (sigaction(preempt_sig(), &sa, NULL) != 0)
        return -errno;
    __atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
    return 0;
}

int as_preempt_start(const as_preempt_cfg *cfg)
{
    struct preempt_thread *t = &thr;
    if (!cfg || !cfg->upcall || !cfg->pool || !cfg->upcall_stack || !cfg->interval_us)
        return -EINVAL;
    const as_stack *s = cfg->upcall_stack;
    uintptr_t lo = (uintptr_t)s->lo, hi = as__align_down((uintptr_t)s->hi, 16);
    if (!lo || hi <= lo || hi - lo < AS__PREEMPT_MIN)
        return -EINVAL;
    /* A zeroed pool was never initialised: every tick would be dropped. */
    if (!cfg->pool->records || !cfg->pool->n)
        return -EINVAL;
    /* The whole upcall stack must be mapped: the first tick writes its
     * signal frame at the top.  msync fails with ENOMEM on a hole and
     * does nothing for anonymous memory. */
    uintptr_t pg = as__align_down(lo, as__page_size());
    if (msync((void *)pg, hi - pg, MS_ASYNC) != 0)
        return errno == ENOMEM ? -EFAULT : -errno;
    size_t minsig = getauxval(AT_MINSIGSTKSZ);
    if (minsig * 2 > AS__PREEMPT_ALT)
        return -ENOSPC;
    if (t->active)
        return -EBUSY;
    int err = install_handler();
    if (err)
        return err;

    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->lo = lo;
    t->hi = hi;
    t->up.lo = (void *)lo;
    t->up.hi = (void *)(hi - AS__PREEMPT_ALT);
    stack_t ss = { .ss_sp = (void *)(hi - AS__PREEMPT_ALT), .ss_size = AS__PREEMPT_ALT };
    if (sigaltstack(&ss, &t->old_ss) != 0)
        return -errno;

    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = preempt_sig();
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &t->timer) != 0) {
        err = -errno;
        sigaltstack(&t->old_ss, NULL);
        return err;
    }
    t->active = 1;
    if (arm(t, cfg->interval_us) != 0) {
        err = -errno;
        as_preempt_stop();
        return err;
    }
    return 0;
}

int as_preempt_stop(void)
{
    struct preempt_thread *t = &thr;
    if (!t->active)
        return -EINVAL;
    t->active = 0;                  /* ticks already queued are ignored */
    timer_delete(t->timer);
    /* The old alternate stack can only be put back from outside it. */
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_ONSTACK))
        sigaltstack(&t->old_ss, NULL);
    t->pending = 0;
    t->disabled = 0;
    return 0;
}

void as_preempt_disable(void)
{
    thr.disabled++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void as_preempt_enable(void)
{
    struct preempt_thread *t = &thr;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (t->disabled > 0 && --t->disabled == 0 && t->pending && t->active)
        deliver(t, NULL);
}

as_preempt_stats as_preempt_get_stats(void)
{
    return thr.stats;
}
