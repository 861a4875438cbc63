/* SPDX-License-Identifier: MIT */
/*
 * tests/freestanding/smoke.c - as_switch and as_call_on in a program with
 * no libc: its own _start, raw system calls, static stacks adopted with
 * as_stack_init (see rt.h).  The same source also builds hosted.
 *
 * Prints one "PASS name" or "FAIL name: why" line per check and ends with
 * "N passed, M failed"; exits 0 only if every check passed.
 */
#include <altstack.h>
#include <stdint.h>
#include "regs.h"
#include "rt.h"

#define NOINLINE __attribute__((noinline))
#define STACK_SIZE (32u << 10)

static _Alignas(16) unsigned char mem[3][STACK_SIZE];
static as_stack stk[3];
static int passed, failed;

/* ---- output, with no printf ---- */

static size_t fs_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static void put(const char *s) { fs_write(s, fs_strlen(s)); }

static void put_dec(unsigned long v)
{
    char b[24], *p = b + sizeof b;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    fs_write(p, (size_t)(b + sizeof b - p));
}

/* Record one check: "PASS name" or "FAIL name: why". */
static void check(int ok, const char *name, const char *why)
{
    put(ok ? "PASS " : "FAIL ");
    put(name);
    if (!ok) {
        put(": ");
        put(why);
    }
    put("\n");
    if (ok)
        passed++;
    else
        failed++;
}

static int on_stack(const as_stack *s, const void *p)
{
    return (uintptr_t)p >= (uintptr_t)s->lo && (uintptr_t)p < (uintptr_t)s->hi;
}

/* ---- stacks ---- */

static void check_stacks(void)
{
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= as_stack_init(&stk[i], mem[i], sizeof mem[i]) == 0 && stk[i].map == NULL;
    check(ok, "stack_init adopts static memory", "as_stack_init failed");

    as_stack bad;
    check(as_stack_init(&bad, mem[0], 16) == -AS_EINVAL &&
          as_stack_init(&bad, NULL, sizeof mem[0]) == -AS_EINVAL &&
          as_stack_init(NULL, mem[0], sizeof mem[0]) == -AS_EINVAL,
          "stack_init rejects bad arguments", "expected -AS_EINVAL");
#if AS_FREESTANDING
    as_stack m;
    check(as_stack_alloc(&m, 1 << 16) == -AS_ENOSYS && m.lo == NULL,
          "stack_alloc is -ENOSYS without an OS", "as_stack_alloc did not refuse");
#endif
}

/* ---- as_switch ---- */

/* Started with its own stack as data; yields 0..9 (or -1 if it finds
 * itself on another stack), then returns 100 to whoever resumed it last. */
static as_transfer generator(as_transfer t)
{
    const as_stack *own = t.data;
    for (intptr_t i = 0; i < 10; i++) {
        int here;
        t = as_switch(t.ctx, on_stack(own, &here) ? (void *)i : (void *)-1);
    }
    return (as_transfer){ t.ctx, (void *)100 };
}

static void check_generator(void)
{
    as_transfer t = as_switch(as_ctx_make(&stk[0], generator), &stk[0]);
    int ok = t.ctx != NULL && (intptr_t)t.data == 0;
    for (intptr_t i = 1; ok && i < 10; i++) {
        t = as_switch(t.ctx, NULL);
        ok = t.ctx != NULL && (intptr_t)t.data == i;
    }
    check(ok, "generator yields 0..9 from its own stack", "wrong value or stack");
    t = as_switch(t.ctx, NULL);
    check(t.ctx == NULL && (intptr_t)t.data == 100,
          "entry return resumes the switcher with ctx NULL", "ctx not NULL or data lost");

    /* The finished context's stack is free again: reuse it. */
    t = as_switch(as_ctx_make(&stk[0], generator), &stk[0]);
    check(t.ctx != NULL && (intptr_t)t.data == 0, "a finished stack can be reused",
          "second generator did not start");
}

