/* SPDX-License-Identifier: MIT */
/*
 * fuzz/switch_ops.c - the stack switcher against a reference model.
 *
 * The input is a program over up to 64 contexts plus the fuzzer's own
 * thread ("main").  Whoever is running executes the next operation, so a
 * switch can go from any context to any other, from inside nested
 * as_call_on calls, and back:
 *
 *   op byte % 8   arguments      what it does
 *   0 MAKE        slot           as_ctx_make on the slot's stack, if the slot
 *                                is empty or its context finished (reuse)
 *   1,2 SWITCH    slot, byte     as_switch to a made or suspended context,
 *                                through the register probe (tests/regs.h)
 *   3 RETURN      slot, byte     the running context's entry returns a
 *                                transfer to that slot (only at call depth 0)
 *   4 CALL_ON     aux            as_call_on on one of 4 auxiliary stacks, if
 *                                free (and at most 4 deep per context); the
 *                                program continues on that stack
 *   5 CALL_RET    byte           return from the innermost as_call_on
 *   6 ACT         -              if this interpreter level holds no record:
 *                                as_act_capture into a pooled record; else
 *                                as_act_resume it, which lands back at that
 *                                capture (switches, as_call_on calls and
 *                                other contexts' runs may lie in between) and
 *                                gives the record back to the pool
 *   7 ONTOP       slot, byte     as_switch_ontop to a made or suspended
 *                                context, through the register probe: fn
 *                                checks it runs on the stack the target is
 *                                suspended on (seen again when the target
 *                                arrives) and that it got {caller, data};
 *                                the target must observe fn's result
 *
 * The model is plain C: the state of every slot (empty, made, suspended,
 * running, finished), who runs, each context's as_call_on depth, the
 * owner of every auxiliary stack and how many activation records are
 * held.  It alone decides whether an operation is
 * valid (invalid ones are skipped), and it predicts what the side that
 * resumes must observe.  Every resumption checks, on the real side:
 *   - that the code running is the context the model says (its identity
 *     comes from the stack its frame is on, not from the model);
 *   - that its frame is on the stack the model says (own or auxiliary);
 *   - the data it received, and whether ctx is NULL (the switcher finished);
 *   - every callee-saved register, the MXCSR control bits and the x87
 *     control word (aarch64: x19-x29, d8-d15, FPCR) it had before, with
 *     random values loaded by the probe.
 * When the input ends, every context still alive is resumed once more and
 * unwinds: its as_call_on levels return, its entry returns to main.  So
 * each run ends with no context suspended and every stack free, and
 * contexts finish by returning rather than being abandoned.
 */
#include <altstack.h>
#include <stdbool.h>
#include <string.h>
#include "fuzz.h"
#include "regs.h"

#define NCTX      64
#define MAIN      NCTX              /* the fuzzer's thread, never finishes   */
#define NAUX      4
#define MAXDEPTH  4
#define STACK_SZ  (128 << 10)
#define MAX_STEPS 4000
#define NACT      512               /* >= one per interpreter level          */

enum { EMPTY, MADE, SUSPENDED, RUNNING, DONE };
enum { R_RETURN = 1, R_CALLRET, R_END, R_TEARDOWN };

static struct fuzz_prog g;

/* The real side: stacks and the handles of suspended contexts. */
static as_stack stk[NCTX], aux[NAUX];
static as_ctx   handle[NCTX + 1];
static as_act   act_recs[NACT] __attribute__((aligned(64)));
static as_act_pool act_pool;

/* The model. */
static struct {
    unsigned char st[NCTX + 1];
    int           depth[NCTX + 1];
    int           aux_owner[NAUX];
    size_t        acts;             /* activation records held             */
    int           cur;
    bool          teardown;
    /* what the next side to resume must observe */
    int           to, from;
    uintptr_t     data;
    bool          null;
    /* the entry's return, and the value of the next CALL_RET */
    int           ret_to;
    uintptr_t     ret_data, callret;
    /* ONTOP: what its fn saw */
    bool          ontop;
    int           ontop_ran;
    const as_stack *ontop_on;
} m;

static const char *const op_names[8] = {
    "MAKE", "SWITCH", "SWITCH", "RETURN", "CALL_ON", "CALL_RET", "ACT", "ONTOP",
};

