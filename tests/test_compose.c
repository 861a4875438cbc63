/* SPDX-License-Identifier: MIT */
/*
 * tests/test_compose.c - the families together: preemption under blocking
 * calls, delegation locks (both modes, both APIs, preempted servers, long
 * sections), the program's own signals, fork, threads starting and
 * stopping preemption at once, and fibers mixed with activation records in
 * one preemptive scheduler.
 *
 * Every upcall here checks that it runs on the OS thread that started that
 * preemption, under that thread's own thread pointer, and never inside
 * another upcall of the same thread.  Durations are wall-clock bounds on
 * how long a test runs, never timed assertions; under qemu-user (aarch64)
 * loop counts are divided by AS_TEST_SCALE (default 4 there).
 */
#include <criterion/criterion.h>
#include <altstack.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "scale.h"

static long scale(void)
{
    return test_scale(AS_ARCH_AARCH64 ? 4 : 1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Use this thread's CPU for `us` microseconds of its own CPU time. */
static void burn_us(unsigned us)
{
    uint64_t end = cpu_ns() + (uint64_t)us * 1000;
    while (cpu_ns() < end)
        ;
}

static void spin_us(unsigned us)
{
    uint64_t end = now_ns() + (uint64_t)us * 1000;
    while (now_ns() < end)
        ;
}

static long gettid_raw(void) { return syscall(SYS_gettid); }

/* ---- one preempted thread, with a checking upcall ------------------------ */

enum { NREC = 64 };
static as_act *recs;
static as_act_pool pool;

static void pool_setup(void)
{
    recs = aligned_alloc(64, NREC * sizeof *recs);
    cr_assert_not_null(recs);
    cr_assert_eq(as_act_pool_init(&pool, recs, NREC), 0);
}

static void pool_teardown(void)
{
    cr_expect_eq(as_act_pool_free(&pool), NREC, "no record leaked");
    free(recs);
}

struct pt {
    long tid;
    pthread_t self;
    as_stack up;
    unsigned upcall_us;             /* time each upcall spends */
    atomic_int inside;
    atomic_long upcalls, call_upcalls, wrong_thread, wrong_tp, nested;
};

static void check_upcall(as_act *a, void *arg)
{
    struct pt *p = arg;
    if (atomic_fetch_add(&p->inside, 1) != 0)
        atomic_fetch_add(&p->nested, 1);
    if (gettid_raw() != p->tid)
        atomic_fetch_add(&p->wrong_thread, 1);
    if (!pthread_equal(pthread_self(), p->self))
        atomic_fetch_add(&p->wrong_tp, 1);
    if (as_act_kind(a) == AS_ACT_CALL)
        atomic_fetch_add(&p->call_upcalls, 1);
    if (p->upcall_us)
        spin_us(p->upcall_us);
    atomic_fetch_add(&p->upcalls, 1);
    atomic_fetch_sub(&p->inside, 1);
    as_act_resume(a);
}

/* Start preemption on the calling thread with check_upcall. */
static void pt_start(struct pt *p, unsigned interval_us, unsigned upcall_us)
{
    memset(p, 0, sizeof *p);
    p->tid = gettid_raw();
    p->self = pthread_self();
    p->upcall_us = upcall_us;
    cr_assert_eq(as_stack_alloc(&p->up, 256 << 10), 0);
    as_preempt_cfg c = { .interval_us = interval_us, .upcall = check_upcall,
                         .arg = p, .pool = &pool, .upcall_stack = &p->up };
    cr_assert_eq(as_preempt_start(&c), 0);
}

static void pt_stop(struct pt *p)
{
    cr_assert_eq(as_preempt_stop(), 0);
    as_stack_free(&p->up);
}

static void pt_check(struct pt *p, const char *who)
{
    cr_expect_eq(atomic_load(&p->wrong_thread), 0, "%s: upcalls on another OS thread", who);
    cr_expect_eq(atomic_load(&p->wrong_tp), 0, "%s: upcalls under a foreign thread pointer", who);
    cr_expect_eq(atomic_load(&p->nested), 0, "%s: two upcalls at once", who);
}

/* Run until preemption has certainly ticked: some upcalls happened. */
static void warm_up(struct pt *p)
{
    uint64_t end = now_ns() + 2000000000u;
    while (atomic_load(&p->upcalls) < 3 && now_ns() < end)
        burn_us(1000);
    cr_assert_geq(atomic_load(&p->upcalls), 3, "preemption is live");
}

/* ======================================================================== */
/* preemption x blocking calls                                               */
/* ======================================================================== */

#define SLEEP_MS 40

/* A blocked thread gets no tick (its CPU clock stands still) and no EINTR. */
static void blocking_check(const char *what, int (*call)(void *), void *arg)
{
    struct pt p;
    pt_start(&p, 1000, 0);
    warm_up(&p);
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = now_ns(), ticks0 = as_preempt_get_stats().ticks;
        errno = 0;
        int r = call(arg);
        int err = errno;
        uint64_t ms = (now_ns() - t0) / 1000000;
        uint64_t ticks = as_preempt_get_stats().ticks - ticks0;
        cr_expect_eq(r, 0, "%s returned %d, errno %d (%s) after %llu ms", what, r, err,
                     strerror(err), (unsigned long long)ms);
        cr_expect_geq(ms, SLEEP_MS, "%s lasted %llu ms", what, (unsigned long long)ms);
        cr_expect_leq(ticks, 2, "%s: %llu ticks while blocked", what, (unsigned long long)ticks);
        burn_us(3000);
    }
    pt_stop(&p);
    pt_check(&p, what);
}

static int do_nanosleep(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, SLEEP_MS * 1000000L };
    return nanosleep(&ts, NULL);
}

