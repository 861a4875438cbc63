/* SPDX-License-Identifier: MIT */
/*
 * tests/test_dlock.c - delegation locks: mutual exclusion in both modes and
 * with both APIs, transparency (stack, callee-saved registers, errno and
 * thread-locals), server mode, nesting, slots, bad arguments.
 *
 * Every count is exact.  Under qemu-user (aarch64 cross runs) the number of
 * critical sections per thread, and of nested chains, is divided by
 * AS_TEST_SCALE (default 10 on aarch64 builds, 1 elsewhere; tests/scale.h);
 * the thread count stays 8.
 */
#include <criterion/criterion.h>
#include <altstack.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "scale.h"

#define NTHREADS 8

static long iters(void)
{
    return test_scaled(100000, AS_ARCH_AARCH64 ? 10 : 1);
}

static long gettid_raw(void)
{
    return syscall(SYS_gettid);
}

/* ---- a server thread ---------------------------------------------------- */

struct server {
    as_dserver s;
    pthread_t th;
    long tid;
};

static _Thread_local long tls_value;
static long server_tls_after;

static void *server_main(void *p)
{
    struct server *sv = p;
    tls_value = 99;
    __atomic_store_n(&sv->tid, gettid_raw(), __ATOMIC_RELEASE);
    as_dserver_run(&sv->s);
    server_tls_after = tls_value;
    return NULL;
}