static const as_stack *stack_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    for (int i = 0; i < NCTX; i++)
        if (a >= (uintptr_t)stk[i].lo && a < (uintptr_t)stk[i].hi)
            return &stk[i];
    for (int i = 0; i < NAUX; i++)
        if (a >= (uintptr_t)aux[i].lo && a < (uintptr_t)aux[i].hi)
            return &aux[i];
    return NULL;                      /* the thread's own stack */
}

#define ONTOP_XOR 0x5a5a00u

/* as_switch_ontop's fn: runs on the target's stack, before it arrives. */
static as_transfer ontop_fn(as_transfer t)
{
    m.ontop_ran++;
    m.ontop_on = stack_of(__builtin_frame_address(0));
    FUZZ_CHECK(&g, t.ctx != NULL, "ontop fn got no caller");
    FUZZ_CHECK(&g, ((uintptr_t)t.data ^ ONTOP_XOR) == m.data, "ontop fn got data %#lx",
               (unsigned long)(uintptr_t)t.data);
    return (as_transfer){ t.ctx, (void *)((uintptr_t)t.data ^ ONTOP_XOR) };
}

static uintptr_t next_data(void)
{
    return (uintptr_t)g.step << 8 | fuzz_byte(&g);
}

/* The resumed side: check what it observes against the model. */
static __attribute__((noinline)) void arrived(int me, const as_stack *on, as_transfer t)
{
    const as_stack *here = stack_of(__builtin_frame_address(0));
    FUZZ_CHECK(&g, m.to == me, "context %d resumed, model expected %d", me, m.to);
    FUZZ_CHECK(&g, m.cur == me, "context %d running, model has %d", me, m.cur);
    FUZZ_CHECK(&g, here == on, "context %d runs on stack %p, expected %p",
               me, (void *)here, (const void *)on);
    if (m.ontop) {
        FUZZ_CHECK(&g, m.ontop_ran == 1, "as_switch_ontop's fn ran %d times", m.ontop_ran);
        FUZZ_CHECK(&g, m.ontop_on == on, "as_switch_ontop's fn ran on stack %p, target on %p",
                   (const void *)m.ontop_on, (const void *)on);
        m.ontop = false;
    }
    FUZZ_CHECK(&g, (uintptr_t)t.data == m.data, "context %d got data %#lx, sent %#lx",
               me, (unsigned long)(uintptr_t)t.data, (unsigned long)m.data);
    FUZZ_CHECK(&g, (t.ctx == NULL) == m.null, "context %d got ctx %p from %d (finished: %d)",
               me, (void *)t.ctx, m.from, m.null);
    if (!m.null) {
        FUZZ_CHECK(&g, m.st[m.from] == SUSPENDED, "switcher %d not suspended", m.from);
        handle[m.from] = t.ctx;
    } else {
        FUZZ_CHECK(&g, m.st[m.from] == DONE, "finisher %d not done", m.from);
    }
}

/* Switch from `me` (running on `on`) to `to`, through the register probe;
 * with `ontop`, by as_switch_ontop (fn turns data ^ ONTOP_XOR into data). */
static void do_switch_how(int me, const as_stack *on, int to, uintptr_t data, bool ontop)
{
    m.to = to;
    m.from = me;
    m.data = data;
    m.null = false;
    m.st[me] = SUSPENDED;
    m.st[to] = RUNNING;
    m.cur = to;
    m.ontop = ontop;
    m.ontop_ran = 0;

    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    test_regs_random(in, g.step * 0x9e37 + (uint64_t)me);
    as_transfer t = ontop
        ? test_switch_regs_via(handle[to], (void *)(data ^ ONTOP_XOR), (void *)ontop_fn, in, out,
                               (test_switch_fn)(void (*)(void))as_switch_ontop)
        : test_switch_regs(handle[to], (void *)data, in, out);
    for (int i = 0; i < TEST_NREGS; i++)
        FUZZ_CHECK(&g, ((in[i] ^ out[i]) & test_regs_mask(i)) == 0,
                   "context %d: register %d was %#llx, came back %#llx", me, i,
                   (unsigned long long)in[i], (unsigned long long)out[i]);
    arrived(me, on, t);
}

