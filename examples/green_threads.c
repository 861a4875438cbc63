/* SPDX-License-Identifier: MIT */
/*
 * examples/green_threads.c - a preemptive M:N scheduler: 1,000 green
 * threads on 2 OS threads.
 *
 *   green_threads [seconds]        (default 2)
 *
 * Each OS thread runs preemption (as_preempt_start) with the same upcall:
 * it files the interrupted green thread at the tail of one shared run
 * queue and resumes the one at its head, so green threads migrate freely
 * between the two OS threads.  Every green thread has its own guarded
 * stack (as_stack_alloc).  Three kinds run:
 *
 *   workers   compute a little, then push to or pop from a shared work
 *             queue under a delegation lock (combining mode: whichever OS
 *             thread holds it runs the other's critical section), then
 *             give up their slice (as_preempt_yield);
 *   sleepers  nanosleep(500 us), which blocks their OS thread meanwhile
 *             (that is what a blocking call does in an M:N scheduler) and,
 *             since ticks count CPU time, is never cut short; then yield;
 *   hogs      compute and never yield: only the timer takes the CPU from
 *             them, every 1 ms of CPU time (Linux rounds CPU-time timers
 *             up to its scheduler tick).
 *
 * The rules a green thread follows (preempt.h): a delegation lock, and
 * anything else that keeps per-OS-thread state, is taken between
 * as_preempt_disable and as_preempt_enable, so that the green thread
 * cannot be moved to the other OS thread in the middle.
 *
 * At the end the program prints how the CPU was shared (per-thread
 * progress of each kind: percentiles and Jain's fairness index) and the
 * throughput, and checks that every green thread progressed, the queue's
 * counts agree from both sides, every sleep was complete, and every
 * activation record is back in its pool.  Exit status 0 if all hold.
 */
#include <altstack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

