/* SPDX-License-Identifier: MIT */
/*
 * tests/boost/test_fcontext.c - the fcontext ABI itself, called exactly as
 * Boost.Context's fiber, callcc and execution_context call it, from C and
 * without Boost, so that it runs wherever the library does (aarch64 under
 * qemu-user included, where no arm64 Boost is installed).
 *
 * Boost's declarations (boost/context/detail/fcontext.hpp) are repeated
 * here word for word, in C.
 */
#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void *fcontext_t;
typedef struct { fcontext_t fctx; void *data; } transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));
transfer_t ontop_fcontext(fcontext_t const to, void *vp, transfer_t (*fn)(transfer_t));

#define NOINLINE __attribute__((noinline, noclone))
#define STACK (64 * 1024)

static char *new_stack(void)
{
    char *p = aligned_alloc(16, STACK);
    cr_assert(p);
    return p;
}

/* ---- make + jump: a generator, as callcc uses them ---- */

struct gen { char *lo, *hi; int in_range; };

static void gen_fn(transfer_t t)
{
    struct gen *g = t.data;
    char here;
    g->in_range = &here > g->lo && &here < g->hi;
    for (intptr_t i = 1; i <= 3; i++)
        t = jump_fcontext(t.fctx, (void *)(i * 10));
    for (;;)                                    /* Boost's fn never returns */
        t = jump_fcontext(t.fctx, (void *)-1);
}

Test(fcontext, jump_hands_over_data_and_the_caller)
{
    char *mem = new_stack();
    struct gen g = { mem, mem + STACK, 0 };
    fcontext_t c = make_fcontext(mem + STACK, STACK, gen_fn);
    cr_assert(c);
    transfer_t t = jump_fcontext(c, &g);
    cr_expect(g.in_range, "fn does not run on [sp - size, sp)");
    intptr_t got[3];
    got[0] = (intptr_t)t.data;
    for (int i = 1; i < 3; i++) {
        cr_assert(t.fctx);
        t = jump_fcontext(t.fctx, NULL);
        got[i] = (intptr_t)t.data;
    }
    cr_expect(got[0] == 10 && got[1] == 20 && got[2] == 30,
              "got %ld %ld %ld", (long)got[0], (long)got[1], (long)got[2]);
    free(mem);
}

/* ---- ontop: fiber's resume_with, and how fiber unwinds and exits ---- */

static int ontop_calls;
static fcontext_t ontop_saw;
static char *ontop_lo, *ontop_hi;
static int ontop_on_target;

static transfer_t ontop_fn(transfer_t t)
{
    char here;
    ontop_calls++;
    ontop_saw = t.fctx;
    ontop_on_target = &here > ontop_lo && &here < ontop_hi;
    return (transfer_t){ t.fctx, (void *)((intptr_t)t.data + 1) };
}

static void echo_fn(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, t.data);
}

Test(fcontext, ontop_runs_fn_on_the_target_and_returns_its_result)
{
    char *mem = new_stack();
    ontop_lo = mem;
    ontop_hi = mem + STACK;
    fcontext_t c = make_fcontext(mem + STACK, STACK, echo_fn);
    transfer_t t = jump_fcontext(c, (void *)1);
    cr_expect_eq((intptr_t)t.data, 1);
    /* echo_fn is suspended in jump_fcontext; ontop_fn's result is what
     * that jump returns, so echo_fn echoes 41 + 1. */
    t = ontop_fcontext(t.fctx, (void *)41, ontop_fn);
    cr_expect_eq(ontop_calls, 1);
    cr_expect(ontop_on_target, "the ontop function did not run on the target's stack");
    cr_expect(ontop_saw != NULL);
    cr_expect_eq((intptr_t)t.data, 42);
    /* And the context goes on as usual. */
    t = jump_fcontext(t.fctx, (void *)7);
    cr_expect_eq((intptr_t)t.data, 7);
    free(mem);
}

/* Boost's fiber_exit: the finishing context jumps ontop of its resumer
 * with a function that frees the finishing stack and returns NULL ctx. */
static char *exit_mem;
static transfer_t exit_fn(transfer_t t)
{
    free(exit_mem);                     /* t.fctx's stack: gone */
    exit_mem = NULL;
    return (transfer_t){ NULL, t.data };
}

static void finishing_fn(transfer_t t)
{
    t = jump_fcontext(t.fctx, (void *)1);
    ontop_fcontext(t.fctx, (void *)2, exit_fn);
    cr_assert_fail("resumed a finished context");
}

