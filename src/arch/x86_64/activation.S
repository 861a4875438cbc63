/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/activation.S - as_act_capture, as_act_resume and the
 * entry trampoline of fresh records, for the System V x86_64 ABI.
 * Offsets: src/arch/x86_64/layout.h.
 *
 *   record a (64-byte aligned)             full resume: the target stack
 *   +---------------------------+ 0        +---------------------+ T = a->rsp
 *   | r15 r14 r13 r12 rbp rbx   |          | red zone (128 bytes)|  untouched
 *   | r11 r10 r9 r8 rax rcx rdx |          +---------------------+ T-128
 *   | rsi rdi | rflags | rip    | ..128    | rip                 | S+128
 *   | rsp                       | 136      | rflags              | S+120
 *   | mxcsr | fcw | kind        | 144      | rdi rsi ... r14 r15 | S+112..S+0
 *   | pool | self | next | slot | 152      +---------------------+ S = T-264
 *   | fpu: XSAVE/FXSAVE area    | 192..4096
 *   +---------------------------+
 *
 * Resuming without a scratch register and without a system call.  x86_64
 * cannot load rsp and rip together in user mode, and the resumed code may
 * keep live data in the 128 bytes below its rsp.  A FULL record is
 * therefore copied, in the record's own order, to a staging area S just
 * below the target's red zone; then rsp = S, fifteen loads, `popfq`, and
 * `ret $128`, which takes rip from S+128 and leaves rsp = S + 136 + 128 = T.
 * Nothing at or above T-128 is written.  (The other way, addressing the
 * record through %gs: where FSGSBASE is enabled, would need gs_base saved
 * and restored, flags set without a stack, and a record still being read
 * by the final `jmp *%gs:`, i.e. after it went back to its pool.)
 *
 * Releasing a pooled record.  Every read of `a` comes first: the FP state,
 * then the staging copy (FULL) or the callee-saved registers (CALL, with
 * rbx, rsp and rip parked in r9, r10, r11, which are dead at a call).
 * Then `a` is pushed back on its pool's free list (a CAS on the tagged
 * head, as in as_act_release), and what follows, the tail, touches only
 * registers and the staging area.  Another thread may take `a` the moment
 * the CAS lands; nothing here reads it again.
 *
 * The resume window.  Labels split as_act_resume for signal handlers:
 *   [as_act_resume, as__act_resume_end) minus the two tails  "busy": `a`
 *        may still be read (as_act_resume_busy says so; preempt defers);
 *   [as__act_ctail, as__act_ctail_end), [as__act_ftail, as__act_ftail_end)
 *        the tails: `a` is released; as_act_rollforward turns a state
 *        captured here into the resumed code's state at its resume point.
 *
 * CFI.  capture is a leaf with the default rules.  resume: the CALL path
 * keeps the caller's CFA until its tail, whose rules describe the frame
 * being resumed (CFA = its rsp, rip in r11), so an unwinder stopped there
 * continues into the resumed code.  The FULL path anchors the caller's CFA
 * in r11 while rsp moves, and its tail describes the staged frame.
 */
#include "../asm.h"
#include "layout.h"

/* A hidden label C code names (the resume window, activation.c). */
#define AS_ACT_LABEL(name) .globl name; .hidden name; name:

/*
 * AS_ACT_SAVE_PKRU: where the OS enabled protection keys (as__act_pku),
 * a->pkru = PKRU and a->flags = AS_ACT_F_PKRU; else a->flags = 0.
 *   in: rdi = a.  Clobbers rax, rcx, rdx (rdpkru: ecx = 0 in, eax out,
 *   edx zeroed).  RDPKRU costs a few cycles; nothing else is added.
 */
.macro AS_ACT_SAVE_PKRU
    xorl    %ecx, %ecx
    cmpb    $0, as__act_pku(%rip)
    je      1f
    rdpkru
    movl    %eax, AS_ACT_PKRU(%rdi)
    movl    $AS_ACT_F_PKRU_BIT, %ecx
1:  movl    %ecx, AS_ACT_FLAGS(%rdi)
.endm

/*
 * AS_ACT_LOAD_PKRU: if a holds PKRU (a->flags) and it differs from the
 * live one, wrpkru it (WRPKRU orders like a fence: skip it when equal).
 *   in: rdi = a.  Clobbers rax, rcx, rdx and the flags.  AS_ACT_F_PKRU is
 *   only ever set where the OS enabled protection keys, so the
 *   instructions exist.
 */
