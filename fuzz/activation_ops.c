/* SPDX-License-Identifier: MIT */
/*
 * fuzz/activation_ops.c - activation pools against a model of which
 * records are free.
 *
 * The first input byte sizes the pool (1..32 records); the rest is a
 * program:
 *
 *   op byte % 8   arguments   what it does
 *   0 ALLOC       -           as_act_alloc: NULL exactly when the model has
 *                             no free record, else a record the model has
 *                             free, which becomes held
 *   1 RELEASE     k           as_act_release of the k-th held record
 *   2 ROUNDTRIP   k, byte     capture into the k-th held record and resume
 *                             it from `byte % 8` calls deeper, with the
 *                             callee-saved registers and FP control words
 *                             loaded with random values before the capture
 *                             and clobbered before the resume (the probe in
 *                             tests/arch/<arch>/act_probe.S); afterwards the
 *                             registers must be back and the record free
 *   3 CAPTURE     k           capture into the k-th held record and keep it:
 *                             kind CALL, PC and SP where the capture was
 *   4 FRESH       k, byte     as_act_init the k-th held record on the
 *                             auxiliary stack and resume it; the fresh
 *                             function checks its argument, stack and FP
 *                             defaults, then resumes a record captured just
 *                             before (a second held one); both end up free
 *   5 BADINIT     k           as_act_init with no stack: kind NONE
 *   6 COUNT       -           as_act_pool_free equals the model's count
 *   7 RELEASE_ALL -
 *
 * Invalid operations (nothing held, a ROUNDTRIP that would need a record
 * and none is free) are skipped, by the model alone.  After every
 * operation the pool's free count must equal the model's, and at the end
 * everything is released and the whole pool must be free again.
 *
 * Under AddressSanitizer the FRESH operation tells ASan about its two
 * stack changes itself (activations move the stack pointer behind ASan's
 * back, like longjmp to another stack): that is what a program using
 * activations across stacks under ASan has to do.
 */
#include <altstack.h>
#include <stdbool.h>
#include <string.h>
#include "fuzz.h"
#include "regs.h"
#include "act_probe.h"

#if defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define FUZZ_ASAN 1
# endif
#endif
#if defined(__SANITIZE_ADDRESS__)
# define FUZZ_ASAN 1
#endif
#if FUZZ_ASAN
# include <sanitizer/common_interface_defs.h>
#endif

#define NREC      32
#define MAX_STEPS 4000

static struct fuzz_prog g;
struct act_probe act_probe;             /* tests/arch/<arch>/act_probe.S uses it */
static as_act recs[NREC] __attribute__((aligned(64)));
static as_act_pool pool;
static as_stack aux;

static struct {
    size_t n;
    bool   free[NREC];
    size_t nfree;
    int    held[NREC];          /* indices of records the program holds */
    size_t nheld;
} m;

static const char *const op_names[8] = {
    "ALLOC", "RELEASE", "ROUNDTRIP", "CAPTURE", "FRESH", "BADINIT", "COUNT", "RELEASE_ALL",
};

static int index_of(const as_act *a)
{
    ptrdiff_t i = a - recs;
    FUZZ_CHECK(&g, a >= recs && i < (ptrdiff_t)m.n && a == &recs[i],
               "record %p is not one of the pool's %zu", (const void *)a, m.n);
    return (int)i;
}

static void model_take(int i)
{
    FUZZ_CHECK(&g, m.free[i], "record %d handed out while the model has it in use", i);
    m.free[i] = false;
    m.nfree--;
    m.held[m.nheld++] = i;
}

/* Drop held entry k: the record went back to the pool. */
static void model_give_back(size_t k)
{
    int i = m.held[k];
    FUZZ_CHECK(&g, !m.free[i], "record %d released twice in the model", i);
    m.free[i] = true;
    m.nfree++;
    m.held[k] = m.held[--m.nheld];
}

static void release_all(void)
{
    while (m.nheld) {
        as_act_release(&recs[m.held[m.nheld - 1]]);
        model_give_back(m.nheld - 1);
    }
}

static void check_count(void)
{
    size_t f = as_act_pool_free(&pool);
    FUZZ_CHECK(&g, f == m.nfree, "pool says %zu free, model %zu", f, m.nfree);
}

/* Allocate for an operation that needs a second record; -1 if none. */
static int alloc_extra(void)
{
    if (m.nfree == 0)
        return -1;
    as_act *a = as_act_alloc(&pool);
    FUZZ_CHECK(&g, a != NULL, "alloc failed with %zu free in the model", m.nfree);
    int i = index_of(a);
    model_take(i);
    return (int)m.nheld - 1;
}