static int do_poll(void *arg)
{
    (void)arg;
    return poll(NULL, 0, SLEEP_MS);
}

struct piped { int fd[2]; };

static void *late_writer(void *arg)
{
    struct piped *pp = arg;
    struct timespec ts = { 0, (SLEEP_MS + 2) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
    ssize_t w = write(pp->fd[1], "x", 1);
    (void)w;
    return NULL;
}

static int do_read(void *arg)
{
    struct piped *pp = arg;
    pthread_t th;
    pthread_create(&th, NULL, late_writer, pp);
    char c;
    ssize_t n = read(pp->fd[0], &c, 1);
    pthread_join(th, NULL);
    return n == 1 ? 0 : -1;
}

static int do_cond_timedwait(void *arg)
{
    (void)arg;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += SLEEP_MS * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m);
    int r = pthread_cond_timedwait(&c, &m, &dl);
    pthread_mutex_unlock(&m);
    if (r != ETIMEDOUT) {
        errno = r;
        return -1;
    }
    return 0;
}

Test(compose, preempt_x_nanosleep, .init = pool_setup, .fini = pool_teardown)
{
    blocking_check("nanosleep(40 ms)", do_nanosleep, NULL);
}

Test(compose, preempt_x_poll, .init = pool_setup, .fini = pool_teardown)
{
    blocking_check("poll(NULL, 0, 40)", do_poll, NULL);
}

Test(compose, preempt_x_pipe_read, .init = pool_setup, .fini = pool_teardown)
{
    struct piped pp;
    cr_assert_eq(pipe(pp.fd), 0);
    blocking_check("read of a pipe written after 42 ms", do_read, &pp);
    close(pp.fd[0]);
    close(pp.fd[1]);
}

Test(compose, preempt_x_cond_timedwait, .init = pool_setup, .fini = pool_teardown)
{
    blocking_check("pthread_cond_timedwait(40 ms)", do_cond_timedwait, NULL);
}

/* ======================================================================== */
/* preemption x delegation locks                                             */
/* ======================================================================== */

enum { NCLIENTS = 3 };
enum api { TRANSPARENT, CLOSURE };

