/* SPDX-License-Identifier: MIT */
/*
 * src/fcontext/arch/aarch64/fcontext.S - jump_fcontext and ontop_fcontext
 * (Boost.Context's ABI) around as_switch / as_switch_ontop, AAPCS64.
 * Layouts: src/fcontext/layout.h; the bookkeeping: fcontext.c.
 *
 *   jump_fcontext's frame               ontop_fcontext's frame
 *   +--------------------+ CFA           +--------------------+ CFA
 *   | (pad)   | x20      | CFA-16        | data    | fn       | CFA-16 packet
 *   | lr      | x29      | CFA-32 <- sp  | (pad)   | x20      | CFA-32
 *   +--------------------+               | lr      | x29      | CFA-48 <- sp
 *     then as_switch's frame             +--------------------+
 *
 * While either is suspended, x20 holds the header of the stack it runs on
 * (the thread-local `cur`): as_switch keeps it in its frame, and it is
 * there again when the switch returns or when as_switch_ontop runs an
 * ontop function on this stack (fc__ontop_entry).  A fresh frame from
 * make_fcontext has it there too (x19 is the trampoline's entry
 * function, fc__start, and x21 Boost's fn).
 *
 * Branch protection: `bti c` at every entry (AS_FUNC_BEGIN).  These frames
 * store lr unsigned, like the library's C code (meson.build: bti, no
 * pac-ret), so this file's property note claims BTI only.
 */
#include "../../../arch/asm.h"
#include "../../layout.h"

/* x20 = this thread's `cur` (initial-exec TLS); clobbers x9, x10. */
.macro FC_LOAD_CUR
    adrp    x9, :gottprel:fc__tls
    ldr     x9, [x9, #:gottprel_lo12:fc__tls]
    mrs     x10, tpidr_el0
    add     x9, x9, x10
    ldr     x20, [x9, #FC_TLS_CUR]
.endm

/* A frame of SIZE bytes: frame record (x29, lr) at sp, x20 at sp + 16. */
.macro FC_ENTER size
    stp     x29, x30, [sp, #-\size]!
    .cfi_def_cfa_offset \size
    .cfi_offset x29, -\size
    .cfi_offset x30, -(\size - 8)
    mov     x29, sp
    str     x20, [sp, #16]
    .cfi_offset x20, -(\size - 16)
.endm

.macro FC_LEAVE size
    ldr     x20, [sp, #16]
    .cfi_restore x20
    ldp     x29, x30, [sp], #\size
    .cfi_def_cfa_offset 0
    .cfi_restore x29
    .cfi_restore x30
    ret
.endm

/* Back on our stack: fc__arrive(x20 = our header, from, data) does the
 * bookkeeping and returns the transfer {from, data} in x0, x1. */
.macro FC_ARRIVE
    mov     x2, x1
    mov     x1, x0
    mov     x0, x20
    bl      fc__arrive
.endm

/*
 * transfer_t jump_fcontext(fcontext_t to, void *vp)
 *   on entry: x0 = to, x1 = vp, lr = return address
 *   returns:  x0 = the context that jumped back (NULL: it finished),
 *             x1 = its data
 * fc__jump: the same code under a hidden name, for fcontext.c's own use.
 */
AS_FUNC_BEGIN(jump_fcontext)
    .globl  fc__jump
    .hidden fc__jump
fc__jump:
    FC_ENTER 32
    FC_LOAD_CUR
    bl      as_switch
    /* Resumed: x0, x1 = the transfer, x20 = our header again. */
    FC_ARRIVE
    FC_LEAVE 32
AS_FUNC_END(jump_fcontext)

/*
 * transfer_t ontop_fcontext(fcontext_t to, void *vp, transfer_t (*fn)(transfer_t))
 *   on entry: x0 = to, x1 = vp, x2 = fn
 */
AS_FUNC_BEGIN(ontop_fcontext)
    FC_ENTER 48
    str     x2, [sp, #32 + FC_ONTOP_FN]
    str     x1, [sp, #32 + FC_ONTOP_DATA]
    FC_LOAD_CUR
    add     x1, sp, #32
    adrp    x2, fc__ontop_entry
    add     x2, x2, :lo12:fc__ontop_entry
    bl      as_switch_ontop
    FC_ARRIVE
    FC_LEAVE 48
AS_FUNC_END(ontop_fcontext)

/*
 * The ontop function as_switch_ontop calls (blr), on to's stack, with to's
 * callee-saved registers:
 *   on entry: x0 = the jumping context, x1 = its packet,
 *             x20 = to's stack header (to is suspended in jump_fcontext or
 *             ontop_fcontext, or fresh: make_fcontext put it there)
 * A tail call into fc__ontop_shim(from, vp, fn, to's header): the shim's
 * caller, for unwinders, is as_switch_ontop.
 */
AS_FUNC_HIDDEN(fc__ontop_entry)
    ldr     x2, [x1, #FC_ONTOP_FN]
    ldr     x1, [x1, #FC_ONTOP_DATA]
    mov     x3, x20
    b       fc__ontop_shim
AS_FUNC_END(fc__ontop_entry)

/*
 * The entry function of a fresh context (make_fcontext), called by the
 * trampoline with the first transfer in x0, x1, which already linked the
 * stack to the context that jumped here.
 *   on entry: x20 = the stack's header, x21 = Boost's fn
 * fn must not return; if it does, _exit(0), as Boost's assembly does.
 * (Not under ASan: there make_fcontext enters fc_entry instead.)
 */
AS_FUNC_HIDDEN(fc__start)
    stp     x29, x30, [sp, #-16]!
    .cfi_def_cfa_offset 16
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    mov     x29, sp
    adrp    x9, :gottprel:fc__tls
    ldr     x9, [x9, #:gottprel_lo12:fc__tls]
    mrs     x10, tpidr_el0
    add     x9, x9, x10
    str     x20, [x9, #FC_TLS_CUR]
    blr     x21
    mov     w0, #0
    bl      _exit
    brk     #0
AS_FUNC_END(fc__start)

#undef AS_PROP_BITS
#define AS_PROP_BITS 0x1                 /* BTI */
AS_ASM_TRAILER