static void server_start(struct server *sv)
{
    sv->tid = 0;
    cr_assert_eq(pthread_create(&sv->th, NULL, server_main, sv), 0);
    while (!__atomic_load_n(&sv->tid, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void server_stop(struct server *sv)
{
    as_dserver_stop(&sv->s);
    pthread_join(sv->th, NULL);
}

static void run_threads(void *(*fn)(void *), void *arg)
{
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, fn, arg), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
}

/* ---- mutual exclusion --------------------------------------------------- */

enum api { TRANSPARENT, CLOSURE, MIXED };

struct line { long v[8]; } __attribute__((aligned(64)));

static struct {
    as_dlock lock;
    enum api api;
    int k;                      /* cache lines touched per critical section */
    long iters;
    long counter;               /* plain, non-atomic: the lock protects them */
    int inside;
    long overlaps;
    struct line rec[64];
} mx;

static void mx_body(void)
{
    if (mx.inside++)
        mx.overlaps++;
    mx.counter++;
    for (int i = 0; i < mx.k; i++)
        mx.rec[i].v[i & 7]++;
    mx.inside--;
}

static void *mx_cs(void *arg)
{
    mx_body();
    return arg;
}

static void *mx_thread(void *arg)
{
    (void)arg;
    for (long i = 0; i < mx.iters; i++) {
        bool closure = mx.api == CLOSURE || (mx.api == MIXED && (i & 1));
        if (closure) {
            void *r = as_dlock_call(&mx.lock, mx_cs, (void *)i);
            if (r != (void *)i)
                __atomic_fetch_add(&mx.overlaps, 1000000, __ATOMIC_RELAXED);
        } else {
            as_dlock_lock(&mx.lock);
            mx_body();
            as_dlock_unlock(&mx.lock);
        }
    }
    return NULL;
}

static void mutex_check(as_dserver *srv, enum api api, int k)
{
    memset(&mx, 0, sizeof mx);
    as_dlock_init(&mx.lock, srv);
    mx.api = api;
    mx.k = k;
    mx.iters = iters();
    run_threads(mx_thread, NULL);
    long want = NTHREADS * mx.iters;
    cr_assert_eq(mx.overlaps, 0, "critical sections overlapped (or a result was lost)");
    cr_assert_eq(mx.counter, want, "counter %ld, want %ld", mx.counter, want);
    for (int i = 0; i < k; i++)
        cr_assert_eq(mx.rec[i].v[i & 7], want, "line %d: %ld, want %ld", i,
                     mx.rec[i].v[i & 7], want);
    cr_assert_eq(mx.lock.word, 0, "lock word %#lx: free, no waiter counted",
                 (unsigned long)mx.lock.word);
}

static void mutex_server(enum api api, int k)
{
    static struct server sv;
    cr_assert_eq(as_dserver_init(&sv.s), 0);
    server_start(&sv);
    mutex_check(&sv.s, api, k);
    server_stop(&sv);
    cr_assert_geq(sv.s.served, (unsigned long long)NTHREADS * mx.iters,
                  "every critical section went through the server");
}

Test(dlock, combining_transparent_k1)  { mutex_check(NULL, TRANSPARENT, 1); }
Test(dlock, combining_transparent_k64) { mutex_check(NULL, TRANSPARENT, 64); }
Test(dlock, combining_closure_k1)      { mutex_check(NULL, CLOSURE, 1); }
Test(dlock, combining_closure_k64)     { mutex_check(NULL, CLOSURE, 64); }
Test(dlock, combining_mixed_k64)       { mutex_check(NULL, MIXED, 64); }
Test(dlock, server_transparent_k1)     { mutex_server(TRANSPARENT, 1); }
Test(dlock, server_transparent_k64)    { mutex_server(TRANSPARENT, 64); }
Test(dlock, server_closure_k1)         { mutex_server(CLOSURE, 1); }
Test(dlock, server_closure_k64)        { mutex_server(CLOSURE, 64); }
Test(dlock, server_mixed_k64)          { mutex_server(MIXED, 64); }

/* ---- combining: nothing is delegated, nothing registered, when alone ---- */

static void *count_cs(void *p)
{
    ++*(long *)p;
    return p;
}

static void *alone_thread(void *p)
{
    as_dlock l;
    as_dlock_init(&l, NULL);
    long n = 0;
    for (int i = 0; i < 1000; i++) {
        as_dlock_lock(&l);
        n++;
        as_dlock_unlock(&l);
        as_dlock_call(&l, count_cs, &n);
    }
    *(unsigned *)p = as_dlock_slots_in_use();
    return (void *)n;
}

Test(dlock, uncontended_combining_never_publishes)
{
    unsigned before = as_dlock_slots_in_use(), during = ~0u;
    pthread_t th;
    void *n;
    cr_assert_eq(pthread_create(&th, NULL, alone_thread, &during), 0);
    pthread_join(th, &n);
    cr_assert_eq((long)n, 2000);
    cr_assert_eq(during, before, "a lone thread registered no request slot");
}

/* ---- transparency: stack, registers ------------------------------------- */

static struct server tsv;
static as_dlock tlock;

struct seen { long tid, call_tid; long errno_in, tls_in; void *sp_in; };

static void *tid_cs(void *p)
{
    (void)p;
    return (void *)gettid_raw();
}

/* The critical section writes locals directly and through pointers, and
 * reports where it ran. */
static void *transparent_thread(void *p)
{
    struct seen *seen = p;
    long a = 5, b[4] = { 1, 2, 3, 4 };
    long *pa = &a;
    volatile long *pb = b;
    tls_value = gettid_raw();
    errno = 1234;
    as_dlock_lock(&tlock);
    seen->tid = gettid_raw();
    seen->errno_in = errno;
    seen->tls_in = tls_value;
    seen->sp_in = __builtin_frame_address(0);
    a += 10;
    *pa *= 2;
    pb[3] = a + pb[0];
    errno = 4321;
    tls_value = -tls_value;
    as_dlock_unlock(&tlock);
    seen->call_tid = (long)as_dlock_call(&tlock, tid_cs, NULL);
    cr_expect_eq(a, 30);
    cr_expect_eq(b[3], 31);
    cr_expect_eq(b[0] + b[1] + b[2], 6);
    if (as_dlock_tls_is_clients()) {
        cr_expect_eq(errno, 4321, "errno written inside is ours");
        cr_expect_eq(tls_value, -gettid_raw(), "thread-local written inside is ours");
    }
    cr_expect_eq(seen->sp_in, __builtin_frame_address(0), "same stack frame inside");
    return NULL;
}

/* Start a server, run NTHREADS clients of fn, check that every critical
 * section ran on the server thread and the server's TLS stayed its own. */
static void run_server_clients(void *(*fn)(void *))
{
    cr_assert_eq(as_dserver_init(&tsv.s), 0);
    as_dlock_init(&tlock, &tsv.s);
    server_start(&tsv);
    struct seen seen[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, fn, &seen[i]);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(seen[i].tid, tsv.tid, "critical section ran on the server thread");
        if (fn == transparent_thread)
            cr_assert_eq(seen[i].call_tid, tsv.tid, "closure ran on the server thread");
    }
    server_stop(&tsv);
    cr_assert_eq(server_tls_after, 99, "the server's own thread-local is untouched");
}

Test(dlock, server_mode_runs_on_server_thread_on_client_stack)
{
    run_server_clients(transparent_thread);
}

static void *tls_thread(void *p)
{
    struct seen *seen = p;
    long me = gettid_raw();
    tls_value = me;
    errno = 1234;
    as_dlock_lock(&tlock);
    seen->tid = gettid_raw();
    seen->errno_in = errno;
    seen->tls_in = tls_value;
    errno = 4321;
    tls_value = -me;
    as_dlock_unlock(&tlock);
    cr_expect_eq(errno, 4321);
    cr_expect_eq(tls_value, -me);
    cr_expect_eq(seen->errno_in, 1234, "errno inside is the client's");
    cr_expect_eq(seen->tls_in, me, "_Thread_local inside is the client's");
    return NULL;
}

Test(dlock, errno_and_thread_locals_are_the_clients)
{
    if (!as_dlock_tls_is_clients())
        cr_skip_test("critical sections run under the server's thread pointer here "
                     "(x86_64 without FSGSBASE, or an AddressSanitizer build)");
    run_server_clients(tls_thread);
}

/* Callee-saved registers: loaded before lock(), read inside the critical
 * section (on the server) and after unlock() (back home). */
#if defined(__x86_64__)
# define NCS 6                  /* rbx rbp r12 r13 r14 r15 */
__asm__(
    ".text\n"
    ".globl dlock_regs_probe\n"
    ".type dlock_regs_probe, @function\n"
    "dlock_regs_probe:\n"       /* rdi = lock, rsi = in[6], rdx = out[12] */
    "    endbr64\n"
    "    pushq %rbp\n pushq %rbx\n pushq %r12\n pushq %r13\n pushq %r14\n pushq %r15\n"
    "    subq $24, %rsp\n"
    "    movq %rdi, 0(%rsp)\n movq %rdx, 8(%rsp)\n"
    "    movq 0(%rsi), %rbx\n movq 8(%rsi), %rbp\n movq 16(%rsi), %r12\n"
    "    movq 24(%rsi), %r13\n movq 32(%rsi), %r14\n movq 40(%rsi), %r15\n"
    "    call as_dlock_lock\n"
    "    movq 8(%rsp), %rax\n"
    "    movq %rbx, 0(%rax)\n movq %rbp, 8(%rax)\n movq %r12, 16(%rax)\n"
    "    movq %r13, 24(%rax)\n movq %r14, 32(%rax)\n movq %r15, 40(%rax)\n"
    "    movq 0(%rsp), %rdi\n"
    "    call as_dlock_unlock\n"
    "    movq 8(%rsp), %rax\n"
    "    movq %rbx, 48(%rax)\n movq %rbp, 56(%rax)\n movq %r12, 64(%rax)\n"
    "    movq %r13, 72(%rax)\n movq %r14, 80(%rax)\n movq %r15, 88(%rax)\n"
    "    addq $24, %rsp\n"
    "    popq %r15\n popq %r14\n popq %r13\n popq %r12\n popq %rbx\n popq %rbp\n"
    "    ret\n"
    ".size dlock_regs_probe, .-dlock_regs_probe\n");
#else
# define NCS 18                 /* x19-x28, d8-d15 */
__asm__(
    ".text\n"
    ".globl dlock_regs_probe\n"
    ".type dlock_regs_probe, %function\n"
    "dlock_regs_probe:\n"       /* x0 = lock, x1 = in[18], x2 = out[36] */
    "    bti c\n"
    "    stp x29, x30, [sp, #-176]!\n"
    "    mov x29, sp\n"
    "    stp x19, x20, [sp, #16]\n stp x21, x22, [sp, #32]\n stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n stp d14, d15, [sp, #144]\n"
    "    stp x0, x2, [sp, #160]\n"
    "    ldp x19, x20, [x1, #0]\n ldp x21, x22, [x1, #16]\n ldp x23, x24, [x1, #32]\n"
    "    ldp x25, x26, [x1, #48]\n ldp x27, x28, [x1, #64]\n"
    "    ldp d8, d9, [x1, #80]\n ldp d10, d11, [x1, #96]\n"
    "    ldp d12, d13, [x1, #112]\n ldp d14, d15, [x1, #128]\n"
    "    bl as_dlock_lock\n"
    "    ldr x9, [sp, #168]\n"
    "    stp x19, x20, [x9, #0]\n stp x21, x22, [x9, #16]\n stp x23, x24, [x9, #32]\n"
    "    stp x25, x26, [x9, #48]\n stp x27, x28, [x9, #64]\n"
    "    stp d8, d9, [x9, #80]\n stp d10, d11, [x9, #96]\n"
    "    stp d12, d13, [x9, #112]\n stp d14, d15, [x9, #128]\n"
    "    ldr x0, [sp, #160]\n"
    "    bl as_dlock_unlock\n"
    "    ldr x9, [sp, #168]\n"
    "    stp x19, x20, [x9, #144]\n stp x21, x22, [x9, #160]\n stp x23, x24, [x9, #176]\n"
    "    stp x25, x26, [x9, #192]\n stp x27, x28, [x9, #208]\n"
    "    stp d8, d9, [x9, #224]\n stp d10, d11, [x9, #240]\n"
    "    stp d12, d13, [x9, #256]\n stp d14, d15, [x9, #272]\n"
    "    ldp x19, x20, [sp, #16]\n ldp x21, x22, [sp, #32]\n ldp x23, x24, [sp, #48]\n"
    "    ldp x25, x26, [sp, #64]\n ldp x27, x28, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n ldp d14, d15, [sp, #144]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    ret\n"
    ".size dlock_regs_probe, .-dlock_regs_probe\n");
#endif
void dlock_regs_probe(as_dlock *l, const uint64_t *in, uint64_t *out);

static void *regs_thread(void *p)
{
    uint64_t seed = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull + 1;
    for (int round = 0; round < 50; round++) {
        uint64_t in[NCS], out[2 * NCS];
        for (int i = 0; i < NCS; i++) {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            in[i] = seed;
        }
        dlock_regs_probe(&tlock, in, out);
        for (int i = 0; i < NCS; i++) {
            cr_expect_eq(out[i], in[i], "register %d inside the critical section", i);
            cr_expect_eq(out[NCS + i], in[i], "register %d after unlock", i);
        }
    }
    return NULL;
}

static void regs_check(as_dserver *srv)
{
    as_dlock_init(&tlock, srv);
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, regs_thread, (void *)(i + 1));
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
}

