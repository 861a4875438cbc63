/* SPDX-License-Identifier: MIT */
/*
 * tests/act_probe.h - a register-fidelity loop for activation tests
 * (tests/arch/<arch>/act_probe.S).
 *
 * act_probe_run() loads act_probe.gpr[] into every general-purpose register
 * it can, the chosen flags, and act_probe.vin[] into the vector registers,
 * then spins until act_probe.stop is set, checking on every iteration
 *   x86_64   each of the 15 GPRs against its expected value and against a
 *            copy kept in the 128-byte red zone below rsp, and RFLAGS;
 *   aarch64  NZCV (all 31 GPRs hold values; no memory is read: the stop
 *            request arrives as Z set in the resumed record, see below).
 * On exit it stores what the registers hold into gout/fout/vout/kout and
 * returns 0, or the number of the first check that failed (fail).
 *
 * aarch64 has no register to spare for a load in the loop, so its stop
 * signal is NZCV.Z: an upcall or handler that wants the loop to end sets Z
 * in the record it resumes (act_probe_stop_record in the tests).
 */
#ifndef ALTSTACK_TESTS_ACT_PROBE_H
#define ALTSTACK_TESTS_ACT_PROBE_H

#if defined(__x86_64__)
# define PROBE_NGPR 15   /* r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi */
# define PROBE_NVEC 32
# define PROBE_VBYTES 64
/* CF PF AF SF DF OF + the always-set bits 1 and IF */
# define PROBE_FLAGS 0xe97ull
#else
# define PROBE_NGPR 31   /* x0 .. x30 */
# define PROBE_NVEC 32
# define PROBE_VBYTES 16
# define PROBE_FLAGS 0xb0000000ull   /* N C V set, Z clear */
#endif


#define PROBE_OFF_GPR     0
#define PROBE_OFF_RFLAGS  256
#define PROBE_OFF_SP      264
#define PROBE_OFF_STOP    272
#define PROBE_OFF_FAIL    280
#define PROBE_OFF_LEVEL   288
#define PROBE_OFF_GOUT    296
#define PROBE_OFF_FOUT    552
#define PROBE_OFF_SPOUT   560
#define PROBE_OFF_KIN     568
#define PROBE_OFF_KOUT    632
#define PROBE_OFF_VIN     704
#define PROBE_OFF_VOUT    (704 + 32 * 64)

#ifndef __ASSEMBLER__
#include <stdint.h>
#include <altstack.h>

struct act_probe {
    uint64_t gpr[32];
    uint64_t rflags;                /* flags the loop expects (set by it)  */
    uint64_t sp;                    /* sp in the loop (set by it)          */
    volatile uint64_t stop;         /* x86_64: set to end the loop         */
    uint64_t fail;
    uint64_t level;                 /* x86_64: 0 SSE, 1 AVX, 2 AVX-512     */
    uint64_t gout[32];
    uint64_t fout, spout;
    uint64_t kin[8], kout[8];
    unsigned char vin[PROBE_NVEC][64] __attribute__((aligned(64)));
    unsigned char vout[PROBE_NVEC][64] __attribute__((aligned(64)));
};

extern struct act_probe act_probe;
uint64_t act_probe_run(void);

/* Load in[] (rbx rbp r12-r15 MXCSR FCW, as tests/regs.h) into the
 * callee-saved registers, as_act_capture(a), clobber them all, resume a,
 * and store what the registers hold after the resume into out[]. */
void act_call_regs(as_act *a, const uint64_t *in, uint64_t *out);

/* Load vin[] (x86_64: and kin[]) into the vector registers,
 * as_act_capture_full(a), zero them, come back through as_act_resume(a)
 * (via_signal 0) or act_full_vec_signal(a) (1, supplied by the suite),
 * then store what they hold into vout[]/kout[]. */
void act_full_vec(as_act *a, int via_signal);
void act_full_vec_signal(as_act *a);

