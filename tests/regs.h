/* SPDX-License-Identifier: MIT */
/*
 * tests/regs.h - probes that load chosen values into every register the ABI
 * says survives a call, switch, and report what the registers hold after.
 * Implemented per arch in tests/arch/<arch>/regs.S.
 *
 *   x86_64  in/out[0..7]  = rbx rbp r12 r13 r14 r15 MXCSR FCW
 *   aarch64 in/out[0..19] = x19..x29 d8..d15 FPCR
 */
#ifndef ALTSTACK_TESTS_REGS_H
#define ALTSTACK_TESTS_REGS_H

#include <altstack.h>
#include <stdint.h>

#if defined(__x86_64__)
# define TEST_NREGS 8
#else
# define TEST_NREGS 20
#endif

/* Load in[] into the callee-saved registers, as_switch(to, data), store the
 * registers into out[], restore the caller's registers, return the
 * transfer as_switch returned. */
as_transfer test_switch_regs(as_ctx to, void *data, const uint64_t *in, uint64_t *out);

/* The same through any switch taking (to, data, arg): as_switch,
 * as_switch_ontop (arg = its fn), and the other modes' entry points. */
typedef as_transfer (*test_switch_fn)(as_ctx to, void *data, void *arg);
as_transfer test_switch_regs_via(as_ctx to, void *data, void *arg, const uint64_t *in,
                                 uint64_t *out, test_switch_fn sw);

/* Random but valid register values from a seed: FP control values keep
 * every exception masked and vary only the rounding mode (and, on x86_64,
 * the x87 precision control); x86_64 also varies MXCSR DAZ/FZ. */
static inline uint64_t test_rng(uint64_t *s)
{
    uint64_t x = *s += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#if defined(__x86_64__)
/* Whether the FP control registers keep every control bit.  Valgrind
 * emulates SSE without FZ/DAZ and x87 at one precision (those bits read
 * back fixed), so there a switch cannot be asked to keep them. */
static inline int test_fp_control_exact(void)
{
    uint32_t old, back, probe = 0x9fc0;
    uint16_t cw, cwback, cwprobe = 0x027f;
    __asm__ volatile("stmxcsr %0\n\tldmxcsr %2\n\tstmxcsr %1\n\tldmxcsr %0"
                     : "+m"(old), "=m"(back) : "m"(probe));
    __asm__ volatile("fnstcw %0\n\tfldcw %2\n\tfnstcw %1\n\tfldcw %0"
                     : "+m"(cw), "=m"(cwback) : "m"(cwprobe));
    return (back & 0x8040) == 0x8040 && (cwback & 0x300) == 0x200;
}
#endif

static inline void test_regs_random(uint64_t *v, uint64_t seed)
{
    for (int i = 0; i < TEST_NREGS; i++)
        v[i] = test_rng(&seed);
#if defined(__x86_64__)
    v[6] = 0x1f80 | (v[6] & 0x8040) | ((v[6] >> 20 & 3) << 13);  /* FZ, DAZ, RC */
    v[7] = 0x037f & ~0xf00;
    v[7] |= ((v[6] >> 13 & 3) << 10) | ((seed & 1) ? 0x300 : 0x200);
    if (!test_fp_control_exact()) {
        v[6] &= ~(uint64_t)0x8040;
        v[7] |= 0x300;
    }
#else
    v[19] = (v[19] & 3) << 22;  /* RMode */
#endif
}

/* Whether register i is an FP control register (which fast mode leaves
 * to the thread). */
static inline int test_regs_fp(int i)
{
#if defined(__x86_64__)
    return i == 6 || i == 7;
#else
    return i == 19;
#endif
}

/* The bits of each register that the switch must preserve. */
static inline uint64_t test_regs_mask(int i)
{
#if defined(__x86_64__)
    if (i == 6) return 0xffc0;  /* MXCSR control bits */
    if (i == 7) return 0x1f3f;  /* x87 control word    */
#else
    if (i == 19) return 0x07df9f00;
#endif
    (void)i;
    return ~(uint64_t)0;
}

/* The far side of a two-way fidelity check, shared by the suites: started
 * with a struct test_fidelity as data, it loads values derived from
 * ~seed, switches back through the probe, counts registers that changed
 * while it was away, and finishes once the seed it finds is 0. */
struct test_fidelity { uint64_t seed; int bad; int rounds; };

static inline as_transfer test_fidelity_peer(as_transfer t)
{
    struct test_fidelity *f = (struct test_fidelity *)t.data;
    uint64_t in[TEST_NREGS], out[TEST_NREGS];
    for (;;) {
        test_regs_random(in, ~f->seed);
        t = test_switch_regs(t.ctx, f, in, out);
        for (int i = 0; i < TEST_NREGS; i++)
            if ((in[i] ^ out[i]) & test_regs_mask(i))
                f->bad++;
        f->rounds++;
        if (!f->seed)
            return (as_transfer){ t.ctx, NULL };
    }
}

#endif