static void do_switch(int me, const as_stack *on, int to, uintptr_t data)
{
    do_switch_how(me, on, to, data, false);
}

static int interp(int me, int depth, const as_stack *on);

struct call { int me, depth, aux, status; };

static void *call_fn(void *p)
{
    struct call *c = p;
    FUZZ_CHECK(&g, stack_of(__builtin_frame_address(0)) == &aux[c->aux],
               "as_call_on fn of %d not on aux stack %d", c->me, c->aux);
    c->status = interp(c->me, c->depth, &aux[c->aux]);
    return (void *)m.callret;
}

static as_transfer entry(as_transfer t)
{
    const as_stack *s = stack_of(__builtin_frame_address(0));
    FUZZ_CHECK(&g, s && s >= stk && s < stk + NCTX, "entry not on a context stack");
    int me = (int)(s - stk);
    arrived(me, s, t);
    int r = interp(me, 0, s);
    FUZZ_CHECK(&g, r == R_RETURN || r == R_TEARDOWN, "context %d: interp ended with %d", me, r);
    if (r == R_TEARDOWN) {               /* back to main, which tears down */
        m.ret_to = MAIN;
        m.ret_data = (uintptr_t)me << 8 | 0xee;
    }
    m.to = m.ret_to;
    m.from = me;
    m.data = m.ret_data;
    m.null = true;
    m.st[me] = DONE;
    m.st[m.ret_to] = RUNNING;
    m.cur = m.ret_to;
    return (as_transfer){ handle[m.ret_to], (void *)m.ret_data };
}

static void check_acts(void)
{
    size_t f = as_act_pool_free(&act_pool);
    FUZZ_CHECK(&g, f == NACT - m.acts, "activation pool has %zu free, model %zu",
               f, NACT - m.acts);
}

/* ACT: capture into a fresh record, or resume the one this level holds.
 * A macro, not a function: the capture must be in interp_level's own frame,
 * which stays live until the level returns, so a later resume from the
 * same level lands in a frame that still exists. */
#define OP_ACT(cap)                                                          \
    do {                                                                     \
        if (!(cap)) {                                                        \
            as_act *a_ = as_act_alloc(&act_pool);                            \
            FUZZ_CHECK(&g, a_ != NULL, "no free activation record");          \
            m.acts++;                                                        \
            (cap) = a_;                                                      \
            if (as_act_capture(a_) != 0) {                                   \
                FUZZ_CHECK(&g, m.cur == me, "capture of %d resumed while model runs %d", \
                           me, m.cur);                                       \
                FUZZ_CHECK(&g, stack_of(__builtin_frame_address(0)) == on,   \
                           "capture of %d resumed on the wrong stack", me);  \
                FUZZ_CHECK(&g, m.depth[me] == depth, "capture of %d resumed at depth %d", \
                           me, m.depth[me]);                                 \
                (cap) = NULL;            /* resume gave it back */           \
                m.acts--;                                                    \
                check_acts();                                                \
            }                                                                \
        } else {                                                             \
            as_act_resume(cap);                                              \
        }                                                                    \
    } while (0)

/* Run operations as context `me`, at as_call_on depth `depth`, on `on`.
 * A level that still holds a captured record gives it back on the way out. */
static int interp_level(int me, int depth, const as_stack *on, as_act *volatile *cap);

static int interp(int me, int depth, const as_stack *on)
{
    as_act *volatile cap = NULL;
    int r = interp_level(me, depth, on, &cap);
    if (cap) {
        as_act_release(cap);
        m.acts--;
    }
    return r;
}

