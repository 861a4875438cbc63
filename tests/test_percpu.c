/* SPDX-License-Identifier: MIT */
/* tests/test_percpu.c - per-thread base pointer and auxiliary stack (hosted). */
#include <criterion/criterion.h>
#include <altstack.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#if defined(__x86_64__)
# include <asm/prctl.h>
# include <sys/syscall.h>
# include <unistd.h>
#endif

static uintptr_t frame(void)
{
    return (uintptr_t)__builtin_frame_address(0);
}

static bool within(const as_stack *s, uintptr_t p)
{
    return p >= (uintptr_t)s->lo && p < (uintptr_t)s->hi;
}

#if defined(__x86_64__)
/* What the GS segment really points at: %gs:0 read through the segment,
 * and the base the kernel holds for this thread. */
static uintptr_t gs_word0(void)
{
    uintptr_t v;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(v));
    return v;
}

static uintptr_t gs_base_from_kernel(void)
{
    unsigned long b = 0;
    cr_assert_eq(syscall(SYS_arch_prctl, ARCH_GET_GS, &b), 0);
    return b;
}
#endif

Test(percpu, set_get_round_trip)
{
    static uintptr_t rec[8] = { 0x5eed };
    cr_assert_null(as_percpu_get(), "a new thread starts with no base");
    as_percpu_set(rec);
    cr_assert_eq(as_percpu_get(), (void *)rec);
    cr_assert_eq(rec[0], 0x5eed, "hosted mode does not write into the base");
    as_percpu_set(NULL);
    cr_assert_null(as_percpu_get());
}

#if defined(__x86_64__)
Test(percpu, x86_64_writes_the_gs_base)
{
    static uintptr_t rec[8] = { 0xfeedface, 0xcafe };
    bool fsgsbase = getauxval(AT_HWCAP2) & (1 << 1);
    cr_assert_str_eq(as_percpu_gs_method(), fsgsbase ? "wrgsbase" : "arch_prctl");
    as_percpu_set(rec);
    cr_assert_eq(gs_base_from_kernel(), (uintptr_t)rec);
    cr_assert_eq(gs_word0(), 0xfeedface, "%%gs:0 reads the base's first word");
    as_percpu_set(NULL);
    cr_assert_eq(gs_base_from_kernel(), 0);
}

static volatile uintptr_t handler_saw_gs, handler_saw_get;

static void gs_handler(int sig)
{
    (void)sig;
    handler_saw_gs = gs_word0();
    handler_saw_get = (uintptr_t)as_percpu_get();
}

Test(percpu, gs_base_survives_a_signal)
{
    static uintptr_t rec[8] = { 0xabcdef };
    struct sigaction sa = { .sa_handler = gs_handler };
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    as_percpu_set(rec);
    raise(SIGUSR1);
    cr_assert_eq(handler_saw_gs, 0xabcdef);
    cr_assert_eq(handler_saw_get, (uintptr_t)rec);
    cr_assert_eq(gs_word0(), 0xabcdef, "and is intact after the handler returns");
}
#endif

struct thread_probe {
    void *base;
    void *seen_before, *seen_after;
    uintptr_t gs0;
    pthread_barrier_t *bar;
};

static void *thread_sets_own(void *p)
{
    struct thread_probe *t = p;
    t->seen_before = as_percpu_get();
    as_percpu_set(t->base);
    pthread_barrier_wait(t->bar);          /* both threads have set theirs */
    t->seen_after = as_percpu_get();
#if defined(__x86_64__)
    t->gs0 = gs_word0();
#endif
    return NULL;
}

Test(percpu, each_thread_has_its_own_base)
{
    static uintptr_t recs[2][8] = { { 111 }, { 222 } };
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct thread_probe t[2] = { { recs[0], 0, 0, 0, &bar }, { recs[1], 0, 0, 0, &bar } };
    pthread_t th[2];
    as_percpu_set(&t);                     /* the main thread's: not inherited */
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, thread_sets_own, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        cr_assert_null(t[i].seen_before);
        cr_assert_eq(t[i].seen_after, (void *)recs[i]);
#if defined(__x86_64__)
        cr_assert_eq(t[i].gs0, recs[i][0]);
#endif
    }
    cr_assert_eq(as_percpu_get(), (void *)&t);
    pthread_barrier_destroy(&bar);
}

/* --- auxiliary stack ----------------------------------------------------- */

static as_stack aux;
static int calls;

static void *where_am_i(void *arg)
{
    calls++;
    uintptr_t *out = arg;
    out[0] = frame();
    out[1] = as_on_auxstack();
    return (void *)0x1234;
}

Test(percpu, call_on_aux_without_aux_stack_calls_nothing)
{
    uintptr_t out[2] = { 0, 0 };
    calls = 0;
    cr_assert_null(as_call_on_aux(where_am_i, out));
    cr_assert_eq(calls, 0);
    cr_assert_not(as_on_auxstack());
}

