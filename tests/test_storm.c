/* SPDX-License-Identifier: MIT */
/*
 * tests/test_storm.c - switching under a cross-thread signal flood.
 *
 * A second thread sends SIGURG to the switching thread (tgkill), the next
 * one as soon as the last was handled and the switching thread has begun
 * another round.  Signals therefore land at every instruction of the
 * switch paths, as_call_on and the entry trampoline included, yet never
 * pile up faster than the switching thread can take them: an unthrottled
 * flood keeps a signal pending across each sigreturn, and where the
 * handler is slow (libunwind under emulation) the thread then runs little
 * but handlers.  The handler walks the interrupted stack with libunwind
 * (unw_backtrace), which needs the CFI to be right at each of them.  The
 * switching side checks its results and, through the register probe, that
 * every callee-saved register survives each switch.  The test fails on a
 * crash, a wrong result or a register that changed; it asserts nothing
 * about how many signals arrived beyond "some".
 *
 * The last test adds activations: the handler captures the interrupted
 * state from its ucontext into a pooled record (as_act_from_ucontext) and
 * leaves either by resuming that record or through sigreturn of a frame
 * rewritten from it, while the interrupted thread switches, runs
 * as_call_on and does capture/resume round trips of its own from the same
 * pool.  Every interrupted instruction of those paths must come back
 * exactly.
 *
 * (tests/test_unwind.c has the single-thread SIGPROF timer storm.)
 */
#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <libunwind.h>
#include <altstack.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <ucontext.h>
#include "regs.h"
#include "act_probe.h"

struct act_probe act_probe;     /* tests/arch/<arch>/act_probe.S needs it */

#define NOINLINE __attribute__((noinline))
#define NPEERS   3
#define ROUNDS   60000          /* at least this many switches ...        */
#define SIGNALS  10000          /* ... and until this many signals landed, */
#define MAX_ROUNDS 5000000ul    /* but never more than this                */

static atomic_bool g_stop;
static atomic_ulong g_signals, g_deep, g_sent, g_round;
static pid_t g_target;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si; (void)uc;
    void *buf[64];
    int n = unw_backtrace(buf, 64);
    atomic_fetch_add_explicit(&g_signals, 1, memory_order_relaxed);
    if (n > 3)
        atomic_fetch_add_explicit(&g_deep, 1, memory_order_relaxed);
}

/* Wait until *v is no longer old; false if the test ended first.  The
 * wait sleeps between looks after a short spin: under emulation a
 * spinning thread runs emulated too and takes the CPU the switching
 * thread needs. */
static bool flood_wait(atomic_ulong *v, unsigned long old)
{
    static const struct timespec nap = { 0, 1000 };
    for (unsigned spins = 0; atomic_load_explicit(v, memory_order_relaxed) == old; spins++) {
        if (atomic_load_explicit(&g_stop, memory_order_relaxed))
            return false;
        if (spins >= 64)
            nanosleep(&nap, NULL);
    }
    return true;
}

/* Send a signal, wait until a handler has counted it and then until the
 * switching thread has begun another round after that: at most one
 * signal is ever pending, and the thread runs between any two. */
static void *flood(void *arg)
{
    (void)arg;
    pid_t pid = getpid();
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        unsigned long handled = atomic_load_explicit(&g_signals, memory_order_relaxed);
        syscall(SYS_tgkill, pid, g_target, SIGURG);
        atomic_fetch_add_explicit(&g_sent, 1, memory_order_relaxed);
        if (!flood_wait(&g_signals, handled) ||
            !flood_wait(&g_round, atomic_load_explicit(&g_round, memory_order_relaxed)))
            break;
    }
    return NULL;
}

/* Keep going until the flood has really hit us, whatever the speed; each
 * call publishes the round for the flood to see. */
static bool more(unsigned long n)
{
    atomic_store_explicit(&g_round, n, memory_order_relaxed);
    return n < MAX_ROUNDS &&
           (n < ROUNDS || atomic_load_explicit(&g_signals, memory_order_relaxed) < SIGNALS);
}

static pthread_t start_flood(void)
{
    struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGURG, &sa, NULL), 0);
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    g_target = (pid_t)syscall(SYS_gettid);
    atomic_store(&g_stop, false);
    atomic_store(&g_signals, 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, flood, NULL), 0);
    return t;
}

