/* SPDX-License-Identifier: MIT */
/*
 * src/arch/aarch64/dlock.S - running a delegated critical section under the
 * client's thread pointer (see include/altstack/dlock.h, rule 6).
 *
 * TPIDR_EL0 is readable and writable at EL0 on every AArch64 system, and
 * the kernel saves and restores it per thread, so the switch is always on.
 *
 * The server's frame while the client's critical section runs:
 *
 *      +---------------------------+  CFA = entry sp
 *      | saved x19                 |  CFA - 8
 *      | lr, PAC-signed            |  CFA - 16  what the return uses
 *      | lr (x30), plain           |  CFA - 24  what the CFI describes
 *      | saved fp (x29)            |  CFA - 32  <- sp, x29
 *      +---------------------------+
 *      | as_switch's frame         |  (switch.S: the server's as_ctx)
 *
 * x19 holds the server's own TPIDR_EL0 across the switch: as_switch saves
 * and restores it with the server's other callee-saved registers.
 *
 * lr is saved twice, as in switch.S: signed with paciasp (sp == the frame)
 * for the return, after autiasp with the same sp, and plain for the CFI,
 * which therefore never needs DW_CFA_AARCH64_negate_ra_state (Debian 12's
 * libunwind 1.6.2 stops at it: backtraces from a delegated section would
 * end here).  Overwriting the plain copy can mislead an unwinder, never
 * the return.  Without PAC, paciasp and autiasp are NOPs.
 */
#include "../asm.h"
#include "layout.h"

/*
 * as_transfer as__dl_enter(as_ctx to, void *data, uintptr_t tp)
 *   on entry: x0 = to (the client's context), x1 = data, x2 = tp (the
 *             client's TPIDR_EL0), x30 = return address
 *   returns:  x0, x1 = the transfer as_switch returned
 * Nothing between the first msr and the bl touches TLS.
 */
AS_FUNC_HIDDEN(as__dl_enter)
    stp     x29, x30, [sp, #-32]!   /* x30 plain */
    .cfi_def_cfa_offset 32
    .cfi_offset x29, -32
    .cfi_offset x30, -24
    mov     x29, sp
    paciasp                         /* x30 signed with sp == the frame   */
    stp     x30, x19, [sp, #16]
    .cfi_offset x19, -8
    mrs     x19, tpidr_el0          /* x19 = our own thread pointer      */
    msr     tpidr_el0, x2           /* from here on TLS is the client's  */
    bl      as_switch
    msr     tpidr_el0, x19          /* ours again; x0/x1 untouched       */
    ldp     x30, x19, [sp, #16]     /* the signed lr                     */
    .cfi_restore x19
    autiasp                         /* checked with the same sp          */
    ldr     x29, [sp], #32
    .cfi_restore x29
    .cfi_restore x30
    .cfi_def_cfa_offset 0
    ret
AS_FUNC_END(as__dl_enter)

/*
 * uintptr_t as__dl_tp(void) - the live TPIDR_EL0.  Clobbers only x0.
 */
AS_FUNC_HIDDEN(as__dl_tp)
    mrs     x0, tpidr_el0
    ret
AS_FUNC_END(as__dl_tp)

AS_ASM_TRAILER