static struct {
    as_dlock lock;
    as_dserver srv;
    enum api api;
    atomic_int stop, ready;
    long counter;                   /* under the lock */
    int inside;                     /* under the lock: 1 while a section runs */
    long overlap;
    long ops[NCLIENTS];
    struct pt pts[NCLIENTS + 1];    /* [NCLIENTS] = the server */
    as_preempt_stats st[NCLIENTS + 1];
} dl;

/* A section: count, and every 4th one runs about 1 ms. */
static void section(long i)
{
    if (dl.inside++)
        dl.overlap++;
    dl.counter++;
    if ((i & 3) == 0)
        spin_us(1000);
    dl.inside--;
}

static void *section_cs(void *arg)
{
    section((long)arg);
    return NULL;
}

static void *dl_client(void *arg)
{
    long me = (long)arg;
    pt_start(&dl.pts[me], 300, 30);
    atomic_fetch_add(&dl.ready, 1);
    long i = 0;
    while (!atomic_load(&dl.stop)) {
        if (dl.api == TRANSPARENT || (i & 1)) {
            as_dlock_lock(&dl.lock);
            section(i);
            as_dlock_unlock(&dl.lock);
        } else {
            as_dlock_call(&dl.lock, section_cs, (void *)i);
        }
        i++;
        if (dl.api == TRANSPARENT && (i & 7) == 0)
            burn_us(200);           /* preempted outside sections too */
    }
    dl.ops[me] = i;
    dl.st[me] = as_preempt_get_stats();
    pt_stop(&dl.pts[me]);
    return NULL;
}

static void *dl_server(void *arg)
{
    (void)arg;
    pt_start(&dl.pts[NCLIENTS], 300, 30);
    atomic_fetch_add(&dl.ready, 1);
    as_dserver_run(&dl.srv);
    dl.st[NCLIENTS] = as_preempt_get_stats();
    pt_stop(&dl.pts[NCLIENTS]);
    return NULL;
}

static void dlock_check(bool server, enum api api)
{
    memset(&dl, 0, sizeof dl);
    dl.api = api;
    pthread_t th[NCLIENTS + 1];
    if (server) {
        cr_assert_eq(as_dserver_init(&dl.srv), 0);
        as_dlock_init(&dl.lock, &dl.srv);
        pthread_create(&th[NCLIENTS], NULL, dl_server, NULL);
    } else {
        as_dlock_init(&dl.lock, NULL);
    }
    for (long i = 0; i < NCLIENTS; i++)
        pthread_create(&th[i], NULL, dl_client, (void *)i);
    while (atomic_load(&dl.ready) < NCLIENTS + server)
        sched_yield();
    struct timespec run = { 0, 400 * 1000000L };
    while (nanosleep(&run, &run) != 0)
        ;
    atomic_store(&dl.stop, 1);
    for (int i = 0; i < NCLIENTS; i++)
        pthread_join(th[i], NULL);
    if (server) {
        as_dserver_stop(&dl.srv);
        pthread_join(th[NCLIENTS], NULL);
    }
    long total = 0;
    for (int i = 0; i < NCLIENTS; i++)
        total += dl.ops[i];
    cr_expect_eq(dl.counter, total, "every section ran once: %ld of %ld", dl.counter, total);
    cr_expect_eq(dl.overlap, 0, "sections overlapped");
    for (int i = 0; i < NCLIENTS + server; i++) {
        char who[32];
        snprintf(who, sizeof who, i < NCLIENTS ? "client %d" : "server", i);
        pt_check(&dl.pts[i], who);
    }
    uint64_t ticks = 0, upcalls = 0;
    for (int i = 0; i < NCLIENTS + server; i++) {
        ticks += dl.st[i].ticks;
        upcalls += dl.st[i].upcalls;
    }
    cr_expect_gt(upcalls, 0, "preemption was live (%llu ticks)", (unsigned long long)ticks);
    if (server && api == TRANSPARENT && as_dlock_tls_is_clients()) {
        /* The server spends most of its time in clients' sections, under
         * their thread pointers: its ticks there were held and delivered
         * at the end of the section, as CALL records. */
        struct pt *s = &dl.pts[NCLIENTS];
        cr_expect_gt(dl.st[NCLIENTS].deferred, 0, "ticks landed in foreign sections");
        cr_expect_gt(atomic_load(&s->call_upcalls), 0,
                     "held ticks were delivered at the end of the section");
    }
}

