/* SPDX-License-Identifier: MIT */
/* tests/test_preempt.c - timer-signal upcalls: register fidelity across
 * preemption, no leaks, disable/enable, an exhausted pool, the signal
 * mask, round-robin between fresh records. */
#include <criterion/criterion.h>
#include <altstack.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "act_probe.h"
#include "scale.h"

struct act_probe act_probe;

/* qemu-user delivers signals far more slowly: keep the counts lower there
 * (aarch64 runs only under qemu here), still thousands.  MANY can be set
 * with AS_TEST_PREEMPT_MANY, and FIDELITY is divided by AS_TEST_SCALE
 * (default 1; tests/scale.h), as in the full-system guests of
 * scripts/test-cpus. */
#if defined(__x86_64__)
# define MANY 100000
# define FIDELITY 5000
#else
# define MANY 10000
# define FIDELITY 2000
#endif

enum { NREC = 8 };
static as_act *recs;
static as_act_pool pool;
static as_stack upstack;

static void setup(void)
{
    recs = aligned_alloc(64, NREC * sizeof *recs);
    cr_assert_not_null(recs);
    cr_assert_eq(as_act_pool_init(&pool, recs, NREC), 0);
    cr_assert_eq(as_stack_alloc(&upstack, 256 << 10), 0);
}

static void teardown(void)
{
    as_stack_free(&upstack);
    free(recs);
}

static as_preempt_cfg cfg_for(as_upcall up, unsigned us)
{
    return (as_preempt_cfg){ .interval_us = us, .upcall = up, .arg = NULL,
                             .pool = &pool, .upcall_stack = &upstack };
}

/* A helper thread that sends extra ticks, so thousands of preemptions
 * take a fraction of a second even with a slow timer. */
static atomic_int kick_stop;
static void *kicker(void *arg)
{
    pthread_t t = *(pthread_t *)arg;
    while (!atomic_load(&kick_stop)) {
        pthread_kill(t, as_preempt_signal());
        usleep(5);
    }
    return NULL;
}

static pthread_t kick_start(pthread_t *target)
{
    pthread_t th;
    atomic_store(&kick_stop, 0);
    pthread_create(&th, NULL, kicker, target);
    return th;
}

static void kick_end(pthread_t th)
{
    atomic_store(&kick_stop, 1);
    pthread_join(th, NULL);
}

static volatile uint64_t upcalls, upcall_on_stack, upcall_bad;

static int on_upstack(void)
{
    char c;
    return (uintptr_t)&c >= (uintptr_t)upstack.lo && (uintptr_t)&c < (uintptr_t)upstack.hi;
}

/* ---- arguments ---- */

static void nop_upcall(as_act *a, void *arg) { (void)arg; as_act_resume(a); }

Test(preempt, rejects_bad_arguments, .init = setup, .fini = teardown)
{
    as_preempt_cfg c = cfg_for(nop_upcall, 1000);
    cr_assert_eq(as_preempt_start(NULL), -AS_EINVAL);
    c.interval_us = 0;
    cr_assert_eq(as_preempt_start(&c), -AS_EINVAL);
    c = cfg_for(NULL, 1000);
    cr_assert_eq(as_preempt_start(&c), -AS_EINVAL);
    c = cfg_for(nop_upcall, 1000);
    c.pool = NULL;
    cr_assert_eq(as_preempt_start(&c), -AS_EINVAL);
    as_stack small;
    cr_assert_eq(as_stack_alloc(&small, 16 << 10), 0);
    c = cfg_for(nop_upcall, 1000);
    c.upcall_stack = &small;
    cr_assert_eq(as_preempt_start(&c), -AS_EINVAL, "too small for the signal area");
    as_stack_free(&small);
    cr_assert_eq(as_preempt_stop(), -AS_EINVAL, "not running");
    c = cfg_for(nop_upcall, 100000);
    cr_assert_eq(as_preempt_start(&c), 0);
    cr_assert_eq(as_preempt_start(&c), -AS_EBUSY);
    cr_assert_eq(as_preempt_stop(), 0);
}

/* ---- every register survives preempt -> upcall -> resume ---- */

static volatile uint64_t want;

