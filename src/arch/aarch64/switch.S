/* SPDX-License-Identifier: MIT */
/*
 * src/arch/aarch64/switch.S - as_switch, as_call_on and the entry trampoline
 * for AAPCS64.  Frame layouts: src/arch/aarch64/layout.h.
 *
 *   as_switch frame (ctx points at it)      fresh context (as_ctx_make)
 *   +--------------------+ ctx+176           +--------------------+ top
 *   | lr (plain) | x29   | ctx+160           | end lr | 0         | S+16..S+31
 *   | x28 | x27          | ctx+144           | cookie             | S+8
 *   | ...   x20 | x19    | ctx+80..          | link               | S+0 = top-32
 *   | d15 | d14 ... d8   | ctx+16..          +--------------------+
 *   | lr (signed) | FPCR | ctx+0             | switch frame with  |
 *   +--------------------+                   | lr = trampoline + 4|
 *                                            | x19 = entry fn     |
 *                                            +--------------------+ ctx = S-176
 *
 * CFI.  The frame as_switch stores has the same layout as the frame of the
 * context it resumes, so one set of CFI rules is right on both sides of the
 * `mov sp, x0`: before it they describe the caller, after it the context
 * being resumed (which, as far as an unwinder can tell, is inside its own
 * call to as_switch).  The rules are valid at every instruction.
 *
 * Pointer authentication.  Every lr these functions save is saved twice:
 * a copy signed with paciasp, which is what they return through after
 * autiasp, and a plain copy, which is what the CFI describes.  The signed
 * copy is made and checked with sp at the same address (as_switch: the
 * frame itself, ctx; as_call_on: its frame record), never across the
 * switch of sp: the lr as_switch signs is its caller's and is checked only
 * when that caller's frame is resumed, at the same ctx.  Frames built in C
 * (as_ctx_make) are signed the same way with pacia1716 (frame.h).  The
 * plain copy keeps the CFI free of DW_CFA_AARCH64_negate_ra_state: Debian
 * 12's libunwind (1.6.2) treats that opcode as an error and stops the
 * backtrace, which would defeat the point of describing these frames at
 * all.  Overwriting the plain copy can mislead an unwinder, never a
 * return.  On cores without PAC, paciasp/autiasp/pacia1716 are NOPs.
 *
 * Return prediction and BTI.  The switch ends in `ret`, not `br`.  Every
 * target is either a return site after `bl as_switch` (in code we do not
 * control, with no landing pad) or the trampoline: under BTI a `br` from a
 * guarded page may only land on a `bti j`/`bti c`, so `br` to a return site
 * would fault, while `ret` needs no landing pad.  A `ret` into another
 * context mispredicts once (the return stack predicts our own caller) but
 * pops exactly the entry our caller's `bl` pushed, so the return stack
 * stays balanced for the code that runs next; on x86_64, where `jmp` has
 * no such constraint, the switch uses `jmp` instead.
 */
#include "../asm.h"
#include "layout.h"

/* The CFI of a complete switch frame at sp (it describes the plain lr). */
#define AS_CFI_SWITCH_FRAME                     \
    .cfi_def_cfa sp, AS_SW_SIZE;                \
    .cfi_offset x30, AS_SW_LR - AS_SW_SIZE;     \
    .cfi_offset x29, AS_SW_FP - AS_SW_SIZE;     \
    AS_CFI_SWITCH_SAVED