static size_t held_pos(int rec)
{
    for (size_t k = 0; k < m.nheld; k++)
        if (m.held[k] == rec)
            return k;
    FUZZ_CHECK(&g, 0, "record %d not held", rec);
    return 0;
}

/* ---- ROUNDTRIP: resume from deeper frames ---- */

static __attribute__((noinline)) void resume_from(as_act *a, int depth)
{
    volatile char pad[96];
    pad[0] = (char)depth;
    if (depth > 0)
        resume_from(a, depth - 1);
    as_act_resume(a);
}

/* ---- FRESH: a function started by as_act_init on the aux stack ---- */

struct fresh_arg {
    uintptr_t  magic;
    as_act    *back;            /* captured on the main stack just before */
#if FUZZ_ASAN
    const void *bottom;         /* main stack, as ASan knows it           */
    size_t      size;
#endif
};
static struct fresh_arg g_fresh;
static volatile int g_fresh_ran;

static void fresh_check(struct fresh_arg *f)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    FUZZ_CHECK(&g, f == &g_fresh && f->magic == (uintptr_t)g.step * 0x9e3779b1u,
               "fresh function got %p", (void *)f);
    FUZZ_CHECK(&g, fp >= (uintptr_t)aux.lo && fp < (uintptr_t)aux.hi,
               "fresh function runs at %#lx, not on the aux stack", (unsigned long)fp);
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mxcsr), "=m"(fcw));
    FUZZ_CHECK(&g, (mxcsr & 0xffc0) == 0x1f80 && (fcw & 0x1f3f) == (0x037f & 0x1f3f),
               "fresh FP control %#x/%#x", mxcsr, fcw);
#endif
    g_fresh_ran = 1;
}

/* Not instrumented: it starts and ends on the far side of a stack change
 * ASan is told about only inside it. */
#if FUZZ_ASAN
__attribute__((no_sanitize_address))
#endif
static void fresh_fn(void *p)
{
    struct fresh_arg *f = p;
#if FUZZ_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->bottom, &f->size);
#endif
    fresh_check(f);
#if FUZZ_ASAN
    __sanitizer_start_switch_fiber(NULL, f->bottom, f->size);
#endif
    as_act_resume(f->back);
}

static void op_fresh(size_t k)
{
    int fresh = m.held[k];
    int kb = alloc_extra();
    if (kb < 0)
        return;
    int back = m.held[kb];
    g_fresh = (struct fresh_arg){ .magic = (uintptr_t)g.step * 0x9e3779b1u, .back = &recs[back] };
    g_fresh_ran = 0;
    as_act_init(&recs[fresh], &aux, fresh_fn, &g_fresh);
    FUZZ_CHECK(&g, as_act_kind(&recs[fresh]) == AS_ACT_FRESH, "kind %d after init",
               as_act_kind(&recs[fresh]));
    uintptr_t sp = as_act_sp(&recs[fresh]);
    FUZZ_CHECK(&g, sp > (uintptr_t)aux.lo && sp <= (uintptr_t)aux.hi,
               "fresh sp %#lx outside the aux stack", (unsigned long)sp);
#if FUZZ_ASAN
    void *fake = NULL;
#endif
    if (as_act_capture(&recs[back]) == 0) {
#if FUZZ_ASAN
        __sanitizer_start_switch_fiber(&fake, aux.lo, (size_t)((char *)aux.hi - (char *)aux.lo));
#endif
        as_act_resume(&recs[fresh]);
    }
#if FUZZ_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    FUZZ_CHECK(&g, g_fresh_ran == 1, "came back without the fresh function running");
    /* Both records were resumed, so both went back to the pool. */
    model_give_back(held_pos(fresh));
    model_give_back(held_pos(back));
}

/* ---- CAPTURE and ROUNDTRIP ---- */

static void op_roundtrip(size_t k, int depth)
{
    int i = m.held[k];
    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    test_regs_random(in, g.step * 31 + (uint64_t)depth);
    (void)depth;
    act_call_regs(&recs[i], in, out);
    for (int r = 0; r < TEST_NREGS; r++)
        FUZZ_CHECK(&g, ((in[r] ^ out[r]) & test_regs_mask(r)) == 0,
                   "register %d was %#llx, came back %#llx", r,
                   (unsigned long long)in[r], (unsigned long long)out[r]);
    model_give_back(k);
}