Test(compose, preempt_x_dlock_server_transparent, .init = pool_setup, .fini = pool_teardown)
{
    dlock_check(true, TRANSPARENT);
}

Test(compose, preempt_x_dlock_server_closure, .init = pool_setup, .fini = pool_teardown)
{
    dlock_check(true, CLOSURE);
}

Test(compose, preempt_x_dlock_combining_transparent, .init = pool_setup, .fini = pool_teardown)
{
    dlock_check(false, TRANSPARENT);
}

Test(compose, preempt_x_dlock_combining_closure, .init = pool_setup, .fini = pool_teardown)
{
    dlock_check(false, CLOSURE);
}

/* One tick, sent to the server while it runs a client's transparent
 * section: where the section runs under the client's thread pointer the
 * tick is held and delivered right after the section, on the server, as a
 * CALL record; in the fallback it is the server's at once. */
static struct {
    as_dlock lock;
    as_dserver srv;
    struct pt spt;
    atomic_int ready, section_over, upcall_saw_over, upcall_kind;
    long server_tid, client_tid, upcall_tid;
} ft;

static void ft_upcall(as_act *a, void *arg)
{
    (void)arg;
    if (!atomic_load(&ft.upcall_kind)) {
        atomic_store(&ft.upcall_saw_over, atomic_load(&ft.section_over) + 1);
        ft.upcall_tid = gettid_raw();
        atomic_store(&ft.upcall_kind, as_act_kind(a));
    }
    as_act_resume(a);
}

static void *ft_server(void *arg)
{
    (void)arg;
    memset(&ft.spt, 0, sizeof ft.spt);
    cr_assert_eq(as_stack_alloc(&ft.spt.up, 256 << 10), 0);
    as_preempt_cfg c = { .interval_us = 10000000, .upcall = ft_upcall,
                         .pool = &pool, .upcall_stack = &ft.spt.up };
    cr_assert_eq(as_preempt_start(&c), 0);
    ft.server_tid = gettid_raw();
    atomic_store(&ft.ready, 1);
    as_dserver_run(&ft.srv);
    as_preempt_stop();
    as_stack_free(&ft.spt.up);
    return NULL;
}

Test(compose, preempt_x_dlock_tick_inside_foreign_section, .init = pool_setup, .fini = pool_teardown)
{
    memset(&ft, 0, sizeof ft);
    cr_assert_eq(as_dserver_init(&ft.srv), 0);
    as_dlock_init(&ft.lock, &ft.srv);
    pthread_t th;
    pthread_create(&th, NULL, ft_server, NULL);
    while (!atomic_load(&ft.ready))
        sched_yield();
    ft.client_tid = gettid_raw();
    as_dlock_lock(&ft.lock);
    long running = gettid_raw();            /* the server, in its section */
    syscall(SYS_tgkill, getpid(), running, as_preempt_signal());
    spin_us(2000);
    atomic_store(&ft.section_over, 1);
    as_dlock_unlock(&ft.lock);
    uint64_t end = now_ns() + 2000000000u;
    while (!atomic_load(&ft.upcall_kind) && now_ns() < end)
        sched_yield();
    as_dserver_stop(&ft.srv);
    pthread_join(th, NULL);
    cr_assert_eq(running, ft.server_tid, "the section ran on the server");
    cr_assert_neq(atomic_load(&ft.upcall_kind), 0, "the tick was delivered");
    cr_expect_eq(ft.upcall_tid, ft.server_tid, "on the server's thread");
    if (as_dlock_tls_is_clients()) {
        cr_expect_eq(atomic_load(&ft.upcall_saw_over), 2, "held until the section ended");
        cr_expect_eq(atomic_load(&ft.upcall_kind), AS_ACT_CALL, "delivered from the server's code");
    } else {
        cr_expect_eq(atomic_load(&ft.upcall_saw_over), 1, "the server's at once, mid-section");
        cr_expect_eq(atomic_load(&ft.upcall_kind), AS_ACT_FULL);
    }
}

