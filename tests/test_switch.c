/* SPDX-License-Identifier: MIT */
/* tests/test_switch.c - as_ctx_make, as_switch, as_call_on. */
#include <criterion/criterion.h>
#include <altstack.h>
#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "regs.h"
#include "fp_strategy.h"

static as_stack new_stack(size_t size)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, size), 0);
    return s;
}

static int on_stack(const as_stack *s, const void *p)
{
    return (uintptr_t)p >= (uintptr_t)s->lo && (uintptr_t)p < (uintptr_t)s->hi;
}

/* ---- generator: yields, data both ways, finish hands back ctx NULL ---- */

static as_transfer counter(as_transfer t)
{
    intptr_t step = (intptr_t)t.data;           /* first switch's data */
    for (intptr_t i = 0; i < 100; i++) {
        t = as_switch(t.ctx, (void *)(i * step));
        step = (intptr_t)t.data;                /* caller may change it */
    }
    return (as_transfer){ t.ctx, (void *)(intptr_t)-1 };
}

Test(switch, generator_yields_and_finishes)
{
    as_stack s = new_stack(64 << 10);
    as_transfer t = { as_ctx_make(&s, counter), NULL };
    cr_assert_not_null(t.ctx);
    intptr_t step = 3, i = 0;
    for (;;) {
        t = as_switch(t.ctx, (void *)step);
        if (!t.ctx)
            break;
        cr_assert_eq((intptr_t)t.data, i * step, "yield %ld", (long)i);
        i++;
        step = i % 7;
    }
    cr_assert_eq(i, 100);
    cr_assert_eq((intptr_t)t.data, -1, "the finishing transfer's data arrives");
    /* The stack is free again: a new context on it runs from the start. */
    t = (as_transfer){ as_ctx_make(&s, counter), NULL };
    t = as_switch(t.ctx, (void *)5);
    cr_assert_eq((intptr_t)t.data, 0);
    t = as_switch(t.ctx, (void *)5);
    cr_assert_eq((intptr_t)t.data, 5);
    as_stack_free(&s);
}

/* ---- the entry runs on its stack; the caller's locals stay intact ---- */

static as_stack g_stack;

static as_transfer where_am_i(as_transfer t)
{
    int local;
    volatile int *seen = t.data;
    *seen = on_stack(&g_stack, &local);
    return (as_transfer){ t.ctx, NULL };
}

Test(switch, entry_runs_on_its_stack)
{
    g_stack = new_stack(16 << 10);
    volatile int seen = -1;
    char guard[64];
    memset(guard, 0x5a, sizeof guard);
    as_transfer t = as_switch(as_ctx_make(&g_stack, where_am_i), (void *)&seen);
    cr_assert_null(t.ctx);
    cr_assert_eq(seen, 1);
    for (size_t i = 0; i < sizeof guard; i++)
        cr_assert_eq(guard[i], 0x5a);
    as_stack_free(&g_stack);
}

/* ---- register fidelity in both directions ---- */

/* The peer is test_fidelity_peer (tests/regs.h), shared with the
 * freestanding smoke test. */

/* 2000 round trips with random register values on both sides; round r
 * goes through sw(r) (NULL: as_switch via the plain probe). */
struct fidelity_way { test_switch_fn sw; void *arg; int fast; };
typedef struct fidelity_way (*fidelity_pick)(uint64_t round);