static int interp_level(int me, int depth, const as_stack *on, as_act *volatile *cap)
{
    FUZZ_CHECK(&g, m.depth[me] == depth, "context %d at depth %d, model %d",
               me, depth, m.depth[me]);
    for (;;) {
        if (m.teardown)
            return R_TEARDOWN;
        if (fuzz_done(&g, MAX_STEPS)) {
            if (me == MAIN)
                return R_END;
            g.op = "END";                /* hand control back to main */
            do_switch(me, on, MAIN, (uintptr_t)g.step << 8 | 0xed);
            continue;
        }
        g.step++;
        unsigned op = fuzz_byte(&g) % 8;
        g.op = op_names[op];
        switch (op) {
        case 0: {                                                   /* MAKE */
            int s = fuzz_byte(&g) % NCTX;
            if (m.st[s] != EMPTY && m.st[s] != DONE)
                break;
            handle[s] = as_ctx_make(&stk[s], entry);
            FUZZ_CHECK(&g, handle[s] != NULL, "as_ctx_make(slot %d) failed", s);
            m.st[s] = MADE;
            break;
        }
        case 1: case 2: case 7: {                         /* SWITCH, ONTOP */
            int to = fuzz_byte(&g) % (NCTX + 1);
            uintptr_t data = next_data();
            if (to == me || (m.st[to] != MADE && m.st[to] != SUSPENDED))
                break;
            do_switch_how(me, on, to, data, op == 7);
            break;
        }
        case 3: {                                                 /* RETURN */
            int to = fuzz_byte(&g) % (NCTX + 1);
            uintptr_t data = next_data();
            if (me == MAIN || m.depth[me] != 0 || to == me ||
                (m.st[to] != MADE && m.st[to] != SUSPENDED))
                break;
            m.ret_to = to;
            m.ret_data = data;
            return R_RETURN;
        }
        case 4: {                                                /* CALL_ON */
            int a = fuzz_byte(&g) % NAUX;
            if (m.aux_owner[a] >= 0 || m.depth[me] >= MAXDEPTH)
                break;
            m.aux_owner[a] = me;
            m.depth[me]++;
            struct call c = { me, depth + 1, a, 0 };
            void *r = as_call_on(&aux[a], call_fn, &c);
            FUZZ_CHECK(&g, m.cur == me, "as_call_on returned into %d, model runs %d", me, m.cur);
            FUZZ_CHECK(&g, stack_of(__builtin_frame_address(0)) == on,
                       "context %d not back on its stack after as_call_on", me);
            m.aux_owner[a] = -1;
            m.depth[me]--;
            if (c.status != R_CALLRET)
                return c.status;         /* end or teardown: keep unwinding */
            FUZZ_CHECK(&g, (uintptr_t)r == m.callret, "as_call_on returned %#lx, fn returned %#lx",
                       (unsigned long)(uintptr_t)r, (unsigned long)m.callret);
            break;
        }
        case 5: {                                               /* CALL_RET */
            uintptr_t v = next_data();
            if (depth == 0)
                break;
            m.callret = v;
            return R_CALLRET;
        }
        case 6:                                                      /* ACT */
            OP_ACT(*cap);
            break;
        default:
            break;
        }
    }
}

static void setup(void)
{
    for (int i = 0; i < NCTX; i++)
        if (as_stack_alloc(&stk[i], STACK_SZ) != 0)
            abort();
    for (int i = 0; i < NAUX; i++)
        if (as_stack_alloc(&aux[i], STACK_SZ) != 0)
            abort();
    if (as_act_pool_init(&act_pool, act_recs, NACT) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > 4096)
        return 0;
    g = (struct fuzz_prog){ .p = data, .len = size };
    memset(&m, 0, sizeof m);
    for (int i = 0; i < NAUX; i++)
        m.aux_owner[i] = -1;
    m.st[MAIN] = RUNNING;
    m.cur = MAIN;

    int r = interp(MAIN, 0, NULL);
    FUZZ_CHECK(&g, r == R_END, "main's program ended with %d", r);

    /* Resume every live context once more; each unwinds and returns here. */
    g.op = "TEARDOWN";
    m.teardown = true;
    for (int s = 0; s < NCTX; s++) {
        if (m.st[s] != MADE && m.st[s] != SUSPENDED)
            continue;
        do_switch(MAIN, NULL, s, (uintptr_t)s << 8 | 0xdd);
        FUZZ_CHECK(&g, m.st[s] == DONE, "context %d did not finish", s);
    }
    for (int s = 0; s <= NCTX; s++)
        FUZZ_CHECK(&g, s == MAIN || m.st[s] == EMPTY || m.st[s] == DONE,
                   "context %d left in state %d", s, m.st[s]);
    for (int i = 0; i < NAUX; i++)
        FUZZ_CHECK(&g, m.aux_owner[i] < 0, "aux stack %d still owned", i);
    FUZZ_CHECK(&g, m.acts == 0, "%zu activation records still held", m.acts);
    check_acts();
    return 0;
}