#define AS_CFI_SWITCH_SAVED                     \
    .cfi_offset x19, AS_SW_X19 - AS_SW_SIZE;    \
    .cfi_offset x20, AS_SW_X19 + 8 - AS_SW_SIZE;\
    .cfi_offset x21, AS_SW_X21 - AS_SW_SIZE;    \
    .cfi_offset x22, AS_SW_X21 + 8 - AS_SW_SIZE;\
    .cfi_offset x23, AS_SW_X23 - AS_SW_SIZE;    \
    .cfi_offset x24, AS_SW_X23 + 8 - AS_SW_SIZE;\
    .cfi_offset x25, AS_SW_X25 - AS_SW_SIZE;    \
    .cfi_offset x26, AS_SW_X25 + 8 - AS_SW_SIZE;\
    .cfi_offset x27, AS_SW_X27 - AS_SW_SIZE;    \
    .cfi_offset x28, AS_SW_X27 + 8 - AS_SW_SIZE;\
    .cfi_offset d8,  AS_SW_D8 - AS_SW_SIZE;     \
    .cfi_offset d9,  AS_SW_D8 + 8 - AS_SW_SIZE; \
    .cfi_offset d10, AS_SW_D10 - AS_SW_SIZE;    \
    .cfi_offset d11, AS_SW_D10 + 8 - AS_SW_SIZE;\
    .cfi_offset d12, AS_SW_D12 - AS_SW_SIZE;    \
    .cfi_offset d13, AS_SW_D12 + 8 - AS_SW_SIZE;\
    .cfi_offset d14, AS_SW_D14 - AS_SW_SIZE;    \
    .cfi_offset d15, AS_SW_D14 + 8 - AS_SW_SIZE

/* Store a switch frame for the caller below its CFA and describe it; the
 * lr it saves is signed with sp == the frame.  After this sp = the frame
 * (our own ctx).  Exact: the FPCR word is FPCR, and x9 holds it too;
 * fast: the word is AS_SW_NO_FP (bit 63, never set in FPCR).  Clobbers x9. */
