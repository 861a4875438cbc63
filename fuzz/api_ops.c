/* SPDX-License-Identifier: MIT */
/*
 * fuzz/api_ops.c - the public API surface with good and bad arguments,
 * against a model of what every call must return and leave behind.
 *
 * The input is a program.  Each operation picks its arguments from the
 * next bytes: an object slot, and often one of the argument classes below,
 * which mix live objects with the misuse a header promises to answer:
 *
 *   stack argument (stack_arg)   NULL, zeroed, inverted (hi < lo), tiny
 *                                (64 bytes), lo NULL, hi misaligned, or
 *                                one of the 8 stack slots (live or empty)
 *   sizes                        0, 1, AS_STACK_MIN - 1, a page, 64 KiB,
 *                                SIZE_MAX, 2^46 + 1
 *
 *   op byte % 16    what it does                       model
 *   0  ALLOC        as_stack_alloc / _shareable on a   0 or -EINVAL; *s zeroed
 *                   slot, size class                   on error; size rounded
 *   1  INIT         as_stack_init of arena memory,     the adoption rule
 *                   random offset, size class
 *   2  FREE         as_stack_free of a slot (its       slot empty
 *                   aliases stay valid)
 *   3  CTX          as_ctx_make(stack_arg), then run   NULL iff the stack is
 *                   it: the entry sees the data and    unusable; else a round
 *                   yields once, then returns          trip with the data
 *   4  CALL_ON      as_call_on(stack_arg, fn, arg)     fn runs on that stack
 *                                                      iff usable, else NULL
 *   5  ALLOC_ACT    as_act_alloc                       NULL iff none free; a
 *                                                      record nobody holds
 *   6  RELEASE      as_act_release of a slot's record  no-op unless held
 *                   (held or not), NULL, or a loose one
 *   7  ACT          capture into a held record, then   back at the capture,
 *                   resume it directly or through a    records back in pool
 *                   FRESH record on stack_arg
 *   8  POOL_INIT    bad arguments (a second pool), or  -EINVAL, pool intact;
 *                   re-init when no record is held     all free
 *   9  DLOCK        init / call / lock / unlock of 4   results, held state;
 *                   locks (unlock of a free one too),  a free lock works
 *                   server-mode binding
 *   10 DOMAIN       init/grant/revoke/enter/leave/fini errors the header lists
 *                   with good and bad arguments
 *   11 ALIAS        as_stack_alias of a slot, prot     0 iff shareable and
 *                   class                              prot READ/RW/WRITE
 *   12 UNALIAS      a live alias, a spent one, lo,     0 only for a live
 *                   map, NULL, misaligned              alias; else nothing
 *                                                      unmapped
 *   13 PERCPU       as_percpu_set of NULL, a local,    get returns it (or the
 *                   non-canonical and kernel-half      previous one where GS
 *                   values                             cannot hold it)
 *   14 AUX          as_auxstack_set(stack_arg) then    fn runs iff usable
 *                   as_call_on_aux
 *   15 MISC         NULL / uninitialised arguments to  the documented answer
 *                   the rest (dserver, act_init, ...)
 *
 * After every operation the touched objects are used once more: a stack
 * is written at both ends, the pool's free count matches the model, a
 * free dlock is taken through as_dlock_call.  At the end everything is
 * released and checked once more.
 *
 * API_OPS_CALL_ON_BAD (default 1): pass unusable stacks to as_call_on and
 * as_call_on_aux's stack.  switch.h promises NULL without calling fn for
 * every stack as_ctx_make rejects.
 */
#include <altstack.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "fuzz.h"

#ifndef API_OPS_CALL_ON_BAD
# define API_OPS_CALL_ON_BAD 1
#endif

#define NSTK      8
#define NREC      8
#define NDL       4
#define NALIAS    8
#define MAX_STEPS 1500
#define ARENA     (64 << 10)

static struct fuzz_prog g;

static const char *const op_names[16] = {
    "ALLOC", "INIT", "FREE", "CTX", "CALL_ON", "ALLOC_ACT", "RELEASE", "ACT",
    "POOL_INIT", "DLOCK", "DOMAIN", "ALIAS", "UNALIAS", "PERCPU", "AUX", "MISC",
};

