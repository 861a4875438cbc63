/* SPDX-License-Identifier: MIT */
/*
 * tests/arch/x86_64/regs.S - register fidelity probe (see tests/regs.h).
 *
 * as_transfer test_switch_regs(as_ctx to, void *data,
 *                              const uint64_t *in, uint64_t *out)
 *   rdi = to, rsi = data (passed through to as_switch), rdx = in, rcx = out
 * as_transfer test_switch_regs_via(as_ctx to, void *data, void *arg,
 *                                  const uint64_t *in, uint64_t *out, sw)
 *   the same through sw(to, data, arg): rdx = arg, rcx = in, r8 = out,
 *   r9 = sw (as_switch, as_switch_ontop, ...)
 *
 *   frame while switched away:     rsp+0  saved MXCSR | saved FCW
 *                                  rsp+8  out
 *                                  rsp+16 (pad)
 *                                  rsp+24 r15 .. rsp+64 rbp, rsp+72 ret
 */
#include "../../../src/arch/asm.h"

AS_FUNC_BEGIN(test_switch_regs)
    movq    %rcx, %r8
    movq    %rdx, %rcx
    movq    as_switch@GOTPCREL(%rip), %r9
    jmp     test_switch_regs_via
AS_FUNC_END(test_switch_regs)

AS_FUNC_BEGIN(test_switch_regs_via)
    AS_PUSH_CALLEE_SAVED
    subq    $24, %rsp
    .cfi_adjust_cfa_offset 24
    stmxcsr 0(%rsp)
    fnstcw  4(%rsp)
    movq    %r8, 8(%rsp)
    movq    0(%rcx), %rbx
    movq    8(%rcx), %rbp
    movq    16(%rcx), %r12
    movq    24(%rcx), %r13
    movq    32(%rcx), %r14
    movq    40(%rcx), %r15
    ldmxcsr 48(%rcx)
    fldcw   56(%rcx)
    call    *%r9
    movq    8(%rsp), %rcx
    movq    %rbx, 0(%rcx)
    movq    %rbp, 8(%rcx)
    movq    %r12, 16(%rcx)
    movq    %r13, 24(%rcx)
    movq    %r14, 32(%rcx)
    movq    %r15, 40(%rcx)
    movq    $0, 48(%rcx)
    movq    $0, 56(%rcx)
    stmxcsr 48(%rcx)
    fnstcw  56(%rcx)
    ldmxcsr 0(%rsp)
    fldcw   4(%rsp)
    addq    $24, %rsp
    .cfi_adjust_cfa_offset -24
    popq    %r15
    .cfi_adjust_cfa_offset -8
    popq    %r14
    .cfi_adjust_cfa_offset -8
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    ret
AS_FUNC_END(test_switch_regs_via)

AS_ASM_TRAILER
