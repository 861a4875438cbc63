/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/preempt.c - scheduler activations in userspace: a per-thread
 * timer signal whose handler turns the interrupted execution into a pooled
 * activation record and enters the thread's upcall with it.
 *
 * The tick.  Each preempted thread owns a POSIX timer on its own CPU-time
 * clock (CLOCK_THREAD_CPUTIME_ID), delivered to it alone (SIGEV_THREAD_ID).
 * A thread blocked in the kernel uses no CPU time, so it gets no tick: its
 * sleeping and waiting calls run to completion.  Linux notices CPU-time
 * expiry at its scheduler tick and (CONFIG_POSIX_CPU_TIMERS_TASK_WORK,
 * which x86_64 selects) sends the signal on the way back to user mode,
 * never into a call that is about to sleep.
 *
 * Whose tick is it.  The handler never reads thread-local storage: a
 * delegation-lock server running a client's transparent critical section
 * has installed the client's thread pointer (src/arch/<arch>/dlock.S), so
 * TLS would name the wrong thread.  The state is found from what the kernel
 * gives instead, in one table of slots:
 *   - a timer tick carries (generation << 16 | slot) in si_value;
 *   - any tick (also pthread_kill's) runs on the receiving thread's
 *     sigaltstack, which is the top of that thread's upcall stack; the
 *     handler's own frame address picks the slot whose stack holds it, and
 *     also checks the si_value answer.
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
 * land in the handler, the upcall or a handler the program runs on its
 * sigaltstack", with no flag to set and clear.
 *
 * The signal mask.  The handler runs with every signal blocked (sa_mask
 * full), so nothing can overwrite its frame on the sigaltstack before
 * upcall_entry has copied what it needs; upcall_entry then sets the mask
 * the signal frame saved (one rt_sigprocmask, where sigreturn would have
 * been), so the upcall and the code it resumes run with the mask the
 * interrupted code had.
 *
 * Rules the handler follows, in order:
 *   1. no slot of a running preemption holds this frame        ignore
 *   2. interrupted sp in the upcall stack, or pc in the busy part of
 *      as_act_resume                                            defer
 *   3. the thread pointer is not the thread's own (it runs another
 *      thread's transparent critical section)                   defer
 *   4. preemption disabled                                      defer
 *   5. no free record                             defer (stats.dropped)
 *   6. capture (as_act_from_ucontext, which rolls a resume tail forward)
 *      and enter the upcall; never return through sigreturn.
 * "Defer" sets the thread's one pending flag and returns: nothing is
 * re-armed, so a deferred tick costs one signal, never a storm.  The
 * pending tick is delivered by the outermost as_preempt_enable, at the end
 * of the foreign critical section (as__dl_section_end), or by the next
 * tick, whichever comes first.
 */
#include "hosted.h"
#include "../dlock_internal.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/auxv.h>

/* Under AddressSanitizer, as_call_on tells ASan about the stack change,
 * and ASan allows one such switch at a time per thread: a tick that lands
 * inside an as_switch of the interrupted code would start a second one.
 * So the upcall is entered the way as_act_resume leaves it, without
 * telling ASan (src/hosted/asan.c). */
#if defined(AS_ASAN) && AS_ASAN
# include <sanitizer/asan_interface.h>
AS_HIDDEN void *as__raw_call_on(const as_stack *s, void *(*fn)(void *), void *arg);
# define enter_upcall as__raw_call_on
/* ASan then cannot clear the shadow of upcall frames that never returned
 * (it warns once that it ignores __asan_handle_no_return): clear it for
 * the part of the upcall region below us, each time. */
# define fresh_upcall_shadow(t) \
    __asan_unpoison_memory_region((t)->up.lo, \
        (uintptr_t)__builtin_frame_address(0) - 256 - (uintptr_t)(t)->up.lo)
#else
# define fresh_upcall_shadow(t) ((void)0)
# define enter_upcall as_call_on
#endif

#define AS__PREEMPT_ALT (32u << 10)     /* sigaltstack carved off the top */
#define AS__PREEMPT_MIN (AS__PREEMPT_ALT + (16u << 10))

struct preempt_thread {
    as_preempt_cfg cfg;
    as_stack       up;              /* upcall region, below the altstack */
    uintptr_t      lo, hi;          /* the whole upcall stack            */
    uintptr_t      tp;              /* the thread's own thread pointer   */
    pid_t          tid;
    timer_t        timer;
    stack_t        old_ss;
    sigset_t       mask;            /* the interrupted code's mask        */
    unsigned       gen;             /* bumped each time the slot is taken */
    int            active;          /* atomic: ticks are ours to take     */
    int            disabled;        /* atomic loads/stores: the nesting   */
    int            pending;         /* atomic: one held tick              */
    as_preempt_stats stats;
};

static struct preempt_thread slots[AS_PREEMPT_MAX_THREADS];
static unsigned char slot_taken[AS_PREEMPT_MAX_THREADS];    /* under slot_mutex */
static unsigned slots_hwm;                                  /* atomic */
static pthread_mutex_t slot_mutex = PTHREAD_MUTEX_INITIALIZER;

/* What the thread's own code uses: never read by the handler. */
static __thread struct preempt_thread *self
    __attribute__((tls_model("initial-exec")));
static __thread int idle_disabled __attribute__((tls_model("initial-exec")));
static __thread as_preempt_stats last_stats __attribute__((tls_model("initial-exec")));

static int tick_sig;                /* SIGRTMIN + 4, set before any tick */

#define ld(p)    __atomic_load_n(p, __ATOMIC_RELAXED)
#define st(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)

static int preempt_sig(void)
{
    if (!tick_sig)
        tick_sig = SIGRTMIN + 4;
    return tick_sig;
}

int as_preempt_signal(void) { return preempt_sig(); }

static pid_t gettid_raw(void) { return (pid_t)syscall(SYS_gettid); }

/* The live thread pointer equals the thread's own (trivially so where
 * nothing may change it).  Touches no TLS. */
static int own_tp(const struct preempt_thread *t)
{
    return !as__dl_tp_ok || as__dl_tp() == t->tp;
}

/* ---- finding the state: rule 1 ---------------------------------------- */

static int holds(const struct preempt_thread *t, uintptr_t frame)
{
    return __atomic_load_n(&t->active, __ATOMIC_ACQUIRE) && frame >= t->lo && frame < t->hi;
}

static struct preempt_thread *find(const siginfo_t *si, uintptr_t frame)
{
    if (si && si->si_code == SI_TIMER) {
        uintptr_t v = (uintptr_t)si->si_value.sival_ptr;
        unsigned i = (unsigned)(v & 0xffff);
        if (i < AS_PREEMPT_MAX_THREADS) {
            struct preempt_thread *t = &slots[i];
            if (holds(t, frame) && ld(&t->gen) == (unsigned)(v >> 16))
                return t;
        }
        return NULL;                /* a stale timer's tick */
    }
    unsigned n = __atomic_load_n(&slots_hwm, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++)
        if (holds(&slots[i], frame))
            return &slots[i];
    return NULL;
}

/* ---- entering the upcall ----------------------------------------------- */

struct entry_msg {
    struct preempt_thread *t;
    as_act *a;
    int from_signal;
};

static void *upcall_entry(void *arg)
{
    /* Copy the message first: it lies on the stack we came from. */
    struct entry_msg m = *(struct entry_msg *)arg;
    struct preempt_thread *t = m.t;
    fresh_upcall_shadow(t);
    if (m.from_signal) {
        /* The handler ran with every signal blocked: back to the
         * interrupted code's mask.  Ticks that arrive now find us on
         * the upcall stack and are deferred. */
        pthread_sigmask(SIG_SETMASK, &t->mask, NULL);
    } else {
        st(&t->disabled, 0);        /* set by deliver; we are on the upcall stack */
    }
    t->stats.upcalls++;
    t->cfg.upcall(m.a, t->cfg.arg);
    /* The upcall returned instead of resuming something: continue the
     * interrupted code, as if there had been no tick. */
    as_act_resume(m.a);
}

/* Capture what was interrupted into a pooled record and enter the
 * upcall.  `uc` is a signal frame, or NULL when a held tick is delivered
 * from the thread's own code (then the record is a CALL capture).
 * Returns 0 when no record was free (the tick stays pending), 1 after the
 * CALL record was resumed (maybe on another OS thread). */
static int deliver(struct preempt_thread *t, const void *uc)
{
    /* From the thread's own code, ticks are deferred until upcall_entry:
     * a tick in between must not capture this path and let it finish
     * entering the upcall later, perhaps on another OS thread. */
    if (!uc)
        st(&t->disabled, 1);
    as_act *a = as_act_alloc(t->cfg.pool);
    if (!a) {
        st(&t->pending, 1);
        t->stats.dropped++;
        if (!uc)
            st(&t->disabled, 0);
        return 0;
    }
    st(&t->pending, 0);
    struct entry_msg m = { t, a, uc != NULL };
    if (uc) {
        as_act_from_ucontext(a, uc);
        t->mask = ((const ucontext_t *)uc)->uc_sigmask;
    } else if (as_act_capture(a)) {
        return 1;                   /* resumed */
    }
    enter_upcall(&t->up, upcall_entry, &m);
    __builtin_unreachable();
}

static void defer(struct preempt_thread *t)
{
    t->stats.deferred++;
    st(&t->pending, 1);
}

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    struct preempt_thread *t = find(si, (uintptr_t)__builtin_frame_address(0));
    if (!t)
        return;
    t->stats.ticks++;
    const mcontext_t *mc = &((const ucontext_t *)uc)->uc_mcontext;
#if AS_ARCH_X86_64
    uintptr_t sp = mc->gregs[REG_RSP], pc = mc->gregs[REG_RIP];
#else
    uintptr_t sp = mc->sp, pc = mc->pc;
#endif
    if ((sp >= t->lo && sp < t->hi) || as_act_resume_busy(pc) || !own_tp(t) ||
        ld(&t->disabled)) {
        defer(t);
        return;
    }
    deliver(t, uc);
}

