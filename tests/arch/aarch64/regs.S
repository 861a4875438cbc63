/* SPDX-License-Identifier: MIT */
/*
 * tests/arch/aarch64/regs.S - register fidelity probe (see tests/regs.h).
 *
 * as_transfer test_switch_regs(as_ctx to, void *data,
 *                              const uint64_t *in, uint64_t *out)
 *   x0 = to, x1 = data (passed through to as_switch), x2 = in, x3 = out
 * as_transfer test_switch_regs_via(as_ctx to, void *data, void *arg,
 *                                  const uint64_t *in, uint64_t *out, sw)
 *   the same through sw(to, data, arg): x2 = arg, x3 = in, x4 = out,
 *   x5 = sw (as_switch, as_switch_ontop, ...)
 *   in/out[0..10] = x19..x29, [11..18] = d8..d15, [19] = FPCR
 *
 *   frame while switched away (CFA = sp + 192; x29 holds a test value,
 *   so the CFA stays sp-based); lr saved twice as in src/arch/aarch64/
 *   switch.S, signed for the return, plain for the CFI:
 *     sp+176  lr, signed
 *     sp+168  out            sp+160  caller's FPCR
 *     sp+96 .. sp+152        caller's d8..d15
 *     sp+16 .. sp+88         caller's x19..x28
 *     sp+8    lr, plain      sp+0    caller's x29
 */
#include "../../../src/arch/asm.h"

AS_FUNC_BEGIN(test_switch_regs)
    mov     x4, x3
    mov     x3, x2
    adrp    x5, :got:as_switch
    ldr     x5, [x5, :got_lo12:as_switch]
    b       test_switch_regs_via
AS_FUNC_END(test_switch_regs)

AS_FUNC_BEGIN(test_switch_regs_via)
    .cfi_remember_state
    stp     x29, x30, [sp, #-192]!
    .cfi_def_cfa_offset 192
    .cfi_offset x29, -192
    .cfi_offset x30, -184
    paciasp
    str     x30, [sp, #176]
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    .cfi_offset x19, -176
    .cfi_offset x20, -168
    .cfi_offset x21, -160
    .cfi_offset x22, -152
    .cfi_offset x23, -144
    .cfi_offset x24, -136
    .cfi_offset x25, -128
    .cfi_offset x26, -120
    .cfi_offset x27, -112
    .cfi_offset x28, -104
    .cfi_offset d8, -96
    .cfi_offset d9, -88
    .cfi_offset d10, -80
    .cfi_offset d11, -72
    .cfi_offset d12, -64
    .cfi_offset d13, -56
    .cfi_offset d14, -48
    .cfi_offset d15, -40
    mrs     x9, fpcr
    stp     x9, x4, [sp, #160]

    ldp     x19, x20, [x3, #0]
    ldp     x21, x22, [x3, #16]
    ldp     x23, x24, [x3, #32]
    ldp     x25, x26, [x3, #48]
    ldp     x27, x28, [x3, #64]
    ldr     x29, [x3, #80]
    ldp     d8,  d9,  [x3, #88]
    ldp     d10, d11, [x3, #104]
    ldp     d12, d13, [x3, #120]
    ldp     d14, d15, [x3, #136]
    ldr     x9, [x3, #152]
    msr     fpcr, x9
    blr     x5                            /* x0, x1 = the transfer: kept */

    ldr     x3, [sp, #168]
    stp     x19, x20, [x3, #0]
    stp     x21, x22, [x3, #16]
    stp     x23, x24, [x3, #32]
    stp     x25, x26, [x3, #48]
    stp     x27, x28, [x3, #64]
    str     x29, [x3, #80]
    stp     d8,  d9,  [x3, #88]
    stp     d10, d11, [x3, #104]
    stp     d12, d13, [x3, #120]
    stp     d14, d15, [x3, #136]
    mrs     x9, fpcr
    str     x9, [x3, #152]

    ldr     x9, [sp, #160]
    msr     fpcr, x9
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldr     x30, [sp, #176]
    autiasp
    ldr     x29, [sp], #192
    .cfi_restore_state              /* all back where they were on entry */
    ret
AS_FUNC_END(test_switch_regs_via)

AS_ASM_TRAILER