/* Replies to every n with 3n + 1; stops at 0. */
static as_transfer pong(as_transfer t)
{
    while ((uintptr_t)t.data != 0)
        t = as_switch(t.ctx, (void *)((uintptr_t)t.data * 3 + 1));
    return (as_transfer){ t.ctx, (void *)7 };
}

static void check_ping_pong(void)
{
    as_ctx peer = as_ctx_make(&stk[1], pong);
    int ok = peer != NULL;
    for (uintptr_t n = 1; ok && n <= 1000; n++) {
        as_transfer t = as_switch(peer, (void *)n);
        ok = t.ctx != NULL && (uintptr_t)t.data == 3 * n + 1;
        peer = t.ctx;
    }
    check(ok, "ping-pong passes data both ways 1000 times", "a reply was wrong");
    as_transfer t = as_switch(peer, NULL);
    check(t.ctx == NULL && (uintptr_t)t.data == 7, "ping-pong peer finishes cleanly",
          "wrong final transfer");
}

/* Two fresh contexts handing a token to each other, never to main, until
 * one returns to main: switches between contexts main did not make. */
static as_ctx g_main_ctx;

static as_transfer relay_b(as_transfer t)
{
    /* t.ctx = relay_a, t.data = token */
    while ((uintptr_t)t.data < 50)
        t = as_switch(t.ctx, (void *)((uintptr_t)t.data + 1));
    return (as_transfer){ t.ctx, (void *)((uintptr_t)t.data + 1000) };
}

static as_transfer relay_a(as_transfer t)
{
    g_main_ctx = t.ctx;
    t = as_switch(as_ctx_make(&stk[2], relay_b), (void *)1);
    while (t.ctx != NULL)
        t = as_switch(t.ctx, (void *)((uintptr_t)t.data + 1));
    /* relay_b finished: hand its result to main. */
    return (as_transfer){ g_main_ctx, t.data };
}

static void check_relay(void)
{
    as_transfer t = as_switch(as_ctx_make(&stk[1], relay_a), NULL);
    check(t.ctx == NULL && (uintptr_t)t.data == 1051,
          "two contexts relay a token and return", "wrong token");
}

/* An entry that finishes into a context nobody has run yet: the fresh one
 * starts with ctx NULL (nothing to return to) and hands its result to
 * main through g_main_ctx. */
static as_transfer second(as_transfer t)
{
    uintptr_t r = t.ctx == NULL ? (uintptr_t)t.data + 1 : 0;
    return (as_transfer){ g_main_ctx, (void *)r };
}

static as_transfer first(as_transfer t)
{
    g_main_ctx = t.ctx;
    return (as_transfer){ as_ctx_make(&stk[2], second), (void *)41 };
}

static void check_finish_into_fresh(void)
{
    as_transfer t = as_switch(as_ctx_make(&stk[1], first), NULL);
    check(t.ctx == NULL && (uintptr_t)t.data == 42,
          "an entry can finish into a fresh context", "wrong transfer");
}

/* Callee-saved registers (and FP control) survive, in both directions. */
static void check_registers(void)
{
    struct test_fidelity f = { .seed = 1 };
    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    as_transfer t = { as_ctx_make(&stk[1], test_fidelity_peer), NULL };
    int bad = 0;
    for (uint64_t round = 1; round <= 200; round++) {
        f.seed = round * 0x1234567u;
        test_regs_random(in, f.seed);
        t = test_switch_regs(t.ctx, &f, in, out);
        for (int i = 0; i < TEST_NREGS; i++)
            if ((in[i] ^ out[i]) & test_regs_mask(i))
                bad++;
    }
    f.seed = 0;
    t = as_switch(t.ctx, &f);
    check(bad == 0, "callee-saved registers survive a switch away", "a register changed");
    check(t.ctx == NULL && f.bad == 0 && f.rounds == 200,
          "callee-saved registers survive a switch back", "the peer saw a change");
}