/*
 * Deliver t's held tick from the thread's own code, if it may be: not on
 * the upcall stack, on the OS thread t belongs to (TLS may be a client's
 * inside a transparent critical section) and under its own thread pointer.
 */
static int may_deliver(const struct preempt_thread *t)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    return !(here >= t->lo && here < t->hi) && t->tid == gettid_raw() && own_tp(t);
}

static int deliver_held(struct preempt_thread *t)
{
    if (!may_deliver(t))
        return -AS_EBUSY;
    return deliver(t, NULL) ? 0 : -AS_EAGAIN;
}

/* A transparent critical section run under a client's thread pointer
 * just ended on this thread (src/dlock.c); we have our own back. */
static void section_end(void)
{
    struct preempt_thread *t = self;
    if (t && ld(&t->pending) && !ld(&t->disabled) && ld(&t->active))
        deliver_held(t);
}

/* ---- set-up ------------------------------------------------------------ */

/* Next tick in first_us of thread CPU time, then every interval_us. */
static int arm(struct preempt_thread *t)
{
    unsigned every = t->cfg.interval_us;
    struct itimerspec its;
    its.it_interval.tv_sec = every / 1000000;
    its.it_interval.tv_nsec = (long)(every % 1000000) * 1000;
    its.it_value = its.it_interval;
    return timer_settime(t->timer, 0, &its, NULL);
}