/* ======================================================================== */
/* preemption x the program's own signals                                    */
/* ======================================================================== */

static atomic_long usr1_count;
static void usr1_handler(int sig) { (void)sig; atomic_fetch_add(&usr1_count, 1); }

static atomic_int storm_stop;
static void *stormer(void *arg)
{
    pthread_t t = *(pthread_t *)arg;
    while (!atomic_load(&storm_stop)) {
        long c = atomic_load(&usr1_count);
        pthread_kill(t, SIGUSR1);
        /* one at a time: SIGUSR1 does not queue */
        while (atomic_load(&usr1_count) == c && !atomic_load(&storm_stop))
            ;
    }
    return NULL;
}

/* A computation whose result is known: preemption and signals in the
 * middle of it must not change it. */
static uint64_t checksum(long n)
{
    uint64_t h = 1469598103934665603ull;
    for (long i = 0; i < n; i++)
        h = (h ^ (uint64_t)i) * 1099511628211ull;
    return h;
}

Test(compose, preempt_x_sigusr1_storm, .init = pool_setup, .fini = pool_teardown)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = usr1_handler;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    long n = 2000000 / scale();
    uint64_t want = checksum(n);
    struct pt p;
    pt_start(&p, 500, 0);
    pthread_t self = pthread_self(), th;
    atomic_store(&storm_stop, 0);
    atomic_store(&usr1_count, 0);
    pthread_create(&th, NULL, stormer, &self);
    uint64_t end = now_ns() + 300000000u;
    long rounds = 0, bad = 0;
    /* The storm is a ping-pong of one signal at a time, so its rate is the
     * machine's (75 a second under ASan on a loaded 2-core machine): wait
     * for enough of them, with a generous limit, rather than for a rate. */
    uint64_t limit = now_ns() + 20000000000u;
    while ((now_ns() < end || atomic_load(&p.upcalls) < 3 ||
            atomic_load(&usr1_count) < 200 / scale()) && now_ns() < limit) {
        if (checksum(n) != want)
            bad++;
        rounds++;
    }
    atomic_store(&storm_stop, 1);
    pthread_join(th, NULL);
    pt_stop(&p);
    signal(SIGUSR1, SIG_DFL);
    cr_expect_eq(bad, 0, "%ld of %ld checksums wrong", bad, rounds);
    cr_expect_geq(atomic_load(&usr1_count), 200 / scale(), "the storm reached the thread: %ld", atomic_load(&usr1_count));
    cr_expect_geq(atomic_load(&p.upcalls), 3);
    pt_check(&p, "storm");
}

/* A handler of the program's own, SA_ONSTACK, that runs 2 ms: it runs in
 * the preemption's signal area, ticks that land in it are held (one
 * pending tick, no storm), and the program's sigaltstack is back after
 * as_preempt_stop. */
static struct pt *onstack_pt;
static atomic_long onstack_runs, onstack_upcalls_inside, onstack_off_area;

static void onstack_handler(int sig)
{
    (void)sig;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (onstack_pt && (here < (uintptr_t)onstack_pt->up.lo || here >= (uintptr_t)onstack_pt->up.hi))
        atomic_fetch_add(&onstack_off_area, 1);
    long u0 = onstack_pt ? atomic_load(&onstack_pt->upcalls) : 0;
    burn_us(2000);
    if (onstack_pt && atomic_load(&onstack_pt->upcalls) != u0)
        atomic_fetch_add(&onstack_upcalls_inside, 1);
    atomic_fetch_add(&onstack_runs, 1);
}