enum {
    NOS = 2,                    /* OS threads                           */
    NGREEN = 1000,
    NSLEEPERS = 50,
    NHOGS = 10,
    SLICE_US = 1000,
    SLEEP_US = 500,
    QCAP = 256,
    NPOOL = NGREEN + 16 * NOS,  /* one record per green thread + slack  */
    RQCAP = 2048,               /* > NGREEN + NOS, a power of two       */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the run queue: touched only by upcalls (ticks are held there) ----- */

static struct {
    atomic_flag lock;
    as_act *q[RQCAP];
    unsigned head, n;
} rq = { ATOMIC_FLAG_INIT, { 0 }, 0, 0 };

static void rq_lock(void)
{
    unsigned spins = 0;
    while (atomic_flag_test_and_set_explicit(&rq.lock, memory_order_acquire))
        if (++spins % 64 == 0)
            sched_yield();      /* the holder's OS thread may be off-CPU */
}

static void rq_unlock(void) { atomic_flag_clear_explicit(&rq.lock, memory_order_release); }

static void rq_push(as_act *a) { rq.q[(rq.head + rq.n++) % RQCAP] = a; }

static as_act *rq_pop(void)
{
    if (!rq.n)
        return NULL;
    as_act *a = rq.q[rq.head];
    rq.head = (rq.head + 1) % RQCAP;
    rq.n--;
    return a;
}

/* ---- the scheduler: one upcall, one state per OS thread ---------------- */

struct os_thread {
    pthread_t th;
    as_stack up;
    as_act *home;               /* the OS thread's own code, parked      */
    int running_home;
    as_preempt_stats stats;
};

static struct os_thread os[NOS];
static atomic_int stop;
static as_act_pool pool;

static void upcall(as_act *cur, void *arg)
{
    struct os_thread *k = arg;
    rq_lock();
    if (k->running_home)
        k->home = cur;          /* home never joins the shared queue   */
    else
        rq_push(cur);
    as_act *next = atomic_load(&stop) ? NULL : rq_pop();
    k->running_home = !next;
    rq_unlock();
    as_act_resume(next ? next : k->home);
}

static void *os_main(void *arg)
{
    struct os_thread *k = arg;
    if (as_stack_alloc(&k->up, 256 << 10) != 0)
        abort();
    k->running_home = 1;
    as_preempt_cfg cfg = { .interval_us = SLICE_US, .upcall = upcall, .arg = k,
                           .pool = &pool, .upcall_stack = &k->up };
    int err = as_preempt_start(&cfg);
    if (err) {
        fprintf(stderr, "as_preempt_start: %d\n", err);
        exit(1);
    }
    /* Hand the CPU to the green threads; back here once `stop` is set. */
    while (!atomic_load(&stop))
        as_preempt_yield();
    as_preempt_disable();
    k->stats = as_preempt_get_stats();
    as_preempt_stop();
    as_preempt_enable();
    as_stack_free(&k->up);
    return NULL;
}

/* ---- the shared work queue, under a delegation lock -------------------- */

static as_dlock qlock = AS_DLOCK_INITIALIZER;
static struct {
    long buf[QCAP];
    unsigned head, n;
    long pushed, popped, pushed_sum, popped_sum;
} wq;                           /* under qlock */

static long pushes[NGREEN], pops[NGREEN], pushed_by[NGREEN], popped_by[NGREEN];

/* The green thread's own tally is kept before as_preempt_enable too: a
 * held tick delivered there parks the thread, and the tally must not lag
 * the queue's. */
static void push(long me, long v)       /* the transparent API */
{
    int ok = 0;
    as_preempt_disable();
    as_dlock_lock(&qlock);
    if (wq.n < QCAP) {
        wq.buf[(wq.head + wq.n++) % QCAP] = v;
        wq.pushed++;
        wq.pushed_sum += v;
        ok = 1;
    }
    as_dlock_unlock(&qlock);
    if (ok) {
        pushes[me]++;
        pushed_by[me] += v;
    }
    as_preempt_enable();
}

static void *pop_cs(void *out)
{
    if (!wq.n)
        return NULL;
    long v = wq.buf[wq.head];
    wq.head = (wq.head + 1) % QCAP;
    wq.n--;
    wq.popped++;
    wq.popped_sum += v;
    *(long *)out = v;
    return out;
}

static void pop(long me)                 /* the closure API */
{
    long v;
    as_preempt_disable();
    if (as_dlock_call(&qlock, pop_cs, &v)) {
        pops[me]++;
        popped_by[me] += v;
    }
    as_preempt_enable();
}

/* ---- the green threads -------------------------------------------------- */

static volatile long progress[NGREEN];
static atomic_long bad_sleeps;

static void compute(int n)
{
    volatile double x = 1.0;
    for (int i = 0; i < n; i++)
        x = x * 1.0000001 + 1e-9;
}

static void worker(void *arg)
{
    long me = (long)arg;
    for (long i = 0;; i++) {
        compute(5000);
        if (i & 1)
            pop(me);
        else
            push(me, me * 1000003 + i);
        progress[me]++;
        as_preempt_yield();
    }
}

static void sleeper(void *arg)
{
    long me = (long)arg;
    for (;;) {
        uint64_t t0 = now_ns();
        struct timespec ts = { 0, SLEEP_US * 1000L };
        if (nanosleep(&ts, NULL) != 0 || now_ns() - t0 < SLEEP_US * 1000u)
            atomic_fetch_add(&bad_sleeps, 1);
        progress[me]++;
        as_preempt_yield();
    }
}

static void hog(void *arg)
{
    long me = (long)arg;
    for (;;) {
        compute(5000);
        progress[me]++;
    }
}

/* ---- report ------------------------------------------------------------- */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Percentiles and Jain's index (sum x)^2 / (n sum x^2) of progress[lo, hi). */
static void fairness(const char *kind, int lo, int hi, const char *unit)
{
    int n = hi - lo;
    long *v = malloc(n * sizeof *v);
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        v[i] = progress[lo + i];
        s += v[i];
        s2 += (double)v[i] * v[i];
    }
    qsort(v, n, sizeof *v, cmp_long);
    printf("  %-8s %4d threads, %s per thread: min %ld  p10 %ld  median %ld  p90 %ld  max %ld;"
           "  Jain's index %.3f\n", kind, n, unit, v[0], v[n / 10], v[n / 2], v[n * 9 / 10],
           v[n - 1], s2 > 0 ? s * s / (n * s2) : 0.0);
    free(v);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    if (seconds <= 0)
        seconds = 2.0;
    as_act *records = aligned_alloc(64, NPOOL * sizeof *records);
    as_act *fresh = aligned_alloc(64, NGREEN * sizeof *fresh);
    as_stack *stacks = calloc(NGREEN, sizeof *stacks);
    if (!records || !fresh || !stacks || as_act_pool_init(&pool, records, NPOOL) != 0)
        return 1;
    for (long i = 0; i < NGREEN; i++) {
        if (as_stack_alloc(&stacks[i], 32 << 10) != 0)
            return 1;
        void (*fn)(void *) = i < NSLEEPERS ? sleeper : i < NSLEEPERS + NHOGS ? hog : worker;
        as_act_init(&fresh[i], &stacks[i], fn, (void *)i);
        rq_push(&fresh[i]);
    }

