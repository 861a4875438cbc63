/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/fp_exact.h - the exact-mode FP control of a switch
 * frame (layout.h), in assembly: the save, and the resume with its patch
 * site.  Used by switch.S (as_switch, as_switch_ontop) and by the direct
 * jump_fcontext / ontop_fcontext (src/fcontext/arch/x86_64/fcontext.S),
 * whose sites as_switch_init binds with the switch's (src/switch.c).
 * Assembly only; include after layout.h.
 */
#ifndef ALTSTACK_SRC_ARCH_X86_64_FP_EXACT_H
#define ALTSTACK_SRC_ARCH_X86_64_FP_EXACT_H

/* Push a switch frame for the caller: its callee-saved registers and the
 * FP word below its return address.  After this, rsp = the frame (our own
 * ctx) and the CFI describes it.  `pushq $-1` sets flags to 0xffff and
 * stmxcsr / fnstcw overwrite the low six bytes (a fast frame: flags 0,
 * AS_SWITCH_SAVE_FAST in switch.S). */
#define AS_SWITCH_SAVE_EXACT          \
    AS_PUSH_CALLEE_SAVED;             \
    pushq   $-1;                      \
    .cfi_adjust_cfa_offset 8;         \
    stmxcsr AS_SW_MXCSR(%rsp);        \
    fnstcw  AS_SW_FCW(%rsp)

/* Exact resume.  rsp = the frame being resumed, `ours` = the frame just
 * saved.  A target that saved no FP control (a fast-mode frame) keeps the
 * live state: a predicted branch skips it all (a branch, not a cmov that
 * would make the loads' address wait for the flags).  Then the patch
 * site, MXCSR only: as assembled the comparison (compare strategy), or
 * the table's .Lfp_reload, an unconditional ldmxcsr (reload strategy: on
 * AMD the load that reads back the just-stored MXCSR waits for the slow
 * stmxcsr).  The x87 control word is compared in
 * both (fnstcw forwards; fldcw is not free).  The slow halves are in
 * AS_FP_LOAD_EXACT_SLOW.  Clobbers t32 (t16: its low half).  The
 * caller has done .cfi_remember_state; n makes the labels unique. */
#define AS_FP_LOAD_EXACT(ours, n, t32, t16) \
    testb   $AS_SW_HAS_FP, AS_SW_FLAGS_HI(%rsp); \
    jz      .Lfp_done##n;             \
.Lfp_site##n:                         \
    movl    AS_SW_MXCSR(%rsp), t32;   \
    xorl    AS_SW_MXCSR(ours), t32;   \
    andl    $AS_MXCSR_CTRL_AND, t32;  \
    jnz     .Lload_mxcsr##n;          \
.Lfp_site##n##_end:                   \
    movzwl  AS_SW_FCW(%rsp), t32;     \
    cmpw    AS_SW_FCW(ours), t16;     \
    jne     .Lload_fcw##n;            \
.Lfp_done##n:

/* The out-of-line half of AS_FP_LOAD_EXACT; after the function's body. */
#define AS_FP_LOAD_EXACT_SLOW(n)      \
.Lload_mxcsr##n:                      \
    .cfi_restore_state;               \
    .cfi_remember_state;              \
    ldmxcsr AS_SW_MXCSR(%rsp);        \
    jmp     .Lfp_site##n##_end;       \
.Lload_fcw##n:                        \
    .cfi_restore_state;               \
    .cfi_remember_state;              \
    fldcw   AS_SW_FCW(%rsp);          \
    jmp     .Lfp_done##n

/* A table of patch sites for as_switch_init (src/switch.c): rows of site
 * start, site end, alternative start, alternative end, ended by zeros.
 * The table comes with the reload strategy's bytes for this object's
 * AS_FP_LOAD_EXACT sites (rsp = the frame being resumed, as at a site),
 * local to the object: the fcontext library's table needs nothing hidden
 * from libaltstack, whichever way the two are linked.  AS_FP_SITE_ROW is
 * the row of one such site. */
#define AS_FP_SITE_TABLE(name)        \
    .section .rodata, "a";            \
.Lfp_reload:                          \
    ldmxcsr AS_SW_MXCSR(%rsp);        \
.Lfp_reload_end:                      \
    .section .data.rel.ro, "aw";  /* addresses: relocated at load time */ \
    .p2align 3;                       \
    .globl  name;                     \
    .hidden name;                     \
name:
#define AS_FP_SITE_ROW(n)             \
    .quad   .Lfp_site##n, .Lfp_site##n##_end, .Lfp_reload, .Lfp_reload_end
#define AS_FP_SITE_TABLE_END          \
    .quad   0, 0, 0, 0;               \
    .text

#endif /* ALTSTACK_SRC_ARCH_X86_64_FP_EXACT_H */