Test(percpu, call_on_aux_runs_on_the_aux_stack)
{
    uintptr_t out[2] = { 0, 0 };
    cr_assert_eq(as_stack_alloc(&aux, 64 << 10), 0);
    as_auxstack_set(&aux);
    cr_assert_not(as_on_auxstack());
    cr_assert_eq(as_call_on_aux(where_am_i, out), (void *)0x1234);
    cr_assert(within(&aux, out[0]), "fn's frame %#lx is on the aux stack", (unsigned long)out[0]);
    cr_assert_eq(out[1], 1, "as_on_auxstack() inside fn");
    cr_assert_null(as_call_on_aux(NULL, out), "NULL fn");
    as_auxstack_set(NULL);
    cr_assert_null(as_call_on_aux(where_am_i, out), "cleared");
    as_stack_free(&aux);
}

Test(percpu, too_small_aux_stack_clears_it)
{
    static char small[AS_STACK_MIN / 2] __attribute__((aligned(16)));
    static char big[4096] __attribute__((aligned(16)));
    as_stack s = { small, small + sizeof small, NULL, 0 };
    uintptr_t out[2];
    cr_assert_eq(as_stack_init(&aux, big, sizeof big), 0);
    as_auxstack_set(&aux);
    as_auxstack_set(&s);
    calls = 0;
    cr_assert_null(as_call_on_aux(where_am_i, out));
    cr_assert_eq(calls, 0);
}

static void *nested_inner(void *arg)
{
    *(uintptr_t *)arg = frame();
    return NULL;
}

static void *nested_outer(void *arg)
{
    volatile uintptr_t canary[4] = { 1, 2, 3, 4 };
    uintptr_t *out = arg;
    out[0] = frame();
    as_call_on_aux(nested_inner, &out[1]);
    out[2] = canary[0] + canary[1] + canary[2] + canary[3];
    return NULL;
}

Test(percpu, nested_call_continues_below_the_caller)
{
    uintptr_t out[3] = { 0 };
    cr_assert_eq(as_stack_alloc(&aux, 64 << 10), 0);
    as_auxstack_set(&aux);
    as_call_on_aux(nested_outer, out);
    cr_assert(within(&aux, out[0]) && within(&aux, out[1]));
    cr_assert_lt(out[1], out[0], "the inner call runs below the outer frame");
    cr_assert_eq(out[2], 10, "the outer frame is intact");
    as_stack_free(&aux);
}

/* A signal taken on a sigaltstack while fn runs on the aux stack: the
 * handler's as_call_on_aux must not restart at the aux stack's top. */
static as_stack altstk;
static volatile uintptr_t sig_inner_frame;

static void aux_handler(int sig)
{
    (void)sig;
    uintptr_t f = 0;
    as_call_on_aux(nested_inner, &f);
    sig_inner_frame = f;
}

static void *raises(void *arg)
{
    volatile uintptr_t canary[8];
    for (int i = 0; i < 8; i++)
        canary[i] = 0xc0ffee00u + i;
    raise(SIGUSR2);
    uintptr_t ok = 1;
    for (int i = 0; i < 8; i++)
        ok &= canary[i] == 0xc0ffee00u + i;
    *(uintptr_t *)arg = ok;
    return NULL;
}

Test(percpu, signal_on_altstack_during_fn_does_not_clobber_it)
{
    uintptr_t ok = 0;
    cr_assert_eq(as_stack_alloc(&aux, 64 << 10), 0);
    cr_assert_eq(as_stack_alloc(&altstk, 64 << 10), 0);
    stack_t ss = { .ss_sp = altstk.lo, .ss_size = as_stack_size(&altstk) };
    cr_assert_eq(sigaltstack(&ss, NULL), 0);
    struct sigaction sa = { .sa_handler = aux_handler, .sa_flags = SA_ONSTACK };
    cr_assert_eq(sigaction(SIGUSR2, &sa, NULL), 0);
    as_auxstack_set(&aux);
    as_call_on_aux(raises, &ok);
    cr_assert(within(&altstk, sig_inner_frame),
              "the handler's fn ran where the handler was, on the sigaltstack");
    cr_assert_eq(ok, 1, "fn's frame on the aux stack is intact");
    /* Back at depth 0: the next call starts at the top again. */
    uintptr_t out[2];
    cr_assert_eq(as_call_on_aux(where_am_i, out), (void *)0x1234);
    cr_assert(within(&aux, out[0]));
}

static void *thread_has_no_aux(void *p)
{
    uintptr_t out[2];
    *(bool *)p = as_call_on_aux(where_am_i, out) == NULL;
    return NULL;
}

Test(percpu, aux_stack_is_per_thread)
{
    static char mem[8192] __attribute__((aligned(16)));
    bool none = false;
    pthread_t th;
    cr_assert_eq(as_stack_init(&aux, mem, sizeof mem), 0);
    as_auxstack_set(&aux);
    cr_assert_eq(pthread_create(&th, NULL, thread_has_no_aux, &none), 0);
    pthread_join(th, NULL);
    cr_assert(none, "another thread has no aux stack until it sets one");
}
