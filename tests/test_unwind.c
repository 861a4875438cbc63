/* SPDX-License-Identifier: MIT */
/*
 * tests/test_unwind.c - unwinders see through every switch.
 *
 * A libunwind backtrace taken inside as_call_on's fn, or inside an entry
 * made by as_ctx_make, must continue into the frames of the code that
 * switched to it, and a chain whose switcher has moved on must end cleanly
 * (unw_step returns 0, not an error, and no garbage frames appear).
 */
#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <libunwind.h>
#include <altstack.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))
#define MAXF 64

struct bt { int n; int last_step; char name[MAXF][64]; };

/* Under AddressSanitizer the switch runs through C wrappers that tell ASan
 * about each change of stack (src/hosted/asan.c).  Their frames are real
 * but not what these tests are about: leave them out of the chain.  The
 * wrapper around the raw switch shows up as the trampoline's caller. */
static int tool_frame(const struct bt *bt, const char *name)
{
    static const char *const wrappers[] = { "asan_call", "as__raw_call_on", "asan_entry",
                                            "ontop_fn" };
    for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++)
        if (strcmp(name, wrappers[i]) == 0)
            return 1;
    return bt->n > 0 && strcmp(name, "as_switch") == 0 &&
           (strcmp(bt->name[bt->n - 1], "as__trampoline") == 0 ||
            strcmp(bt->name[bt->n - 1], "as_switch_ontop") == 0);
}

static NOINLINE void take_backtrace(struct bt *bt)
{
    unw_context_t uc;
    unw_cursor_t c;
    unw_getcontext(&uc);
    unw_init_local(&c, &uc);
    bt->n = 0;
    do {
        unw_word_t off;
        if (unw_get_proc_name(&c, bt->name[bt->n], sizeof bt->name[0], &off) != 0)
            strcpy(bt->name[bt->n], "?");
        if (strcmp(bt->name[bt->n], "as__raw_switch_ontop") == 0)  /* ASan: the raw one */
            strcpy(bt->name[bt->n], "as_switch_ontop");
        if (!tool_frame(bt, bt->name[bt->n]))
            bt->n++;
    } while (bt->n < MAXF && (bt->last_step = unw_step(&c)) > 0);
}

static int find(const struct bt *bt, const char *name)
{
    for (int i = 0; i < bt->n; i++)
        if (strcmp(bt->name[i], name) == 0)
            return i;
    return -1;
}

static void dump(const struct bt *bt)
{
    for (int i = 0; i < bt->n; i++)
        cr_log_info("#%d %s", i, bt->name[i]);
}

/* ---- as_call_on ---- */

static struct bt g_bt;

static NOINLINE void *on_aux(void *p)
{
    take_backtrace(p);
    return p;
}

NOINLINE void outer_caller(as_stack *s)
{
    as_call_on(s, on_aux, &g_bt);
    __asm__ volatile("" ::: "memory");     /* keep the call a call */
}

Test(unwind, call_on_reaches_the_caller)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 64 << 10), 0);
    outer_caller(&s);
    dump(&g_bt);
    int a = find(&g_bt, "on_aux"), b = find(&g_bt, "as_call_on"), c = find(&g_bt, "outer_caller");
    cr_assert(a >= 0 && b == a + 1 && c == b + 1, "on_aux -> as_call_on -> outer_caller");
    cr_assert_geq(find(&g_bt, "__libc_start_main"), 0, "the chain reaches the program start");
    cr_assert_eq(g_bt.last_step, 0, "the chain ends cleanly");
    as_stack_free(&s);
}

/* ---- an entry reaches its switcher ---- */

static NOINLINE as_transfer entry_bt(as_transfer t)
{
    take_backtrace(&g_bt);
    t = as_switch(t.ctx, NULL);
    take_backtrace(&g_bt);                 /* second time: see below */
    return (as_transfer){ t.ctx, NULL };
}

NOINLINE as_transfer switcher_a(as_ctx to)
{
    as_transfer t = as_switch(to, NULL);
    __asm__ volatile("" ::: "memory");
    return t;
}

NOINLINE as_transfer switcher_b(int pad, as_ctx to)
{
    volatile char buf[200];                /* a different frame shape */
    buf[0] = (char)pad;
    as_transfer t = as_switch(to, (void *)(uintptr_t)buf[0]);
    __asm__ volatile("" ::: "memory");
    return t;
}