Test(fcontext, a_context_finishes_the_way_fiber_does)
{
    for (int round = 0; round < 100; round++) {
        exit_mem = new_stack();
        fcontext_t c = make_fcontext(exit_mem + STACK, STACK, finishing_fn);
        transfer_t t = jump_fcontext(c, NULL);
        cr_assert_eq((intptr_t)t.data, 1);
        t = jump_fcontext(t.fctx, NULL);
        cr_assert_null(t.fctx);
        cr_assert_eq((intptr_t)t.data, 2);
        cr_assert_null(exit_mem);
    }
}

/* ---- an fn that returns: Boost's assembly calls _exit(0) ---- */

static void returning_fn(transfer_t t)
{
    (void)t;
}

Test(fcontext, fn_returning_exits_the_process_with_0)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char *mem = malloc(STACK);
        jump_fcontext(make_fcontext(mem + STACK, STACK, returning_fn), NULL);
        _exit(3);                       /* must not come back here */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

Test(fcontext, bad_arguments_give_null)
{
    char *mem = new_stack();
    cr_expect_null(make_fcontext(NULL, STACK, echo_fn));
    cr_expect_null(make_fcontext(mem + STACK, STACK, NULL));
    cr_expect_null(make_fcontext(mem + STACK, 16, echo_fn));
    cr_expect_null(make_fcontext((void *)8, 64, echo_fn));
    free(mem);
}

/* ---- unwinding: inside a context, the resumer is on the backtrace ---- */

static char g_names[64][64];
static int g_n;

static NOINLINE void take_backtrace(void)
{
    unw_context_t uc;
    unw_cursor_t c;
    unw_getcontext(&uc);
    unw_init_local(&c, &uc);
    g_n = 0;
    do {
        unw_word_t off;
        if (unw_get_proc_name(&c, g_names[g_n], sizeof g_names[0], &off) != 0)
            strcpy(g_names[g_n], "?");
        g_n++;
    } while (g_n < 64 && unw_step(&c) > 0);
}

static int bt_has(const char *name)
{
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_names[i], name) == 0)
            return 1;
    return 0;
}

static void bt_fn(transfer_t t)
{
    for (;;) {
        take_backtrace();
        t = jump_fcontext(t.fctx, NULL);
    }
}

NOINLINE fcontext_t fc_resumer_a(fcontext_t c) { return jump_fcontext(c, NULL).fctx; }
NOINLINE fcontext_t fc_resumer_b(fcontext_t c) { return jump_fcontext(c, NULL).fctx; }

Test(fcontext, backtrace_reaches_the_latest_resumer)
{
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("under ASan a context's link is the first switcher's only "
                 "(src/fcontext/fcontext.c: no relinking through ASan's records)");
#endif
    char *mem = new_stack();
    fcontext_t c = make_fcontext(mem + STACK, STACK, bt_fn);
    c = fc_resumer_a(c);
    for (int i = 0; i < g_n; i++)
        cr_log_info("a #%d %s", i, g_names[i]);
    cr_expect(bt_has("bt_fn") && bt_has("fc_resumer_a"), "does not reach fc_resumer_a");
    c = fc_resumer_b(c);
    for (int i = 0; i < g_n; i++)
        cr_log_info("b #%d %s", i, g_names[i]);
    cr_expect(bt_has("fc_resumer_b") && !bt_has("fc_resumer_a"), "does not reach fc_resumer_b");
    free(mem);
}

/* Boost.Fiber migrates fibers between threads: a context resumed by
 * another thread links to that thread's resumer, and the thread's own
 * bookkeeping starts from its own stack. */
#include <pthread.h>

NOINLINE fcontext_t fc_thread_resumer(fcontext_t c) { return jump_fcontext(c, NULL).fctx; }

static void *resume_on_thread(void *c)
{
    return fc_thread_resumer(c);
}

Test(fcontext, a_context_resumed_by_another_thread_links_to_it)
{
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("under ASan a context's link is the first switcher's only");
#endif
    char *mem = new_stack();
    fcontext_t c = make_fcontext(mem + STACK, STACK, bt_fn);
    c = fc_resumer_a(c);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, resume_on_thread, c), 0);
    void *back;
    cr_assert_eq(pthread_join(th, &back), 0);
    for (int i = 0; i < g_n; i++)
        cr_log_info("thread #%d %s", i, g_names[i]);
    cr_expect(bt_has("fc_thread_resumer") && !bt_has("fc_resumer_a"),
              "a backtrace after a resume on another thread does not reach that thread's resumer");
    c = fc_resumer_b((fcontext_t)back);   /* and back on this thread */
    cr_expect(bt_has("fc_resumer_b") && !bt_has("fc_thread_resumer"));
    free(mem);
}