enum { S_EMPTY, S_MAPPED, S_SHARE, S_ADOPTED };

static as_stack stk[NSTK];
static unsigned char st[NSTK];                  /* model: S_* */
static unsigned char arena[ARENA] __attribute__((aligned(64)));

static as_act recs[NREC + 1] __attribute__((aligned(64)));  /* + a loose one */
static as_act_pool pool;
static bool held[NREC];                         /* model */
static size_t nheld;

static as_dlock dl[NDL];
static as_dserver srv;
static bool dl_held[NDL];                       /* model (locks 0..2 combining) */

static struct { void *addr; as_stack s; bool live; } al[NALIAS];

static size_t page;

/* ---- stacks ---- */

static size_t size_class(uint8_t b)
{
    static const size_t sz[] = { 0, 1, AS_STACK_MIN - 1, 4096, 64 << 10,
                                 (size_t)-1, ((size_t)1 << 46) + 1, AS_STACK_MIN };
    return sz[b % 8];
}


/* Can the library run code on it (the rule switch.h states)? */
static bool usable_min(const as_stack *s, size_t min)
{
    if (!s || !s->lo || !s->hi)
        return false;
    uintptr_t top = (uintptr_t)s->hi & ~(uintptr_t)15;
    return top >= (uintptr_t)s->lo && top - (uintptr_t)s->lo >= min;
}

static bool usable(const as_stack *s) { return usable_min(s, AS_STACK_MIN); }

/* AS_STACK_MIN is what the library itself needs; the code run on a stack
 * needs its own frames on top (the entry functions here, instrumented by
 * ASan, take over a kilobyte).  A stack the library accepts but that is too
 * small for them would overflow into whatever lies below it (with adopted
 * memory: this file's globals), so such stacks are checked for acceptance
 * and never run on. */
#define RUN_MIN 4096
static bool runnable(const as_stack *s) { return usable_min(s, RUN_MIN); }

static as_stack bad;                            /* the current stack_arg */

static const as_stack *stack_arg(uint8_t b)
{
    unsigned char *m = arena + 4096;
    switch (b % 16) {
    case 0: return NULL;
    case 1: bad = (as_stack){0}; return &bad;
    case 2: bad = (as_stack){ m + 1024, m, NULL, 0 }; return &bad;
    case 3: bad = (as_stack){ m, m + 64, NULL, 0 }; return &bad;
    case 4: bad = (as_stack){ NULL, m + 1024, NULL, 0 }; return &bad;
    case 5: bad = (as_stack){ m, m + 4096 + 7, NULL, 0 }; return &bad;
    case 6: bad = (as_stack){ m, m + AS_STACK_MIN + 15, NULL, 0 }; return &bad;
    case 7: bad = (as_stack){ m, m + AS_STACK_MIN, NULL, 0 }; return &bad;
    default: return &stk[b % NSTK];
    }
}

static bool on_stack(const as_stack *s, const void *p)
{
    return (uintptr_t)p >= (uintptr_t)s->lo && (uintptr_t)p < (uintptr_t)s->hi;
}

/* A live stack is fully usable: write and read both ends. */
static void touch(int i)
{
    if (st[i] == S_EMPTY) {
        FUZZ_CHECK(&g, !stk[i].lo && !stk[i].hi && !stk[i].map, "empty slot %d not zeroed", i);
        return;
    }
    volatile unsigned char *lo = stk[i].lo, *hi = (unsigned char *)stk[i].hi - 1;
    unsigned char v = (unsigned char)g.step;
    *lo = v;
    *hi = (unsigned char)(v ^ 0x5a);
    FUZZ_CHECK(&g, *lo == v && *hi == (unsigned char)(v ^ 0x5a), "stack %d lost a write", i);
}