Test(dlock, callee_saved_registers_travel_server)
{
    cr_assert_eq(as_dserver_init(&tsv.s), 0);
    server_start(&tsv);
    regs_check(&tsv.s);
    server_stop(&tsv);
}

Test(dlock, callee_saved_registers_travel_combining)
{
    regs_check(NULL);
}

/* ---- server mode: stop, restart, idle clients exiting -------------------- */

static void *call_thread(void *p)
{
    return as_dlock_call(&tlock, count_cs, p);
}

Test(dlock, stop_and_restart)
{
    static long n;
    n = 0;
    cr_assert_eq(as_dserver_init(&tsv.s), 0);
    as_dlock_init(&tlock, &tsv.s);

    as_dserver_stop(&tsv.s);            /* no run in progress: the next returns */
    as_dserver_run(&tsv.s);             /* ... at once, clearing the stop */

    server_start(&tsv);
    cr_assert_eq(as_dlock_call(&tlock, count_cs, &n), &n);
    server_stop(&tsv);
    cr_assert_eq(n, 1);

    /* A request made while no server runs waits for the next run. */
    pthread_t th;
    pthread_create(&th, NULL, call_thread, &n);
    for (int i = 0; i < 1000; i++)
        sched_yield();
    cr_assert_eq(__atomic_load_n(&n, __ATOMIC_RELAXED), 1, "nobody served it");
    server_start(&tsv);
    void *r;
    pthread_join(th, &r);
    cr_assert_eq(r, &n);
    cr_assert_eq(n, 2);
    as_dlock_lock(&tlock);
    n++;
    as_dlock_unlock(&tlock);
    server_stop(&tsv);
    cr_assert_eq(n, 3);
    cr_assert_eq(tsv.s.served, 3, "served counts every request of both runs");
}