static void check_fidelity(fidelity_pick pick)
{
    as_stack s = new_stack(64 << 10);
    struct test_fidelity f = { .seed = 1 };
    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    as_transfer t = { as_ctx_make(&s, test_fidelity_peer), NULL };
    for (uint64_t round = 1; round <= 2000; round++) {
        f.seed = round * 0x1234567u;
        test_regs_random(in, f.seed);
        struct fidelity_way w = pick ? pick(round) : (struct fidelity_way){ NULL, NULL, 0 };
        t = w.sw ? test_switch_regs_via(t.ctx, &f, w.arg, in, out, w.sw)
                 : test_switch_regs(t.ctx, &f, in, out);
        /* Fast: our frame kept no FP control, so we come back with the
         * peer's, which it loaded from ~seed and switched with exactly. */
        uint64_t peer[TEST_NREGS];
        test_regs_random(peer, ~f.seed);
        for (int i = 0; i < TEST_NREGS; i++)
            cr_assert_eq((w.fast && test_regs_fp(i) ? peer[i] : in[i]) & test_regs_mask(i),
                         out[i] & test_regs_mask(i),
                         "round %lu: register %d was %#lx, came back %#lx",
                         (unsigned long)round, i, (unsigned long)in[i], (unsigned long)out[i]);
    }
    f.seed = 0;
    t = as_switch(t.ctx, &f);
    cr_assert_null(t.ctx);
    cr_assert_eq(f.bad, 0, "the peer saw %d registers change", f.bad);
    cr_assert_geq(f.rounds, 2000);
    as_stack_free(&s);
}

Test(switch, callee_saved_registers_survive_both_directions)
{
    check_fidelity(NULL);
}

/* ---- floating-point control state belongs to each context ---- */

static as_transfer rounding_peer(as_transfer t)
{
    fesetround(FE_UPWARD);
    t = as_switch(t.ctx, (void *)(intptr_t)fegetround());
    t = as_switch(t.ctx, (void *)(intptr_t)fegetround());  /* still ours */
    return (as_transfer){ t.ctx, (void *)(intptr_t)fegetround() };
}

static void check_rounding_per_context(void)
{
    as_stack s = new_stack(64 << 10);
    fesetround(FE_TOWARDZERO);
    as_transfer t = as_switch(as_ctx_make(&s, rounding_peer), NULL);
    cr_assert_eq((intptr_t)t.data, FE_UPWARD);
    cr_assert_eq(fegetround(), FE_TOWARDZERO);
    t = as_switch(t.ctx, NULL);
    cr_assert_eq((intptr_t)t.data, FE_UPWARD);
    cr_assert_eq(fegetround(), FE_TOWARDZERO);
    fesetround(FE_DOWNWARD);
    t = as_switch(t.ctx, NULL);
    cr_assert_null(t.ctx);
    cr_assert_eq((intptr_t)t.data, FE_UPWARD);
    cr_assert_eq(fegetround(), FE_DOWNWARD);
    fesetround(FE_TONEAREST);
    as_stack_free(&s);
}

Test(switch, rounding_mode_is_per_context)
{
    check_rounding_per_context();
}

#if defined(__x86_64__)
/* ---- the x87 control word is per context too, on its own ----
 * The two sides keep the same MXCSR and differ only in the x87 control
 * word (precision control: 64-bit vs 24-bit mantissa, and rounding), so a
 * switch that tied reloading FCW to MXCSR changing, or left FCW out,
 * shows here.  Each exact strategy, through as_switch and
 * as_switch_ontop. */
static uint16_t fcw_get(void)
{
    uint16_t cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}
static void fcw_set(uint16_t cw) { __asm__ volatile("fldcw %0" : : "m"(cw)); }

/* 24-bit precision, toward zero; under Valgrind, whose x87 has one
 * precision, only the rounding differs. */
#define FCW_PEER (test_fp_control_exact() ? 0x0c7f : 0x0f7f)
static as_transfer fcw_ontop(as_transfer t) { return t; }
static as_transfer fcw_peer(as_transfer t)
{
    fcw_set(FCW_PEER);
    for (;;) {
        t = as_switch(t.ctx, (void *)(uintptr_t)fcw_get());
        if (!t.data)
            return (as_transfer){ t.ctx, (void *)(uintptr_t)fcw_get() };
    }
}