static void op_alloc(void)
{
    int i = fuzz_byte(&g) % NSTK;
    uint8_t b = fuzz_byte(&g);
    size_t size = size_class(b);
    bool share = b & 8;
    if (st[i] != S_EMPTY)
        return;
    int r = share ? as_stack_alloc_shareable(&stk[i], size) : as_stack_alloc(&stk[i], size);
    bool ok = size > 0 && size <= ((size_t)1 << 46);
    /* A good size may still find no memory: qemu-user under ASan has much
     * less address space than a native process, and the 64 TiB class
     * needs it all. */
    FUZZ_CHECK(&g, ok ? (r == 0 || r == -ENOMEM) : r == -EINVAL, "alloc(%zu) = %d", size, r);
    if (r) {
        FUZZ_CHECK(&g, !stk[i].lo && !stk[i].hi && !stk[i].map && !stk[i].map_size,
                   "alloc error left *s non-zero");
        return;
    }
    FUZZ_CHECK(&g, as_stack_size(&stk[i]) >= size && as_stack_size(&stk[i]) % page == 0 &&
               (uintptr_t)stk[i].lo % page == 0 && stk[i].map_size == as_stack_size(&stk[i]) + page,
               "alloc(%zu) gave %zu usable, map_size %zu", size, as_stack_size(&stk[i]),
               stk[i].map_size);
    st[i] = share ? S_SHARE : S_MAPPED;
    touch(i);
}

static void op_init(void)
{
    int i = fuzz_byte(&g) % NSTK;
    size_t off = (size_t)fuzz_byte(&g) * 64 + fuzz_byte(&g) % 64;
    uint8_t b = fuzz_byte(&g);
    size_t size = size_class(b);
    bool null_mem = b & 8, null_s = (b & 0x30) == 0x30;
    if (size > ARENA - off && size != (size_t)-1)
        size = ARENA - off;             /* SIZE_MAX stays: it must wrap */
    void *mem = null_mem ? NULL : arena + off;
    as_stack keep = stk[i];
    if (st[i] != S_EMPTY && !null_s)
        return;
    int r = as_stack_init(null_s ? NULL : &stk[i], mem, size);
    /* The adoption rule of stack.h. */
    int want = 0;
    uintptr_t m = (uintptr_t)mem, lo = (m + 15) & ~(uintptr_t)15;
    if (null_s || !mem || size > UINTPTR_MAX - m)
        want = -EINVAL;
    else {
        uintptr_t hi = (m + size) & ~(uintptr_t)15;
        if (hi < lo || hi - lo < AS_STACK_MIN)
            want = -EINVAL;
    }
    FUZZ_CHECK(&g, r == want, "as_stack_init(%p, %zu) = %d, want %d", mem, size, r, want);
    if (r) {
        FUZZ_CHECK(&g, !memcmp(&keep, &stk[i], sizeof keep), "failed init changed *s");
        return;
    }
    FUZZ_CHECK(&g, (uintptr_t)stk[i].lo == lo && !stk[i].map && (uintptr_t)stk[i].hi % 16 == 0,
               "as_stack_init: lo %p hi %p", stk[i].lo, stk[i].hi);
    st[i] = S_ADOPTED;
    touch(i);
}

static void op_free(void)
{
    int i = fuzz_byte(&g) % NSTK;
    as_stack_free(&stk[i]);
    st[i] = S_EMPTY;
    touch(i);
    as_stack_free(NULL);
}

/* ---- contexts and calls ---- */

static uintptr_t ctx_data;
static const as_stack *ctx_on;

static as_transfer ctx_entry(as_transfer t)
{
    FUZZ_CHECK(&g, (uintptr_t)t.data == ctx_data, "entry got %p", t.data);
    FUZZ_CHECK(&g, on_stack(ctx_on, __builtin_frame_address(0)), "entry not on its stack");
    t = as_switch(t.ctx, (void *)(ctx_data + 1));
    FUZZ_CHECK(&g, (uintptr_t)t.data == ctx_data + 2, "entry resumed with %p", t.data);
    return (as_transfer){ t.ctx, (void *)(ctx_data + 3) };
}

static void op_ctx(void)
{
    const as_stack *s = stack_arg(fuzz_byte(&g));
    bool fn_null = (fuzz_byte(&g) & 7) == 7;
    as_ctx c = as_ctx_make(s, fn_null ? NULL : ctx_entry);
    bool ok = usable_min(s, AS_STACK_MIN) && !fn_null;
    FUZZ_CHECK(&g, (c != NULL) == ok, "as_ctx_make = %p, usable %d", (void *)c, ok);
    if (!c || !runnable(s))
        return;                     /* a frame never started needs no cleanup */
    ctx_data = (uintptr_t)g.step << 4;
    ctx_on = s;
    as_transfer t = as_switch(c, (void *)ctx_data);
    FUZZ_CHECK(&g, t.ctx && (uintptr_t)t.data == ctx_data + 1, "first yield %p", t.data);
    t = as_switch(t.ctx, (void *)(ctx_data + 2));
    FUZZ_CHECK(&g, !t.ctx && (uintptr_t)t.data == ctx_data + 3, "finish ctx %p data %p",
               (void *)t.ctx, t.data);
}