static void *short_client(void *p)
{
    for (int i = 0; i < 100; i++) {
        as_dlock_lock(&tlock);
        ++*(long *)p;
        as_dlock_unlock(&tlock);
        as_dlock_call(&tlock, count_cs, p);
    }
    return NULL;
}

Test(dlock, idle_clients_exit_and_release_slots)
{
    static long n;
    n = 0;
    unsigned before = as_dlock_slots_in_use();
    cr_assert_eq(as_dserver_init(&tsv.s), 0);
    as_dlock_init(&tlock, &tsv.s);
    server_start(&tsv);
    for (int wave = 0; wave < 4; wave++) {
        run_threads(short_client, &n);
        cr_assert_eq(as_dlock_slots_in_use(), before, "wave %d: slots released at exit", wave);
    }
    cr_assert_eq(n, 4 * NTHREADS * 200);
    server_stop(&tsv);
}

/* ---- nesting across two locks ------------------------------------------- */

static struct { as_dlock a, b; long na, nb, nab; long iters; } nest;

static void *nest_inner(void *p)
{
    (void)p;
    nest.nb++;
    return NULL;
}

static void *nest_outer(void *p)
{
    (void)p;
    nest.na++;
    as_dlock_call(&nest.b, nest_inner, NULL);
    return NULL;
}