static void stop_flood(pthread_t t)
{
    atomic_store(&g_stop, true);
    pthread_join(t, NULL);
    signal(SIGURG, SIG_IGN);
    cr_log_info("%lu signals sent, %lu handled (%lu backtraces deeper than 3)",
                atomic_load(&g_sent), atomic_load(&g_signals), atomic_load(&g_deep));
    cr_assert_gt(atomic_load(&g_signals), 0, "the flood reached the switching thread");
}

/* ---- switch + as_call_on, every switch through the register probe ---- */

static as_stack g_aux;

static NOINLINE void *triple(void *p)
{
    return (void *)((uintptr_t)p * 3 + 1);
}

/* Each peer yields acc back, having run a leaf on the aux stack; it checks
 * its own callee-saved registers across every switch, like the caller. */
static as_transfer peer(as_transfer t)
{
    uintptr_t acc = 0;
    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    for (uint64_t k = 1;; k++) {
        uintptr_t v = (uintptr_t)t.data;
        if (v == 0)
            return (as_transfer){ t.ctx, (void *)acc };
        acc += (uintptr_t)as_call_on(&g_aux, triple, (void *)v);
        test_regs_random(in, k * 7919 + v);
        t = test_switch_regs(t.ctx, (void *)acc, in, out);
        for (int i = 0; i < TEST_NREGS; i++)
            if ((in[i] ^ out[i]) & test_regs_mask(i))
                return (as_transfer){ t.ctx, (void *)(uintptr_t)-1 };
    }
}

/* Three peers on their own stacks, switched to in turn through the probe. */
struct peers {
    as_stack    s[NPEERS];
    as_transfer t[NPEERS];
    uintptr_t   expect[NPEERS];
};

static void peers_start(struct peers *p)
{
    memset(p, 0, sizeof *p);
    cr_assert_eq(as_stack_alloc(&g_aux, 64 << 10), 0);
    for (int i = 0; i < NPEERS; i++) {
        cr_assert_eq(as_stack_alloc(&p->s[i], 64 << 10), 0);
        p->t[i].ctx = as_ctx_make(&p->s[i], peer);
        cr_assert_not_null(p->t[i].ctx);
    }
}

static void check_regs(const char *what, unsigned long n, const uint64_t *in,
                       const uint64_t *out)
{
    for (int r = 0; r < TEST_NREGS; r++)
        cr_assert_eq((in[r] ^ out[r]) & test_regs_mask(r), 0,
                     "%s %lu: register %d was %#llx, came back %#llx", what, n, r,
                     (unsigned long long)in[r], (unsigned long long)out[r]);
}

/* Round n: switch to peer n % NPEERS, check its answer and our registers. */
static void peers_round(struct peers *p, unsigned long n)
{
    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    int i = (int)(n % NPEERS);
    uintptr_t v = (uintptr_t)n + 1;
    p->expect[i] += v * 3 + 1;
    test_regs_random(in, n);
    p->t[i] = test_switch_regs(p->t[i].ctx, (void *)v, in, out);
    cr_assert_not_null(p->t[i].ctx, "peer %d finished early (a register changed)", i);
    cr_assert_eq((uintptr_t)p->t[i].data, p->expect[i], "switch %lu", n);
    check_regs("switch", n, in, out);
}

static void peers_finish(struct peers *p)
{
    for (int i = 0; i < NPEERS; i++) {
        p->t[i] = as_switch(p->t[i].ctx, NULL);
        cr_assert_null(p->t[i].ctx);
        cr_assert_eq((uintptr_t)p->t[i].data, p->expect[i]);
        as_stack_free(&p->s[i]);
    }
    as_stack_free(&g_aux);
}

Test(storm, switch_and_call_on_under_signal_flood, .timeout = 300)
{
    static struct peers p;
    peers_start(&p);
    pthread_t fl = start_flood();
    for (unsigned long n = 0; more(n); n++)
        peers_round(&p, n);
    stop_flood(fl);
    peers_finish(&p);
}

/* ---- contexts made, run to the end and remade on the same stacks ---- */

static as_transfer short_life(as_transfer t)
{
    uintptr_t v = (uintptr_t)t.data;
    t = as_switch(t.ctx, (void *)(v + 1));
    return (as_transfer){ t.ctx, (void *)((uintptr_t)t.data * 2) };
}