static int call_ran;

static void *call_fn(void *arg)
{
    call_ran++;
    FUZZ_CHECK(&g, on_stack(ctx_on, __builtin_frame_address(0)), "fn not on the stack");
    return (char *)arg + 1;
}

static void op_call_on(void)
{
    const as_stack *s = stack_arg(fuzz_byte(&g));
    bool fn_null = (fuzz_byte(&g) & 7) == 7;
    if (!API_OPS_CALL_ON_BAD && (!usable(s) || fn_null))
        return;
    if (usable(s) && !runnable(s))
        return;
    call_ran = 0;
    ctx_on = s;
    void *r = as_call_on(s, fn_null ? NULL : call_fn, arena);
    bool ok = usable(s) && !fn_null;
    FUZZ_CHECK(&g, call_ran == ok && r == (ok ? arena + 1 : NULL),
               "as_call_on: ran %d, returned %p, usable %d", call_ran, r, ok);
}

/* ---- records and pools ---- */

static void check_pool(void)
{
    size_t f = as_act_pool_free(&pool);
    FUZZ_CHECK(&g, f == NREC - nheld, "pool has %zu free, model %zu", f, NREC - (size_t)nheld);
}

static as_act *take(void)
{
    as_act *a = as_act_alloc(&pool);
    if (nheld == NREC) {
        FUZZ_CHECK(&g, !a, "alloc from an empty pool gave %p", (void *)a);
        return NULL;
    }
    FUZZ_CHECK(&g, a && a >= recs && a < recs + NREC, "alloc gave %p", (void *)a);
    FUZZ_CHECK(&g, !held[a - recs], "alloc handed out held record %td", a - recs);
    held[a - recs] = true;
    nheld++;
    return a;
}

static void op_alloc_act(void)
{
    take();
    check_pool();
}

static void op_release(void)
{
    uint8_t b = fuzz_byte(&g);
    int i = b % (NREC + 2);
    if (i == NREC + 1) {
        as_act_release(NULL);
    } else {
        as_act_release(&recs[i]);          /* NREC: a record of no pool */
        if (i < NREC && held[i]) {
            held[i] = false;
            nheld--;
        }
    }
    check_pool();
}

static as_act *act_back;
static uintptr_t act_arg;

static void fresh_fn(void *arg)
{
    FUZZ_CHECK(&g, (uintptr_t)arg == act_arg, "fresh record got %p", arg);
    FUZZ_CHECK(&g, on_stack(ctx_on, __builtin_frame_address(0)), "fresh fn not on its stack");
    as_act_resume(act_back);
}

static void op_act(void)
{
    uint8_t how = fuzz_byte(&g);
    const as_stack *s = stack_arg(fuzz_byte(&g));
    as_act *a = take();
    if (!a)
        return;
    as_act *f = (how & 1) ? take() : NULL;
    volatile int resumed = 0;
    if (as_act_capture(a) == 0) {
        FUZZ_CHECK(&g, as_act_kind(a) == AS_ACT_CALL, "capture kind %d", as_act_kind(a));
        if (f) {
            act_back = a;
            act_arg = (uintptr_t)g.step;
            ctx_on = s;
            as_act_init(f, s, (how & 2) ? fresh_fn : NULL, (void *)act_arg);
            bool ok = usable(s) && (how & 2);
            FUZZ_CHECK(&g, as_act_kind(f) == (ok ? AS_ACT_FRESH : AS_ACT_NONE),
                       "as_act_init kind %d, usable %d", as_act_kind(f), ok);
            FUZZ_CHECK(&g, (as_act_pc(f) != 0) == ok && (as_act_sp(f) != 0) == ok, "pc/sp");
            if (ok && runnable(s)) {
                resumed = 1;
                as_act_resume(f);
            }
        }
        resumed = 2;
        as_act_resume(a);
    }
    FUZZ_CHECK(&g, resumed, "capture returned twice without a resume");
    held[a - recs] = false;
    nheld--;
    if (f && resumed == 1) {
        held[f - recs] = false;
        nheld--;
    }
    check_pool();
}