static void fidelity_upcall(as_act *a, void *arg)
{
    (void)arg;
    upcalls++;
    if (!on_upstack())
        upcall_bad++;
    if (as_act_kind(a) != AS_ACT_FULL)
        upcall_bad++;
    if (upcalls >= want) {
#if defined(__x86_64__)
        act_probe.stop = 1;
#else
        a->pstate |= 1u << 30;      /* Z: the aarch64 loop's stop request */
#endif
    }
    as_act_resume(a);
}

Test(preempt, every_register_survives_preemption, .init = setup, .fini = teardown)
{
    act_probe_fill(11);
    upcalls = 0;
    want = (uint64_t)test_scaled(FIDELITY, 1);
    as_preempt_cfg c = cfg_for(fidelity_upcall, 200);
    cr_assert_eq(as_preempt_start(&c), 0);
    pthread_t self = pthread_self();
    pthread_t k = kick_start(&self);
    uint64_t ret = act_probe_run();
    kick_end(k);
    as_preempt_stop();

    cr_assert_geq(upcalls, want);
    cr_assert_eq(upcall_bad, 0, "upcalls off their stack or with a non-FULL record");
    act_probe_check(ret);
    cr_assert_eq(as_act_pool_free(&pool), NREC, "no record leaked");
}

/* ---- 100,000 preemptions of C code: the pool is full again ---- */

static void count_upcall(as_act *a, void *arg)
{
    (void)arg;
    upcalls++;
    as_act_resume(a);
}

Test(preempt, no_leak_after_many_preemptions, .init = setup, .fini = teardown)
{
    upcalls = 0;
    as_preempt_cfg c = cfg_for(count_upcall, 100);
    cr_assert_eq(as_preempt_start(&c), 0);
    pthread_t self = pthread_self();
    pthread_t k = kick_start(&self);
    volatile uint64_t spin = 0;
    uint64_t many = (uint64_t)test_env_count("AS_TEST_PREEMPT_MANY", MANY);
    while (upcalls < many)
        spin++;
    kick_end(k);
    as_preempt_stop();
    cr_assert_geq(upcalls, many);
    cr_assert_eq(as_act_pool_free(&pool), NREC, "every record is back");
    as_preempt_stats st = as_preempt_get_stats();
    cr_assert_geq(st.upcalls, many);
    cr_assert_geq(st.ticks, st.upcalls);
}

/* ---- disable / enable ---- */

Test(preempt, disabled_ticks_wait_for_the_outermost_enable, .init = setup, .fini = teardown)
{
    upcalls = 0;
    as_preempt_cfg c = cfg_for(count_upcall, 200);
    cr_assert_eq(as_preempt_start(&c), 0);
    for (int round = 0; round < 20; round++) {
        as_preempt_disable();
        as_preempt_disable();
        uint64_t u0 = upcalls, t0 = as_preempt_get_stats().ticks;
        while (as_preempt_get_stats().ticks == t0)
            ;                                   /* a tick arrives ... */
        cr_assert_eq(upcalls, u0, "... and is held");
        as_preempt_enable();
        cr_assert_eq(upcalls, u0, "inner enable: still held");
        as_preempt_enable();
        cr_assert_geq(upcalls, u0 + 1, "outermost enable delivered it");
    }
    as_preempt_stop();
    cr_assert_eq(as_act_pool_free(&pool), NREC);
}

/* ---- an empty pool drops the tick, never crashes ---- */

static as_act *volatile kept;
static as_act kept_copy;

static void keep_upcall(as_act *a, void *arg)
{
    (void)arg;
    upcalls++;
    if (!kept) {
        /* Keep every record the pool has: resume copies, which do not
         * release anything. */
        kept = a;
        memcpy(&kept_copy, a, sizeof *a);
        as_act_resume(&kept_copy);
    }
    as_act_resume(a);
}