static void check_fcw_per_context(void)
{
    as_stack s = new_stack(64 << 10);
    uint16_t mine = fcw_get();
    as_transfer t = as_switch(as_ctx_make(&s, fcw_peer), (void *)1);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq((uintptr_t)t.data, (uintptr_t)FCW_PEER, "the peer's FCW %#lx",
                     (unsigned long)(uintptr_t)t.data);
        cr_assert_eq(fcw_get(), mine, "ours came back %#x, want %#x", fcw_get(), mine);
        t = i & 1 ? as_switch_ontop(t.ctx, (void *)1, fcw_ontop) : as_switch(t.ctx, (void *)1);
    }
    t = as_switch(t.ctx, NULL);
    cr_assert_null(t.ctx);
    cr_assert_eq((uintptr_t)t.data, (uintptr_t)FCW_PEER);
    cr_assert_eq(fcw_get(), mine);
    as_stack_free(&s);
}

Test(switch, x87_control_word_is_per_context_in_every_strategy)
{
    each_fp_strategy(check_fcw_per_context);
}
#endif

/* ---- exact mode: both strategies on this CPU ---- */

static int cpu_wants_reload(void)
{
#if defined(__x86_64__)
    uint32_t a = 0, b, c, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
    return b == 0x68747541u || b == 0x6f677948u;        /* AMD, Hygon */
#else
    return 0;
#endif
}

Test(switch, exact_strategy_is_bound_for_this_cpu)
{
    int want = cpu_wants_reload() ? AS_FP_RELOAD : AS_FP_COMPARE;
    cr_assert_eq(as_switch_fp_strategy(), want, "bound at start-up");
    cr_assert_eq(as_switch_set_fp_strategy(7), -EINVAL);
    cr_assert_eq(as_switch_set_fp_strategy(-1), -EINVAL);
    cr_assert_eq(as_switch_fp_strategy(), want, "a bad argument changes nothing");
    cr_assert_eq(as_switch_init(), 0);
    cr_assert_eq(as_switch_fp_strategy(), want);
#if defined(__x86_64__)
    cr_assert_eq(as_switch_set_fp_strategy(AS_FP_COMPARE), 0);
    cr_assert_eq(as_switch_fp_strategy(), AS_FP_COMPARE);
    cr_assert_eq(as_switch_set_fp_strategy(AS_FP_RELOAD), 0);
    cr_assert_eq(as_switch_fp_strategy(), AS_FP_RELOAD);
#else
    cr_assert_eq(as_switch_set_fp_strategy(AS_FP_RELOAD), -EINVAL);
#endif
}

static void check_rounding_per_context(void);
static struct fidelity_way ontop_2_of_3(uint64_t round);

/* Every exact-mode check, once per strategy this architecture has. */
static void check_exact_mode(void)
{
    check_fidelity(NULL);
    check_fidelity(ontop_2_of_3);
    check_rounding_per_context();
}

Test(switch, exact_mode_fidelity_in_every_strategy)
{
    each_fp_strategy(check_exact_mode);
}

/* ---- fast mode: FP control belongs to the thread ---- */

static as_transfer fast_rounding_peer(as_transfer t)
{
    volatile int *seen = t.data;
    seen[0] = fegetround();                 /* what it starts with */
    fesetround(FE_UPWARD);
    t = as_switch_fast(t.ctx, NULL);        /* leaves the mode to the thread */
    seen[1] = fegetround();                 /* the thread's, set by main */
    return (as_transfer){ t.ctx, NULL };
}

Test(switch, fast_mode_fp_control_is_the_threads)
{
    as_stack s = new_stack(64 << 10);
    volatile int seen[2] = { -1, -1 };
    fesetround(FE_TOWARDZERO);
    as_transfer t = as_switch_fast(as_ctx_make(&s, fast_rounding_peer), (void *)seen);
    cr_assert_eq(seen[0], FE_TONEAREST, "a fresh context starts with the defaults");
    cr_assert_eq(fegetround(), FE_UPWARD, "the peer's mode is now the thread's");
    fesetround(FE_DOWNWARD);
    t = as_switch_fast(t.ctx, NULL);
    cr_assert_null(t.ctx);
    cr_assert_eq(seen[1], FE_DOWNWARD, "the peer resumed under the thread's mode");
    cr_assert_eq(fegetround(), FE_DOWNWARD, "a fast frame restores nothing");
    fesetround(FE_TONEAREST);
    as_stack_free(&s);
}