static void op_pool_init(void)
{
    static as_act_pool other;
    uint8_t b = fuzz_byte(&g);
    int r;
    switch (b % 8) {
    case 0: r = as_act_pool_init(NULL, recs, NREC); break;
    case 1: r = as_act_pool_init(&pool, NULL, NREC); break;
    case 2: r = as_act_pool_init(&pool, recs, 0); break;
    case 3: r = as_act_pool_init(&pool, (as_act *)(void *)((char *)recs + 8), NREC); break;
    case 4: r = as_act_pool_init(&other, recs, (size_t)1 << 32); break;
    case 5: r = as_act_pool_init(&other, recs, (size_t)-1 / 2); break;
    default:
        if (nheld)
            return;                 /* only a pool nobody uses */
        r = as_act_pool_init(&pool, recs, NREC);
        FUZZ_CHECK(&g, r == 0, "pool re-init = %d", r);
        check_pool();
        return;
    }
    FUZZ_CHECK(&g, r == -EINVAL, "bad pool_init (%d) = %d", b % 8, r);
    check_pool();
    FUZZ_CHECK(&g, as_act_alloc(NULL) == NULL && as_act_pool_free(NULL) == 0, "NULL pool");
}

/* ---- dlocks ---- */

static void *dl_cs(void *p)
{
    return (char *)p + 2;
}

static void dl_works(int i)
{
    if (i >= 3 || dl_held[i])
        return;
    void *r = as_dlock_call(&dl[i], dl_cs, arena);
    FUZZ_CHECK(&g, r == arena + 2, "free lock %d: call returned %p", i, r);
    FUZZ_CHECK(&g, dl[i].word == 0 && !dl[i].back, "lock %d word %#lx after a call", i,
               (unsigned long)dl[i].word);
}

static void op_dlock(void)
{
    uint8_t b = fuzz_byte(&g);
    int i = fuzz_byte(&g) % NDL;          /* 3: server mode, never served */
    switch (b % 6) {
    case 0:                                 /* init */
        if (dl_held[i])
            return;
        as_dlock_init(&dl[i], i == 3 ? &srv : NULL);
        as_dlock_init(NULL, NULL);
        break;
    case 1: {                               /* init with an uninitialised server */
        as_dserver junk;
        memset(&junk, 0xa5, sizeof junk);
        as_dlock copy = dl[i];
        as_dlock_init(&dl[i], &junk);
        FUZZ_CHECK(&g, !memcmp(&copy, &dl[i], sizeof copy), "init with junk server changed l");
        break;
    }
    case 2:                                 /* call */
        if (i == 3 || dl_held[i])
            return;
        FUZZ_CHECK(&g, as_dlock_call(&dl[i], NULL, arena) == NULL, "call(NULL cs)");
        FUZZ_CHECK(&g, as_dlock_call(NULL, dl_cs, arena) == NULL, "call(NULL l)");
        break;
    case 3:                                 /* lock */
        if (i == 3 || dl_held[i])
            return;
        as_dlock_lock(&dl[i]);
        dl_held[i] = true;
        FUZZ_CHECK(&g, dl[i].word & 1, "lock %d not held after lock", i);
        break;
    case 4:                                 /* unlock, held or not */
    case 5:
        as_dlock_unlock(&dl[i]);
        dl_held[i] = false;
        if (i == 3)
            FUZZ_CHECK(&g, dl[3].word == 0 && !dl[3].back, "server lock changed by unlock");
        break;
    }
    dl_works(i);
}

/* ---- domains and aliases ---- */