_Static_assert(__builtin_offsetof(struct act_probe, rflags) == PROBE_OFF_RFLAGS, "probe");
_Static_assert(__builtin_offsetof(struct act_probe, stop) == PROBE_OFF_STOP, "probe");
_Static_assert(__builtin_offsetof(struct act_probe, gout) == PROBE_OFF_GOUT, "probe");
_Static_assert(__builtin_offsetof(struct act_probe, fout) == PROBE_OFF_FOUT, "probe");
_Static_assert(__builtin_offsetof(struct act_probe, kin) == PROBE_OFF_KIN, "probe");
_Static_assert(__builtin_offsetof(struct act_probe, kout) == PROBE_OFF_KOUT, "probe");
_Static_assert(__builtin_offsetof(struct act_probe, vin) == PROBE_OFF_VIN, "probe");
_Static_assert(__builtin_offsetof(struct act_probe, vout) == PROBE_OFF_VOUT, "probe");

/* ---- shared by the suites: fill the inputs, check the outputs ---- */
#include <criterion/criterion.h>
#include <string.h>
#include "regs.h"

/* x86_64: 0 SSE only, 1 AVX (ymm), 2 AVX-512 (zmm0-31, k0-7), from
 * CPUID and XCR0; aarch64: 0. */
static inline int act_probe_level(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!(c & (1u << 27)) || !(c & (1u << 28)))
        return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6)
        return 0;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    return (b & (1u << 16)) && (lo & 0xe0) == 0xe0 ? 2 : 1;
#else
    return 0;
#endif
}

static inline void act_probe_fill(uint64_t seed)
{
    memset(&act_probe, 0, sizeof act_probe);
    for (int i = 0; i < 32; i++)
        act_probe.gpr[i] = test_rng(&seed);
    for (int i = 0; i < PROBE_NVEC; i++)
        for (int j = 0; j < 64; j += 8) {
            uint64_t v = test_rng(&seed);
            memcpy(&act_probe.vin[i][j], &v, 8);
        }
    for (int i = 0; i < 8; i++)
        act_probe.kin[i] = test_rng(&seed);
    act_probe.level = (uint64_t)act_probe_level();
}

/* What act_probe_run returned and left behind: every register as loaded,
 * the flags as expected (aarch64: with the Z the stopper set). */
static inline void act_probe_check(uint64_t ret)
{
    cr_assert_eq(ret, 0, "probe check %lu failed in the loop (1 flags, 2 gpr, 3 red zone)",
                 (unsigned long)ret);
    for (int i = 0; i < PROBE_NGPR; i++)
        cr_assert_eq(act_probe.gout[i], act_probe.gpr[i], "gpr %d: %#lx != %#lx", i,
                     (unsigned long)act_probe.gout[i], (unsigned long)act_probe.gpr[i]);
    cr_assert_eq(act_probe.spout, act_probe.sp);
#if defined(__x86_64__)
    cr_assert_eq(act_probe.fout, PROBE_FLAGS, "flags %#lx", (unsigned long)act_probe.fout);
    int bytes = act_probe.level == 2 ? 64 : act_probe.level == 1 ? 32 : 16;
    int nvec = act_probe.level == 2 ? 32 : 16;
    for (int i = 0; i < nvec; i++)
        cr_assert_eq(memcmp(act_probe.vout[i], act_probe.vin[i], bytes), 0, "vector %d", i);
    if (act_probe.level == 2)
        for (int i = 0; i < 8; i++)
            cr_assert_eq(act_probe.kout[i], act_probe.kin[i], "k%d", i);
#else
    cr_assert_eq(act_probe.fout, PROBE_FLAGS | (1u << 30), "NZCV %#lx",
                 (unsigned long)act_probe.fout);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(memcmp(act_probe.vout[i], act_probe.vin[i], 16), 0, "q%d", i);
#endif
}
#endif

#endif