/* A frame restores FP control iff it recorded it, whatever the resumer's
 * mode: exact frames resumed fast, fast frames resumed exactly. */
static as_transfer mixed_peer(as_transfer t)
{
    volatile int *seen = t.data;
    fesetround(FE_UPWARD);
    t = as_switch(t.ctx, NULL);             /* exact: records UPWARD */
    seen[0] = fegetround();                 /* resumed by a fast switch */
    t = as_switch(t.ctx, NULL);
    seen[1] = fegetround();                 /* resumed by as_switch_ontop_fast */
    fesetround(FE_DOWNWARD);
    t = as_switch_fast(t.ctx, NULL);        /* fast: records nothing */
    seen[2] = fegetround();                 /* resumed exactly: main's mode */
    return (as_transfer){ t.ctx, NULL };
}

static int g_mixed_fn_mode;
static as_transfer mixed_ontop(as_transfer t)
{
    g_mixed_fn_mode = fegetround();
    return t;
}

static void check_modes_mix(void)
{
    as_stack s = new_stack(64 << 10);
    volatile int seen[3] = { -1, -1, -1 };
    fesetround(FE_TOWARDZERO);
    as_transfer t = as_switch(as_ctx_make(&s, mixed_peer), (void *)seen);
    cr_assert_eq(fegetround(), FE_TOWARDZERO, "main's exact frame restored its own");
    t = as_switch_fast(t.ctx, NULL);        /* main: fast frame */
    cr_assert_eq(seen[0], FE_UPWARD, "an exact frame resumed fast gets its own mode");
    cr_assert_eq(fegetround(), FE_UPWARD, "main's fast frame took the thread's");
    fesetround(FE_TOWARDZERO);
    t = as_switch_ontop_fast(t.ctx, NULL, mixed_ontop);
    cr_assert_eq(g_mixed_fn_mode, FE_UPWARD, "fn runs under the exact target's mode");
    cr_assert_eq(seen[1], FE_UPWARD);
    cr_assert_eq(fegetround(), FE_DOWNWARD, "the peer's fast switch left DOWNWARD");
    fesetround(FE_TONEAREST);
    t = as_switch(t.ctx, NULL);             /* main exact, peer's frame fast */
    cr_assert_null(t.ctx);
    cr_assert_eq(seen[2], FE_TONEAREST, "a fast frame resumed exactly gets the thread's");
    cr_assert_eq(fegetround(), FE_TONEAREST);
    as_stack_free(&s);
}

/* Under each exact strategy: the code around the skip into a fast frame
 * is patched differently in each. */
Test(switch, modes_mix_safely)
{
    each_fp_strategy(check_modes_mix);
}

/* Callee-saved GPRs (and d8-d15) through fast switches both ways; the FP
 * control registers main gets back are the peer's, which switched exactly
 * (so main's fast frame takes the thread's state). */
static as_transfer ot_identity(as_transfer t);

static struct fidelity_way fast_every(uint64_t round)
{
    if (round % 2)
        return (struct fidelity_way){ (test_switch_fn)(void (*)(void))as_switch_fast, NULL, 1 };
    return (struct fidelity_way){ (test_switch_fn)(void (*)(void))as_switch_ontop_fast,
                                  (void *)ot_identity, 1 };
}

Test(switch, fast_mode_keeps_callee_saved_registers)
{
    check_fidelity(fast_every);
}

/* Fast mode alternating with exact mode, under each exact strategy. */
static struct fidelity_way fast_or_exact(uint64_t round)
{
    return round % 3 ? fast_every(round) : (struct fidelity_way){ NULL, NULL, 0 };
}

