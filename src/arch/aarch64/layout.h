/* SPDX-License-Identifier: MIT */
/*
 * src/arch/aarch64/layout.h - every byte offset the aarch64 assembly shares
 * with C.  Included by the .S files and by the C sources; the C side checks
 * each value against a struct with _Static_assert (src/arch/aarch64/frame.h).
 *
 * Switch frame: what as_switch stores, and what a saved as_ctx points at.
 * The frame record (x29, lr) sits at the top, as rbp/rip do on x86_64, so
 * both architectures share the top header below and its end frame.
 *
 *        +--------------------------+  ctx + 176 = the switcher's sp after
 *        | lr (x30), plain          |  ctx + 168   as_switch returns (CFA)
 *        | x29                      |  ctx + 160
 *        | x28          | x27       |  ctx + 152 | 144
 *        | x26          | x25       |  ctx + 136 | 128
 *        | x24          | x23       |  ctx + 120 | 112
 *        | x22          | x21       |  ctx + 104 |  96
 *        | x20          | x19       |  ctx +  88 |  80
 *        | d15          | d14       |  ctx +  72 |  64
 *        | d13          | d12       |  ctx +  56 |  48
 *        | d11          | d10       |  ctx +  40 |  32
 *        | d9           | d8        |  ctx +  24 |  16
 *        | lr, PAC-signed | FPCR    |  ctx +   8 |   0
 *        +--------------------------+  <- ctx, 16-byte aligned
 *
 * The FPCR word is FPCR (an exact switch, or a fresh frame) or, after a
 * fast switch, AS_SW_NO_FP: bit 63, which FPCR never has (RES0), meaning
 * "no FPCR recorded, leave the thread's".
 *
 * lr is saved twice.  The copy at +8 is signed (paciasp with sp == ctx)
 * and is the one the switch returns through, after autiasp with sp == ctx
 * again: a frame is resumed only at the address it was written, so each
 * frame is checked against the very sp it was signed with.  The plain copy
 * at +168 is for unwinders and for the trampoline's cookie; the CFI
 * describes it, and so never needs DW_CFA_AARCH64_negate_ra_state, which
 * Debian 12's libunwind (1.6.2) rejects, ending every backtrace there.
 * Corrupting the plain copy can mislead a backtrace, never a return.
 *
 * Fresh context: as_ctx_make writes a switch frame whose lr is the entry
 * trampoline, below a 32-byte header at the top of the stack.
 *
 *        +--------------------------+  top (s->hi aligned down to 16)
 *        | as__context_start + 4    |  S + 24  } the chain's end: a frame
 *        | 0                        |  S + 16  } whose caller has lr undefined
 *        | cookie                   |  S +  8  plain lr found in the link's frame
 *        | link                     |  S +  0  the first switcher's ctx
 *        +--------------------------+  <- S = top - 32 = sp in the trampoline
 *        | switch frame             |  x19 = entry fn, x29 = 0,
 *        |   lr = as__trampoline+4  |  FPCR 0 (round to nearest, no traps),
 *        |                          |  signed copy made with modifier ctx
 *        +--------------------------+  <- ctx = S - 176
 */
#ifndef ALTSTACK_SRC_ARCH_AARCH64_LAYOUT_H
#define ALTSTACK_SRC_ARCH_AARCH64_LAYOUT_H

#define AS_SW_FPCR       0      /* FPCR, or AS_SW_NO_FP (fast switch) */
#define AS_SW_NO_FP_BIT  63     /* RES0 in FPCR: set = no FPCR recorded */
#define AS_SW_NO_FP_HI16 0x8000
#define AS_SW_NO_FP      0x8000000000000000
#define AS_SW_LR_PAC     8      /* lr signed with modifier ctx */
#define AS_SW_D8        16      /* d8..d15 at +16 .. +72, in pairs */
#define AS_SW_D10       32
#define AS_SW_D12       48
#define AS_SW_D14       64
#define AS_SW_X19       80      /* x19..x28 at +80 .. +152, in pairs */
#define AS_SW_X21       96
#define AS_SW_X23      112
#define AS_SW_X25      128
#define AS_SW_X27      144
#define AS_SW_FP       160      /* x29 */
#define AS_SW_LR       168      /* x30 */
#define AS_SW_SIZE     176