.macro AS_ACT_LOAD_PKRU
    testb   $AS_ACT_F_PKRU_BIT, AS_ACT_FLAGS(%rdi)
    jz      1f
    xorl    %ecx, %ecx
    rdpkru
    cmpl    AS_ACT_PKRU(%rdi), %eax
    je      1f
    movl    AS_ACT_PKRU(%rdi), %eax
    xorl    %edx, %edx
    wrpkru
1:
.endm

/*
 * int as_act_capture(as_act *a)
 *   on entry: rdi = a, (%rsp) = the return address, which is the PC a
 *             resume continues at; rsp + 8 is the caller's rsp after it.
 * A leaf: only rax, rcx and rdx (caller-saved) are clobbered.
 */
AS_FUNC_BEGIN(as_act_capture)
    movq    (%rsp), %rax
    leaq    8(%rsp), %rcx
    movq    %rbx, AS_ACT_RBX(%rdi)
    movq    %rbp, AS_ACT_RBP(%rdi)
    movq    %r12, AS_ACT_R12(%rdi)
    movq    %r13, AS_ACT_R13(%rdi)
    movq    %r14, AS_ACT_R14(%rdi)
    movq    %r15, AS_ACT_R15(%rdi)
    movq    %rax, AS_ACT_RIP(%rdi)
    movq    %rcx, AS_ACT_RSP(%rdi)
    stmxcsr AS_ACT_MXCSR(%rdi)
    fnstcw  AS_ACT_FCW(%rdi)
    AS_ACT_SAVE_PKRU
    movw    $AS_ACT_KIND_CALL, AS_ACT_KIND(%rdi)
    xorl    %eax, %eax
    ret
AS_FUNC_END(as_act_capture)

/*
 * int as_act_capture_full(as_act *a)
 *   on entry: rdi = a, (%rsp) = the return address.
 * Records every GPR as it is at the call (rax = 1, what the resumed call
 * returns), RFLAGS, and the FP/SIMD state with XSAVEC (compacted, skips
 * components in their initial state) or XSAVE where XSAVEC is missing,
 * FXSAVE without XSAVE; the mask is as__act_xmask (never PKRU, which goes
 * to a->pkru where protection keys are enabled).  XSAVEOPT
 * is not used: its "modified" tracking would skip writing a component
 * that was restored from this very record and then overwritten in memory.
 * Clobbers rax, rcx, rdx, rsi, r8-r11 after saving them (caller-saved).
 */
AS_FUNC_BEGIN(as_act_capture_full)
    pushfq
    .cfi_adjust_cfa_offset 8
    popq    AS_ACT_RFLAGS(%rdi)
    .cfi_adjust_cfa_offset -8
    movq    %rbx, AS_ACT_RBX(%rdi)
    movq    %rbp, AS_ACT_RBP(%rdi)
    movq    %r12, AS_ACT_R12(%rdi)
    movq    %r13, AS_ACT_R13(%rdi)
    movq    %r14, AS_ACT_R14(%rdi)
    movq    %r15, AS_ACT_R15(%rdi)
    movq    %r11, AS_ACT_R11(%rdi)
    movq    %r10, AS_ACT_R10(%rdi)
    movq    %r9, AS_ACT_R9(%rdi)
    movq    %r8, AS_ACT_R8(%rdi)
    movq    %rcx, AS_ACT_RCX(%rdi)
    movq    %rdx, AS_ACT_RDX(%rdi)
    movq    %rsi, AS_ACT_RSI(%rdi)
    movq    %rdi, AS_ACT_RDI(%rdi)
    movq    $1, AS_ACT_RAX(%rdi)
    movq    (%rsp), %rax
    leaq    8(%rsp), %rcx
    movq    %rax, AS_ACT_RIP(%rdi)
    movq    %rcx, AS_ACT_RSP(%rdi)
    stmxcsr AS_ACT_MXCSR(%rdi)
    fnstcw  AS_ACT_FCW(%rdi)
    movw    $AS_ACT_KIND_FULL, AS_ACT_KIND(%rdi)
    /* as__act_xmask must be known before the format is chosen. */
    pushq   %rdi
    .cfi_adjust_cfa_offset 8
    call    as__act_cpu_init
    popq    %rdi
    .cfi_adjust_cfa_offset -8
    AS_ACT_SAVE_PKRU
    movq    as__act_xmask(%rip), %rax
    testq   %rax, %rax
    jz      .Lfxsave
    movq    %rax, %rdx
    shrq    $32, %rdx
    xorl    %ecx, %ecx              /* a clean header: XRSTOR checks it */
    .irp off, 0, 8, 16, 24, 32, 40, 48, 56
    movq    %rcx, AS_ACT_FPU + AS_ACT_XHDR + \off(%rdi)
    .endr
    cmpb    $0, as__act_xsavec(%rip)
    je      .Lxsave
    xsavec64 AS_ACT_FPU(%rdi)
    xorl    %eax, %eax
    ret