/* ---- FP control belongs to each context, as in Boost ----
 * Boost's jump_fcontext and ontop_fcontext save the jumper's MXCSR and
 * x87 control word (x86_64) and load the target's; make_fcontext records
 * the creator's.  Here the same holds for FPCR on aarch64 too.  Only the
 * control bits count: MXCSR's status flags are caller-saved. */
#if defined(__x86_64__)
static uint64_t fp_get(void)
{
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mxcsr), "=m"(fcw));
    return (uint64_t)fcw << 32 | (mxcsr & 0xffc0);
}
static void fp_set(uint64_t v)
{
    uint32_t mxcsr = (uint32_t)v;
    uint16_t fcw = (uint16_t)(v >> 32);
    __asm__ volatile("ldmxcsr %0; fldcw %1" : : "m"(mxcsr), "m"(fcw));
}
# define FP_DEFAULT 0x37f00001f80ull
# define FP_A       0x77f00003f80ull      /* round down, both units */
# define FP_B       0xb7f00005f80ull      /* round up */
# define FP_C       0xf7f00007f80ull      /* toward zero (no FTZ: Valgrind drops it) */
#else
static uint64_t fp_get(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}
static void fp_set(uint64_t v)
{
    __asm__ volatile("msr fpcr, %0" : : "r"(v));
}
# define FP_DEFAULT 0ull
# define FP_A       0x800000ull           /* RMode: toward -inf */
# define FP_B       0x400000ull           /* toward +inf */
# define FP_C       0xc00000ull           /* toward zero */
#endif

static uint64_t fp_seen[4];

static void fp_fn(transfer_t t)
{
    fp_seen[0] = fp_get();                  /* the creator's, at make time */
    fp_set(FP_B);
    t = jump_fcontext(t.fctx, NULL);
    fp_seen[1] = fp_get();                  /* still ours */
    t = jump_fcontext(t.fctx, NULL);
    fp_seen[2] = fp_get();                  /* after the ontop function */
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

static transfer_t fp_ontop_fn(transfer_t t)
{
    fp_seen[3] = fp_get();                  /* runs as the target */
    fp_set(FP_C);                           /* and keeps the change */
    return t;
}

static void check_fp_per_context(void)
{
    uint64_t saved = fp_get();
    char *mem = new_stack();
    fp_set(FP_A);
    fcontext_t c = make_fcontext(mem + STACK, STACK, fp_fn);
    fp_set(FP_DEFAULT);
    transfer_t t = jump_fcontext(c, NULL);
    uint64_t back1 = fp_get();
    fp_set(FP_A);
    t = jump_fcontext(t.fctx, NULL);
    uint64_t back2 = fp_get();
    t = ontop_fcontext(t.fctx, NULL, fp_ontop_fn);
    uint64_t back3 = fp_get();
    fp_set(saved);
    cr_expect_eq(fp_seen[0], FP_A, "fresh context: %#llx, not the creator's at make time",
                 (unsigned long long)fp_seen[0]);
    cr_expect_eq(back1, FP_DEFAULT, "the jumper's own came back as %#llx",
                 (unsigned long long)back1);
    cr_expect_eq(fp_seen[1], FP_B, "the context's own came back as %#llx",
                 (unsigned long long)fp_seen[1]);
    cr_expect_eq(back2, FP_A, "%#llx", (unsigned long long)back2);
    cr_expect_eq(fp_seen[3], FP_B, "the ontop function saw %#llx, not the target's",
                 (unsigned long long)fp_seen[3]);
    cr_expect_eq(fp_seen[2], FP_C, "%#llx", (unsigned long long)fp_seen[2]);
    cr_expect_eq(back3, FP_A, "%#llx", (unsigned long long)back3);
    free(mem);
}

Test(fcontext, fp_control_belongs_to_each_context)
{
    check_fp_per_context();
}

#ifdef FC_WITH_LIBALTSTACK
/* Linked with the static libraries, the program shares the library's
 * exact-mode strategy: the direct jump_fcontext / ontop_fcontext are
 * patch sites too (their code changes with the binding), and FP control
 * stays per context under each strategy. */
#include <altstack/switch.h>

Test(fcontext, fp_control_in_every_strategy)
{
    static const int strategies[] = { AS_FP_COMPARE, AS_FP_RELOAD };
    unsigned char code[2][2][160];
    int n = 0;
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++) {
        if (as_switch_set_fp_strategy(strategies[i]) != 0)
            continue;                           /* aarch64: compare only */
        memcpy(code[n][0], (const void *)(uintptr_t)jump_fcontext, sizeof code[n][0]);
        memcpy(code[n][1], (const void *)(uintptr_t)ontop_fcontext, sizeof code[n][1]);
        n++;
        cr_log_info("strategy %d", strategies[i]);
        check_fp_per_context();
    }
    as_switch_init();
# if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
    cr_assert_eq(n, 2);
    cr_expect_neq(memcmp(code[0][0], code[1][0], sizeof code[0][0]), 0,
                  "jump_fcontext is not rebound with the switch");
    cr_expect_neq(memcmp(code[0][1], code[1][1], sizeof code[0][1]), 0,
                  "ontop_fcontext is not rebound with the switch");
# endif
}
#endif

