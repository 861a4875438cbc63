/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/frame.h - the C view of the switch frame described in
 * layout.h, checked against it, and how as_ctx_make fills a fresh one.
 */
#ifndef ALTSTACK_SRC_ARCH_X86_64_FRAME_H
#define ALTSTACK_SRC_ARCH_X86_64_FRAME_H

#include "layout.h"

AS_HIDDEN void as__trampoline(void);
AS_HIDDEN void as__context_start(void);

struct as_sw_frame {
    uint32_t  mxcsr;
    uint16_t  fcw, flags;
    uint64_t  r15, r14, r13, r12, rbx, rbp;
    uintptr_t rip;
};
_Static_assert(offsetof(struct as_sw_frame, mxcsr) == AS_SW_MXCSR, "layout");
_Static_assert(offsetof(struct as_sw_frame, fcw) == AS_SW_FCW, "layout");
_Static_assert(offsetof(struct as_sw_frame, flags) == AS_SW_FLAGS, "layout");
_Static_assert(AS_SW_FLAGS_HI == AS_SW_FLAGS + 1 && (AS_SW_FLAGS_EXACT >> 8 & AS_SW_HAS_FP),
               "layout");
_Static_assert(offsetof(struct as_sw_frame, r15) == AS_SW_R15, "layout");
_Static_assert(offsetof(struct as_sw_frame, r14) == AS_SW_R14, "layout");
_Static_assert(offsetof(struct as_sw_frame, r13) == AS_SW_R13, "layout");
_Static_assert(offsetof(struct as_sw_frame, r12) == AS_SW_R12, "layout");
_Static_assert(offsetof(struct as_sw_frame, rbx) == AS_SW_RBX, "layout");
_Static_assert(offsetof(struct as_sw_frame, rbp) == AS_SW_RBP, "layout");
_Static_assert(offsetof(struct as_sw_frame, rip) == AS_SW_RIP, "layout");
_Static_assert(sizeof(struct as_sw_frame) == AS_SW_SIZE, "layout");
_Static_assert(offsetof(as_stack, hi) == AS_STACK_HI, "layout");
_Static_assert(offsetof(as_stack, lo) == AS_STACK_LO, "layout");
_Static_assert(AS_STACK_MIN_BYTES == AS_STACK_MIN, "layout");

/* The top header's end frame: rbp 0, rip just inside as__context_start. */
static inline void as__top_init(uint64_t *hdr)
{
    hdr[AS_TOP_LINK / 8] = 0;
    hdr[AS_TOP_COOKIE / 8] = 0;
    hdr[AS_TOP_END_RBP / 8] = 0;
    hdr[AS_TOP_END_RIP / 8] = (uintptr_t)as__context_start + 1;
}

static inline void as__frame_init(struct as_sw_frame *f, as_entry fn)
{
    *f = (struct as_sw_frame){
        .mxcsr = AS_MXCSR_DEFAULT,
        .fcw = AS_FCW_DEFAULT,
        .flags = AS_SW_FLAGS_EXACT,     /* a fresh context starts with the defaults */
        .rbx = (uintptr_t)fn,
        .rip = (uintptr_t)as__trampoline + 4,
    };
}
#endif