static void op_domain(void)
{
    uint8_t b = fuzz_byte(&g);
    as_domain d, e;
    memset(&d, 0, sizeof d);
    memset(&e, 0, sizeof e);
    as_stack own, other, zero = {0};
    FUZZ_CHECK(&g, as_domain_init(NULL, &zero) == -EINVAL, "init(NULL)");
    FUZZ_CHECK(&g, as_domain_init(&d, NULL) == -EINVAL, "init(d, NULL)");
    FUZZ_CHECK(&g, as_domain_init(&d, &zero) == -EINVAL, "init(d, zeroed)");
    FUZZ_CHECK(&g, as_domain_enter(&d) == -EINVAL, "enter(uninitialised)");
    FUZZ_CHECK(&g, as_domain_fini(&d) == -EINVAL, "fini(uninitialised)");
    FUZZ_CHECK(&g, as_domain_grant(&d, &zero, AS_PROT_READ) == -EINVAL, "grant(uninit)");
    if (as_stack_alloc(&own, 16 << 10) || as_stack_alloc(&other, 16 << 10))
        abort();
    int r = as_domain_init(&d, &own);
    FUZZ_CHECK(&g, r == 0, "init = %d", r);
    FUZZ_CHECK(&g, as_domain_init(&d, &own) == -EBUSY, "second init");
    FUZZ_CHECK(&g, as_domain_init(&e, &own) == -EBUSY, "init on a managed stack");
    int prot = b & 7;
    r = as_domain_grant(&d, &other, prot);
    FUZZ_CHECK(&g, r == (prot > AS_PROT_RW ? -EINVAL : 0), "grant prot %d = %d", prot, r);
    FUZZ_CHECK(&g, as_domain_grant(&d, &own, AS_PROT_READ) == -EINVAL, "grant own");
    FUZZ_CHECK(&g, as_domain_grant(&d, NULL, AS_PROT_READ) == -EINVAL, "grant NULL");
    FUZZ_CHECK(&g, as_domain_grant(&d, &zero, AS_PROT_READ) == -EINVAL, "grant empty");
    FUZZ_CHECK(&g, as_domain_revoke(&d, NULL) == -EINVAL, "revoke NULL");
    if (b & 8)
        FUZZ_CHECK(&g, as_domain_revoke(&d, &other) == 0, "revoke");
    if (b & 16) {
        FUZZ_CHECK(&g, as_domain_enter(&d) == 0, "enter");
        ((volatile char *)own.lo)[0] = 1;
        FUZZ_CHECK(&g, as_domain_current() == &d, "current");
        FUZZ_CHECK(&g, as_domain_fini(&d) == -EBUSY, "fini of the current domain");
        FUZZ_CHECK(&g, as_domain_leave() == 0, "leave");
    }
    FUZZ_CHECK(&g, as_domain_current() == NULL, "current after leave");
    FUZZ_CHECK(&g, as_domain_fini(&d) == 0, "fini");
    FUZZ_CHECK(&g, as_domain_fini(&d) == -EINVAL, "second fini");
    ((volatile char *)own.lo)[0] = 2;
    ((volatile char *)other.lo)[0] = 2;
    as_stack_free(&own);
    as_stack_free(&other);
}

static void op_alias(void)
{
    int i = fuzz_byte(&g) % NSTK;
    uint8_t b = fuzz_byte(&g);
    int prot = b % 5;                       /* 0 none, 1 R, 2 W, 3 RW, 4 junk */
    if (prot == 4)
        prot = 0x40;
    int k;
    for (k = 0; k < NALIAS && al[k].live; k++)
        ;
    if (k == NALIAS)
        return;
    void *a = (void *)1;
    int r = as_stack_alias(&stk[i], prot, &a);
    bool ok = st[i] == S_SHARE && prot >= 1 && prot <= 3;
    FUZZ_CHECK(&g, r == (ok ? 0 : -EINVAL), "alias(slot %d state %d, prot %d) = %d", i, st[i],
               prot, r);
    FUZZ_CHECK(&g, as_stack_alias(&stk[i], AS_PROT_READ, NULL) == -EINVAL, "alias(NULL out)");
    if (r)
        return;
    unsigned char v = (unsigned char)(g.step * 7 + 1);
    ((volatile unsigned char *)stk[i].lo)[3] = v;
    FUZZ_CHECK(&g, ((volatile unsigned char *)a)[3] == v, "alias does not see the stack");
    if (prot & AS_PROT_WRITE) {
        ((volatile unsigned char *)a)[5] = v;
        FUZZ_CHECK(&g, ((volatile unsigned char *)stk[i].lo)[5] == v, "stack does not see alias");
    }
    al[k].addr = a;
    al[k].s = stk[i];
    al[k].live = true;
}