Test(compose, preempt_x_sa_onstack_handler, .init = pool_setup, .fini = pool_teardown)
{
    static char own_area[64 << 10];
    stack_t mine = { .ss_sp = own_area, .ss_size = sizeof own_area }, now;
    cr_assert_eq(sigaltstack(&mine, NULL), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = onstack_handler;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);

    struct pt p;
    pt_start(&p, 1000, 0);
    onstack_pt = &p;
    warm_up(&p);
    uint64_t c0 = cpu_ns();
    as_preempt_stats s0 = as_preempt_get_stats();
    for (int i = 0; i < 20; i++) {
        raise(SIGUSR2);
        burn_us(1000);
    }
    as_preempt_stats s1 = as_preempt_get_stats();
    uint64_t cpu_ms = (cpu_ns() - c0) / 1000000;
    onstack_pt = NULL;
    pt_stop(&p);
    cr_assert_eq(sigaltstack(NULL, &now), 0);
    cr_expect_eq(now.ss_sp, (void *)own_area, "the program's sigaltstack is back");
    raise(SIGUSR2);                         /* on the program's own area again */
    signal(SIGUSR2, SIG_DFL);
    stack_t off = { .ss_flags = SS_DISABLE };
    sigaltstack(&off, NULL);

    cr_expect_eq(atomic_load(&onstack_runs), 21);
    cr_expect_eq(atomic_load(&onstack_off_area), 0, "SA_ONSTACK ran in the signal area");
    cr_expect_eq(atomic_load(&onstack_upcalls_inside), 0, "an upcall ran inside the handler");
    /* One signal per expired period, however many land in the handler. */
    uint64_t ticks = s1.ticks - s0.ticks;
    cr_expect_leq(ticks, cpu_ms + 5, "%llu ticks in %llu ms of CPU time at 1 ms",
                  (unsigned long long)ticks, (unsigned long long)cpu_ms);
    pt_check(&p, "sa_onstack");
}

/* ======================================================================== */
/* preemption x fork                                                         */
/* ======================================================================== */

Test(compose, preempt_x_fork, .init = pool_setup, .fini = pool_teardown)
{
    struct pt p;
    pt_start(&p, 1000, 0);
    warm_up(&p);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fail = 0;
        uint64_t t0 = as_preempt_get_stats().ticks;
        burn_us(30000);
        if (as_preempt_get_stats().ticks != t0)
            fail |= 1;                      /* the child got ticks */
        if (as_preempt_stop() != -EINVAL)
            fail |= 2;                      /* the child thinks it runs */
        struct pt q;
        memset(&q, 0, sizeof q);
        q.tid = gettid_raw();
        q.self = pthread_self();
        as_stack_alloc(&q.up, 256 << 10);
        as_preempt_cfg c = { .interval_us = 1000, .upcall = check_upcall,
                             .arg = &q, .pool = &pool, .upcall_stack = &q.up };
        if (as_preempt_start(&c) != 0) {
            fail |= 4;                      /* cannot start its own */
        } else {
            uint64_t end = now_ns() + 2000000000u;
            while (atomic_load(&q.upcalls) < 3 && now_ns() < end)
                burn_us(1000);
            if (atomic_load(&q.upcalls) < 3)
                fail |= 8;
            as_preempt_stop();
        }
        if (q.wrong_thread || q.wrong_tp || q.nested)
            fail |= 16;
        _exit(fail);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status), "the child exited (status %#x)", status);
    cr_expect_eq(WEXITSTATUS(status), 0, "child failures: %#x (1 ticks, 2 still running, "
                 "4 no start, 8 no upcalls, 16 bad upcalls)", WEXITSTATUS(status));
    long u0 = atomic_load(&p.upcalls);
    uint64_t end = now_ns() + 2000000000u;
    while (atomic_load(&p.upcalls) < u0 + 3 && now_ns() < end)
        burn_us(1000);
    cr_expect_geq(atomic_load(&p.upcalls), u0 + 3, "the parent keeps its preemption");
    pt_stop(&p);
    pt_check(&p, "parent");
}

