/* SPDX-License-Identifier: MIT */
/*
 * tests/arch/aarch64/act_probe.S - the register-fidelity loop of
 * tests/act_probe.h, and the CALL-record probe act_call_regs.
 *
 * act_probe_run, while it spins: x0-x30 hold act_probe.gpr[0..30],
 * q0-q31 hold vin[], NZCV = N C V.  The loop reads no memory and uses no
 * register: it tests N, C and V on every turn and leaves when Z is set,
 * which only a resumed record can do (the stopper sets Z in it).
 *
 *   frame: sp+0 x29 | x30 (signed), sp+16..88 x19..x28, sp+96..152 d8..d15
 */
#include "../../../src/arch/asm.h"
#include "../../act_probe.h"

#define PROBE(reg)                     \
    adrp    reg, act_probe;            \
    add     reg, reg, :lo12:act_probe

.macro SAVE_CALLEE size
    paciasp
    .cfi_negate_ra_state
    stp     x29, x30, [sp, #-\size]!
    .cfi_def_cfa_offset \size
    .cfi_offset x29, -\size
    .cfi_offset x30, -\size + 8
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
.endm

.macro RESTORE_CALLEE_RET size
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldp     x29, x30, [sp], #\size
    .cfi_def_cfa_offset 0
    autiasp
    .cfi_negate_ra_state
    ret
.endm

AS_FUNC_BEGIN(act_probe_run)
    SAVE_CALLEE 160
    PROBE(x0)
    str     xzr, [x0, #PROBE_OFF_FAIL]
    mov     x1, sp
    str     x1, [x0, #PROBE_OFF_SP]
    ldr     q0, [x0, #PROBE_OFF_VIN + 0]
    ldr     q1, [x0, #PROBE_OFF_VIN + 64]
    ldr     q2, [x0, #PROBE_OFF_VIN + 128]
    ldr     q3, [x0, #PROBE_OFF_VIN + 192]
    ldr     q4, [x0, #PROBE_OFF_VIN + 256]
    ldr     q5, [x0, #PROBE_OFF_VIN + 320]
    ldr     q6, [x0, #PROBE_OFF_VIN + 384]
    ldr     q7, [x0, #PROBE_OFF_VIN + 448]
    ldr     q8, [x0, #PROBE_OFF_VIN + 512]
    ldr     q9, [x0, #PROBE_OFF_VIN + 576]
    ldr     q10, [x0, #PROBE_OFF_VIN + 640]
    ldr     q11, [x0, #PROBE_OFF_VIN + 704]
    ldr     q12, [x0, #PROBE_OFF_VIN + 768]
    ldr     q13, [x0, #PROBE_OFF_VIN + 832]
    ldr     q14, [x0, #PROBE_OFF_VIN + 896]
    ldr     q15, [x0, #PROBE_OFF_VIN + 960]
    ldr     q16, [x0, #PROBE_OFF_VIN + 1024]
    ldr     q17, [x0, #PROBE_OFF_VIN + 1088]
    ldr     q18, [x0, #PROBE_OFF_VIN + 1152]
    ldr     q19, [x0, #PROBE_OFF_VIN + 1216]
    ldr     q20, [x0, #PROBE_OFF_VIN + 1280]
    ldr     q21, [x0, #PROBE_OFF_VIN + 1344]
    ldr     q22, [x0, #PROBE_OFF_VIN + 1408]
    ldr     q23, [x0, #PROBE_OFF_VIN + 1472]
    ldr     q24, [x0, #PROBE_OFF_VIN + 1536]
    ldr     q25, [x0, #PROBE_OFF_VIN + 1600]
    ldr     q26, [x0, #PROBE_OFF_VIN + 1664]
    ldr     q27, [x0, #PROBE_OFF_VIN + 1728]
    ldr     q28, [x0, #PROBE_OFF_VIN + 1792]
    ldr     q29, [x0, #PROBE_OFF_VIN + 1856]
    ldr     q30, [x0, #PROBE_OFF_VIN + 1920]
    ldr     q31, [x0, #PROBE_OFF_VIN + 1984]
    mov     x1, #PROBE_FLAGS
    msr     nzcv, x1
    ldp     x1, x2, [x0, #8]
    ldp     x3, x4, [x0, #24]
    ldp     x5, x6, [x0, #40]
    ldp     x7, x8, [x0, #56]
    ldp     x9, x10, [x0, #72]
    ldp     x11, x12, [x0, #88]
    ldp     x13, x14, [x0, #104]
    ldp     x15, x16, [x0, #120]
    ldp     x17, x18, [x0, #136]
    ldp     x19, x20, [x0, #152]
    ldp     x21, x22, [x0, #168]
    ldp     x23, x24, [x0, #184]
    ldp     x25, x26, [x0, #200]
    ldp     x27, x28, [x0, #216]
    ldp     x29, x30, [x0, #232]
    ldr     x0, [x0]
    /* x29 holds a test value from here on: the CFA stays sp-based. */
.Lloop:
    b.eq    .Lout
    b.pl    .Lfail
    b.cc    .Lfail
    b.vc    .Lfail
    b       .Lloop
.Lfail:
    stp     x0, x1, [sp, #-16]!
    PROBE(x0)
    mov     x1, #1
    str     x1, [x0, #PROBE_OFF_FAIL]
    ldp     x0, x1, [sp], #16
.Lout:
    stp     x0, x1, [sp, #-16]!
    mrs     x1, nzcv
    PROBE(x0)
    str     x1, [x0, #PROBE_OFF_FOUT]
    add     x0, x0, #PROBE_OFF_GOUT     /* stp reaches 504 bytes only */
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x0]
    sub     x0, x0, #PROBE_OFF_GOUT
    mov     x1, sp
    str     x1, [x0, #PROBE_OFF_SPOUT]
    str     q0, [x0, #PROBE_OFF_VOUT + 0]
    str     q1, [x0, #PROBE_OFF_VOUT + 64]
    str     q2, [x0, #PROBE_OFF_VOUT + 128]
    str     q3, [x0, #PROBE_OFF_VOUT + 192]
    str     q4, [x0, #PROBE_OFF_VOUT + 256]
    str     q5, [x0, #PROBE_OFF_VOUT + 320]
    str     q6, [x0, #PROBE_OFF_VOUT + 384]
    str     q7, [x0, #PROBE_OFF_VOUT + 448]
    str     q8, [x0, #PROBE_OFF_VOUT + 512]
    str     q9, [x0, #PROBE_OFF_VOUT + 576]
    str     q10, [x0, #PROBE_OFF_VOUT + 640]
    str     q11, [x0, #PROBE_OFF_VOUT + 704]
    str     q12, [x0, #PROBE_OFF_VOUT + 768]
    str     q13, [x0, #PROBE_OFF_VOUT + 832]
    str     q14, [x0, #PROBE_OFF_VOUT + 896]
    str     q15, [x0, #PROBE_OFF_VOUT + 960]
    str     q16, [x0, #PROBE_OFF_VOUT + 1024]
    str     q17, [x0, #PROBE_OFF_VOUT + 1088]
    str     q18, [x0, #PROBE_OFF_VOUT + 1152]
    str     q19, [x0, #PROBE_OFF_VOUT + 1216]
    str     q20, [x0, #PROBE_OFF_VOUT + 1280]
    str     q21, [x0, #PROBE_OFF_VOUT + 1344]
    str     q22, [x0, #PROBE_OFF_VOUT + 1408]
    str     q23, [x0, #PROBE_OFF_VOUT + 1472]
    str     q24, [x0, #PROBE_OFF_VOUT + 1536]
    str     q25, [x0, #PROBE_OFF_VOUT + 1600]
    str     q26, [x0, #PROBE_OFF_VOUT + 1664]
    str     q27, [x0, #PROBE_OFF_VOUT + 1728]
    str     q28, [x0, #PROBE_OFF_VOUT + 1792]
    str     q29, [x0, #PROBE_OFF_VOUT + 1856]
    str     q30, [x0, #PROBE_OFF_VOUT + 1920]
    str     q31, [x0, #PROBE_OFF_VOUT + 1984]
    ldr     x0, [x0, #PROBE_OFF_FAIL]
    RESTORE_CALLEE_RET 160
AS_FUNC_END(act_probe_run)

/*
 * void act_call_regs(as_act *a, const uint64_t *in, uint64_t *out)
 *   x0 = a, x1 = in, x2 = out; in/out as tests/regs.h (x19..x29, d8..d15,
 *   FPCR).  Extra frame words: sp+160 caller's FPCR, sp+168 out, sp+176 a.
 */
AS_FUNC_BEGIN(act_call_regs)
    SAVE_CALLEE 192
    mrs     x9, fpcr
    stp     x9, x2, [sp, #160]
    str     x0, [sp, #176]
    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldr     x29, [x1, #80]
    ldp     d8, d9, [x1, #88]
    ldp     d10, d11, [x1, #104]
    ldp     d12, d13, [x1, #120]
    ldp     d14, d15, [x1, #136]
    ldr     x9, [x1, #152]
    msr     fpcr, x9
    bl      as_act_capture
    cbnz    x0, .Lresumed
    /* First return: destroy everything the record must bring back. */
    .irp r, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29
    mvn     x\r, x\r
    .endr
    .irp r, 8, 9, 10, 11, 12, 13, 14, 15
    fmov    d\r, xzr
    .endr
    mrs     x9, fpcr
    eor     x9, x9, #(3 << 22)
    msr     fpcr, x9
    ldr     x0, [sp, #176]
    bl      as_act_resume
.Lresumed:
    ldr     x2, [sp, #168]
    stp     x19, x20, [x2, #0]
    stp     x21, x22, [x2, #16]
    stp     x23, x24, [x2, #32]
    stp     x25, x26, [x2, #48]
    stp     x27, x28, [x2, #64]
    str     x29, [x2, #80]
    stp     d8, d9, [x2, #88]
    stp     d10, d11, [x2, #104]
    stp     d12, d13, [x2, #120]
    stp     d14, d15, [x2, #136]
    mrs     x9, fpcr
    str     x9, [x2, #152]
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    RESTORE_CALLEE_RET 192
AS_FUNC_END(act_call_regs)

/*
 * void act_full_vec(as_act *a, int via_signal) - see the x86_64 file.
 *   x19 = a, x20 = via_signal (callee-saved: the record brings them back).
 */
/* Supplied by the suite that uses act_full_vec with via_signal. */
    .weak   act_full_vec_signal

AS_FUNC_BEGIN(act_full_vec)
    paciasp
    .cfi_negate_ra_state
    stp     x29, x30, [sp, #-32]!
    .cfi_def_cfa_offset 32
    .cfi_offset x29, -32
    .cfi_offset x30, -24
    stp     x19, x20, [sp, #16]
    .cfi_offset x19, -16
    .cfi_offset x20, -8
    mov     x19, x0
    mov     w20, w1
    PROBE(x1)
    ldr     q0, [x1, #PROBE_OFF_VIN + 0]
    ldr     q1, [x1, #PROBE_OFF_VIN + 64]
    ldr     q2, [x1, #PROBE_OFF_VIN + 128]
    ldr     q3, [x1, #PROBE_OFF_VIN + 192]
    ldr     q4, [x1, #PROBE_OFF_VIN + 256]
    ldr     q5, [x1, #PROBE_OFF_VIN + 320]
    ldr     q6, [x1, #PROBE_OFF_VIN + 384]
    ldr     q7, [x1, #PROBE_OFF_VIN + 448]
    ldr     q8, [x1, #PROBE_OFF_VIN + 512]
    ldr     q9, [x1, #PROBE_OFF_VIN + 576]
    ldr     q10, [x1, #PROBE_OFF_VIN + 640]
    ldr     q11, [x1, #PROBE_OFF_VIN + 704]
    ldr     q12, [x1, #PROBE_OFF_VIN + 768]
    ldr     q13, [x1, #PROBE_OFF_VIN + 832]
    ldr     q14, [x1, #PROBE_OFF_VIN + 896]
    ldr     q15, [x1, #PROBE_OFF_VIN + 960]
    ldr     q16, [x1, #PROBE_OFF_VIN + 1024]
    ldr     q17, [x1, #PROBE_OFF_VIN + 1088]
    ldr     q18, [x1, #PROBE_OFF_VIN + 1152]
    ldr     q19, [x1, #PROBE_OFF_VIN + 1216]
    ldr     q20, [x1, #PROBE_OFF_VIN + 1280]
    ldr     q21, [x1, #PROBE_OFF_VIN + 1344]
    ldr     q22, [x1, #PROBE_OFF_VIN + 1408]
    ldr     q23, [x1, #PROBE_OFF_VIN + 1472]
    ldr     q24, [x1, #PROBE_OFF_VIN + 1536]
    ldr     q25, [x1, #PROBE_OFF_VIN + 1600]
    ldr     q26, [x1, #PROBE_OFF_VIN + 1664]
    ldr     q27, [x1, #PROBE_OFF_VIN + 1728]
    ldr     q28, [x1, #PROBE_OFF_VIN + 1792]
    ldr     q29, [x1, #PROBE_OFF_VIN + 1856]
    ldr     q30, [x1, #PROBE_OFF_VIN + 1920]
    ldr     q31, [x1, #PROBE_OFF_VIN + 1984]
    mov     x0, x19
    bl      as_act_capture_full
    cbnz    x0, 1f
    movi    v0.16b, #0
    movi    v1.16b, #0
    movi    v2.16b, #0
    movi    v3.16b, #0
    movi    v4.16b, #0
    movi    v5.16b, #0
    movi    v6.16b, #0
    movi    v7.16b, #0
    movi    v8.16b, #0
    movi    v9.16b, #0
    movi    v10.16b, #0
    movi    v11.16b, #0
    movi    v12.16b, #0
    movi    v13.16b, #0
    movi    v14.16b, #0
    movi    v15.16b, #0
    movi    v16.16b, #0
    movi    v17.16b, #0
    movi    v18.16b, #0
    movi    v19.16b, #0
    movi    v20.16b, #0
    movi    v21.16b, #0
    movi    v22.16b, #0
    movi    v23.16b, #0
    movi    v24.16b, #0
    movi    v25.16b, #0
    movi    v26.16b, #0
    movi    v27.16b, #0
    movi    v28.16b, #0
    movi    v29.16b, #0
    movi    v30.16b, #0
    movi    v31.16b, #0
    mov     x0, x19
    cbnz    w20, 2f
    bl      as_act_resume
2:  bl      act_full_vec_signal
    brk     #0x3e8
1:  PROBE(x1)
    str     q0, [x1, #PROBE_OFF_VOUT + 0]
    str     q1, [x1, #PROBE_OFF_VOUT + 64]
    str     q2, [x1, #PROBE_OFF_VOUT + 128]
    str     q3, [x1, #PROBE_OFF_VOUT + 192]
    str     q4, [x1, #PROBE_OFF_VOUT + 256]
    str     q5, [x1, #PROBE_OFF_VOUT + 320]
    str     q6, [x1, #PROBE_OFF_VOUT + 384]
    str     q7, [x1, #PROBE_OFF_VOUT + 448]
    str     q8, [x1, #PROBE_OFF_VOUT + 512]
    str     q9, [x1, #PROBE_OFF_VOUT + 576]
    str     q10, [x1, #PROBE_OFF_VOUT + 640]
    str     q11, [x1, #PROBE_OFF_VOUT + 704]
    str     q12, [x1, #PROBE_OFF_VOUT + 768]
    str     q13, [x1, #PROBE_OFF_VOUT + 832]
    str     q14, [x1, #PROBE_OFF_VOUT + 896]
    str     q15, [x1, #PROBE_OFF_VOUT + 960]
    str     q16, [x1, #PROBE_OFF_VOUT + 1024]
    str     q17, [x1, #PROBE_OFF_VOUT + 1088]
    str     q18, [x1, #PROBE_OFF_VOUT + 1152]
    str     q19, [x1, #PROBE_OFF_VOUT + 1216]
    str     q20, [x1, #PROBE_OFF_VOUT + 1280]
    str     q21, [x1, #PROBE_OFF_VOUT + 1344]
    str     q22, [x1, #PROBE_OFF_VOUT + 1408]
    str     q23, [x1, #PROBE_OFF_VOUT + 1472]
    str     q24, [x1, #PROBE_OFF_VOUT + 1536]
    str     q25, [x1, #PROBE_OFF_VOUT + 1600]
    str     q26, [x1, #PROBE_OFF_VOUT + 1664]
    str     q27, [x1, #PROBE_OFF_VOUT + 1728]
    str     q28, [x1, #PROBE_OFF_VOUT + 1792]
    str     q29, [x1, #PROBE_OFF_VOUT + 1856]
    str     q30, [x1, #PROBE_OFF_VOUT + 1920]
    str     q31, [x1, #PROBE_OFF_VOUT + 1984]
    ldp     x19, x20, [sp, #16]
    ldp     x29, x30, [sp], #32
    .cfi_def_cfa_offset 0
    autiasp
    .cfi_negate_ra_state
    ret
AS_FUNC_END(act_full_vec)

AS_ASM_TRAILER
