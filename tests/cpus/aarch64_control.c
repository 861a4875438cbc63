/* SPDX-License-Identifier: MIT */
/*
 * tests/cpus/aarch64_control.c - negative controls for scripts/test-cpus:
 * proof that the aarch64 guest enforces BTI and PAC, so the freestanding
 * smoke test passing there (built the same way) means something.
 *
 * A static, libc-free program on tests/freestanding/rt.h, built
 * -mbranch-protection=standard and linked -z force-bti (the kernel then
 * maps its text with PROT_BTI), once per control:
 *
 *   -DCONTROL_BTI an indirect call (blr) to `good`, which starts with
 *                 `bti c`, then one to `bad`, which does not: the second
 *                 must raise a branch target exception (SIGILL).
 *   -DCONTROL_PAC a function whose signed return address (saved by
 *                 paciasp in its frame record) is overwritten with the
 *                 address of `escaped`: autiasp must poison it, so the ret
 *                 faults (SIGSEGV; SIGILL where FEAT_FPAC traps at autiasp).
 *                 A forged address passes when the code autiasp computes
 *                 for it is all zeros: Linux leaves user code addresses 7
 *                 PAC bits (54:48, with 48-bit addresses), so one forgery
 *                 in 128 gets through (3 runs in 300 here).  So `escaped`
 *                 forges again, each time from a lower sp (another
 *                 modifier), and only PAC_TRIES forgeries accepted in a row
 *                 count as not enforced (1 in 2^56 by chance).
 *
 * If the bad branch or the forged return goes through, the program prints
 * "NOT ENFORCED" and exits 0, which scripts/test-cpus counts as a failure;
 * any other exit status than the expected signal also fails there.
 */
#include <stdint.h>
#include "freestanding/rt.h"

#if !defined(__aarch64__)
#error "aarch64 only"
#endif

static void say(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    fs_write(s, n);
}

/* Two call targets: `good` is a landing pad, `bad` is not. */
int good(void);
int bad(void);
__asm__(".text\n"
        ".p2align 2\n"
        ".globl good\n"
        ".type good, %function\n"
        "good:\n"
        "    bti c\n"
        "    mov w0, #1\n"
        "    ret\n"
        ".size good, .-good\n"
        ".globl bad\n"
        ".type bad, %function\n"
        "bad:\n"
        "    nop\n"                     /* not a landing pad */
        "    mov w0, #2\n"
        "    ret\n"
        ".size bad, .-bad\n");

enum { PAC_TRIES = 8 };
static volatile int escapes;
static void forge_again(void);

static __attribute__((noreturn, noinline, used)) void escaped(void)
{
    if (++escapes < PAC_TRIES) {
        say("pac: a forged return address got through (1 in 128 by chance); again\n");
        forge_again();                  /* never returns */
    }
    say("pac: NOT ENFORCED (8 forged return addresses in a row were accepted)\n");
    fs_exit(0);
    __builtin_unreachable();
}

static __attribute__((noinline)) void opaque(void)
{
    __asm__ volatile("" ::: "memory");
}

/* Non-leaf, so pac-ret signs its return address on entry and
 * authenticates it before ret.  The frame record is {x29, x30} at x29. */
static __attribute__((noinline)) void forge(void)
{
    opaque();
    uintptr_t *frame = __builtin_frame_address(0);
    __asm__ volatile("" ::: "memory");
    frame[1] = (uintptr_t)escaped;
    __asm__ volatile("" ::: "memory");
}

/* forge() again, below this frame: escaped() runs on the sp forge()'s
 * caller had, so each try signs with a lower sp than the one before. */
static __attribute__((noinline)) void forge_again(void)
{
    char pad[32];
    __asm__ volatile("" : : "r"(pad) : "memory");     /* a frame below */
    forge();
    say("pac: forge() returned normally (frame layout unexpected)\n");
    fs_exit(3);
}

static int fs_main(void)
{
#if defined(CONTROL_BTI)
    int (*volatile fp)(void) = good;
    if (fp() != 1) {
        say("bti: the landing pad call went wrong\n");
        return 2;
    }
    say("bti: call to a landing pad ok; now a call to a non-landing pad\n");
    fp = bad;
    fp();
    say("bti: NOT ENFORCED (an indirect call reached a non-landing pad)\n");
    return 0;
#elif defined(CONTROL_PAC)
    (void)good;
    say("pac: returning through a forged return address\n");
    forge();
    say("pac: forge() returned normally (frame layout unexpected)\n");
    return 3;
#else
#error "build with -DCONTROL_BTI or -DCONTROL_PAC"
#endif
}
