/* SPDX-License-Identifier: MIT */
/*
 * src/arch/aarch64/frame.h - the C view of the switch frame described in
 * layout.h, checked against it, and how as_ctx_make fills a fresh one.
 */
#ifndef ALTSTACK_SRC_ARCH_AARCH64_FRAME_H
#define ALTSTACK_SRC_ARCH_AARCH64_FRAME_H

#include "layout.h"

AS_HIDDEN void as__trampoline(void);
AS_HIDDEN void as__context_start(void);

struct as_sw_frame {
    uint64_t  fpcr;
    uintptr_t lr_pac;           /* x30 signed with the frame's address */
    uint64_t  d[8];             /* d8..d15: bit patterns, never arithmetic */
    uint64_t  x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
    uint64_t  fp;               /* x29 */
    uintptr_t lr;               /* x30, plain: what unwinders read */
};
_Static_assert(offsetof(struct as_sw_frame, fpcr) == AS_SW_FPCR, "layout");
_Static_assert(offsetof(struct as_sw_frame, lr_pac) == AS_SW_LR_PAC, "layout");
_Static_assert(offsetof(struct as_sw_frame, d[0]) == AS_SW_D8, "layout");
_Static_assert(offsetof(struct as_sw_frame, d[2]) == AS_SW_D10, "layout");
_Static_assert(offsetof(struct as_sw_frame, d[4]) == AS_SW_D12, "layout");
_Static_assert(offsetof(struct as_sw_frame, d[6]) == AS_SW_D14, "layout");
_Static_assert(offsetof(struct as_sw_frame, x19) == AS_SW_X19, "layout");
_Static_assert(offsetof(struct as_sw_frame, x21) == AS_SW_X21, "layout");
_Static_assert(offsetof(struct as_sw_frame, x23) == AS_SW_X23, "layout");
_Static_assert(offsetof(struct as_sw_frame, x25) == AS_SW_X25, "layout");
_Static_assert(offsetof(struct as_sw_frame, x27) == AS_SW_X27, "layout");
_Static_assert(offsetof(struct as_sw_frame, fp) == AS_SW_FP, "layout");
_Static_assert(offsetof(struct as_sw_frame, lr) == AS_SW_LR, "layout");
_Static_assert(sizeof(struct as_sw_frame) == AS_SW_SIZE, "layout");
_Static_assert(offsetof(as_stack, hi) == AS_STACK_HI, "layout");
_Static_assert(offsetof(as_stack, lo) == AS_STACK_LO, "layout");
_Static_assert(AS_STACK_MIN_BYTES == AS_STACK_MIN, "layout");
_Static_assert(AS_SW_NO_FP == (uint64_t)AS_SW_NO_FP_HI16 << 48 &&
               AS_SW_NO_FP == 1ull << AS_SW_NO_FP_BIT, "layout");

/*
 * Sign a code address as paciasp does with sp == modifier: pacia1716
 * (hint #8) signs x17 with the A key and x16 as modifier.  Like paciasp it
 * sits in the hint space, so it is a NOP where pointer authentication is
 * absent or disabled, and the saved value is then the plain address.
 */
static inline uintptr_t as__pac_sign(uintptr_t addr, uintptr_t modifier)
{
    register uintptr_t x17 __asm__("x17") = addr;
    register uintptr_t x16 __asm__("x16") = modifier;
    __asm__("hint #8" : "+r"(x17) : "r"(x16));
    return x17;
}

/* The top header's end frame: x29 0, lr just inside as__context_start. */
static inline void as__top_init(uint64_t *hdr)
{
    hdr[AS_TOP_LINK / 8] = 0;
    hdr[AS_TOP_COOKIE / 8] = 0;
    hdr[AS_TOP_END_FP / 8] = 0;
    hdr[AS_TOP_END_LR / 8] = (uintptr_t)as__context_start + 4;
}

/* The switch returns through lr_pac after autiasp with sp == f. */
static inline void as__frame_init(struct as_sw_frame *f, as_entry fn)
{
    uintptr_t entry = (uintptr_t)as__trampoline + AS_TRAMPOLINE_ENTRY;
    *f = (struct as_sw_frame){
        .fpcr = AS_FPCR_DEFAULT,
        .lr_pac = as__pac_sign(entry, (uintptr_t)f),
        .x19 = (uintptr_t)fn,
        .lr = entry,
    };
}
#endif