static void op_unalias(void)
{
    int k = fuzz_byte(&g) % NALIAS;
    uint8_t b = fuzz_byte(&g);
    if (!al[k].addr && b % 6 != 5)
        return;                             /* never used: no stack to name */
    const as_stack *s = &al[k].s;
    void *target;
    switch (b % 6) {
    case 0: target = al[k].addr; break;     /* live or spent */
    case 1: target = al[k].s.lo; break;
    case 2: target = al[k].s.map; break;
    case 3: target = NULL; break;
    case 4: target = (char *)al[k].addr + 1; break;
    default: s = &stk[k % NSTK]; target = s->lo; break;
    }
    /* Only a live alias of that size may go (addresses are reused: a
     * spent alias's or a freed stack's address may be a live alias now). */
    int live = -1;
    for (int j = 0; j < NALIAS; j++)
        if (al[j].live && target && al[j].addr == target &&
            as_stack_size(&al[j].s) == as_stack_size(s))
            live = j;
    int r = as_stack_unalias(s, target);
    FUZZ_CHECK(&g, r == (live >= 0 ? 0 : -EINVAL), "unalias(%d, case %d) = %d", k, b % 6, r);
    if (live >= 0)
        al[live].live = false;
    /* Nothing else was unmapped: every live alias and stack still works. */
    for (int j = 0; j < NALIAS; j++)
        if (al[j].live)
            (void)((volatile unsigned char *)al[j].addr)[0];
    for (int j = 0; j < NSTK; j++)
        touch(j);
}

/* ---- per-CPU ---- */

static void op_percpu(void)
{
    static const uintptr_t vals[] = {
        0, 0x1000, 0x8000000000000000u, 0x0000800000000000u, 0xffff800000000000u,
        0x00ff000000000000u, 0x7ffffffff000u,
    };
    uint8_t b = fuzz_byte(&g);
    uintptr_t v = b % 8 < 7 ? vals[b % 8] : (uintptr_t)arena;
    void *prev = as_percpu_get();
    as_percpu_set((void *)v);
    void *now = as_percpu_get();
#if AS_ARCH_X86_64
    bool canon48 = (uintptr_t)((intptr_t)(v << 16) >> 16) == v;
    bool canon57 = (uintptr_t)((intptr_t)(v << 7) >> 7) == v;
    if (canon48 && v < ((uintptr_t)1 << 47))
        FUZZ_CHECK(&g, now == (void *)v, "percpu_set(%#lx) not taken", (unsigned long)v);
    else if (!canon57)
        FUZZ_CHECK(&g, now == prev, "percpu_set(%#lx) changed the base", (unsigned long)v);
    else
        FUZZ_CHECK(&g, now == prev || now == (void *)v, "percpu_set(%#lx)", (unsigned long)v);
#else
    (void)prev;
    FUZZ_CHECK(&g, now == (void *)v, "percpu_set(%#lx) not taken", (unsigned long)v);
#endif
}

static void op_aux(void)
{
    const as_stack *s = stack_arg(fuzz_byte(&g));
    bool fn_null = (fuzz_byte(&g) & 7) == 7;
    if (usable(s) && !runnable(s))
        return;
    as_auxstack_set(s);
    call_ran = 0;
    ctx_on = s;
    void *r = as_call_on_aux(fn_null ? NULL : call_fn, arena);
    bool ok = usable(s) && !fn_null;
    FUZZ_CHECK(&g, call_ran == ok && r == (ok ? arena + 1 : NULL),
               "as_call_on_aux: ran %d, returned %p, usable %d", call_ran, r, ok);
    FUZZ_CHECK(&g, !as_on_auxstack(), "on the aux stack after the call");
    as_auxstack_set(NULL);
    FUZZ_CHECK(&g, as_call_on_aux(call_fn, arena) == NULL, "aux call with none set");
}

/* ---- the rest ---- */