Test(storm, entry_and_return_under_signal_flood, .timeout = 300)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 64 << 10), 0);
    pthread_t fl = start_flood();
    for (uintptr_t n = 1; more(n); n++) {
        as_transfer t = as_switch(as_ctx_make(&s, short_life), (void *)n);
        cr_assert_eq((uintptr_t)t.data, n + 1);
        t = as_switch(t.ctx, (void *)n);
        cr_assert_null(t.ctx);
        cr_assert_eq((uintptr_t)t.data, 2 * n);
    }
    stop_flood(fl);
    as_stack_free(&s);
}

/* ---- activations captured (and resumed) in the handler ---- */

#define NREC 8
static as_act_pool g_pool;
static as_act *g_recs;
static atomic_ulong g_bad, g_resumed, g_busy;
static atomic_bool g_blocked;

static uintptr_t interrupted_pc(const void *uc)
{
    const ucontext_t *u = uc;
#if defined(__x86_64__)
    return (uintptr_t)u->uc_mcontext.gregs[REG_RIP];
#else
    return (uintptr_t)u->uc_mcontext.pc;
#endif
}

static void on_signal_act(int sig, siginfo_t *si, void *uc)
{
    on_signal(sig, si, uc);
    if (as_act_resume_busy(interrupted_pc(uc))) {
        atomic_fetch_add_explicit(&g_busy, 1, memory_order_relaxed);
        return;                 /* a resume still reading its record: defer */
    }
    as_act *a = as_act_alloc(&g_pool);
    if (!a)
        return;                 /* the interrupted code holds them all */
    as_act_from_ucontext(a, uc);
    if (as_act_kind(a) != AS_ACT_FULL || as_act_pc(a) == 0 || as_act_sp(a) == 0)
        atomic_fetch_add_explicit(&g_bad, 1, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&g_resumed, 1, memory_order_relaxed) & 1) {
        /* Leave the handler through the record.  The kernel blocked SIGURG
         * for the handler and only sigreturn would unblock it: say so, and
         * the switching loop unblocks it again. */
        atomic_store_explicit(&g_blocked, true, memory_order_relaxed);
        as_act_resume(a);
    }
    as_act_to_ucontext(a, uc);  /* or through sigreturn of the frame    */
    as_act_release(a);
}

Test(storm, activations_under_signal_flood, .timeout = 300)
{
    cr_assert_eq(posix_memalign((void **)&g_recs, 64, NREC * sizeof(as_act)), 0);
    cr_assert_eq(as_act_pool_init(&g_pool, g_recs, NREC), 0);
    static struct peers p;
    peers_start(&p);
    /* Not SA_NODEFER: a handler that leaves through a record keeps SIGURG
     * blocked (the loop below unblocks it), and nested handlers would
     * stack up on the stack they interrupted. */
    pthread_t fl = start_flood();
    struct sigaction sa = { .sa_sigaction = on_signal_act,
                            .sa_flags = SA_SIGINFO | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGURG, &sa, NULL), 0);
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);

    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    unsigned long roundtrips = 0;
    for (unsigned long n = 0; more(n); n++) {
        peers_round(&p, n);
        if (atomic_exchange_explicit(&g_blocked, false, memory_order_relaxed))
            pthread_sigmask(SIG_UNBLOCK, &urg, NULL);
        as_act *a = as_act_alloc(&g_pool);
        if (a) {                        /* capture + resume, probed */
            test_regs_random(in, ~n);
            act_call_regs(a, in, out);  /* a is back in the pool after */
            roundtrips++;
            check_regs("round trip", n, in, out);
        }
    }
    stop_flood(fl);
    peers_finish(&p);
    cr_log_info("%lu capture/resume round trips; %lu handler captures, %lu deferred",
                roundtrips, atomic_load(&g_resumed), atomic_load(&g_busy));
    cr_assert_eq(atomic_load(&g_bad), 0, "a handler capture was not a full record");
    cr_assert_gt(atomic_load(&g_resumed), 0, "the handler captured something");
    cr_assert_eq(as_act_pool_free(&g_pool), NREC, "no record leaked");
    free(g_recs);
}