.Lxsave:
    xsave64 AS_ACT_FPU(%rdi)
    xorl    %eax, %eax
    ret
.Lfxsave:
    fxsave64 AS_ACT_FPU(%rdi)
    xorl    %eax, %eax
    ret
AS_FUNC_END(as_act_capture_full)

/*
 * AS_ACT_RELEASE(win): push a (rdi) back on its pool, if it has one and
 * it is out of it (self == a; cleared first: in the pool now).
 *   in:  rdi = a.  Clobbers rax, rcx, rdx, r8 and the flags.
 * The CAS is `lock cmpxchg` on the 64-bit head (tag:32 | slot:32): the
 * link written into a->next is the old first slot, the tag is kept (only
 * a pop bumps it, which is what defeats ABA for the pop).  `win` labels
 * the jnz after the CAS: a handler stopped there with ZF set finds `a`
 * already released.
 */
#define AS_ACT_RELEASE(win, done)               \
    movq    AS_ACT_POOL(%rdi), %r8;             \
    testq   %r8, %r8;                           \
    jz      done;                               \
    cmpq    %rdi, AS_ACT_SELF(%rdi);            \
    jne     done;                               \
    movq    $0, AS_ACT_SELF(%rdi);              \
    movl    AS_ACT_SLOT(%rdi), %ecx;            \
    movq    AS_ACT_POOL_HEAD(%r8), %rax;        \
1:  movl    %eax, AS_ACT_NEXT(%rdi);            \
    movq    %rax, %rdx;                         \
    shrq    $32, %rdx;                          \
    shlq    $32, %rdx;                          \
    orq     %rcx, %rdx;                         \
    lock cmpxchgq %rdx, AS_ACT_POOL_HEAD(%r8);  \
    AS_ACT_LABEL(win)                           \
    jnz     1b

/* rax = where component k (0..3: components 2, 5, 6, 7) lies in the
 * record rdi, from the offsets table r8 (the direct loads, below). */
.macro AS_XCOMP_AREA k
    movl    4 * \k(%r8), %eax
    leaq    AS_ACT_FPU(%rdi,%rax), %rax
.endm

/*
 * void as_act_resume(as_act *a)
 *   on entry: rdi = a.  Never returns; every register may be clobbered
 *   since the caller's state is abandoned.
 */
AS_FUNC_BEGIN(as_act_resume)
    cmpw    $AS_ACT_KIND_FULL, AS_ACT_KIND(%rdi)
    je      .Lfull

    /* CALL and FRESH records: rdi = a.  The FP control words, by the
     * exact-mode strategy bound at start-up (this site is patched with the
     * switch's, src/switch.c): as assembled, compare: reloaded only when
     * they differ, our own red zone holding the current ones for the
     * comparison; reload: as__act_fp_reload, unconditionally. */
AS_ACT_LABEL(as__act_fp_site)
    stmxcsr -8(%rsp)
    fnstcw  -4(%rsp)
    movl    -8(%rsp), %eax
    xorl    AS_ACT_MXCSR(%rdi), %eax
    testl   $AS_MXCSR_CTRL, %eax
    jnz     .Lload_mxcsr
.Lcheck_fcw:
    movzwl  -4(%rsp), %eax
    cmpw    AS_ACT_FCW(%rdi), %ax
    jne     .Lload_fcw
AS_ACT_LABEL(as__act_fp_site_end)
.Lcall_regs:
    AS_ACT_LOAD_PKRU
    movq    AS_ACT_RIP(%rdi), %r11
    movq    AS_ACT_RSP(%rdi), %r10
    movq    AS_ACT_RBX(%rdi), %r9
    movq    AS_ACT_RBP(%rdi), %rbp
    movq    AS_ACT_R12(%rdi), %r12
    movq    AS_ACT_R13(%rdi), %r13
    movq    AS_ACT_R14(%rdi), %r14
    movq    AS_ACT_R15(%rdi), %r15
    AS_ACT_RELEASE(as__act_cwin, as__act_ctail)

    /* The CALL tail: r9 = rbx, r10 = rsp, r11 = rip of the resumed code;
     * `a` is no longer ours.  The CFI now describes the resumed frame. */