static void *nest_thread(void *p)
{
    (void)p;
    for (long i = 0; i < nest.iters; i++) {
        switch (i % 3) {
        case 0:                                 /* transparent in transparent */
            as_dlock_lock(&nest.a);
            nest.na++;
            as_dlock_lock(&nest.b);
            nest.nb++;
            nest.nab++;
            as_dlock_unlock(&nest.b);
            as_dlock_unlock(&nest.a);
            break;
        case 1:                                 /* closure in closure */
            as_dlock_call(&nest.a, nest_outer, NULL);
            break;
        default:                                /* b alone */
            as_dlock_lock(&nest.b);
            nest.nb++;
            as_dlock_unlock(&nest.b);
        }
    }
    return NULL;
}

static void nest_check(as_dserver *sa, as_dserver *sb)
{
    memset(&nest, 0, sizeof nest);
    as_dlock_init(&nest.a, sa);
    as_dlock_init(&nest.b, sb);
    nest.iters = iters() / 10 * 3;
    run_threads(nest_thread, NULL);
    long per = nest.iters / 3;
    cr_assert_eq(nest.na, NTHREADS * 2 * per, "a: %ld want %ld", nest.na, NTHREADS * 2 * per);
    cr_assert_eq(nest.nb, NTHREADS * 3 * per, "b: %ld want %ld (a %s, b %s)", nest.nb, NTHREADS * 3 * per, sa ? "server" : "combining", sb ? "server" : "combining");
    cr_assert_eq(nest.nab, NTHREADS * per);
    cr_assert_eq(nest.a.word | nest.b.word, 0, "lock words back to free");
}

Test(dlock, nesting_combining)
{
    nest_check(NULL, NULL);
}

Test(dlock, nesting_server)
{
    static struct server s1, s2;
    as_dserver_init(&s1.s);
    as_dserver_init(&s2.s);
    server_start(&s1);
    server_start(&s2);
    nest_check(&s1.s, &s2.s);
    server_stop(&s1);
    server_stop(&s2);
}

Test(dlock, nesting_mixed_modes)
{
    static struct server s1;
    as_dserver_init(&s1.s);
    server_start(&s1);
    nest_check(&s1.s, NULL);            /* server-mode outer, combining inner */
    nest_check(NULL, &s1.s);            /* combining outer, server-mode inner */
    server_stop(&s1);
}

