/* SPDX-License-Identifier: MIT */
/*
 * src/arch/aarch64/activation.S - as_act_capture, as_act_resume and the
 * entry trampoline of fresh records, for AAPCS64.
 * Offsets: src/arch/aarch64/layout.h.
 *
 *   record a (64-byte aligned)             FULL resume (freestanding):
 *   +---------------------------+ 0        the target stack
 *   | x0 .. x30                 | 0..240   +---------------------+ T = a->sp
 *   | sp | pc | pstate          | 248..264 | pstate | pc         | S+264, S+256
 *   | fpsr | fpcr | kind        | 272..280 | (sp slot, unused)   | S+248
 *   | pool | self | next | slot | 288..308 | x0 .. x30           | S+0..S+240
 *   | sigmask                   | 312      +---------------------+ S = T-272
 *   | v: q0 .. q31              | 320..832
 *   +---------------------------+
 *
 * No userspace instruction loads pc and sp together, and every way to
 * load pc (br, ret) takes a register.  A CALL or FRESH record resumes
 * through x16 (pc) and x17 (sp): IP0/IP1 are corruptible across a call
 * (AAPCS64 6.1.1), so this is exact.  It ends in `ret x16`, not `br x16`:
 * the target is the return site of a `bl as_act_capture`, which has no
 * BTI landing pad, and RET is not subject to BTI.
 *
 * A FULL record needs x16 and x17 too.  Hosted builds hand it to
 * as__act_sigreturn (src/hosted/ucontext.c), which builds a signal frame
 * and lets rt_sigreturn load everything at once: exact.  Freestanding
 * builds resume it here: x0-x15, x17-x30, NZCV, sp, pc, q0-q31, FPSR and
 * FPCR exact, x16 = pc (a kernel wanting x16 too returns with eret).
 * The words are staged below the target sp (AAPCS64 has no red zone:
 * nothing there belongs to the resumed code).
 *
 * Releasing a pooled record: as on x86_64, every read of `a` happens
 * first, then the CAS that gives it back (LDXR/STLXR on the tagged head),
 * then the tail, which reads only registers or the staging area.  Labels:
 *   [as_act_resume, as__act_resume_end) minus the tails     busy
 *   [as__act_ctail, as__act_ctail_end)  CALL tail: sp = x17, pc = x16
 *   [as__act_ftail, as__act_ftail_end)  FULL tail: staged at sp
 *   as__act_cwin / as__act_fwin          the cbnz after the STLXR: w7 == 0
 *                                        means `a` is already released
 *
 * CFI: capture is a leaf.  resume keeps its caller's rules until a tail,
 * whose rules describe the frame being resumed (CFA = its sp, return
 * address in x16), so unwinding from inside a tail lands in resumed code.
 */
#include "../asm.h"
#include "layout.h"

/* A hidden label C code names (the resume window, activation.c). */
#define AS_ACT_LABEL(name) .globl name; .hidden name; name:

/*
 * int as_act_capture(as_act *a)
 *   on entry: x0 = a, x30 = the return address (the resume pc), sp = the
 *             caller's sp.  A leaf: clobbers x1 only.
 */