static void check_fast_or_exact(void)
{
    check_fidelity(fast_or_exact);
}

Test(switch, fast_and_exact_mixed_keep_registers)
{
    each_fp_strategy(check_fast_or_exact);
}

/* ---- 10,000 live contexts resumed in random order ---- */

#define NCTX 10000
struct many { as_ctx ctx; unsigned long runs; };
static struct many *g_many;

static as_transfer many_entry(as_transfer t)
{
    uintptr_t id = (uintptr_t)t.data;
    unsigned long expect = 0;
    for (;;) {
        /* data: the number of times the scheduler believes we ran, or
         * ULONG_MAX to finish. */
        t = as_switch(t.ctx, (void *)id);
        unsigned long cmd = (unsigned long)(uintptr_t)t.data;
        if (cmd == (unsigned long)-1)
            return (as_transfer){ t.ctx, (void *)id };
        if (cmd != ++expect)
            return (as_transfer){ t.ctx, (void *)(uintptr_t)-2 };
    }
}

Test(switch, ten_thousand_contexts_random_order, .timeout = 120)
{
    as_stack *stacks = calloc(NCTX, sizeof *stacks);
    g_many = calloc(NCTX, sizeof *g_many);
    cr_assert(stacks && g_many);
    for (uintptr_t i = 0; i < NCTX; i++) {
        cr_assert_eq(as_stack_alloc(&stacks[i], 8192), 0);
        as_transfer t = as_switch(as_ctx_make(&stacks[i], many_entry), (void *)i);
        cr_assert_eq((uintptr_t)t.data, i);
        g_many[i].ctx = t.ctx;
    }
    uint64_t rng = 42;
    for (int n = 0; n < 200000; n++) {
        uintptr_t i = test_rng(&rng) % NCTX;
        as_transfer t = as_switch(g_many[i].ctx, (void *)(uintptr_t)++g_many[i].runs);
        cr_assert_eq((uintptr_t)t.data, i, "context %lu answered %#lx",
                     (unsigned long)i, (unsigned long)(uintptr_t)t.data);
        cr_assert_not_null(t.ctx);
        g_many[i].ctx = t.ctx;
    }
    for (uintptr_t i = 0; i < NCTX; i++) {
        as_transfer t = as_switch(g_many[i].ctx, (void *)(uintptr_t)-1);
        cr_assert_null(t.ctx);
        cr_assert_eq((uintptr_t)t.data, i);
        as_stack_free(&stacks[i]);
    }
    free(stacks);
    free(g_many);
}

/* ---- as_call_on: result, nesting 4 deep on different stacks ---- */

struct nest { as_stack s[4]; int depth; int ok; };

static void *nest_fn(void *p)
{
    struct nest *n = p;
    int local;
    int d = n->depth;
    if (!on_stack(&n->s[d], &local))
        return NULL;
    n->ok++;
    if (d == 3)
        return (void *)(uintptr_t)0x600d;
    n->depth++;
    void *r = as_call_on(&n->s[d + 1], nest_fn, n);
    n->depth--;
    if (!on_stack(&n->s[d], &local))      /* back on our own stack */
        return NULL;
    return (void *)((uintptr_t)r + 1);
}