AS_ACT_LABEL(as__act_ctail)
    .cfi_remember_state
    .cfi_def_cfa %r10, 0
    .cfi_register %rip, %r11
    .cfi_register %rbx, %r9
    movq    %r9, %rbx
    .cfi_restore %rbx
    movq    %r10, %rsp
    .cfi_def_cfa_register %rsp
    movl    $1, %eax                /* as_act_capture returns 1 */
    notrack jmp *%r11               /* to a return site: no endbr64 */
AS_ACT_LABEL(as__act_ctail_end)

.Lload_mxcsr:
    .cfi_restore_state
    ldmxcsr AS_ACT_MXCSR(%rdi)
    jmp     .Lcheck_fcw
.Lload_fcw:
    fldcw   AS_ACT_FCW(%rdi)
    jmp     .Lcall_regs

    /* FULL records: rdi = a.  r11 = our entry rsp, the CFA anchor while
     * rsp moves.  rsi = S, the staging area (layout above). */
.Lfull:
    movq    %rsp, %r11
    .cfi_def_cfa %r11, 8
    movq    AS_ACT_RSP(%rdi), %rsi
    subq    $(AS_ACT_REDZONE + AS_ACT_STAGE), %rsi
    cmpq    %rsp, %rsi
    jae     1f
    /* S lies below us (the target is deeper on our own stack, or on a
     * stack at a lower address): move rsp first, so that a signal taken
     * while we stage cannot put its frame over the staged words. */
    movq    %rsi, %rsp
1:
    cmpq    $0, as__act_xmask(%rip)
    je      .Lfxrstor
    movzbl  as__act_xdirect(%rip), %r10d
    testl   %r10d, %r10d
    jnz     .Ldirect
.Lxrstor:
    movq    as__act_xmask(%rip), %rax
    movq    %rax, %rdx
    shrq    $32, %rdx
    /* rfbm = edx:eax = every component a record holds, never PKRU (the
     * record's own goes in by wrpkru below).  XRSTOR loads the components
     * the image's XSTATE_BV marks and puts the others in their initial
     * state, which is exactly what the record says of them.  Narrowing
     * rfbm to XSTATE_BV | XINUSE would skip components initial on both
     * sides, but the XGETBV(1) it needs measured slower than what it saved
     * (Zen 4: resume 1.22-1.40x the bare XRSTOR with it, 1.02-1.19x
     * without). */
    xrstor64 AS_ACT_FPU(%rdi)
    jmp     .Lstage

    /* Direct loads: what XRSTOR with rfbm = the mask would do, component
     * by component, for the masks as__act_xdirect names (activation.c).
     * r9 = XSTATE_BV, rbx = XCOMP_BV, r8 = the offsets of components 2,
     * 5, 6, 7 for the record's format, r10d = the level.  Taken only for
     * the standard format, or the compacted one with XCOMP_BV = bit 63 |
     * mask and x87 initial (or held equal to it); anything else goes to
     * XRSTOR.
     *   x87 (0):   held: FXRSTOR64 of the legacy region (standard format:
     *              its MXCSR is always valid), unless it equals the
     *              initial state; initial, or held equal to it: nothing if
     *              the live x87 state is initial too (XGETBV(1) = XINUSE),
     *              else XRSTOR of x87 alone from an initial image;
     *   MXCSR:     the record's, as the standard form loads it whenever
     *              rfbm has SSE; the compacted form only if XSTATE_BV has
     *              SSE, else 0x1f80;
     *   SSE (1), AVX (2), ZMM_Hi256 (6): zmm0-15 built from low to high:
     *              a VEX.128 load (or vzeroall) zeroes bits 128-511, a
     *              VEX.256 insert bits 256-511, so a component left out is
     *              initial (zero) by construction;
     *   opmask (5), Hi16_ZMM (7): loaded, or zeroed.
     * Components outside the mask, like XRSTOR's outside rfbm, stay as
     * they are. */