/* as_stack (include/altstack/stack.h) */
#define AS_STACK_LO      0
#define AS_STACK_HI      8
#define AS_STACK_MIN_BYTES 512  /* = AS_STACK_MIN */

#define AS_TOP_LINK      0
#define AS_TOP_COOKIE    8
#define AS_TOP_END_FP   16
#define AS_TOP_END_LR   24
#define AS_TOP_SIZE     32

/* Under AddressSanitizer a fresh context's stack holds, above the top
 * header, the record src/hosted/asan.c keeps of the stack's bounds. */
#define AS_ASAN_TOP    112

#ifndef __ASSEMBLER__
/* AS_STACK_MIN holds a fresh context, ASan's record included, with room
 * for one more switch frame's worth of the first calls. */
_Static_assert(AS_STACK_MIN_BYTES >= AS_ASAN_TOP + AS_TOP_SIZE + 2 * AS_SW_SIZE,
               "AS_STACK_MIN too small for a fresh context");
#endif

/* A fresh frame's lr: as__trampoline + 4, past a never-executed first
 * instruction, so that lr - 1 is inside the trampoline's FDE (switch.S). */
#define AS_TRAMPOLINE_ENTRY 4

/* FPCR of a fresh context: what Linux gives a new process (round to
 * nearest, every exception untrapped, no flush-to-zero). */
#define AS_FPCR_DEFAULT  0

/* --- activations (as_act, include/altstack/activation.h) ---------------
 *
 *   record (64-byte aligned, AS_ACT_SIZE)      FULL resume through x16
 *   +-----------------------------+ 0          (freestanding), staged on
 *   | x0 .. x30                   | 0..240     the target stack:
 *   | sp                          | 248        +--------------------+ T = sp
 *   | pc                          | 256        | pc      | pstate   | S+256
 *   | pstate (NZCV, DIT, SSBS, TCO)| 264       | x0 .. x30 (at 8*i) | S+0
 *   | fpsr:32 fpcr:32             | 272        +--------------------+ S = T-272
 *   | kind:16 pad                 | 280
 *   | pool | self | next | slot  | 288..308   AAPCS64 has no red zone: the
 *   | sigmask (FULL, hosted)      | 312        words below sp are free.
 *   | v: q0 .. q31, 16 bytes each | 320..832
 *   +-----------------------------+ 1024       pool: head at 0.
 */
#define AS_ACT_X0        0
#define AS_ACT_X16     128
#define AS_ACT_X19     152
#define AS_ACT_X29     232
#define AS_ACT_X30     240
#define AS_ACT_SP      248
#define AS_ACT_PC      256
#define AS_ACT_PSTATE  264
#define AS_ACT_FPSR    272
#define AS_ACT_FPCR    276
#define AS_ACT_KIND    280
#define AS_ACT_POOL    288
#define AS_ACT_SELF    296
#define AS_ACT_NEXT    304
#define AS_ACT_SLOT    308
#define AS_ACT_SIGMASK 312
#define AS_ACT_V       320
#define AS_ACT_V8      (AS_ACT_V + 8 * 16)
#define AS_ACT_STAGE   272      /* x0..x30, pc, pstate, padded to 16      */
#define AS_ACT_POOL_HEAD 0
/* PSTATE bits a FULL record keeps besides NZCV (SPSR positions, which
 * are also where MRS/MSR of DIT, SSBS and TCO put them). */
#define AS_PSTATE_NZCV   0xf0000000
#define AS_PSTATE_DIT    (1 << 24)
#define AS_PSTATE_SSBS   (1 << 12)
#define AS_PSTATE_TCO    (1 << 25)
#define AS_ACT_KIND_CALL 1      /* = AS_ACT_CALL, AS_ACT_FULL, AS_ACT_FRESH */
#define AS_ACT_KIND_FULL 2
#define AS_ACT_KIND_FRESH 3
/* --- end activations --- */

#endif
