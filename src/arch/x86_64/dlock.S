/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/dlock.S - running a delegated critical section under the
 * client's thread pointer (see include/altstack/dlock.h, rule 6).
 *
 * Used only where the kernel enables FSGSBASE (AT_HWCAP2 bit 1), which
 * makes rdfsbase/wrfsbase legal in ring 3; the kernel then also preserves
 * a base written this way across context switches and signals.
 *
 * The server's frame while the client's critical section runs:
 *
 *      +---------------------------+  CFA = entry rsp + 8
 *      | return address            |  CFA - 8
 *      | saved rbx                 |  CFA - 16
 *      | (pad, keeps rsp % 16 == 0 |  CFA - 24
 *      |  at the call)             |
 *      +---------------------------+  rsp at `call as_switch`
 *      | as_switch's frame         |  (switch.S: the server's as_ctx)
 *
 * rbx holds the server's own FS base across the switch: as_switch saves
 * and restores it with the rest of the server's callee-saved registers, so
 * whichever thread resumes this context gets the base back from it.
 */
#include "../asm.h"
#include "layout.h"

/*
 * as_transfer as__dl_enter(as_ctx to, void *data, uintptr_t tp)
 *   on entry: rdi = to (the client's context), rsi = data, rdx = tp (the
 *             client's FS base), (%rsp) = return address
 *   returns:  rax, rdx = the transfer as_switch returned
 * Between the wrfsbase and the call, no memory access uses %fs; after the
 * switch back, the base is restored before anything else runs here.
 */
AS_FUNC_HIDDEN(as__dl_enter)
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    rdfsbase %rbx                   /* rbx = our own thread pointer      */
    wrfsbase %rdx                   /* from here on TLS is the client's  */
    call    as_switch
    wrfsbase %rbx                   /* ours again; rax/rdx untouched     */
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    ret
AS_FUNC_END(as__dl_enter)

/*
 * uintptr_t as__dl_tp(void) - the live FS base (FSGSBASE only).
 * Clobbers only rax.
 */
AS_FUNC_HIDDEN(as__dl_tp)
    rdfsbase %rax
    ret
AS_FUNC_END(as__dl_tp)

AS_ASM_TRAILER