/* ======================================================================== */
/* preemption x threads starting and stopping at once                        */
/* ======================================================================== */

enum { NSS = 4 };
static pthread_t ss_th[NSS];
static struct pt ss_pt[NSS];
static atomic_int ss_go, ss_done;
static atomic_long ss_bad;

static void *start_stop_thread(void *arg)
{
    long me = (long)arg;
    struct pt *p = &ss_pt[me];
    int rounds = 30 / (int)scale() + 2;
    while (!atomic_load(&ss_go))
        sched_yield();
    for (int r = 0; r < rounds; r++) {
        memset(p, 0, sizeof *p);
        p->tid = gettid_raw();
        p->self = pthread_self();
        if (as_stack_alloc(&p->up, 128 << 10) != 0) {
            atomic_fetch_add(&ss_bad, 1);
            break;
        }
        as_preempt_cfg c = { .interval_us = 200, .upcall = check_upcall,
                             .arg = p, .pool = &pool, .upcall_stack = &p->up };
        if (as_preempt_start(&c) != 0)
            atomic_fetch_add(&ss_bad, 1);
        for (int k = 0; k < 30; k++) {
            burn_us(100);
            /* extra ticks for a neighbour, running preemption or not */
            pthread_kill(ss_th[(me + 1) % NSS], as_preempt_signal());
        }
        if (r == rounds - 1 && (me & 1))
            break;          /* exit with preemption on: stopped at thread exit */
        if (as_preempt_stop() != 0)
            atomic_fetch_add(&ss_bad, 1);
        atomic_fetch_add(&ss_bad, p->wrong_thread + p->wrong_tp + p->nested);
        as_stack_free(&p->up);
    }
    atomic_fetch_add(&ss_done, 1);
    /* stay until everyone is done: the neighbours still kick us */
    while (atomic_load(&ss_done) < NSS)
        burn_us(100);
    return NULL;
}

Test(compose, preempt_x_threads_start_stop, .init = pool_setup, .fini = pool_teardown)
{
    /* The tick signal's handler exists before any thread is kicked. */
    struct pt p;
    pt_start(&p, 100000, 0);
    pt_stop(&p);
    atomic_store(&ss_go, 0);
    atomic_store(&ss_done, 0);
    for (long i = 0; i < NSS; i++)
        pthread_create(&ss_th[i], NULL, start_stop_thread, (void *)i);
    atomic_store(&ss_go, 1);
    for (int i = 0; i < NSS; i++)
        pthread_join(ss_th[i], NULL);
    for (int i = 1; i < NSS; i += 2) {
        atomic_fetch_add(&ss_bad, ss_pt[i].wrong_thread + ss_pt[i].wrong_tp + ss_pt[i].nested);
        as_stack_free(&ss_pt[i].up);
    }
    cr_expect_eq(atomic_load(&ss_bad), 0, "a start, stop or upcall went wrong");
    /* The slots of the threads that exited running are free again. */
    for (int i = 0; i < 3; i++) {
        pt_start(&p, 1000, 0);
        pt_stop(&p);
    }
}

/* ======================================================================== */
/* preemption x fibers (as_switch) x activation records, one scheduler       */
/* ======================================================================== */

enum { NG = 3 };
static as_act *runq[NG + 1];            /* [0] = the test's own thread */
static int cur;
static atomic_long sched_upcalls;
static as_stack gstk[NG], fstk;
static volatile long fib_a, fib_b, fib_bad, rec_loops, rec_bad, yields, yield_bad;
static struct pt *sched_pt;

static void rr_upcall(as_act *a, void *arg)
{
    (void)arg;
    atomic_fetch_add(&sched_upcalls, 1);
    if (gettid_raw() != sched_pt->tid)
        atomic_fetch_add(&sched_pt->wrong_thread, 1);
    runq[cur] = a;
    cur = (cur + 1) % (NG + 1);
    as_act_resume(runq[cur]);
}