Test(switch, call_on_nests_four_deep)
{
    struct nest n = { .depth = 0 };
    for (int i = 0; i < 4; i++)
        n.s[i] = new_stack(16 << 10);
    int local;
    void *r = as_call_on(&n.s[0], nest_fn, &n);
    cr_assert_eq((uintptr_t)r, 0x600d + 3);
    cr_assert_eq(n.ok, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_not(on_stack(&n.s[i], &local));
    for (int i = 0; i < 4; i++)
        as_stack_free(&n.s[i]);
}

static void *ident(void *p) { return p; }

Test(switch, call_on_adopted_memory)
{
    static _Alignas(16) char mem[8192];
    as_stack s;
    cr_assert_eq(as_stack_init(&s, mem, sizeof mem), 0);
    cr_assert_eq(as_call_on(&s, ident, (void *)0x1234), (void *)0x1234);
}

/* A context may be suspended inside as_call_on and resumed later. */
static as_stack g_aux;
static void *yield_inside(void *p)
{
    as_transfer *t = p;
    *t = as_switch(t->ctx, (void *)1);
    *t = as_switch(t->ctx, (void *)2);
    return (void *)3;
}

static as_transfer call_on_then_yield(as_transfer t)
{
    void *r = as_call_on(&g_aux, yield_inside, &t);
    return (as_transfer){ t.ctx, r };
}

Test(switch, switch_from_inside_call_on)
{
    as_stack s = new_stack(16 << 10);
    g_aux = new_stack(16 << 10);
    as_transfer t = as_switch(as_ctx_make(&s, call_on_then_yield), NULL);
    cr_assert_eq((uintptr_t)t.data, 1);
    t = as_switch(t.ctx, NULL);
    cr_assert_eq((uintptr_t)t.data, 2);
    t = as_switch(t.ctx, NULL);
    cr_assert_null(t.ctx);
    cr_assert_eq((uintptr_t)t.data, 3);
    as_stack_free(&s);
    as_stack_free(&g_aux);
}

/* ---- a context suspended on one thread resumes on another ---- */

static void *resume_elsewhere(void *p)
{
    as_transfer *t = p;
    *t = as_switch(t->ctx, (void *)10);
    return NULL;
}

static as_transfer migrating(as_transfer t)
{
    intptr_t v = (intptr_t)t.data;
    t = as_switch(t.ctx, (void *)(v + 1));
    v = (intptr_t)t.data;
    return (as_transfer){ t.ctx, (void *)(v + 1) };
}

Test(switch, context_migrates_between_threads)
{
    as_stack s = new_stack(16 << 10);
    as_transfer t = as_switch(as_ctx_make(&s, migrating), (void *)1);
    cr_assert_eq((intptr_t)t.data, 2);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, resume_elsewhere, &t), 0);
    pthread_join(th, NULL);
    cr_assert_null(t.ctx);
    cr_assert_eq((intptr_t)t.data, 11);
    as_stack_free(&s);
}

/* ---- as_switch_ontop ---- */

static as_stack g_ot_stack;
static struct { int on_target, rounding; as_ctx caller; void *data; } g_ot;

static as_transfer ot_fn(as_transfer t)
{
    int local;
    g_ot.on_target = on_stack(&g_ot_stack, &local);
    g_ot.rounding = fegetround();
    g_ot.caller = t.ctx;
    g_ot.data = t.data;
    return (as_transfer){ t.ctx, (void *)((uintptr_t)t.data + 100) };
}

/* Answers every transfer with data * 2, under its own rounding mode. */
static as_transfer ot_peer(as_transfer t)
{
    fesetround(FE_UPWARD);
    for (;;) {
        uintptr_t v = (uintptr_t)t.data;
        if (!v)
            return (as_transfer){ t.ctx, NULL };
        if (fegetround() != FE_UPWARD)
            v = 0xbad;
        t = as_switch(t.ctx, (void *)(v * 2));
    }
}

