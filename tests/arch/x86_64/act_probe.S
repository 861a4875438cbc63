/* SPDX-License-Identifier: MIT */
/*
 * tests/arch/x86_64/act_probe.S - the register-fidelity loop of
 * tests/act_probe.h, and the CALL-record probe act_call_regs.
 *
 * act_probe_run, while it spins:
 *     rsp0 - 8    pushed RFLAGS (checked, then popped back)
 *     rsp0 - 16 - 8*i   copy of GPR i (i = 0..14: r15 .. rdi), so the
 *                       whole 128-byte red zone below rsp0 holds data
 *     every GPR but rsp holds act_probe.gpr[i]; vector and mask registers
 *     hold vin[]/kin[] (checked once, at the end).
 * The loop reads memory only RIP-relatively: no register is spare.
 */
#include "../../../src/arch/asm.h"
#include "../../act_probe.h"

#define P(off) act_probe+(off)(%rip)

/* GPR i of the probe order */
#define G0 %r15
#define G1 %r14
#define G2 %r13
#define G3 %r12
#define G4 %rbp
#define G5 %rbx
#define G6 %r11
#define G7 %r10
#define G8 %r9
#define G9 %r8
#define G10 %rax
#define G11 %rcx
#define G12 %rdx
#define G13 %rsi
#define G14 %rdi

/* check GPR i against its value and its red-zone copy (rsp = rsp0 - 8) */
#define CHECK(i)                                 \
    cmpq    P(PROBE_OFF_GPR + 8 * i), G##i;      \
    jne     .Lfail_gpr;                          \
    cmpq    -8 - 8 * i(%rsp), G##i;              \
    jne     .Lfail_rz

#define LOAD(i)                                  \
    movq    P(PROBE_OFF_GPR + 8 * i), G##i;      \
    movq    G##i, -16 - 8 * i(%rsp)

#define STORE(i) movq G##i, P(PROBE_OFF_GOUT + 8 * i)

/* Load vin[] into / store vout[] from the vector (and, with AVX-512,
 * mask) registers the CPU has, by act_probe.level; STOREV ends with
 * vzeroupper where AVX exists.  Clobber only the flags. */
.macro LOADV
    cmpq    $1, P(PROBE_OFF_LEVEL)
    jb      .Lld_sse\@
    je      .Lld_avx\@
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vmovdqu64 P(PROBE_OFF_VIN + 64 * \i), %zmm\i
    .endr
    .irp i, 0,1,2,3,4,5,6,7
    kmovq   P(PROBE_OFF_KIN + 8 * \i), %k\i
    .endr
    jmp     .Lld_done\@
.Lld_avx\@:
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vmovdqu P(PROBE_OFF_VIN + 64 * \i), %ymm\i
    .endr
    jmp     .Lld_done\@
.Lld_sse\@:
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu  P(PROBE_OFF_VIN + 64 * \i), %xmm\i
    .endr
.Lld_done\@:
.endm

.macro STOREV
    cmpq    $1, P(PROBE_OFF_LEVEL)
    jb      .Lst_sse\@
    je      .Lst_avx\@
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vmovdqu64 %zmm\i, P(PROBE_OFF_VOUT + 64 * \i)
    .endr
    .irp i, 0,1,2,3,4,5,6,7
    kmovq   %k\i, P(PROBE_OFF_KOUT + 8 * \i)
    .endr
    vzeroupper
    jmp     .Lst_done\@
.Lst_avx\@:
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vmovdqu %ymm\i, P(PROBE_OFF_VOUT + 64 * \i)
    .endr
    vzeroupper
    jmp     .Lst_done\@
.Lst_sse\@:
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu  %xmm\i, P(PROBE_OFF_VOUT + 64 * \i)
    .endr
.Lst_done\@:
.endm

/* Save and restore the caller's callee-saved registers. */
.macro SAVE_CALLEE
    .irp r, rbp, rbx, r12, r13, r14, r15
    pushq   %\r
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %\r, 0
    .endr
.endm
.macro RESTORE_CALLEE_RET
    .irp r, r15, r14, r13, r12, rbx, rbp
    popq    %\r
    .cfi_adjust_cfa_offset -8
    .cfi_restore %\r
    .endr
    ret
.endm

AS_FUNC_BEGIN(act_probe_run)
    SAVE_CALLEE
    movq    $0, P(PROBE_OFF_FAIL)

    LOADV