#define AS_SWITCH_SAVE_REGS                     \
    sub     sp, sp, #AS_SW_SIZE;                \
    .cfi_def_cfa_offset AS_SW_SIZE;             \
    stp     x29, x30, [sp, #AS_SW_FP];          \
    .cfi_offset x29, AS_SW_FP - AS_SW_SIZE;     \
    .cfi_offset x30, AS_SW_LR - AS_SW_SIZE;     \
    paciasp;                                    \
    stp     x19, x20, [sp, #AS_SW_X19];         \
    stp     x21, x22, [sp, #AS_SW_X21];         \
    stp     x23, x24, [sp, #AS_SW_X23];         \
    stp     x25, x26, [sp, #AS_SW_X25];         \
    stp     x27, x28, [sp, #AS_SW_X27];         \
    stp     d8,  d9,  [sp, #AS_SW_D8];          \
    stp     d10, d11, [sp, #AS_SW_D10];         \
    stp     d12, d13, [sp, #AS_SW_D12];         \
    stp     d14, d15, [sp, #AS_SW_D14];         \
    AS_CFI_SWITCH_SAVED
#define AS_SWITCH_SAVE_EXACT                    \
    AS_SWITCH_SAVE_REGS;                        \
    mrs     x9, fpcr;                           \
    stp     x9, x30, [sp, #AS_SW_FPCR]
#define AS_SWITCH_SAVE_FAST                     \
    AS_SWITCH_SAVE_REGS;                        \
    movz    x9, #AS_SW_NO_FP_HI16, lsl #48;     \
    stp     x9, x30, [sp, #AS_SW_FPCR]

/* sp = the frame being resumed.  Exact (x9 = our FPCR): write FPCR only
 * if the target's differs from ours, `msr fpcr` being slow (it may wait
 * for every FP instruction in flight) while contexts rarely change it; a
 * target that recorded none compares as ours (csel, no branch).  Fast:
 * write FPCR only into a frame that recorded it.  Clobbers x10, flags. */
#define AS_FP_LOAD_EXACT(n)                     \
    ldr     x10, [sp, #AS_SW_FPCR];             \
    tst     x10, #AS_SW_NO_FP;                  \
    csel    x10, x9, x10, ne;                   \
    cmp     x9, x10;                            \
    b.ne    .Lload_fpcr##n;                     \
.Lfp_done##n:
#define AS_FP_LOAD_FAST(n)                      \
    ldr     x10, [sp, #AS_SW_FPCR];             \
    tbz     x10, #AS_SW_NO_FP_BIT, .Lload_fpcr##n; \
.Lfp_done##n:
#define AS_FP_LOAD_SLOW(n)                      \
.Lload_fpcr##n:                                 \
    .cfi_restore_state;                         \
    .cfi_remember_state;                        \
    msr     fpcr, x10;                          \
    b       .Lfp_done##n

/* sp = the frame to resume (FPCR already its own): load its registers,
 * authenticate its lr, retire it and pop it.  Afterwards sp is the
 * resumed side's CFA and lr its return address.  Clobbers nothing else.
 * Retiring: a context whose chain links to this frame (see the
 * trampoline) compares the plain lr slot with its cookie, so zeroing it
 * kills the link the moment the frame is resumed. */
#define AS_SWITCH_RESTORE                       \
    ldp     d8,  d9,  [sp, #AS_SW_D8];          \
    ldp     d10, d11, [sp, #AS_SW_D10];         \
    ldp     d12, d13, [sp, #AS_SW_D12];         \
    ldp     d14, d15, [sp, #AS_SW_D14];         \
    ldp     x19, x20, [sp, #AS_SW_X19];         \
    ldp     x21, x22, [sp, #AS_SW_X21];         \
    ldp     x23, x24, [sp, #AS_SW_X23];         \
    ldp     x25, x26, [sp, #AS_SW_X25];         \
    ldp     x27, x28, [sp, #AS_SW_X27];         \
    .cfi_restore x19; .cfi_restore x20;         \
    .cfi_restore x21; .cfi_restore x22;         \
    .cfi_restore x23; .cfi_restore x24;         \
    .cfi_restore x25; .cfi_restore x26;         \
    .cfi_restore x27; .cfi_restore x28;         \
    .cfi_restore d8;  .cfi_restore d9;          \
    .cfi_restore d10; .cfi_restore d11;         \
    .cfi_restore d12; .cfi_restore d13;         \
    .cfi_restore d14; .cfi_restore d15;         \
    ldr     x30, [sp, #AS_SW_LR_PAC];           \
    ldr     x29, [sp, #AS_SW_FP];               \
    autiasp;                                    \
    .cfi_restore x29;                           \
    .cfi_restore x30;                           \
    str     xzr, [sp, #AS_SW_LR];               \
    add     sp, sp, #AS_SW_SIZE;                \
    .cfi_def_cfa_offset 0

/* The frame record around a call to another stack (as_call_on, and
 * as_switch_ontop's call to fn), with lr saved twice as in the switch
 * frame: signed for the return, plain for the CFI, whose CFA is x29-based
 * and so stays right while the callee runs elsewhere.
 *   sp+16  lr, signed         sp+8  lr, plain      sp+0  caller's x29 */
#define AS_CALL_FRAME_PUSH                      \
    stp     x29, x30, [sp, #-32]!;              \
    .cfi_def_cfa_offset 32;                     \
    .cfi_offset x29, -32;                       \
    .cfi_offset x30, -24;                       \
    paciasp;                                    \
    str     x30, [sp, #16];                     \
    mov     x29, sp;                            \
    .cfi_def_cfa_register x29
#define AS_CALL_FRAME_POP                       \
    mov     sp, x29;                            \
    .cfi_def_cfa_register sp;                   \
    ldr     x30, [sp, #16];                     \
    autiasp;                                    \
    ldr     x29, [sp], #32;                     \
    .cfi_def_cfa_offset 0;                      \
    .cfi_restore x29;                           \
    .cfi_restore x30

/*
 * as_transfer as_switch(as_ctx to, void *data)         exact mode
 * as_transfer as_switch_fast(as_ctx to, void *data)    fast mode
 *   on entry: x0 = to (a switch frame), x1 = data, lr = return address,
 *             sp = our CFA
 *   returns:  x0 = the context that resumed us (NULL if it finished),
 *             x1 = its data
 * Clobbers only x0-x2, x9, x10 and the flags: corruptible by AAPCS64 6.1.1.
 * The landing pad (bti c) admits `bl`, `blr` and `br x16/x17` (PLT, veneer).
 * The switch itself (`mov sp, x0`) leaves the CFI unchanged: `to` has the
 * same frame layout; x1 = data stays where the transfer's second word is
 * returned.
 */
#define AS_SWITCH_BODY(SAVE, LOAD, n)           \
    SAVE;                                       \
    mov     x2, sp;                             \
    mov     sp, x0;                             \
    mov     x0, x2;                             \
    .cfi_remember_state;                        \
    LOAD(n);                                    \
    AS_SWITCH_RESTORE;                          \
    ret;                                        \
    AS_FP_LOAD_SLOW(n)

AS_FUNC_BEGIN(AS_SYM(switch))
    AS_SWITCH_BODY(AS_SWITCH_SAVE_EXACT, AS_FP_LOAD_EXACT, _sw)
AS_FUNC_END(AS_SYM(switch))

AS_FUNC_BEGIN(AS_SYM(switch_fast))
    AS_SWITCH_BODY(AS_SWITCH_SAVE_FAST, AS_FP_LOAD_FAST, _swf)
AS_FUNC_END(AS_SYM(switch_fast))

/*
 * as_transfer as_switch_ontop(as_ctx to, void *data,
 *                             as_transfer (*fn)(as_transfer t))
 * as_transfer as_switch_ontop_fast(...)           the same in fast mode
 *   on entry: x0 = to, x1 = data, x2 = fn, lr = return address
 *   calls:    fn({our frame, data}) on to's stack, with to's callee-saved
 *             registers and FPCR in place, as if to's suspended switch had
 *             called it
 *   then:     resumes to with fn's result {x0, x1} as its transfer
 *   returns:  as as_switch, when something switches back to us
 * Clobbers x0-x2, x9-x11 and the flags, as as_switch does (plus x11).
 *
 *   to's stack while fn runs (C = to + 176, to's CFA once its switch
 *   returns; the frame record is the same shape as as_call_on's):
 *     C-8   0: to's plain lr slot, retired   C-16  lr, signed (pad above)
 *     C-24  to's lr, plain                   C-32  to's x29  <- sp, x29
 *
 * fn's caller is then this function, and the caller of that is whatever
 * to's switch returns to: an unwinder (or a C++ exception leaving fn)
 * goes from fn into the frame that called to's switch, with to's
 * callee-saved registers.  to's frame is retired before fn runs, so a
 * chain linked to it ends there while fn overwrites the frame below.
 */
#define AS_ONTOP_BODY(SAVE, LOAD, n)            \
    mov     x11, x2;                /* fn */    \
    SAVE;                                       \
    mov     x2, sp;                             \
    mov     sp, x0;                             \
    mov     x0, x2;    /* fn's t = {our frame, data}: x0, x1 */ \
    .cfi_remember_state;                        \
    LOAD(n);                                    \
    AS_SWITCH_RESTORE;                          \
    /* sp = to's CFA, lr = to's return address, every callee-saved \
     * register to's.  A frame record for the call to fn: */ \
    AS_CALL_FRAME_PUSH;                         \
    blr     x11;       /* x0, x1 = t; sp 16-byte aligned */ \
    AS_CALL_FRAME_POP; /* fn returned r = {x0, x1}: to's switch returns it */ \
    ret;                                        \
    AS_FP_LOAD_SLOW(n)

AS_FUNC_BEGIN(AS_SYM(switch_ontop))
    AS_ONTOP_BODY(AS_SWITCH_SAVE_EXACT, AS_FP_LOAD_EXACT, _ot)
AS_FUNC_END(AS_SYM(switch_ontop))

AS_FUNC_BEGIN(AS_SYM(switch_ontop_fast))
    AS_ONTOP_BODY(AS_SWITCH_SAVE_FAST, AS_FP_LOAD_FAST, _otf)
AS_FUNC_END(AS_SYM(switch_ontop_fast))

/*
 * The first code a fresh context runs, entered by as_switch's final `ret`
 * at as__trampoline + AS_TRAMPOLINE_ENTRY.
 *   on entry: sp = S (top - 32, 16-byte aligned), x19 = entry fn,
 *             x29 = 0, x0 = the switcher's ctx (NULL if it finished),
 *             x1 = data
 *
 * CFI: the caller of this frame is the switcher, suspended in as_switch
 * with its frame at `link`.  The CFA is computed by a DWARF expression:
 *
 *     L = *(S + LINK)
 *     if (L != 0 && *(L + 168) == *(S + COOKIE))   L + 176   (the switcher)
 *     else                                         S + 32    (the end)
 *
 * and every register is read from a switch frame below that CFA: the
 * switcher's, or, at the end, the header's x29 = 0 and lr = the address
 * just inside as__context_start, whose CFI marks the return address
 * undefined: unwinders take that as the outermost frame, as they do for
 * _start or a new thread's first frame.
 *
 * The cookie check stops the chain once the switcher has moved on:
 * resuming a frame zeroes its lr slot (AS_SWITCH_RESTORE), so the link is
 * believed only while the switcher is still suspended in the frame it
 * switched from (or suspended again at the very same place, which is just
 * as true).  Reading through a link whose stack was unmapped is the one
 * case this cannot catch: free a switcher's stack only once contexts it
 * started are done with or never unwound.
 *
 * As on x86_64 the expression has no branches or stack shuffling, only
 * arithmetic, comparisons and deref, which every DWARF reader implements
 * (Valgrind's included):
 *
 *     ok  = (L != 0) * (*(S + (L != 0) * (L + 168 - S)) == cookie)
 *     CFA = S + 32 + ok * (L + 144 - S)
 *
 * When L == 0 the lr read goes to S itself, never through a null link.
 * sp is DWARF register 31, so DW_OP_breg31 is 0x8f; 168 and 144 take two
 * ULEB128 bytes each.
 *
 *   0x0f 42                DW_CFA_def_cfa_expression, 42 bytes:
 *   0x8f 0x20              DW_OP_breg31 (sp) 32            S+32
 *   0x8f 0 0x06 0x30 0x2e  breg31 0, deref, lit0, ne       S+32, L!=0
 *   0x8f 0x00              DW_OP_breg31 0                  .., S
 *   0x8f 0 0x06 0x30 0x2e  breg31 0, deref, lit0, ne       .., S, L!=0
 *   0x8f 0 0x06 0x23 0xa8 0x01 0x8f 0 0x1c  L, +168, S, minus
 *                                                          .., S, L!=0, L+168-S
 *   0x1e 0x22 0x06         DW_OP_mul, plus, deref          S+32, L!=0, lr(L)
 *   0x8f 0x08 0x06         DW_OP_breg31 8, deref           .., lr(L), cookie
 *   0x29 0x1e              DW_OP_eq, mul                   S+32, ok
 *   0x8f 0 0x06 0x23 0x90 0x01 0x8f 0 0x1c  L, +144, S, minus
 *                                                          S+32, ok, L+144-S
 *   0x1e 0x22              DW_OP_mul, plus                 CFA
 *
 * The rules come before the first instruction, so they hold at every
 * instruction of the trampoline.  That first instruction never runs: a
 * fresh frame's lr points just past it, so that lr - 1, where unwinders
 * look a return address up, lies inside this FDE.  While as_switch pops
 * a fresh frame, its caller is then this trampoline (with an empty link,
 * so the chain ends at as__context_start) rather than whatever precedes
 * the trampoline in the text.  `ret` needs no BTI landing pad.
 */
    .text
    .globl  as__trampoline
    .hidden as__trampoline
    .type   as__trampoline, %function
    AS_FUNC_ALIGN
as__trampoline:
    .cfi_startproc
    .cfi_escape 0x0f, 42, 0x8f, 0x20, \
                0x8f, 0x00, 0x06, 0x30, 0x2e, \
                0x8f, 0x00, \
                0x8f, 0x00, 0x06, 0x30, 0x2e, \
                0x8f, 0x00, 0x06, 0x23, 0xa8, 0x01, 0x8f, 0x00, 0x1c, \
                0x1e, 0x22, 0x06, \
                0x8f, 0x08, 0x06, \
                0x29, 0x1e, \
                0x8f, 0x00, 0x06, 0x23, 0x90, 0x01, 0x8f, 0x00, 0x1c, \
                0x1e, 0x22
    .cfi_offset x30, AS_SW_LR - AS_SW_SIZE
    .cfi_offset x29, AS_SW_FP - AS_SW_SIZE
    AS_CFI_SWITCH_SAVED
    nop                             /* never executed: see above */
    /* as__trampoline + AS_TRAMPOLINE_ENTRY.  x0 is NULL when the switcher
     * was a finishing context (an entry returned a transfer to this fresh
     * one): no link, no cookie. */
    mov     x9, xzr
    cbz     x0, 1f
    ldr     x9, [x0, #AS_SW_LR]
1:  stp     x0, x9, [sp, #AS_TOP_LINK] /* link, cookie: one store, so a
                                          signal sees both or neither */
    blr     x19                     /* x0, x1 = as_transfer t; sp aligned */

    /* The entry returned r = {x0, x1}: resume r.ctx with r.data and
     * ctx = NULL.  Nobody saves this context, so nothing to store, and
     * nothing to compare FPCR against: load it (if it has one). */
    mov     sp, x0
    AS_CFI_SWITCH_FRAME
    .cfi_remember_state
    mov     x0, xzr
    AS_FP_LOAD_FAST(_tr)            /* FPCR if the frame recorded it */
    AS_SWITCH_RESTORE
    ret
    AS_FP_LOAD_SLOW(_tr)
    .cfi_endproc
    .size   as__trampoline, . - as__trampoline

/*
 * The bottom of every context's chain: never executed, only named.  Its
 * FDE says "no caller" from its very first byte, and as_ctx_make stores
 * as__context_start + 4 as the end frame's return address (unwinders look
 * up return address - 1, or the call instruction before it).
 */
    .text
    .globl  as__context_start
    .hidden as__context_start
    .type   as__context_start, %function
as__context_start:
    .cfi_startproc
    .cfi_undefined x30
    nop
    brk     #0x3c5
    .cfi_endproc
    .size   as__context_start, . - as__context_start

/*
 * void *as_call_on(const as_stack *s, void *(*fn)(void *), void *arg)
 *   on entry: x0 = s, x1 = fn, x2 = arg
 * A frame record whose CFA is x29-relative stays correct while fn runs on
 * the other stack: unwinding from fn lands here, then in our caller; fn's
 * own frame record links to ours, so frame-pointer walkers follow too.
 * Clobbers x9-x11 and the flags besides the argument and result registers.
 *
 *   sp+16  lr, signed         sp+8  lr, plain      sp+0  caller's x29
 */
AS_FUNC_BEGIN(AS_SYM(call_on))
    /* The stack as_ctx_make would accept: s, fn, s->lo non-NULL and
     * top = s->hi & -16 with top - AS_STACK_MIN >= s->lo, without
     * wrapping; otherwise NULL, fn not called. */
    cbz     x0, .Lcall_on_null
    cbz     x1, .Lcall_on_null
    ldp     x9, x10, [x0, #AS_STACK_LO]     /* s->lo, s->hi */
    and     x10, x10, #-16                  /* top */
    cbz     x9, .Lcall_on_null
    subs    x11, x10, #AS_STACK_MIN_BYTES
    b.lo    .Lcall_on_null                  /* top < AS_STACK_MIN (hi NULL) */
    cmp     x11, x9
    b.lo    .Lcall_on_null                  /* too small, or hi < lo */
    AS_CALL_FRAME_PUSH
    mov     sp, x10
    mov     x0, x2
    blr     x1
    AS_CALL_FRAME_POP
    ret
.Lcall_on_null:
    mov     x0, xzr
    ret
AS_FUNC_END(AS_SYM(call_on))

AS_ASM_TRAILER