    uint64_t t0 = now_ns();
    for (int k = 0; k < NOS; k++)
        pthread_create(&os[k].th, NULL, os_main, &os[k]);
    struct timespec run = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
    while (nanosleep(&run, &run) != 0)
        ;
    atomic_store(&stop, 1);
    for (int k = 0; k < NOS; k++)
        pthread_join(os[k].th, NULL);
    double secs = (now_ns() - t0) / 1e9;

    /* Every green thread is parked in the run queue now. */
    int ok = 1;
    unsigned parked = rq.n;
    long stalled = 0, pushed = 0, popped = 0, psum = 0, qsum = 0, left_sum = 0;
    for (int i = 0; i < NGREEN; i++) {
        stalled += progress[i] == 0;
        pushed += pushes[i];
        popped += pops[i];
        psum += pushed_by[i];
        qsum += popped_by[i];
    }
    for (unsigned i = 0; i < wq.n; i++)
        left_sum += wq.buf[(wq.head + i) % QCAP];
    as_preempt_stats st = { 0 };
    for (int k = 0; k < NOS; k++) {
        st.ticks += os[k].stats.ticks;
        st.upcalls += os[k].stats.upcalls;
        st.deferred += os[k].stats.deferred;
        st.yields += os[k].stats.yields;
    }
    long work = 0;
    for (int i = NSLEEPERS; i < NGREEN; i++)
        work += progress[i];

    printf("%d green threads (%d workers, %d sleepers, %d CPU hogs) on %d OS threads, "
           "%d us slices of CPU time, %.2f s\n", NGREEN, NGREEN - NSLEEPERS - NHOGS,
           NSLEEPERS, NHOGS, NOS, SLICE_US, secs);
    printf("  switches: %llu upcalls (%llu timer ticks, %llu yields; %llu ticks held)\n",
           (unsigned long long)st.upcalls, (unsigned long long)st.ticks,
           (unsigned long long)st.yields, (unsigned long long)st.deferred);
    printf("  throughput: %.0f queue operations/s, %.0f work units/s, %.0f switches/s\n",
           (wq.pushed + wq.popped) / secs, work / secs, st.upcalls / secs);
    fairness("workers", NSLEEPERS + NHOGS, NGREEN, "rounds");
    fairness("sleepers", 0, NSLEEPERS, "sleeps");
    fairness("hogs", NSLEEPERS, NSLEEPERS + NHOGS, "units");

    if (stalled) {
        printf("FAIL: %ld green threads never ran\n", stalled);
        ok = 0;
    }
    if (atomic_load(&bad_sleeps)) {
        printf("FAIL: %ld sleeps were cut short\n", atomic_load(&bad_sleeps));
        ok = 0;
    }
    printf("  queue: pushed %ld = popped %ld + left %u; value sums %s; "
           "the threads' own counts %s\n", wq.pushed, wq.popped, wq.n,
           wq.pushed_sum == wq.popped_sum + left_sum ? "agree" : "DISAGREE",
           pushed == wq.pushed && popped == wq.popped && psum == wq.pushed_sum &&
           qsum == wq.popped_sum ? "agree" : "DISAGREE");
    if (wq.pushed != wq.popped + (long)wq.n || wq.pushed_sum != wq.popped_sum + left_sum ||
        pushed != wq.pushed || popped != wq.popped || psum != wq.pushed_sum ||
        qsum != wq.popped_sum) {
        printf("FAIL: queue counts\n");
        ok = 0;
    }
    if (parked != NGREEN) {
        printf("FAIL: %u green threads parked, want %d\n", parked, NGREEN);
        ok = 0;
    }
    as_act *a;
    while ((a = rq_pop()))
        as_act_release(a);      /* fresh records are not pooled: ignored */
    size_t free_now = as_act_pool_free(&pool);
    printf("  records: %zu of %d back in the pool\n", free_now, NPOOL);
    if (free_now != NPOOL) {
        printf("FAIL: %zu records leaked\n", NPOOL - free_now);
        ok = 0;
    }
    for (int i = 0; i < NGREEN; i++)
        as_stack_free(&stacks[i]);
    free(stacks);
    free(fresh);
    free(records);
    printf(ok ? "ok\n" : "FAILED\n");
    return ok ? 0 : 1;
}