static pthread_key_t exit_key;

static void release_slot(struct preempt_thread *t)
{
    pthread_mutex_lock(&slot_mutex);
    slot_taken[t - slots] = 0;
    pthread_mutex_unlock(&slot_mutex);
}

/* A thread that exits with preemption on: disarm and free its slot. */
static void on_exit_thread(void *p)
{
    struct preempt_thread *t = p;
    if (self != t || !ld(&t->active))
        return;
    __atomic_store_n(&t->active, 0, __ATOMIC_RELEASE);
    timer_delete(t->timer);
    self = NULL;
    release_slot(t);
}

/* fork: the child has no timers (POSIX), hence no preemption; the slots
 * of the parent's other threads are not the child's either. */
static void on_fork_child(void)
{
    struct preempt_thread *t = self;
    if (t) {
        last_stats = t->stats;
        stack_t cur;
        if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_ONSTACK))
            sigaltstack(&t->old_ss, NULL);
    }
    memset(slots, 0, sizeof slots);
    memset(slot_taken, 0, sizeof slot_taken);
    slots_hwm = 0;
    pthread_mutex_init(&slot_mutex, NULL);
    self = NULL;
    idle_disabled = 0;
}

static int init_err;
static void init_once(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);        /* see "The signal mask" above */
    preempt_sig();
    if (sigaction(preempt_sig(), &sa, NULL) != 0 ||
        (errno = pthread_key_create(&exit_key, on_exit_thread)) != 0 ||
        (errno = pthread_atfork(NULL, NULL, on_fork_child)) != 0) {
        init_err = -errno;
        return;
    }
    __atomic_store_n(&as__dl_section_end, section_end, __ATOMIC_RELAXED);
}