/* Green thread 1: two fibers switching back and forth; each side checks
 * that the other ran exactly once in between. */
static as_transfer fiber_b(as_transfer t)
{
    for (;;) {
        fib_b++;
        t = as_switch(t.ctx, NULL);
    }
    return t;
}

static void green_fibers(void *arg)
{
    (void)arg;
    as_ctx b = as_ctx_make(&fstk, fiber_b);
    for (;;) {
        fib_a++;
        as_transfer t = as_switch(b, NULL);
        b = t.ctx;
        if (fib_b != fib_a)
            fib_bad++;
    }
}

/* Green thread 2: CALL records captured and resumed in a loop. */
static void green_records(void *arg)
{
    (void)arg;
    static as_act r;
    for (;;) {
        volatile long before = rec_loops;
        if (as_act_capture(&r) == 0) {
            rec_loops++;
            as_act_resume(&r);
        }
        if (rec_loops != before + 1)
            rec_bad++;
    }
}

/* Green thread 3: gives its slice up with as_preempt_yield now and then,
 * so the scheduler holds CALL records beside the FULL ones of ticks. */
static void green_yielder(void *arg)
{
    (void)arg;
    for (;;) {
        burn_us(50);
        if (as_preempt_yield() != 0)
            yield_bad++;
        yields++;
    }
}

static atomic_int kick_stop;
static void *kicker(void *arg)
{
    pthread_t t = *(pthread_t *)arg;
    while (!atomic_load(&kick_stop)) {
        pthread_kill(t, as_preempt_signal());
        usleep(20);
    }
    return NULL;
}

Test(compose, preempt_x_fibers_and_records, .init = pool_setup, .fini = pool_teardown)
{
    static as_act fresh[NG];
    void (*fns[NG])(void *) = { green_fibers, green_records, green_yielder };
    for (int i = 0; i < NG; i++) {
        cr_assert_eq(as_stack_alloc(&gstk[i], 64 << 10), 0);
        as_act_init(&fresh[i], &gstk[i], fns[i], NULL);
        runq[i + 1] = &fresh[i];
    }
    cr_assert_eq(as_stack_alloc(&fstk, 64 << 10), 0);
    cur = 0;
    struct pt p;
    memset(&p, 0, sizeof p);
    p.tid = gettid_raw();
    sched_pt = &p;
    cr_assert_eq(as_stack_alloc(&p.up, 256 << 10), 0);
    as_preempt_cfg c = { .interval_us = 1000, .upcall = rr_upcall,
                         .pool = &pool, .upcall_stack = &p.up };
    cr_assert_eq(as_preempt_start(&c), 0);
    pthread_t self = pthread_self(), k;
    atomic_store(&kick_stop, 0);
    pthread_create(&k, NULL, kicker, &self);
    long want = 1000 / scale();
    uint64_t end = now_ns() + 5000000000u;
    while (now_ns() < end &&
           (fib_a < want || rec_loops < want || yields < want / 10 ||
            atomic_load(&sched_upcalls) < want))
        ;
    atomic_store(&kick_stop, 1);
    pthread_join(k, NULL);
    as_preempt_disable();               /* park the green threads */
    as_preempt_stop();
    as_preempt_enable();
    cr_expect_geq(fib_a, want, "fibers ran: %ld", fib_a);
    cr_expect_geq(rec_loops, want, "records ran: %ld", rec_loops);
    cr_expect_geq(yields, want / 10, "yields: %ld", yields);
    cr_expect_eq(fib_bad, 0, "a fiber switch was torn by preemption");
    cr_expect_eq(rec_bad, 0, "a capture/resume was torn by preemption");
    cr_expect_eq(yield_bad, 0, "as_preempt_yield failed");
    cr_expect_eq(atomic_load(&p.wrong_thread), 0);
    for (int i = 1; i <= NG; i++)
        as_act_release(runq[i]);        /* the parked threads' records */
    as_stack_free(&p.up);
}