static as_transfer ctx_probe(as_transfer t) { return t; }

static void check_ctx_make_args(void)
{
    static _Alignas(16) unsigned char tiny[128];
    as_stack s;
    s.lo = tiny;
    s.hi = tiny + sizeof tiny;
    s.map = NULL;
    s.map_size = 0;
    check(as_ctx_make(NULL, ctx_probe) == NULL && as_ctx_make(&stk[0], NULL) == NULL &&
          as_ctx_make(&s, ctx_probe) == NULL,
          "ctx_make refuses NULLs and tiny stacks", "returned a context");
}

/* ---- as_call_on ---- */

static void *times_two(void *p)
{
    int here;
    if (!on_stack(&stk[0], &here))
        return NULL;
    return (void *)((uintptr_t)p * 2);
}

/* Runs on stk[1], calls into stk[2], then checks it is back on stk[1]. */
static NOINLINE void *inner(void *p)
{
    int here;
    return on_stack(&stk[2], &here) ? (void *)((uintptr_t)p + 1) : NULL;
}

static NOINLINE void *outer(void *p)
{
    int here;
    if (!on_stack(&stk[1], &here))
        return NULL;
    void *r = as_call_on(&stk[2], inner, p);
    if (!on_stack(&stk[1], &here))
        return NULL;
    return r ? (void *)((uintptr_t)r * 10) : NULL;
}

static void check_call_on(void)
{
    int here;
    void *r = as_call_on(&stk[0], times_two, (void *)21);
    check(r == (void *)42 && !on_stack(&stk[0], &here),
          "call_on runs fn on the stack and returns its result", "wrong result or stack");
    r = as_call_on(&stk[1], outer, (void *)4);
    check(r == (void *)50, "call_on nests on two stacks", "a level ran on the wrong stack");
    check(as_call_on(NULL, times_two, (void *)1) == NULL &&
          as_call_on(&stk[0], NULL, (void *)1) == NULL,
          "call_on with a NULL stack or fn returns NULL", "fn was called");

    /* From inside a context: as_call_on and as_switch compose. */
    as_transfer t = as_switch(as_ctx_make(&stk[1], generator), &stk[1]);
    r = as_call_on(&stk[0], times_two, (void *)((uintptr_t)t.data + 5));
    t = as_switch(t.ctx, NULL);
    check(r == (void *)10 && t.ctx != NULL && t.data == (void *)1,
          "call_on while another context is suspended", "wrong result");
}

/* ---- as_switch_ontop ---- */

static as_transfer plus_ten(as_transfer t)
{
    return (as_transfer){ t.ctx, (void *)((uintptr_t)t.data + 10) };
}

static void check_ontop(void)
{
    /* Fresh: pong's entry receives 1 + 10 and replies 34; suspended: its
     * switch returns 2 + 10 and it replies 37. */
    as_transfer t = as_switch_ontop(as_ctx_make(&stk[1], pong), (void *)1, plus_ten);
    int ok = t.ctx != NULL && (uintptr_t)t.data == 34;
    t = as_switch_ontop(t.ctx, (void *)2, plus_ten);
    ok = ok && t.ctx != NULL && (uintptr_t)t.data == 37;
    t = as_switch(t.ctx, NULL);
    check(ok && t.ctx == NULL && (uintptr_t)t.data == 7,
          "switch_ontop runs fn on the target and hands it fn's result", "wrong transfer");
}

static int fs_main(void)
{
    put("libaltstack smoke test (" AS_ARCH_NAME ", ");
    put(AS_FREESTANDING ? "freestanding, no libc)\n" : "hosted)\n");
    check_stacks();
    check_generator();
    check_ping_pong();
    check_relay();
    check_finish_into_fresh();
    check_registers();
    check_ctx_make_args();
    check_call_on();
    check_ontop();
    put_dec((unsigned long)passed);
    put(" passed, ");
    put_dec((unsigned long)failed);
    put(" failed\n");
    return failed != 0;
}
