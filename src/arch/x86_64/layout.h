/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/layout.h - every byte offset the x86_64 assembly shares
 * with C.  Included by the .S files and by the C sources; the C side checks each
 * value against a struct with _Static_assert (src/arch/x86_64/frame.h).
 *
 * Switch frame: what as_switch pushes, and what a saved as_ctx points at.
 *
 *        +--------------------------+  ctx + 64  = the switcher's rsp after
 *        | return address (rip)     |  ctx + 56    as_switch returns (CFA)
 *        | rbp                      |  ctx + 48
 *        | rbx                      |  ctx + 40
 *        | r12                      |  ctx + 32
 *        | r13                      |  ctx + 24
 *        | r14                      |  ctx + 16
 *        | r15                      |  ctx +  8
 *        | fcw (16) | MXCSR (32)   |  ctx +  0   (MXCSR at +0, x87 CW at +4)
 *        +--------------------------+  <- ctx, 16-byte aligned
 *
 * Fresh context: as_ctx_make writes a switch frame whose return address is
 * the entry trampoline, below a 32-byte header at the top of the stack.
 *
 *        +--------------------------+  top (s->hi aligned down to 16)
 *        | as__context_start + 1    |  S + 24  } the chain's end: a frame
 *        | 0                        |  S + 16  } whose caller has rip undefined
 *        | cookie                   |  S +  8  rip found in the link's frame
 *        | link                     |  S +  0  the first switcher's ctx
 *        +--------------------------+  <- S = top - 32 = rsp in the trampoline
 *        | switch frame             |  rbx = entry fn, rbp = 0,
 *        |   rip = as__trampoline   |  MXCSR 0x1f80, FCW 0x37f
 *        +--------------------------+  <- ctx = S - 64
 */
#ifndef ALTSTACK_SRC_ARCH_X86_64_LAYOUT_H
#define ALTSTACK_SRC_ARCH_X86_64_LAYOUT_H

#define AS_SW_MXCSR      0
#define AS_SW_FCW        4
#define AS_SW_R15        8
#define AS_SW_R14       16
#define AS_SW_R13       24
#define AS_SW_R12       32
#define AS_SW_RBX       40
#define AS_SW_RBP       48
#define AS_SW_RIP       56
#define AS_SW_SIZE      64

/* as_stack (include/altstack/stack.h) */
#define AS_STACK_HI      8

#define AS_TOP_LINK      0
#define AS_TOP_COOKIE    8
#define AS_TOP_END_RBP  16
#define AS_TOP_END_RIP  24
#define AS_TOP_SIZE     32

/* Control bits of MXCSR (DAZ, exception masks, RC, FZ); bits 0-5 are the
 * sticky status flags, which the ABI leaves caller-saved. */
#define AS_MXCSR_CTRL   0xffc0
#define AS_MXCSR_DEFAULT 0x1f80
#define AS_FCW_DEFAULT   0x037f

#endif