/* ---- stacks side by side in one allocation (Boost's pooled stacks) ----
 * Under Valgrind, a switch between two unregistered stacks less than
 * --max-stackframe apart looks like the stack growing or shrinking, and
 * memcheck marks the suspended frames in between as gone; with the stacks
 * registered (make_fcontext, -Dvalgrind=true) it knows they are switches.
 * The contexts pass a token up the allocation, each straight to the next,
 * and check their locals after every switch. */
enum { SIDE_N = 4, SIDE_SZ = STACK / SIDE_N };
static fcontext_t side_ring[SIDE_N + 1];    /* [SIDE_N]: the test's own */

static void side_fn(transfer_t t)
{
    const intptr_t id = (intptr_t)t.data;
    volatile intptr_t mine[16];
    for (int i = 0; i < 16; i++)
        mine[i] = id * 100 + i;
    t = jump_fcontext(t.fctx, (void *)id);  /* set up: back to the test */
    for (;;) {
        side_ring[(intptr_t)t.data] = t.fctx;   /* whoever passed it on */
        for (int i = 0; i < 16; i++)
            if (mine[i] != id * 100 + i)    /* a branch on the locals */
                abort();
        t = jump_fcontext(side_ring[id + 1], (void *)id);
    }
}

Test(fcontext, contexts_on_adjacent_stacks)
{
    char *mem = new_stack();
    for (intptr_t i = 0; i < SIDE_N; i++) {
        fcontext_t c = make_fcontext(mem + (i + 1) * SIDE_SZ, SIDE_SZ, side_fn);
        transfer_t t = jump_fcontext(c, (void *)i);
        cr_assert_eq((intptr_t)t.data, i);
        side_ring[i] = t.fctx;
    }
    for (int round = 0; round < 50; round++) {
        transfer_t t = jump_fcontext(side_ring[0], (void *)(intptr_t)SIDE_N);
        cr_assert_eq((intptr_t)t.data, SIDE_N - 1);
        side_ring[SIDE_N - 1] = t.fctx;
    }
    free(mem);
}

/* ---- ontop into a context that never ran ----
 * fn runs on the fresh stack first, and its result is the transfer the
 * context's own fn starts with.  (Boost's own assembly hands that fn
 * whatever argument registers the ontop function left; Boost's fiber and
 * callcc never go ontop into a context that has not run.) */
static char *fresh_lo, *fresh_hi;
static int fresh_fn_on_stack;
static transfer_t fresh_first;

static transfer_t fresh_ontop(transfer_t t)
{
    char here;
    fresh_fn_on_stack = &here > fresh_lo && &here < fresh_hi;
    return (transfer_t){ t.fctx, (void *)((intptr_t)t.data * 2) };
}

static void fresh_fn(transfer_t t)
{
    fresh_first = t;
    for (;;)
        t = jump_fcontext(t.fctx, (void *)((intptr_t)t.data + 1));
}

Test(fcontext, ontop_into_a_fresh_context)
{
    char *mem = new_stack();
    fresh_lo = mem;
    fresh_hi = mem + STACK;
    fcontext_t c = make_fcontext(mem + STACK, STACK, fresh_fn);
    transfer_t t = ontop_fcontext(c, (void *)21, fresh_ontop);
    cr_expect(fresh_fn_on_stack, "the ontop function did not run on the fresh stack");
    cr_expect_eq((intptr_t)fresh_first.data, 42, "fn started with %ld",
                 (long)(intptr_t)fresh_first.data);
    cr_expect_eq((intptr_t)t.data, 43);
    t = jump_fcontext(t.fctx, (void *)1);
    cr_expect_eq((intptr_t)t.data, 2);
    free(mem);
}