Test(switch, ontop_runs_fn_on_the_target_and_hands_it_the_result)
{
    g_ot_stack = new_stack(64 << 10);
    fesetround(FE_TOWARDZERO);
    as_transfer t = as_switch(as_ctx_make(&g_ot_stack, ot_peer), (void *)1);
    cr_assert_eq((uintptr_t)t.data, 2);
    for (uintptr_t i = 1; i <= 100; i++) {
        memset(&g_ot, 0, sizeof g_ot);
        t = as_switch_ontop(t.ctx, (void *)i, ot_fn);
        cr_assert_eq(g_ot.on_target, 1, "fn runs on the target's stack");
        cr_assert_eq(g_ot.rounding, FE_UPWARD, "fn runs under the target's FP control");
        cr_assert_not_null(g_ot.caller, "fn is handed the caller");
        cr_assert_eq((uintptr_t)g_ot.data, i, "fn is handed the data");
        cr_assert_not_null(t.ctx);
        cr_assert_eq((uintptr_t)t.data, (i + 100) * 2, "the target's switch returned fn's result");
        cr_assert_eq(fegetround(), FE_TOWARDZERO, "the caller keeps its FP control");
    }
    t = as_switch(t.ctx, NULL);
    cr_assert_null(t.ctx);
    fesetround(FE_TONEAREST);
    as_stack_free(&g_ot_stack);
}

static as_transfer ot_first(as_transfer t)
{
    /* The entry receives fn's result as its first transfer. */
    return (as_transfer){ t.ctx, (void *)((uintptr_t)t.data * 3) };
}

Test(switch, ontop_into_a_fresh_context)
{
    g_ot_stack = new_stack(64 << 10);
    for (uintptr_t i = 1; i <= 50; i++) {
        memset(&g_ot, 0, sizeof g_ot);
        as_transfer t = as_switch_ontop(as_ctx_make(&g_ot_stack, ot_first), (void *)i, ot_fn);
        cr_assert_eq(g_ot.on_target, 1);
        cr_assert_eq(g_ot.rounding, FE_TONEAREST, "a fresh context's default FP control");
        cr_assert_null(t.ctx, "the entry finished");
        cr_assert_eq((uintptr_t)t.data, (i + 100) * 3);
    }
    as_stack_free(&g_ot_stack);
}

/* fn may switch away itself and is resumed there; returning resumes the
 * target.  Here fn bounces off a third context first. */
static as_ctx g_bounce;
static _Noreturn as_transfer bounce_peer(as_transfer t)
{
    for (;;)
        t = as_switch(t.ctx, (void *)((uintptr_t)t.data + 1));
}
static as_transfer ot_bounce(as_transfer t)
{
    as_transfer b = as_switch(g_bounce, (void *)((uintptr_t)t.data * 10));
    g_bounce = b.ctx;
    return (as_transfer){ t.ctx, b.data };
}

Test(switch, ontop_fn_may_switch_elsewhere)
{
    g_ot_stack = new_stack(64 << 10);
    as_stack b = new_stack(64 << 10);
    g_bounce = as_ctx_make(&b, bounce_peer);
    as_transfer t = as_switch(as_ctx_make(&g_ot_stack, ot_peer), (void *)1);
    for (uintptr_t i = 1; i <= 20; i++) {
        t = as_switch_ontop(t.ctx, (void *)i, ot_bounce);
        cr_assert_eq((uintptr_t)t.data, (i * 10 + 1) * 2);
    }
    t = as_switch(t.ctx, NULL);
    cr_assert_null(t.ctx);
    as_stack_free(&b);
    as_stack_free(&g_ot_stack);
}

static as_transfer ot_identity(as_transfer t) { return t; }

/* Both sides' callee-saved registers, through ontop and plain switches
 * mixed (the peer is suspended in the probe, as for as_switch). */
static struct fidelity_way ontop_2_of_3(uint64_t round)
{
    if (round % 3 == 0)
        return (struct fidelity_way){ NULL, NULL, 0 };
    return (struct fidelity_way){ (test_switch_fn)(void (*)(void))as_switch_ontop,
                                  (void *)ot_identity, 0 };
}

Test(switch, ontop_keeps_callee_saved_registers)
{
    check_fidelity(ontop_2_of_3);
}

/* ---- bad arguments ---- */

static as_transfer never_runs(as_transfer t) { return t; }