Test(unwind, entry_reaches_the_switcher_then_ends_cleanly)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 64 << 10), 0);
    as_transfer t = switcher_a(as_ctx_make(&s, entry_bt));
    dump(&g_bt);
    int e = find(&g_bt, "entry_bt"), tr = find(&g_bt, "as__trampoline");
    int sw = find(&g_bt, "switcher_a");
    cr_assert(e >= 0 && tr == e + 1 && sw == tr + 1, "entry_bt -> trampoline -> switcher_a");
    cr_assert_geq(find(&g_bt, "__libc_start_main"), 0);
    cr_assert_eq(g_bt.last_step, 0);

    /* switcher_a has returned; its frame is gone.  Resumed from elsewhere,
     * the entry's chain must stop at the trampoline, not wander into the
     * stale words where switcher_a's frame used to be. */
    t = switcher_b(7, t.ctx);
    cr_assert_null(t.ctx);
    dump(&g_bt);
    cr_assert_eq(find(&g_bt, "switcher_a"), -1);
    int tr2 = find(&g_bt, "as__trampoline");
    cr_assert_geq(tr2, 0);
    cr_assert_eq(g_bt.n, tr2 + 2, "one end frame follows the trampoline");
    cr_assert_str_eq(g_bt.name[tr2 + 1], "as__context_start");
    cr_assert_eq(g_bt.last_step, 0, "unw_step ended with 0, not an error");
    as_stack_free(&s);
}

/* ---- as_switch_ontop: fn's caller is the code that called the target's
 * suspended switch ---- */

static NOINLINE as_transfer ontop_bt(as_transfer t)
{
    take_backtrace(&g_bt);
    return t;
}

NOINLINE as_transfer peer_waits(as_transfer t)
{
    t = as_switch(t.ctx, NULL);
    __asm__ volatile("" ::: "memory");
    return t;
}

static NOINLINE as_transfer ontop_peer(as_transfer t)
{
    t = peer_waits(t);
    return (as_transfer){ t.ctx, NULL };
}

Test(unwind, ontop_fn_reaches_the_targets_switcher)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 64 << 10), 0);
    as_transfer t = switcher_a(as_ctx_make(&s, ontop_peer));
    t = as_switch_ontop(t.ctx, NULL, ontop_bt);
    cr_assert_null(t.ctx);
    dump(&g_bt);
    int f = find(&g_bt, "ontop_bt"), o = find(&g_bt, "as_switch_ontop");
    int w = find(&g_bt, "peer_waits"), e = find(&g_bt, "ontop_peer");
    int tr = find(&g_bt, "as__trampoline");
    cr_assert(f >= 0 && o == f + 1 && w == o + 1 && e == w + 1 && tr == e + 1,
              "ontop_bt -> as_switch_ontop -> peer_waits -> ontop_peer -> trampoline");
    cr_assert_eq(g_bt.last_step, 0, "the chain ends cleanly");
    as_stack_free(&s);
}

/* ---- a SIGPROF storm while switching ---- */

static volatile sig_atomic_t g_ticks, g_deep;

static void on_prof(int sig)
{
    (void)sig;
    void *buf[MAXF];
    int n = unw_backtrace(buf, MAXF);
    g_ticks++;
    if (n > 4)
        g_deep++;
}

static as_stack g_aux;

static NOINLINE void *leaf(void *p)
{
    return (void *)((uintptr_t)p * 3 + 1);
}

static as_transfer storm_peer(as_transfer t)
{
    uintptr_t acc = 0;
    for (;;) {
        uintptr_t v = (uintptr_t)t.data;
        if (v == 0)
            return (as_transfer){ t.ctx, (void *)acc };
        acc += (uintptr_t)as_call_on(&g_aux, leaf, (void *)v);
        t = as_switch(t.ctx, (void *)acc);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

Test(unwind, sigprof_storm_during_switches, .timeout = 120)
{
    as_stack s[3];
    cr_assert_eq(as_stack_alloc(&g_aux, 64 << 10), 0);
    as_transfer t[3];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(as_stack_alloc(&s[i], 64 << 10), 0);
        t[i].ctx = as_ctx_make(&s[i], storm_peer);
    }
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    struct sigaction sa = { .sa_handler = on_prof, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGPROF, &sa, NULL), 0);
    struct itimerval it = { { 0, 1 }, { 0, 1 } };
    cr_assert_eq(setitimer(ITIMER_PROF, &it, NULL), 0);

    uintptr_t expect[3] = { 0, 0, 0 };
    unsigned long n = 0;
    double end = now() + 1.5;
    while (now() < end) {
        for (int k = 0; k < 1000; k++, n++) {
            int i = (int)(n % 3);
            uintptr_t v = (uintptr_t)n + 1;
            expect[i] += v * 3 + 1;
            t[i] = as_switch(t[i].ctx, (void *)v);
            cr_assert_eq((uintptr_t)t[i].data, expect[i], "switch %lu", n);
        }
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_PROF, &off, NULL);
    for (int i = 0; i < 3; i++) {
        t[i] = as_switch(t[i].ctx, NULL);
        cr_assert_null(t[i].ctx);
        cr_assert_eq((uintptr_t)t[i].data, expect[i]);
        as_stack_free(&s[i]);
    }
    as_stack_free(&g_aux);
    cr_log_info("%lu switches, %d SIGPROF backtraces (%d deeper than 4)", n, (int)g_ticks, (int)g_deep);
    cr_assert_gt(g_ticks, 10, "the storm happened");
    cr_assert_gt(n, 10000);
}