Test(preempt, empty_pool_holds_ticks, .init = setup, .fini = teardown)
{
    as_act *drain[NREC];
    for (int i = 0; i < NREC - 1; i++)
        drain[i] = as_act_alloc(&pool);     /* leave one */
    upcalls = 0;
    kept = NULL;
    as_preempt_cfg c = cfg_for(keep_upcall, 100);
    cr_assert_eq(as_preempt_start(&c), 0);
    while (!kept)
        ;
    cr_assert_eq(as_act_pool_free(&pool), 0);
    uint64_t u0 = upcalls;
    while (as_preempt_get_stats().dropped < 20)
        ;                                   /* ticks come, no record for them */
    cr_assert_eq(upcalls, u0, "no upcall without a record");
    as_act_release(kept);                   /* one record back: upcalls resume */
    while (upcalls < u0 + 10)
        ;
    as_preempt_stop();
    for (int i = 0; i < NREC - 1; i++)
        as_act_release(drain[i]);
    cr_assert_eq(as_act_pool_free(&pool), NREC);
}

/* ---- the signal mask the interrupted code had is the one it resumes with ---- */

Test(preempt, resumed_code_keeps_its_signal_mask, .init = setup, .fini = teardown)
{
    sigset_t blk, old, now;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &blk, &old);
    upcalls = 0;
    as_preempt_cfg c = cfg_for(count_upcall, 100);
    cr_assert_eq(as_preempt_start(&c), 0);
    while (upcalls < 200)
        ;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    as_preempt_stop();
    cr_assert(sigismember(&now, SIGUSR2), "still blocked");
    cr_assert(!sigismember(&now, as_preempt_signal()), "the tick signal is not left blocked");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- round-robin between fresh records: each makes progress ---- */

enum { NG = 3 };
static as_act *slots[NG + 1];           /* [0] = the test itself */
static int cur;
static volatile uint64_t progress[NG];
static as_stack gstacks[NG];

static void green(void *arg)
{
    volatile uint64_t *p = arg;
    for (;;)
        (*p)++;
}

static void rr_upcall(as_act *a, void *arg)
{
    (void)arg;
    upcalls++;
    slots[cur] = a;
    cur = (cur + 1) % (NG + 1);
    as_act_resume(slots[cur]);
}

Test(preempt, round_robin_between_fresh_records, .init = setup, .fini = teardown)
{
    static as_act fresh[NG];
    for (int i = 0; i < NG; i++) {
        cr_assert_eq(as_stack_alloc(&gstacks[i], 64 << 10), 0);
        as_act_init(&fresh[i], &gstacks[i], green, (void *)&progress[i]);
        slots[i + 1] = &fresh[i];
    }
    cur = 0;
    upcalls = 0;
    as_preempt_cfg c = cfg_for(rr_upcall, 200);
    cr_assert_eq(as_preempt_start(&c), 0);
    for (;;) {
        int all = 1;
        for (int i = 0; i < NG; i++)
            all &= progress[i] > 1000;
        if (all && upcalls > 100)
            break;
    }
    /* Park the green threads: they stay in the slots; stop ticking. */
    as_preempt_disable();
    as_preempt_stop();
    for (int i = 0; i < NG; i++) {
        cr_assert_gt(progress[i], 1000, "thread %d ran", i);
        /* their pooled records are still held by the scheduler */
    }
    for (int i = 1; i <= NG; i++)
        as_act_release(slots[i]);
    cr_assert_eq(as_act_pool_free(&pool), NREC);
    for (int i = 0; i < NG; i++)
        as_stack_free(&gstacks[i]);
}

/* ---- a tick during the upcall is deferred, never nested ---- */

static volatile int in_upcall;
static volatile uint64_t nested, waited;

static void slow_upcall(as_act *a, void *arg)
{
    (void)arg;
    if (in_upcall)
        nested++;
    in_upcall = 1;
    upcalls++;
    if (waited < 20) {
        /* Stay until a tick lands here. */
        uint64_t d0 = as_preempt_get_stats().deferred;
        while (as_preempt_get_stats().deferred == d0)
            ;
        waited++;
    }
    in_upcall = 0;
    as_act_resume(a);
}

Test(preempt, ticks_during_the_upcall_are_deferred, .init = setup, .fini = teardown)
{
    upcalls = 0;
    as_preempt_cfg c = cfg_for(slow_upcall, 100);
    cr_assert_eq(as_preempt_start(&c), 0);
    pthread_t self = pthread_self();
    pthread_t k = kick_start(&self);
    while (waited < 20)
        ;
    kick_end(k);
    as_preempt_stop();
    cr_assert_eq(nested, 0, "an upcall started inside another");
    cr_assert_geq(as_preempt_get_stats().deferred, 20);
    cr_assert_eq(as_act_pool_free(&pool), NREC);
}