.Ldirect:
    movq    AS_ACT_FPU + AS_ACT_XHDR(%rdi), %r9
    movq    AS_ACT_FPU + AS_ACT_XHDR + 8(%rdi), %rbx
    leaq    as__act_xoff(%rip), %r8
    /* x87 state held but equal to the initial one (what a signal's
     * return leaves: in use, untouched) loads as if not held. */
    testb   $1, %r9b
    jz      .Ld_form
    movq    AS_ACT_FPU(%rdi), %rax  /* FCW FSW FTW FOP */
    xorq    .Lfxinit(%rip), %rax
    orq     AS_ACT_FPU + 8(%rdi), %rax      /* FIP */
    orq     AS_ACT_FPU + 16(%rdi), %rax     /* FDP */
    .irp off, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152
    orq     AS_ACT_FPU + \off(%rdi), %rax  /* ST0-7 */
    .endr
    jnz     .Ld_form
    andb    $~1, %r9b
.Ld_form:
    testq   %rbx, %rbx
    jz      .Ld_x87                 /* standard format */
    cmpq    as__act_xcomp(%rip), %rbx
    jne     .Lxrstor
    testb   $1, %r9b
    jnz     .Lxrstor                /* compacted with x87 state: XRSTOR */
    addq    $16, %r8                /* the compacted offsets */
.Ld_x87:
    testb   $1, %r9b
    jz      .Ld_x87_init
    fxrstor64 AS_ACT_FPU(%rdi)
    jmp     .Ld_mxcsr
.Ld_x87_init:
    movl    $1, %ecx
    xgetbv                          /* eax = XINUSE (low half) */
    testb   $1, %al
    jz      .Ld_mxcsr
    movl    $1, %eax                /* rfbm = x87, XSTATE_BV 0: initial, */
    xorl    %edx, %edx              /* and tracked as such from now on  */
    xrstor64 .Lfxinit(%rip)
.Ld_mxcsr:
    leaq    AS_ACT_FPU + 24(%rdi), %rax
    testq   %rbx, %rbx
    jz      1f
    testb   $2, %r9b
    jnz     1f
    leaq    .Lfxinit + 24(%rip), %rax
1:  ldmxcsr (%rax)
    testb   $2, %r9b
    jz      .Ld_sse_init
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vmovdqu AS_ACT_FPU + 160 + 16 * \i(%rdi), %xmm\i
    .endr
    jmp     .Ld_avx
.Ld_sse_init:
    vzeroall
.Ld_avx:
    testb   $4, %r9b
    jz      .Ld_512
    AS_XCOMP_AREA 0
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vinsertf128 $1, 16 * \i(%rax), %ymm\i, %ymm\i
    .endr
.Ld_512:
    cmpl    $2, %r10d
    jne     .Lstage
    AS_XCOMP_AREA 1
    testb   $0x20, %r9b
    jz      .Ld_k_init
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7
    kmovq   8 * \i(%rax), %k\i
    .endr
    jmp     .Ld_hi256
.Ld_k_init:
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7
    kxorq   %k\i, %k\i, %k\i
    .endr
.Ld_hi256:
    testb   $0x40, %r9b
    jz      .Ld_hi16
    AS_XCOMP_AREA 2
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    vinserti64x4 $1, 32 * \i(%rax), %zmm\i, %zmm\i
    .endr
.Ld_hi16:
    testb   $0x80, %r9b
    jz      .Ld_hi16_init
    AS_XCOMP_AREA 3
    .irp i, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    vmovdqu64 64 * (\i - 16)(%rax), %zmm\i
    .endr
    jmp     .Lstage
.Ld_hi16_init:
    .irp i, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    vpxord  %zmm\i, %zmm\i, %zmm\i
    .endr
    jmp     .Lstage
.Lfxrstor:
    fxrstor64 AS_ACT_FPU(%rdi)
.Lstage:
    AS_ACT_LOAD_PKRU
    /* Copy r15 .. rdi, rflags, rip (17 words, the record's first) to S. */
    .irp off, 0, 32, 64, 96
    movq    \off(%rdi), %rax
    movq    \off+8(%rdi), %rcx
    movq    \off+16(%rdi), %rdx
    movq    \off+24(%rdi), %r8
    movq    %rax, \off(%rsi)
    movq    %rcx, \off+8(%rsi)
    movq    %rdx, \off+16(%rsi)
    movq    %r8, \off+24(%rsi)
    .endr
    movq    128(%rdi), %rax
    movq    %rax, 128(%rsi)
    AS_ACT_RELEASE(as__act_fwin, as__act_ftail)

    /* The FULL tail: rsi = S; `a` is no longer ours.  From here the CFI
     * describes the staged frame: CFA = T = S + 264, rip at S + 128 and
     * each register at its staging slot while it is still above rsp. */