.Lload_gpr:
    pushq   $PROBE_FLAGS
    .cfi_adjust_cfa_offset 8
    popfq
    .cfi_adjust_cfa_offset -8
    movq    %rsp, P(PROBE_OFF_SP)
    LOAD(0); LOAD(1); LOAD(2); LOAD(3); LOAD(4); LOAD(5); LOAD(6); LOAD(7)
    LOAD(8); LOAD(9); LOAD(10); LOAD(11); LOAD(12); LOAD(13); LOAD(14)
    /* rbp holds a test value from here on: the CFA stays rsp-based. */

.Lloop:
    pushfq
    .cfi_adjust_cfa_offset 8
    cmpq    $PROBE_FLAGS, (%rsp)
    jne     .Lfail_flags
    CHECK(0); CHECK(1); CHECK(2); CHECK(3); CHECK(4); CHECK(5); CHECK(6); CHECK(7)
    CHECK(8); CHECK(9); CHECK(10); CHECK(11); CHECK(12); CHECK(13); CHECK(14)
    cmpq    $0, P(PROBE_OFF_STOP)
    jne     .Lout
    popfq
    .cfi_adjust_cfa_offset -8
    jmp     .Lloop

    .cfi_adjust_cfa_offset 8
.Lfail_flags:
    movq    $1, P(PROBE_OFF_FAIL)
    jmp     .Lout
.Lfail_gpr:
    movq    $2, P(PROBE_OFF_FAIL)
    jmp     .Lout
.Lfail_rz:
    movq    $3, P(PROBE_OFF_FAIL)
.Lout:
    /* (%rsp) = the flags pushed at the top of this iteration */
    STORE(0); STORE(1); STORE(2); STORE(3); STORE(4); STORE(5); STORE(6); STORE(7)
    STORE(8); STORE(9); STORE(10); STORE(11); STORE(12); STORE(13); STORE(14)
    popq    P(PROBE_OFF_FOUT)
    .cfi_adjust_cfa_offset -8
    movq    %rsp, P(PROBE_OFF_SPOUT)
    cld
    STOREV
.Ldone:
    movq    P(PROBE_OFF_FAIL), %rax
    RESTORE_CALLEE_RET
AS_FUNC_END(act_probe_run)

/*
 * void act_call_regs(as_act *a, const uint64_t *in, uint64_t *out)
 *   rdi = a, rsi = in, rdx = out
 *   frame: rsp+0 caller's MXCSR | FCW, rsp+8 out, rsp+16 a, then the
 *          six callee-saved registers and the return address.
 */
AS_FUNC_BEGIN(act_call_regs)
    SAVE_CALLEE
    subq    $24, %rsp
    .cfi_adjust_cfa_offset 24
    stmxcsr 0(%rsp)
    fnstcw  4(%rsp)
    movq    %rdx, 8(%rsp)
    movq    %rdi, 16(%rsp)
    movq    0(%rsi), %rbx
    movq    8(%rsi), %rbp
    movq    16(%rsi), %r12
    movq    24(%rsi), %r13
    movq    32(%rsi), %r14
    movq    40(%rsi), %r15
    ldmxcsr 48(%rsi)
    fldcw   56(%rsi)
    call    as_act_capture
    testl   %eax, %eax
    jnz     .Lresumed
    /* First return: destroy everything the record must bring back. */
    notq    %rbx
    notq    %rbp
    notq    %r12
    notq    %r13
    notq    %r14
    notq    %r15
    stmxcsr -8(%rsp)
    xorl    $0x6000, -8(%rsp)
    ldmxcsr -8(%rsp)
    fnstcw  -8(%rsp)
    xorw    $0x0c00, -8(%rsp)
    fldcw   -8(%rsp)
    movq    16(%rsp), %rdi
    call    as_act_resume
.Lresumed:
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
    RESTORE_CALLEE_RET
AS_FUNC_END(act_call_regs)

/*
 * void act_full_vec(as_act *a, int via_signal)
 *   rdi = a, esi = via_signal.  Loads vin[] (and kin[]) into the vector
 *   registers, as_act_capture_full(a), destroys them, and comes back
 *   through as_act_resume(a), or, with via_signal, through
 *   act_full_vec_signal(a) (tests: a handler that does as_act_to_ucontext
 *   and returns).  Then stores them to vout[]/kout[].
 *   rbx = a, r12 = via_signal (callee-saved: the record brings them back).
 */