/* ---- bad arguments ------------------------------------------------------- */

Test(dlock, bad_arguments)
{
    as_dlock l;
    as_dserver junk;
    memset(&junk, 0x5a, sizeof junk);
    cr_assert_eq(as_dserver_init(NULL), -EINVAL);
    as_dlock_init(NULL, NULL);                          /* no-op */
    memset(&l, 0x77, sizeof l);
    as_dlock_init(&l, &junk);                           /* uninitialised server */
    cr_assert_eq(l.word, (uintptr_t)0x7777777777777777ull, "l left alone");
    as_dlock_init(&l, NULL);
    cr_assert_null(as_dlock_call(NULL, count_cs, NULL));
    cr_assert_null(as_dlock_call(&l, NULL, NULL));
    as_dserver_run(NULL);                               /* returns */
    as_dserver_run(&junk);                              /* returns: not initialised */
    as_dserver_stop(NULL);
    long n = 0;
    cr_assert_eq(as_dlock_call(&l, count_cs, &n), &n, "the lock still works");
    cr_assert_eq(n, 1);
}

Test(dlock, second_run_returns_at_once)
{
    cr_assert_eq(as_dserver_init(&tsv.s), 0);
    server_start(&tsv);
    while (!__atomic_load_n(&tsv.s.running, __ATOMIC_ACQUIRE))
        sched_yield();
    as_dserver_run(&tsv.s);             /* another thread runs it: returns */
    server_stop(&tsv);
}

Test(dlock, thread_init)
{
    cr_assert_eq(as_dlock_thread_init(), 0);
    cr_assert_geq(as_dlock_slots_in_use(), 1);
}

/* ---- nesting past AS_DLOCK_NEST, server mode ------------------------------ */

enum { DEEP = AS_DLOCK_NEST + 3 };
static struct { as_dlock l[DEEP]; struct server s[DEEP]; long depth_max, inner; } deep;

static void *deep_cs(void *p);

/* 50 chains per thread, divided by AS_TEST_SCALE only where it is set. */
static long deep_rounds(void)
{
    return test_scaled(50, 1);
}

/* Take lock d, then d + 1 inside: transparent, so every level waits under
 * the first client's identity (a closure runs under the server's and
 * would start again from its level 0), and the last one as a closure. */
static void deep_take(long d)
{
    if (d == DEEP) {
        deep.inner++;
        return;
    }
    if (d > deep.depth_max)
        deep.depth_max = d;
    if (d == DEEP - 1) {
        as_dlock_call(&deep.l[d], deep_cs, (void *)d);
    } else {
        as_dlock_lock(&deep.l[d]);
        deep_take(d + 1);
        as_dlock_unlock(&deep.l[d]);
    }
}

static void *deep_cs(void *p)
{
    deep_take((long)p + 1);
    return NULL;
}

static void *deep_thread(void *p)
{
    (void)p;
    for (long i = 0; i < deep_rounds(); i++)
        deep_take(0);
    return NULL;
}

/* Hosted levels past AS_DLOCK_NEST are allocated on first use: seven
 * server-mode locks, each on its own server, nest and complete. */
Test(dlock, nesting_server_past_nest_levels, .timeout = 30)
{
    memset(&deep, 0, sizeof deep);
    for (int d = 0; d < DEEP; d++) {
        cr_assert_eq(as_dserver_init(&deep.s[d].s), 0);
        server_start(&deep.s[d]);
        as_dlock_init(&deep.l[d], &deep.s[d].s);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, deep_thread, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int d = 0; d < DEEP; d++)
        server_stop(&deep.s[d]);
    cr_assert_eq(deep.depth_max, DEEP - 1);
    cr_assert_eq(deep.inner, 2 * deep_rounds(), "every nested chain reached the bottom");
}

/* ---- what a transparent section sees: CPU, thread id, rseq ---------------- */

#include <sched.h>
#include <sys/rseq.h>

static uintptr_t thread_pointer(void)
{
    uintptr_t tp;
#if defined(__x86_64__)
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
#else
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
#endif
    return tp;
}