static void op_misc(void)
{
    uint8_t b = fuzz_byte(&g);
    switch (b % 6) {
    case 0: {
        as_dserver s;
        memset(&s, 0x5a, sizeof s);
        as_dserver_run(&s);                 /* uninitialised: returns at once */
        as_dserver_run(NULL);
        as_dserver_stop(NULL);
        FUZZ_CHECK(&g, as_dserver_init(NULL) == -EINVAL, "dserver_init(NULL)");
        break;
    }
    case 1:
        as_act_init(NULL, &stk[0], fresh_fn, NULL);
        as_act_init(&recs[NREC], NULL, fresh_fn, NULL);
        FUZZ_CHECK(&g, as_act_kind(&recs[NREC]) == AS_ACT_NONE, "act_init(NULL stack)");
        FUZZ_CHECK(&g, as_act_kind(NULL) == AS_ACT_NONE && !as_act_pc(NULL) && !as_act_sp(NULL),
                   "NULL record accessors");
        break;
    case 2:
        FUZZ_CHECK(&g, as_act_resume_busy(0) == 0 && as_act_resume_busy((uintptr_t)arena) == 0,
                   "resume_busy");
        FUZZ_CHECK(&g, as_act_fpu_check() == 0 || as_act_fpu_check() == -ENOSPC, "fpu_check");
        break;
    case 3: {
        as_preempt_cfg cfg = {0};
        FUZZ_CHECK(&g, as_preempt_start(NULL) == -EINVAL, "preempt_start(NULL)");
        FUZZ_CHECK(&g, as_preempt_start(&cfg) == -EINVAL, "preempt_start(zeroed)");
        FUZZ_CHECK(&g, as_preempt_stop() == -EINVAL, "preempt_stop when not running");
        break;
    }
    case 4:
        FUZZ_CHECK(&g, as_stack_size(NULL) == 0, "stack_size(NULL)");
        FUZZ_CHECK(&g, as_stack_alloc(NULL, 4096) == -EINVAL, "stack_alloc(NULL)");
        break;
    default:
        FUZZ_CHECK(&g, as_domain_ctx_make(NULL, ctx_entry) == NULL, "domain_ctx_make(NULL)");
        FUZZ_CHECK(&g, as_domain_set_backend("nonsense") == -EINVAL, "set_backend(junk)");
        break;
    }
}

static void teardown(void)
{
    g.op = "TEARDOWN";
    for (int k = 0; k < NALIAS; k++) {
        if (al[k].live)
            FUZZ_CHECK(&g, as_stack_unalias(&al[k].s, al[k].addr) == 0, "unalias %d", k);
        al[k].live = false;
        al[k].addr = NULL;
    }
    for (int i = 0; i < NSTK; i++) {
        as_stack_free(&stk[i]);
        st[i] = S_EMPTY;
    }
    for (int i = 0; i < NREC; i++) {
        as_act_release(&recs[i]);
        if (held[i])
            nheld--;
        held[i] = false;
    }
    check_pool();
    for (int i = 0; i < NDL; i++) {
        if (dl_held[i])
            as_dlock_unlock(&dl[i]);
        dl_held[i] = false;
        dl_works(i);
    }
    as_percpu_set(NULL);
    as_auxstack_set(NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    page = (size_t)sysconf(_SC_PAGESIZE);
    g = (struct fuzz_prog){ .p = data, .len = size };
    FUZZ_CHECK(&g, as_act_pool_init(&pool, recs, NREC) == 0, "pool_init");
    memset(held, 0, sizeof held);
    nheld = 0;
    as_dserver_init(&srv);
    for (int i = 0; i < NDL; i++)
        as_dlock_init(&dl[i], i == 3 ? &srv : NULL);
    memset(&recs[NREC], 0, sizeof recs[NREC]);

    while (!fuzz_done(&g, MAX_STEPS)) {
        g.step++;
        unsigned op = fuzz_byte(&g) % 16;
        g.op = op_names[op];
        switch (op) {
        case 0: op_alloc(); break;
        case 1: op_init(); break;
        case 2: op_free(); break;
        case 3: op_ctx(); break;
        case 4: op_call_on(); break;
        case 5: op_alloc_act(); break;
        case 6: op_release(); break;
        case 7: op_act(); break;
        case 8: op_pool_init(); break;
        case 9: op_dlock(); break;
        case 10: op_domain(); break;
        case 11: op_alias(); break;
        case 12: op_unalias(); break;
        case 13: op_percpu(); break;
        case 14: op_aux(); break;
        default: op_misc(); break;
        }
    }
    teardown();
    return 0;
}