static void op_roundtrip_deep(size_t k, int depth)
{
    int i = m.held[k];
    volatile int resumed = 0;
    volatile uintptr_t canary = (uintptr_t)g.step * 0x2545f491u;
    if (as_act_capture(&recs[i]) == 0) {
        FUZZ_CHECK(&g, as_act_kind(&recs[i]) == AS_ACT_CALL, "kind %d after capture",
                   as_act_kind(&recs[i]));
        resumed = 1;
        resume_from(&recs[i], depth);
    }
    FUZZ_CHECK(&g, resumed == 1, "capture returned nonzero without a resume");
    FUZZ_CHECK(&g, canary == (uintptr_t)g.step * 0x2545f491u, "a local changed across resume");
    model_give_back(k);
}

static void op_capture(size_t k)
{
    int i = m.held[k];
    volatile int again = 0;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (as_act_capture(&recs[i]) != 0) {
        again = 1;                      /* never resumed: cannot get here */
    }
    FUZZ_CHECK(&g, again == 0, "capture returned twice without a resume");
    FUZZ_CHECK(&g, as_act_kind(&recs[i]) == AS_ACT_CALL, "kind %d", as_act_kind(&recs[i]));
    /* The caller's sp at the call: at or below our frame address (equal
     * where the frame record sits at the bottom of the frame, GCC aarch64). */
    uintptr_t sp = as_act_sp(&recs[i]);
    FUZZ_CHECK(&g, sp <= here && here - sp < 4096, "captured sp %#lx, frame at %#lx",
               (unsigned long)sp, (unsigned long)here);
    FUZZ_CHECK(&g, as_act_pc(&recs[i]) != 0, "captured pc is 0");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        if (as_stack_alloc(&aux, 128 << 10) != 0)
            abort();
        ready = true;
    }
    if (size < 1 || size > 4096)
        return 0;
    g = (struct fuzz_prog){ .p = data, .len = size };
    memset(&m, 0, sizeof m);
    m.n = 1 + fuzz_byte(&g) % NREC;
    int rc = as_act_pool_init(&pool, recs, m.n);
    FUZZ_CHECK(&g, rc == 0, "as_act_pool_init(%zu) = %d", m.n, rc);
    for (size_t i = 0; i < m.n; i++)
        m.free[i] = true;
    m.nfree = m.n;
    check_count();

    while (!fuzz_done(&g, MAX_STEPS)) {
        g.step++;
        unsigned op = fuzz_byte(&g) % 8;
        g.op = op_names[op];
        switch (op) {
        case 0: {
            as_act *a = as_act_alloc(&pool);
            if (m.nfree == 0) {
                FUZZ_CHECK(&g, a == NULL, "alloc returned %p from an empty pool", (void *)a);
                break;
            }
            FUZZ_CHECK(&g, a != NULL, "alloc failed with %zu free", m.nfree);
            model_take(index_of(a));
            break;
        }
        case 1: {
            uint8_t b = fuzz_byte(&g);
            if (m.nheld == 0)
                break;
            size_t k = b % m.nheld;
            as_act_release(&recs[m.held[k]]);
            model_give_back(k);
            break;
        }
        case 2: {
            uint8_t b = fuzz_byte(&g), d = fuzz_byte(&g);
            if (m.nheld == 0)
                break;
            if (d & 8)
                op_roundtrip_deep(b % m.nheld, d % 8);
            else
                op_roundtrip(b % m.nheld, d % 8);
            break;
        }
        case 3: {
            uint8_t b = fuzz_byte(&g);
            if (m.nheld == 0)
                break;
            op_capture(b % m.nheld);
            break;
        }
        case 4: {
            uint8_t b = fuzz_byte(&g);
            if (m.nheld == 0)
                break;
            op_fresh(b % m.nheld);
            break;
        }
        case 5: {
            uint8_t b = fuzz_byte(&g);
            if (m.nheld == 0)
                break;
            as_act *a = &recs[m.held[b % m.nheld]];
            as_act_init(a, NULL, fresh_fn, NULL);
            FUZZ_CHECK(&g, as_act_kind(a) == AS_ACT_NONE, "kind %d after a bad init",
                       as_act_kind(a));
            break;
        }
        case 6:
            break;                      /* the count is checked below */
        case 7:
            release_all();
            break;
        }
        check_count();
    }
    g.op = "END";
    release_all();
    check_count();
    FUZZ_CHECK(&g, m.nfree == m.n, "%zu of %zu free at the end", m.nfree, m.n);
    return 0;
}