AS_FUNC_BEGIN(as_act_capture)
    stp     x19, x20, [x0, #AS_ACT_X19]
    stp     x21, x22, [x0, #AS_ACT_X19 + 16]
    stp     x23, x24, [x0, #AS_ACT_X19 + 32]
    stp     x25, x26, [x0, #AS_ACT_X19 + 48]
    stp     x27, x28, [x0, #AS_ACT_X19 + 64]
    stp     x29, x30, [x0, #AS_ACT_X29]
    mov     x1, sp
    stp     x1, x30, [x0, #AS_ACT_SP]
    .irp i, 8, 9, 10, 11, 12, 13, 14, 15
    str     d\i, [x0, #AS_ACT_V + 16 * \i]
    .endr
    mrs     x1, fpcr
    str     w1, [x0, #AS_ACT_FPCR]
    mov     w1, #AS_ACT_KIND_CALL
    strh    w1, [x0, #AS_ACT_KIND]
    mov     x0, #0
    ret
AS_FUNC_END(as_act_capture)

/*
 * int as_act_capture_full(as_act *a)
 *   on entry: x0 = a, x30 = the return address.
 * Every register as it is at the call (x0 = 1, what the resumed call
 * returns), NZCV and, where the CPU has them, DIT, SSBS and TCO, q0-q31,
 * FPSR, FPCR: a FULL record.  The signal mask is
 * marked "the current one at resume" (all ones; SIGKILL can never be
 * blocked, so no real mask looks like that).  Clobbers x1-x3 (stored
 * first; corruptible at a call).
 */
AS_FUNC_BEGIN(as_act_capture_full)
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
    mov     x2, #1
    stp     x2, x1, [x0, #0]
    mov     x1, sp
    stp     x30, x1, [x0, #AS_ACT_X30]      /* x30, sp */
    mrs     x1, nzcv
    /* DIT, SSBS, TCO where the CPU has them (as__act_pstate_ext, in
     * SPSR positions; an MRS of a missing one is undefined).  Spelled as
     * S3_3_C4_C2_{5,6,7} so that any assembler takes them. */
    adrp    x2, as__act_pstate_ext
    ldr     w2, [x2, :lo12:as__act_pstate_ext]
    tbz     w2, #24, 1f
    mrs     x3, S3_3_C4_C2_5        /* DIT  */
    orr     x1, x1, x3
1:  tbz     w2, #12, 2f
    mrs     x3, S3_3_C4_C2_6        /* SSBS */
    orr     x1, x1, x3
2:  tbz     w2, #25, 3f
    mrs     x3, S3_3_C4_C2_7        /* TCO  */
    orr     x1, x1, x3
3:  stp     x30, x1, [x0, #AS_ACT_PC]       /* pc, pstate */
    mrs     x1, fpsr
    str     w1, [x0, #AS_ACT_FPSR]
    mrs     x1, fpcr
    str     w1, [x0, #AS_ACT_FPCR]
    stp     q0, q1, [x0, #AS_ACT_V + 0]
    stp     q2, q3, [x0, #AS_ACT_V + 32]
    stp     q4, q5, [x0, #AS_ACT_V + 64]
    stp     q6, q7, [x0, #AS_ACT_V + 96]
    stp     q8, q9, [x0, #AS_ACT_V + 128]
    stp     q10, q11, [x0, #AS_ACT_V + 160]
    stp     q12, q13, [x0, #AS_ACT_V + 192]
    stp     q14, q15, [x0, #AS_ACT_V + 224]
    stp     q16, q17, [x0, #AS_ACT_V + 256]
    stp     q18, q19, [x0, #AS_ACT_V + 288]
    stp     q20, q21, [x0, #AS_ACT_V + 320]
    stp     q22, q23, [x0, #AS_ACT_V + 352]
    stp     q24, q25, [x0, #AS_ACT_V + 384]
    stp     q26, q27, [x0, #AS_ACT_V + 416]
    stp     q28, q29, [x0, #AS_ACT_V + 448]
    stp     q30, q31, [x0, #AS_ACT_V + 480]
    mov     x1, #-1
    str     x1, [x0, #AS_ACT_SIGMASK]
    mov     w1, #AS_ACT_KIND_FULL
    strh    w1, [x0, #AS_ACT_KIND]
    mov     x0, #0
    ret
AS_FUNC_END(as_act_capture_full)

/*
 * AS_ACT_RELEASE win, done: push a (x0) back on its pool, if it has one
 * and it is out of it (self == a; cleared first: in the pool now).
 *   in: x0 = a.  Clobbers x1-x7 and NZCV.
 * The link is written before the exclusive pair (a store between LDXR
 * and STLXR may clear the monitor); the LDXR then checks the head did
 * not move since.  The tag is kept (only a pop bumps it).  A successful
 * STLXR falls through the cbnz at `win` straight into `done`, which must
 * be the very next instruction (checked where each tail begins): from
 * the moment `a` is released no instruction outside the tail runs, so a
 * handler never finds a released record at a "busy" pc.  The retry after
 * a moved head (clrex) sits before the loop, off that path.
 */
.macro AS_ACT_RELEASE win, done
    ldr     x1, [x0, #AS_ACT_POOL]
    cbz     x1, \done
    ldr     x2, [x0, #AS_ACT_SELF]
    cmp     x2, x0
    b.ne    \done
    str     xzr, [x0, #AS_ACT_SELF]
    ldr     w3, [x0, #AS_ACT_SLOT]
    b       1f
2:  clrex
1:  ldr     x4, [x1, #AS_ACT_POOL_HEAD]
    str     w4, [x0, #AS_ACT_NEXT]
    and     x5, x4, #0xffffffff00000000
    orr     x5, x5, x3
    ldxr    x6, [x1]
    cmp     x6, x4
    b.ne    2b
    stlxr   w7, x5, [x1]
    AS_ACT_LABEL(\win)
    cbnz    w7, 1b
.endm

/* The tail `tail` must follow the cbnz at `win` at once (see above). */
.macro AS_ACT_TAIL_FOLLOWS win, tail
    .if (\tail - \win) != 4
    .error "the released path must fall into the tail"
    .endif
.endm

/*
 * void as_act_resume(as_act *a)
 *   on entry: x0 = a.  Never returns; every register may be clobbered.
 */
AS_FUNC_BEGIN(as_act_resume)
    ldrh    w16, [x0, #AS_ACT_KIND]
    cmp     w16, #AS_ACT_KIND_FULL
    b.eq    .Lfull

    /* CALL and FRESH: FPCR only if it differs (msr fpcr is slow). */
    ldr     w16, [x0, #AS_ACT_FPCR]
    mrs     x17, fpcr
    cmp     x16, x17
    b.eq    1f
    msr     fpcr, x16
1:  ldp     x19, x20, [x0, #AS_ACT_X19]
    ldp     x21, x22, [x0, #AS_ACT_X19 + 16]
    ldp     x23, x24, [x0, #AS_ACT_X19 + 32]
    ldp     x25, x26, [x0, #AS_ACT_X19 + 48]
    ldp     x27, x28, [x0, #AS_ACT_X19 + 64]
    ldr     x29, [x0, #AS_ACT_X29]
    .irp i, 8, 9, 10, 11, 12, 13, 14, 15
    ldr     d\i, [x0, #AS_ACT_V + 16 * \i]
    .endr
    ldp     x17, x16, [x0, #AS_ACT_SP]
    AS_ACT_RELEASE as__act_cwin, as__act_ctail

    /* The CALL tail: x16 = pc, x17 = sp of the resumed code; `a` is no
     * longer ours.  x30 gets the pc too: the resumed code returned from
     * its `bl as_act_capture`, after which lr is dead. */
AS_ACT_LABEL(as__act_ctail)
    AS_ACT_TAIL_FOLLOWS as__act_cwin, as__act_ctail
    .cfi_remember_state
    .cfi_def_cfa x17, 0
    .cfi_register x30, x16
    mov     sp, x17
    .cfi_def_cfa_register sp
    mov     x30, x16
    mov     x0, #1                  /* as_act_capture returns 1 */
    ret     x16
AS_ACT_LABEL(as__act_ctail_end)
    .cfi_restore_state

.Lfull:
#if defined(AS_HOSTED) && AS_HOSTED
    /* Exact, through rt_sigreturn of a frame built from the record. */
    b       as__act_sigreturn
#endif
    /* The staged FULL resume: freestanding builds fall through to it; in
     * hosted builds only the test suite calls it, by this name.
     * x0 = a; x17 = S = T - 272.  If S lies below our sp, move sp first so
     * that an exception taken while we stage cannot overwrite it. */
AS_ACT_LABEL(as__act_resume_staged)
    bti     c
    mov     x15, sp
    .cfi_def_cfa x15, 0
    ldr     x17, [x0, #AS_ACT_SP]
    sub     x17, x17, #AS_ACT_STAGE
    cmp     x17, x15
    b.hs    1f
    mov     sp, x17
1:
    ldp     q0, q1, [x0, #AS_ACT_V + 0]
    ldp     q2, q3, [x0, #AS_ACT_V + 32]
    ldp     q4, q5, [x0, #AS_ACT_V + 64]
    ldp     q6, q7, [x0, #AS_ACT_V + 96]
    ldp     q8, q9, [x0, #AS_ACT_V + 128]
    ldp     q10, q11, [x0, #AS_ACT_V + 160]
    ldp     q12, q13, [x0, #AS_ACT_V + 192]
    ldp     q14, q15, [x0, #AS_ACT_V + 224]
    ldp     q16, q17, [x0, #AS_ACT_V + 256]
    ldp     q18, q19, [x0, #AS_ACT_V + 288]
    ldp     q20, q21, [x0, #AS_ACT_V + 320]
    ldp     q22, q23, [x0, #AS_ACT_V + 352]
    ldp     q24, q25, [x0, #AS_ACT_V + 384]
    ldp     q26, q27, [x0, #AS_ACT_V + 416]
    ldp     q28, q29, [x0, #AS_ACT_V + 448]
    ldp     q30, q31, [x0, #AS_ACT_V + 480]
    ldr     w1, [x0, #AS_ACT_FPSR]
    ldr     w2, [x0, #AS_ACT_FPCR]
    msr     fpsr, x1
    msr     fpcr, x2
    /* DIT, SSBS, TCO where present (NZCV waits for the tail). */
    ldr     x1, [x0, #AS_ACT_PSTATE]
    adrp    x2, as__act_pstate_ext
    ldr     w2, [x2, :lo12:as__act_pstate_ext]
    tbz     w2, #24, 3f
    and     x3, x1, #AS_PSTATE_DIT
    msr     S3_3_C4_C2_5, x3
3:  tbz     w2, #12, 4f
    and     x3, x1, #AS_PSTATE_SSBS
    msr     S3_3_C4_C2_6, x3
4:  tbz     w2, #25, 5f
    and     x3, x1, #AS_PSTATE_TCO
    msr     S3_3_C4_C2_7, x3
5:
    /* Stage x0..x30, the sp slot, pc and pstate: 34 words. */
    mov     x2, x0
    mov     x3, x17
    add     x4, x17, #AS_ACT_STAGE
2:  ldp     x5, x6, [x2], #16
    stp     x5, x6, [x3], #16
    cmp     x3, x4
    b.lo    2b
    mov     x8, x17
    AS_ACT_RELEASE as__act_fwin, as__act_ftail

    /* The FULL tail: x8 = S; `a` is no longer ours. */
AS_ACT_LABEL(as__act_ftail)
    AS_ACT_TAIL_FOLLOWS as__act_fwin, as__act_ftail
    mov     sp, x8
AS_ACT_LABEL(as__act_ftail_load)
    .cfi_def_cfa sp, AS_ACT_STAGE
    .cfi_offset x30, AS_ACT_PC - AS_ACT_STAGE
    ldr     x16, [sp, #AS_ACT_PSTATE]
    msr     nzcv, x16
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldr     x17, [sp, #AS_ACT_X16 + 8]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #AS_ACT_X30]
    ldr     x16, [sp, #AS_ACT_PC]
    add     sp, sp, #AS_ACT_STAGE
AS_ACT_LABEL(as__act_ftail_ret)
    .cfi_def_cfa sp, 0
    .cfi_register x30, x16
    ret     x16
AS_ACT_LABEL(as__act_ftail_end)
AS_ACT_LABEL(as__act_resume_end)
AS_FUNC_END(as_act_resume)

/*
 * The first code of a FRESH record, entered from the CALL tail's `ret x16`.
 *   on entry: sp = the stack's top (16-byte aligned), x19 = fn, x20 = arg,
 *             x29 = 0, x30 = this address.
 * The outermost frame: lr undefined, so backtraces end here.  fn must not
 * return; if it does, brk traps.
 */
AS_FUNC_HIDDEN(as__act_start)
    .cfi_undefined x30
    mov     x30, #0
    mov     x0, x20
    blr     x19
    brk     #0x3e8
AS_FUNC_END(as__act_start)

AS_ASM_TRAILER