/* Is glibc's rseq area registered for this thread (then sched_getcpu reads
 * it through the thread pointer)? */
static int rseq_live(void)
{
    if (__rseq_size == 0)
        return 0;
    const struct rseq *r = (const struct rseq *)(thread_pointer() + __rseq_offset);
    return (int)__atomic_load_n(&r->cpu_id, __ATOMIC_RELAXED) >= 0;
}

static unsigned getcpu_raw(void)
{
    unsigned cpu = ~0u;
    syscall(SYS_getcpu, &cpu, NULL, NULL);
    return cpu;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    cr_assert_eq(sched_setaffinity(0, sizeof set, &set), 0);
}

static struct server cpu_srv;
static as_dlock cpu_lock;
static struct { long tid, in_tid; unsigned in_getcpu; int in_sched, home_sched, rseq;
                pthread_t self, in_self; uintptr_t tp, in_tp; } cpu_seen;

static void *cpu_server_main(void *p)
{
    pin(0);
    return server_main(p);
}

static void *cpu_client(void *p)
{
    (void)p;
    pin(1);
    cpu_seen.tid = gettid_raw();
    cpu_seen.self = pthread_self();
    cpu_seen.rseq = rseq_live();
    cpu_seen.home_sched = sched_getcpu();
    cpu_seen.tp = thread_pointer();
    as_dlock_lock(&cpu_lock);
    cpu_seen.in_tp = thread_pointer();
    cpu_seen.in_getcpu = getcpu_raw();
    cpu_seen.in_sched = sched_getcpu();
    cpu_seen.in_tid = gettid_raw();
    cpu_seen.in_self = pthread_self();
    as_dlock_unlock(&cpu_lock);
    return NULL;
}

/* dlock.h's table: in a transparent section run by a server on CPU 0 for
 * a client on CPU 1, the kernel's answers are the server's, the thread
 * pointer's are the client's (or, in the fallback, the server's). */
Test(dlock, transparent_section_cpu_and_thread_identity)
{
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof all, &all) != 0 || !CPU_ISSET(0, &all) ||
        !CPU_ISSET(1, &all))
        cr_skip_test("needs CPUs 0 and 1");
    cr_assert_eq(as_dserver_init(&cpu_srv.s), 0);
    as_dlock_init(&cpu_lock, &cpu_srv.s);
    cpu_srv.tid = 0;
    cr_assert_eq(pthread_create(&cpu_srv.th, NULL, cpu_server_main, &cpu_srv), 0);
    while (!__atomic_load_n(&cpu_srv.tid, __ATOMIC_ACQUIRE))
        sched_yield();
    pthread_t c;
    pthread_create(&c, NULL, cpu_client, NULL);
    pthread_join(c, NULL);
    server_stop(&cpu_srv);

    cr_expect_eq(cpu_seen.home_sched, 1, "the client runs on CPU 1");
    cr_expect_eq(cpu_seen.in_getcpu, 0, "getcpu(2) inside: the server's CPU");
    cr_expect_eq(cpu_seen.in_tid, cpu_srv.tid, "gettid() inside: the server's");
    if (as_dlock_tls_is_clients()) {
        cr_expect_eq(cpu_seen.in_tp, cpu_seen.tp, "the thread pointer: the client's");
        cr_expect(pthread_equal(cpu_seen.in_self, cpu_seen.self), "pthread_self(): the client's");
        cr_expect_eq(cpu_seen.in_sched, cpu_seen.rseq ? 1 : 0,
                     "sched_getcpu() inside: %d (rseq %s)", cpu_seen.in_sched,
                     cpu_seen.rseq ? "registered: the client's CPU" : "not registered: the running CPU");
    } else {
        /* (pthread_self() is `const` in glibc: the compiler may reuse the
         * value from before lock(), as dlock.h says; the thread pointer
         * itself is read afresh.) */
        cr_expect_neq(cpu_seen.in_tp, cpu_seen.tp, "the thread pointer: the server's");
        cr_expect_eq(cpu_seen.in_sched, 0, "sched_getcpu() inside: the running CPU");
    }
}