AS_ACT_LABEL(as__act_ftail)
    movq    %rsi, %rsp
AS_ACT_LABEL(as__act_ftail_load)
    .cfi_def_cfa %rsp, AS_ACT_REDZONE + AS_ACT_STAGE
    .cfi_offset %rip, AS_ACT_RIP - AS_ACT_REDZONE - AS_ACT_STAGE
    .cfi_offset %r15, AS_ACT_R15 - AS_ACT_REDZONE - AS_ACT_STAGE
    .cfi_offset %r14, AS_ACT_R14 - AS_ACT_REDZONE - AS_ACT_STAGE
    .cfi_offset %r13, AS_ACT_R13 - AS_ACT_REDZONE - AS_ACT_STAGE
    .cfi_offset %r12, AS_ACT_R12 - AS_ACT_REDZONE - AS_ACT_STAGE
    .cfi_offset %rbp, AS_ACT_RBP - AS_ACT_REDZONE - AS_ACT_STAGE
    .cfi_offset %rbx, AS_ACT_RBX - AS_ACT_REDZONE - AS_ACT_STAGE
    movq    AS_ACT_R15(%rsp), %r15
    movq    AS_ACT_R14(%rsp), %r14
    movq    AS_ACT_R13(%rsp), %r13
    movq    AS_ACT_R12(%rsp), %r12
    movq    AS_ACT_RBP(%rsp), %rbp
    movq    AS_ACT_RBX(%rsp), %rbx
    movq    AS_ACT_R11(%rsp), %r11
    movq    AS_ACT_R10(%rsp), %r10
    movq    AS_ACT_R9(%rsp), %r9
    movq    AS_ACT_R8(%rsp), %r8
    movq    AS_ACT_RAX(%rsp), %rax
    movq    AS_ACT_RCX(%rsp), %rcx
    movq    AS_ACT_RDX(%rsp), %rdx
    movq    AS_ACT_RSI(%rsp), %rsi
    movq    AS_ACT_RDI(%rsp), %rdi
    leaq    AS_ACT_RFLAGS(%rsp), %rsp
AS_ACT_LABEL(as__act_ftail_popf)
    .cfi_def_cfa_offset AS_ACT_REDZONE + AS_ACT_STAGE - AS_ACT_RFLAGS
    .cfi_restore %r15
    .cfi_restore %r14
    .cfi_restore %r13
    .cfi_restore %r12
    .cfi_restore %rbp
    .cfi_restore %rbx
    popfq
AS_ACT_LABEL(as__act_ftail_ret)
    .cfi_def_cfa_offset AS_ACT_REDZONE + AS_ACT_STAGE - AS_ACT_RIP
    ret     $AS_ACT_REDZONE
AS_ACT_LABEL(as__act_ftail_end)
AS_ACT_LABEL(as__act_resume_end)
AS_FUNC_END(as_act_resume)

/* The reload strategy's bytes for as__act_fp_site (rdi = a, as there). */
    .section .rodata, "a"
AS_ACT_LABEL(as__act_fp_reload)
    ldmxcsr AS_ACT_MXCSR(%rdi)
    fldcw   AS_ACT_FCW(%rdi)
AS_ACT_LABEL(as__act_fp_reload_end)
    .text

/* An XSAVE image, standard format, of the initial x87 state (FCW 0x37f,
 * all tags empty, the registers and pointers zero) with MXCSR 0x1f80 and
 * an empty header: the direct loads' x87 init (XRSTOR of x87 alone: the
 * component then no longer counts as in use, so later resumes skip it),
 * what a held x87 state is compared with, and the MXCSR of a compacted
 * record whose SSE is initial. */
    .section .rodata, "a"
    .balign 64
.Lfxinit:
    .short  AS_FCW_DEFAULT
    .fill   22, 1, 0
    .long   AS_MXCSR_DEFAULT
    .fill   512 + 64 - 28, 1, 0
    .text

/*
 * The first code of a FRESH record, entered from the CALL tail's jmp.
 *   on entry: rsp = the stack's top (16-byte aligned), rbx = fn,
 *             r12 = arg, rbp = 0.
 * The outermost frame: rip undefined, so backtraces end here.  fn must
 * not return; if it does, ud2 traps.
 */
AS_FUNC_HIDDEN(as__act_start)
    .cfi_undefined %rip
    movq    %r12, %rdi
    call    *%rbx
    ud2
AS_FUNC_END(as__act_start)

AS_ASM_TRAILER