Test(switch, bad_arguments)
{
    as_stack s = new_stack(16 << 10);
    as_stack tiny = s;
    tiny.lo = (char *)s.hi - 64;
    cr_assert_null(as_ctx_make(NULL, never_runs));
    cr_assert_null(as_ctx_make(&s, NULL));
    cr_assert_null(as_ctx_make(&tiny, never_runs));
    as_stack zero = {0};
    cr_assert_null(as_ctx_make(&zero, never_runs));
    cr_assert_null(as_call_on(NULL, ident, (void *)1));
    cr_assert_null(as_call_on(&s, NULL, (void *)1));
    as_stack_free(&s);
}

/* as_call_on refuses exactly the stacks as_ctx_make refuses, without
 * calling fn (and so without writing anywhere near them). */
static int g_called;
static void *mark_called(void *p) { g_called++; return p; }

Test(switch, call_on_rejects_what_ctx_make_rejects)
{
    static _Alignas(16) char mem[4096];
    char *lo = mem, *hi = mem + sizeof mem;
    const struct { const char *what; as_stack s; } bad[] = {
        { "zeroed", { NULL, NULL, NULL, 0 } },
        { "lo NULL", { NULL, hi, NULL, 0 } },
        { "hi NULL", { lo, NULL, NULL, 0 } },
        { "hi < lo", { hi, lo, NULL, 0 } },
        { "64 bytes", { hi - 64, hi, NULL, 0 } },
        { "AS_STACK_MIN - 1 bytes", { hi - AS_STACK_MIN + 1, hi, NULL, 0 } },
        { "AS_STACK_MIN after aligning hi down", { hi - AS_STACK_MIN - 8, hi - 8 - 1, NULL, 0 } },
        { "hi just above NULL", { lo, (void *)(uintptr_t)AS_STACK_MIN - 1, NULL, 0 } },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g_called = 0;
        memset(mem, 0x5a, sizeof mem);
        cr_assert_null(as_call_on(&bad[i].s, mark_called, (void *)1), "%s", bad[i].what);
        cr_assert_eq(g_called, 0, "%s: fn was called", bad[i].what);
        cr_assert_null(as_ctx_make(&bad[i].s, never_runs), "%s: as_ctx_make agrees", bad[i].what);
        for (size_t k = 0; k < sizeof mem; k++)
            cr_assert_eq(mem[k], 0x5a, "%s: byte %zu written", bad[i].what, k);
    }
    /* The smallest stack both accept: AS_STACK_MIN bytes up to an aligned top. */
    as_stack ok = { hi - AS_STACK_MIN, hi, NULL, 0 };
    g_called = 0;
    cr_assert_eq(as_call_on(&ok, mark_called, (void *)7), (void *)7);
    cr_assert_eq(g_called, 1);
    cr_assert_not_null(as_ctx_make(&ok, never_runs));
}

/* A fresh context fits in the smallest stack as_ctx_make accepts: every
 * byte it writes lies in [lo, hi), whatever the build (under
 * AddressSanitizer the context also holds ASan's record of the stack). */
Test(switch, ctx_make_writes_only_inside_a_minimal_stack)
{
    enum { PAD = 1024, CANARY = 0xa5 };
    static _Alignas(16) unsigned char mem[PAD + AS_STACK_MIN + PAD];
    unsigned char *lo = mem + PAD, *hi = lo + AS_STACK_MIN;
    memset(mem, CANARY, sizeof mem);
    as_stack s = { lo, hi, NULL, 0 };
    cr_assert_not_null(as_ctx_make(&s, never_runs));
    size_t written = 0;
    for (size_t k = 0; k < sizeof mem; k++) {
        if (&mem[k] >= lo && &mem[k] < hi) {
            written += mem[k] != CANARY;
            continue;
        }
        cr_assert_eq(mem[k], CANARY, "byte %td %s the stack written", &mem[k] < lo ?
                     lo - &mem[k] : &mem[k] - hi + 1, &mem[k] < lo ? "below" : "above");
    }
    cr_assert_gt(written, 0, "the context is inside the stack");
}
