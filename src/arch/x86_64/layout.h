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
 *        | flags | fcw | MXCSR (32)  |  ctx +  0   (MXCSR at +0, x87 CW at +4,
 *        +--------------------------+  <- ctx,     flags at +6), 16-byte aligned
 *
 * flags: 0xffff if the frame holds FP control (an exact switch, or a fresh
 * frame), 0 if not (a fast switch: MXCSR and FCW are then not written).
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
#define AS_SW_FLAGS      6
#define AS_SW_FLAGS_HI   7      /* its high byte, which the asm tests */
#define AS_SW_HAS_FP  0x80      /* ... for this bit (flags bit 15)    */
#define AS_SW_FLAGS_EXACT 0xffff
#define AS_SW_R15        8
#define AS_SW_R14       16
#define AS_SW_R13       24
#define AS_SW_R12       32
#define AS_SW_RBX       40
#define AS_SW_RBP       48
#define AS_SW_RIP       56
#define AS_SW_SIZE      64

/* as_stack (include/altstack/stack.h) */
#define AS_STACK_LO      0
#define AS_STACK_HI      8
#define AS_STACK_MIN_BYTES 512  /* = AS_STACK_MIN */

#define AS_TOP_LINK      0
#define AS_TOP_COOKIE    8
#define AS_TOP_END_RBP  16
#define AS_TOP_END_RIP  24
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

/* Control bits of MXCSR (DAZ, exception masks, RC, FZ); bits 0-5 are the
 * sticky status flags, which the ABI leaves caller-saved. */
#define AS_MXCSR_CTRL   0xffc0
/* The same bits as a sign-extended 8-bit mask for `and`, where the value
 * is an XOR of two MXCSRs (bits 16-31 reserved, always 0): the shortest
 * comparison, so that a patch site holds little padding. */
#define AS_MXCSR_CTRL_AND (-64)
#define AS_MXCSR_DEFAULT 0x1f80
#define AS_FCW_DEFAULT   0x037f

/* --- activations (as_act, include/altstack/activation.h) ---------------
 *
 *   record (64-byte aligned, AS_ACT_SIZE)      full-resume staging area,
 *   +-----------------------------+ 0          on the target stack
 *   | r15 r14 r13 r12 rbp rbx     | 0..40      +--------------------+ T = rsp
 *   | r11 r10 r9 r8               | 48..72     | red zone, 128 bytes|
 *   | rax rcx rdx rsi rdi         | 80..112    | never written      |
 *   | rflags                      | 120        +--------------------+ T-128
 *   | rip                         | 128        | rip                | S+128
 *   | rsp                         | 136        | rflags             | S+120
 *   | mxcsr:32 fcw:16 kind:16     | 144        | rdi .. r15         | S+112..S
 *   | pool  | self | next | slot  | 152..172   +--------------------+ S = T-264
 *   | pkru:32 flags:32 | reserved | 176..191
 *   | fpu: XSAVE / FXSAVE area    | 192 .. 4096
 *   +-----------------------------+
 *
 *   pool: head (tag:32 | slot:32, 0 = empty) at 0.
 */
#define AS_ACT_R15       0
#define AS_ACT_R14       8
#define AS_ACT_R13      16
#define AS_ACT_R12      24
#define AS_ACT_RBP      32
#define AS_ACT_RBX      40
#define AS_ACT_R11      48
#define AS_ACT_R10      56
#define AS_ACT_R9       64
#define AS_ACT_R8       72
#define AS_ACT_RAX      80
#define AS_ACT_RCX      88
#define AS_ACT_RDX      96
#define AS_ACT_RSI     104
#define AS_ACT_RDI     112
#define AS_ACT_RFLAGS  120
#define AS_ACT_RIP     128
#define AS_ACT_RSP     136
#define AS_ACT_MXCSR   144
#define AS_ACT_FCW     148
#define AS_ACT_KIND    150
#define AS_ACT_POOL    152
#define AS_ACT_SELF    160
#define AS_ACT_NEXT    168
#define AS_ACT_SLOT    172
#define AS_ACT_PKRU    176
#define AS_ACT_FLAGS   180
#define AS_ACT_F_PKRU_BIT 1     /* = AS_ACT_F_PKRU                         */
#define AS_ACT_FPU     192
#define AS_ACT_XHDR    512      /* XSAVE header within the FP area        */
#define AS_ACT_STAGE   136      /* bytes staged: r15..rdi, rflags, rip     */
#define AS_ACT_REDZONE 128
#define AS_ACT_POOL_HEAD 0
#define AS_ACT_KIND_CALL 1      /* = AS_ACT_CALL, AS_ACT_FULL, AS_ACT_FRESH */
#define AS_ACT_KIND_FULL 2
#define AS_ACT_KIND_FRESH 3
/* --- end activations --- */

#endif