/* Supplied by the suite that uses act_full_vec with via_signal. */
    .weak   act_full_vec_signal

AS_FUNC_BEGIN(act_full_vec)
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    movq    %rdi, %rbx
    movl    %esi, %r12d
    LOADV
    movq    %rbx, %rdi
    call    as_act_capture_full
    testl   %eax, %eax
    jnz     1f
    cmpq    $1, P(PROBE_OFF_LEVEL)
    jb      2f
    vzeroall                        /* ymm0-15 and zmm0-15 */
    cmpq    $2, P(PROBE_OFF_LEVEL)
    jb      3f
    .irp i, 16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vpxord  %zmm\i, %zmm\i, %zmm\i
    .endr
    .irp i, 1,2,3,4,5,6,7
    kxorq   %k\i, %k\i, %k\i
    .endr
    jmp     3f
2:  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    pxor    %xmm\i, %xmm\i
    .endr
3:  movq    %rbx, %rdi
    testl   %r12d, %r12d
    jnz     4f
    call    as_act_resume
4:  call    act_full_vec_signal
    ud2
1:  STOREV
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    ret
AS_FUNC_END(act_full_vec)

/*
 * void act_xr_point(as_act *a, unsigned char *std_fpu, void (*next)(int))
 *   Loads vin[]/kin[] (by level) and two x87 values (so every component
 *   the CPU has is in use), then as_act_capture_full(a) and, right after
 *   it, an XSAVE of that same state into std_fpu in the standard format
 *   (whose header the caller zeroed): one state, as a record and as a
 *   standard-format FP area.  Then next(0).  Resumed (a, or a copy of its
 *   registers with std_fpu as its area), it XSAVEs what the registers
 *   hold into act_xr_dump (standard format; next zeroes it first) and
 *   calls next(1).  Either way the x87 state is made initial before the
 *   call.  next resumes a record or returns; when it returns, so does
 *   this.  Resumes come from next's frames, below this one, which stays
 *   live throughout.  rbx, r12, r13 callee-saved (the record brings them
 *   back).
 * void act_xr_resume(as_act *a, int x87_init)
 *   Makes every vector and mask register hold something else, in use, and
 *   the x87 state too (x87_init 0) or initial and not in use (1), then
 *   as_act_resume(a).
 */
    .weak   act_xr_dump

AS_FUNC_BEGIN(act_xr_point)
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    movq    %rdi, %rbx
    movq    %rsi, %r12
    movq    %rdx, %r13
    LOADV
    fld1
    fldpi
    movq    %rbx, %rdi
    call    as_act_capture_full
    testl   %eax, %eax
    jnz     1f
    movl    $-1, %eax
    movl    $-1, %edx
    xsave64 (%r12)
    xorl    %edi, %edi
    jmp     2f
1:  movq    act_xr_dump@GOTPCREL(%rip), %rcx     /* weak: other suites lack it */
    movl    $-1, %eax
    movl    $-1, %edx
    xsave64 (%rcx)
    movl    $1, %edi
2:  fninit
    call    *%r13
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    ret
AS_FUNC_END(act_xr_point)

AS_FUNC_BEGIN(act_xr_resume)
    cmpq    $1, P(PROBE_OFF_LEVEL)
    jb      2f
    je      1f
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vpternlogd $0x55, %zmm\i, %zmm\i, %zmm\i
    .endr
    .irp i, 0,1,2,3,4,5,6,7
    kxnorq  %k\i, %k\i, %k\i
    .endr
    jmp     3f
1:  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vpcmpeqd %ymm\i, %ymm\i, %ymm\i
    .endr
    jmp     3f
2:  .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    pcmpeqd %xmm\i, %xmm\i
    .endr
3:  testl   %esi, %esi
    jnz     4f
    fldz
    fldl2t
    fldlg2
    jmp     as_act_resume
4:  movl    $1, %eax                /* XRSTOR of x87 from an empty header */
    xorl    %edx, %edx
    xrstor64 .Lxr_init(%rip)
    jmp     as_act_resume
AS_FUNC_END(act_xr_resume)

    .section .rodata, "a"
    .balign 64
.Lxr_init:
    .fill   576, 1, 0
    .text

AS_ASM_TRAILER