static struct preempt_thread *claim_slot(void)
{
    struct preempt_thread *t = NULL;
    pthread_mutex_lock(&slot_mutex);
    for (unsigned i = 0; i < AS_PREEMPT_MAX_THREADS; i++) {
        if (slot_taken[i])
            continue;
        slot_taken[i] = 1;
        t = &slots[i];
        if (i >= slots_hwm)
            __atomic_store_n(&slots_hwm, i + 1, __ATOMIC_RELEASE);
        break;
    }
    pthread_mutex_unlock(&slot_mutex);
    return t;
}

int as_preempt_start(const as_preempt_cfg *cfg)
{
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
    if (self)
        return -EBUSY;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    if (init_err)
        return init_err;
    struct preempt_thread *t = claim_slot();
    if (!t)
        return -EAGAIN;

    unsigned gen = (ld(&t->gen) + 1) & 0xffff;
    memset(t, 0, sizeof *t);
    st(&t->gen, gen);
    t->cfg = *cfg;
    t->lo = lo;
    t->hi = hi;
    t->tp = as__dl_tp_ok ? as__dl_tp() : 0;
    t->tid = gettid_raw();
    t->up.lo = (void *)lo;
    t->up.hi = (void *)(hi - AS__PREEMPT_ALT);
    int err;
    stack_t ss = { .ss_sp = (void *)(hi - AS__PREEMPT_ALT), .ss_size = AS__PREEMPT_ALT };
    if (sigaltstack(&ss, &t->old_ss) != 0) {
        err = -errno;
        release_slot(t);
        return err;
    }
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = preempt_sig();
    sev.sigev_value.sival_ptr = (void *)(((uintptr_t)gen << 16) | (uintptr_t)(t - slots));
    sev._sigev_un._tid = t->tid;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &t->timer) != 0) {
        err = -errno;
        sigaltstack(&t->old_ss, NULL);
        release_slot(t);
        return err;
    }
    self = t;
    pthread_setspecific(exit_key, t);
    __atomic_store_n(&t->active, 1, __ATOMIC_RELEASE);
    if (arm(t) != 0) {
        err = -errno;
        as_preempt_stop();
        return err;
    }
    return 0;
}

int as_preempt_stop(void)
{
    struct preempt_thread *t = self;
    if (!t)
        return -EINVAL;
    __atomic_store_n(&t->active, 0, __ATOMIC_RELEASE);  /* queued ticks: ignored */
    timer_delete(t->timer);
    /* The old alternate stack can only be put back from outside it. */
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_ONSTACK))
        sigaltstack(&t->old_ss, NULL);
    last_stats = t->stats;
    self = NULL;
    idle_disabled = 0;
    pthread_setspecific(exit_key, NULL);
    release_slot(t);
    return 0;
}

/* ---- disable / enable / yield ------------------------------------------ */

void as_preempt_disable(void)
{
    struct preempt_thread *t = self;
    if (t)
        st(&t->disabled, ld(&t->disabled) + 1);
    else
        idle_disabled++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

void as_preempt_enable(void)
{
    struct preempt_thread *t = self;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (!t) {
        if (idle_disabled > 0)
            idle_disabled--;
        return;
    }
    int d = ld(&t->disabled);
    if (d <= 0)
        return;
    st(&t->disabled, d - 1);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (d == 1 && ld(&t->pending))
        deliver_held(t);
}

int as_preempt_yield(void)
{
    struct preempt_thread *t = self;
    if (!t)
        return -EINVAL;
    if (ld(&t->disabled) || !may_deliver(t))
        return -EBUSY;
    t->stats.yields++;
    return deliver(t, NULL) ? 0 : -EAGAIN;
}

as_preempt_stats as_preempt_get_stats(void)
{
    struct preempt_thread *t = self;
    return t ? t->stats : last_stats;
}
