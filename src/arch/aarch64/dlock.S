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
 *      | (pad)                     |  CFA - 16
 *      | saved lr (x30, signed)    |  CFA - 24
 *      | saved fp (x29)            |  CFA - 32  <- sp, x29
 *      +---------------------------+
 *      | as_switch's frame         |  (switch.S: the server's as_ctx)
 *
 * x19 holds the server's own TPIDR_EL0 across the switch: as_switch saves
 * and restores it with the server's other callee-saved registers.
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
    paciasp
    .cfi_window_save
    stp     x29, x30, [sp, #-32]!
    .cfi_def_cfa_offset 32
    .cfi_offset x29, -32
    .cfi_offset x30, -24
    mov     x29, sp
    str     x19, [sp, #24]
    .cfi_offset x19, -8
    mrs     x19, tpidr_el0          /* x19 = our own thread pointer      */
    msr     tpidr_el0, x2           /* from here on TLS is the client's  */
    bl      as_switch
    msr     tpidr_el0, x19          /* ours again; x0/x1 untouched       */
    ldr     x19, [sp, #24]
    .cfi_restore x19
    ldp     x29, x30, [sp], #32
    .cfi_restore x29
    .cfi_restore x30
    .cfi_def_cfa_offset 0
    autiasp
    .cfi_window_save
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