/* ---- stop disarms the timer and puts the old sigaltstack back ---- */

Test(preempt, stop_disarms_and_restores, .init = setup, .fini = teardown)
{
    stack_t before, during, after;
    sigaltstack(NULL, &before);
    upcalls = 0;
    as_preempt_cfg c = cfg_for(count_upcall, 100);
    cr_assert_eq(as_preempt_start(&c), 0);
    sigaltstack(NULL, &during);
    cr_assert(!(during.ss_flags & SS_DISABLE), "the signal area is installed");
    while (upcalls < 10)
        ;
    cr_assert_eq(as_preempt_stop(), 0);
    uint64_t t0 = as_preempt_get_stats().ticks;
    struct timespec ts = { 0, 20 * 1000 * 1000 };   /* 200 periods */
    while (nanosleep(&ts, &ts) != 0)
        ;
    cr_assert_eq(as_preempt_get_stats().ticks, t0, "no tick after stop");
    sigaltstack(NULL, &after);
    cr_assert_eq(after.ss_flags, before.ss_flags);
    cr_assert_eq(after.ss_sp, before.ss_sp);
    cr_assert_eq(as_preempt_stop(), -AS_EINVAL, "already stopped");
}

/* ---- a long upcall: one held tick, not a storm ---- */

static uint64_t thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void burn_cpu_ms(uint64_t ms)
{
    uint64_t end = thread_cpu_ms() + ms;
    while (thread_cpu_ms() < end)
        ;
}

static void long_upcall(as_act *a, void *arg)
{
    (void)arg;
    upcalls++;
    burn_cpu_ms(20);                    /* two periods */
    as_act_resume(a);
}

Test(preempt, a_long_upcall_holds_one_tick, .init = setup, .fini = teardown)
{
    upcalls = 0;
    as_preempt_cfg c = cfg_for(long_upcall, 10000);
    cr_assert_eq(as_preempt_start(&c), 0);
    uint64_t c0 = thread_cpu_ms();
    burn_cpu_ms(250);
    uint64_t cpu = thread_cpu_ms() - c0;
    as_preempt_stats st = as_preempt_get_stats();
    as_preempt_stop();
    cr_assert_geq(st.upcalls, 3, "upcalls ran");
    /* One signal per period of CPU time (the kernel may round periods up
     * to its tick), whatever lands in the upcall. */
    cr_assert_leq(st.ticks, cpu / 10 + 3, "%llu signals for %llu upcalls in %llu ms of CPU",
                  (unsigned long long)st.ticks, (unsigned long long)st.upcalls,
                  (unsigned long long)cpu);
    cr_assert_gt(st.deferred, 0, "ticks landed in the upcall and were held");
    cr_assert_eq(as_act_pool_free(&pool), NREC);
}

/* ---- as_preempt_yield ---- */

static volatile int last_kind;
static void kind_upcall(as_act *a, void *arg)
{
    (void)arg;
    upcalls++;
    last_kind = as_act_kind(a);
    as_act_resume(a);
}

Test(preempt, yield_enters_the_upcall_with_a_call_record, .init = setup, .fini = teardown)
{
    cr_assert_eq(as_preempt_yield(), -AS_EINVAL, "not running");
    upcalls = 0;
    as_preempt_cfg c = cfg_for(kind_upcall, 10000000);
    cr_assert_eq(as_preempt_start(&c), 0);
    for (int i = 0; i < 100; i++) {
        uint64_t u0 = upcalls;
        cr_assert_eq(as_preempt_yield(), 0);
        cr_assert_eq(upcalls, u0 + 1);
        cr_assert_eq(last_kind, AS_ACT_CALL);
    }
    as_preempt_disable();
    cr_assert_eq(as_preempt_yield(), -AS_EBUSY, "disabled");
    as_preempt_enable();
    as_preempt_stats st = as_preempt_get_stats();
    as_preempt_stop();
    cr_assert_eq(st.yields, 100, "the refused one is not counted");
    cr_assert_geq(st.upcalls, 100);
    cr_assert_eq(as_act_pool_free(&pool), NREC);
}
