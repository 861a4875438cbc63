/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/share.S - the protection-key domain switch and the
 * entry of the key shootdown handler (src/hosted/share_pkeys.c).
 *
 * as__switch_pkru is as_switch with one WRPKRU in the middle: the frame it
 * saves on the caller's stack is exactly as_switch's (layout.h), so either
 * switch resumes the other's frames, and it ends in as_switch's own tail
 * (as__switch_pop, src/arch/x86_64/switch.S).
 *
 *   caller's stack                          target's stack (to)
 *   +--------------------+ CFA              +--------------------+
 *   | rip (our caller)   | ctx+56           | rip                |
 *   | rbp rbx r12        | ctx+48..32       | rbp rbx r12        |
 *   | r13 r14 r15        | ctx+24..8        | r13 r14 r15        |
 *   | flags|FCW|MXCSR    | ctx+0  <- rax    | flags|FCW|MXCSR    | <- rsp
 *   +--------------------+                  +--------------------+
 *        1. pushed and stored                    3. read, popped
 *             2. WRPKRU: from here on the caller's stack may be closed
 *
 * Ordering, which is the point of this file:
 *   1. every write and read of the caller's stack comes first: the pushes,
 *      stmxcsr/fnstcw, and reading those two words back into r9/r10 (the
 *      plain as_switch compares them later, from the caller's frame; in
 *      the reload strategy, which loads MXCSR without comparing, the
 *      MXCSR read is patched out: as__pkru_fp_sites below);
 *   2. WRPKRU installs the target domain's rights (eax = the new PKRU,
 *      ecx = edx = 0, as the instruction requires), in a restartable
 *      window (below);
 *   3. only then is the target's stack touched.  Like an exact as_switch,
 *      it saves FP control (flags 0xffff) and restores the target's only
 *      if the target's frame holds it (a fast-mode frame does not), in
 *      the exact-mode strategy bound at start-up.
 * Nothing in between reads memory, so no access sees half of each right.
 *
 * CFI is as_switch's: the frame pushed on our side has the layout of the
 * frame we resume, so the same rules hold before and after `mov %rdi, %rsp`.
 */
#include "../asm.h"
#include "layout.h"
#include "fp_exact.h"

/*
 * as_transfer as__switch_pkru(as_ctx to, void *data, uint32_t bits, uint32_t mask)
 *   on entry: rdi = to (a switch frame), rsi = data, edx = the target
 *             domain's PKRU bits for the pool keys, ecx = the pool keys'
 *             bits (mask), (%rsp) = return address
 *   installs: PKRU = (PKRU & ~mask) | bits  (keys outside the pool keep
 *             what the thread had)
 *   returns:  as_switch's {rax = the context that resumed us, rdx = data}
 * Clobbers the caller-saved rax, rcx, rdx, r8-r11 (SysV 3.2.1).
 *
 * The window [as__pkru_window, as__pkru_window_end) reads PKRU, combines
 * and writes it.  A key shootdown that interrupts it rewinds it to its
 * start with fresh r8 (~mask) and r11 (bits) in the signal frame, so the
 * value written never comes from a PKRU read before the shootdown.  The
 * window touches no memory, so restarting it is exact.
 */
AS_FUNC_HIDDEN(as__switch_pkru)
    movl    %edx, %r11d             /* bits */
    movl    %ecx, %r8d
    notl    %r8d                    /* ~mask */
    AS_PUSH_CALLEE_SAVED
    pushq   $-1                     /* flags 0xffff: an exact frame */
    .cfi_adjust_cfa_offset 8
    stmxcsr AS_SW_MXCSR(%rsp)
    fnstcw  AS_SW_FCW(%rsp)
.Lfp_site_pkr:                      /* our FP control, kept in registers */
    movl    AS_SW_MXCSR(%rsp), %r9d
.Lfp_site_pkr_end:
    movzwl  AS_SW_FCW(%rsp), %r10d
    .globl  as__pkru_window
    .hidden as__pkru_window
as__pkru_window:
    xorl    %ecx, %ecx
    rdpkru                          /* eax = PKRU, edx = 0 */
    andl    %r8d, %eax
    orl     %r11d, %eax
    xorl    %edx, %edx
    wrpkru                          /* the one write of the rights */
    .globl  as__pkru_window_end
    .hidden as__pkru_window_end
as__pkru_window_end:
    movq    %rsp, %rax              /* our frame: the resumed side's ctx */
    movq    %rsi, %rdx              /* data */

    movq    %rdi, %rsp
    .cfi_remember_state
    testb   $AS_SW_HAS_FP, AS_SW_FLAGS_HI(%rsp)
    jz      as__switch_pop          /* a fast frame: FP control stays ours */
.Lfp_site_pk:
    movl    AS_SW_MXCSR(%rsp), %ecx
    xorl    %r9d, %ecx
    testl   $AS_MXCSR_CTRL, %ecx
    jnz     .Lpk_load_mxcsr
.Lfp_site_pk_end:
.Lpk_check_fcw:
    cmpw    AS_SW_FCW(%rsp), %r10w
    jne     .Lpk_load_fcw
    jmp     as__switch_pop

.Lpk_load_mxcsr:
    .cfi_restore_state
    .cfi_remember_state
    ldmxcsr AS_SW_MXCSR(%rsp)
    jmp     .Lpk_check_fcw
.Lpk_load_fcw:
    .cfi_restore_state
    fldcw   AS_SW_FCW(%rsp)
    jmp     as__switch_pop
AS_FUNC_END(as__switch_pkru)

/*
 * The exact-mode strategy's sites here, bound by as_switch_init with the
 * switch's (src/switch.c finds this table through a weak reference: the
 * freestanding library has no share.S).  The reload strategy turns the
 * compare after the switch into .Lfp_reload (ldmxcsr from the target's
 * frame) and the read-back of our MXCSR before WRPKRU, which only the
 * compare uses, into NOPs: on AMD that read waits for the slow stmxcsr.
 * Rows as in as__fp_sites (switch.S).
 */
AS_FP_SITE_TABLE(as__pkru_fp_sites)
    .quad   .Lfp_site_pkr, .Lfp_site_pkr_end, .Lfp_reload, .Lfp_reload
    AS_FP_SITE_ROW(_pk)
AS_FP_SITE_TABLE_END

/*
 * void as__pkeys_sd_entry(int sig, siginfo_t *si, void *uc)
 *   the shootdown signal's handler, entered by the kernel with
 *   PKRU = 0x55555554 (key 0 only) and rsp on the interrupted stack, which
 *   may carry a key.  So before anything touches the stack, allow every
 *   key (eax = ecx = edx = 0); rt_sigreturn later installs the PKRU saved
 *   in the frame, which the C handler has rewritten.
 *   on entry: rdi = sig, rsi = si, rdx = uc
 */
AS_FUNC_HIDDEN(as__pkeys_sd_entry)
    movq    %rdx, %r8
    xorl    %eax, %eax
    xorl    %ecx, %ecx
    xorl    %edx, %edx
    wrpkru
    movq    %r8, %rdx
    jmp     as__pkeys_sd_handler
AS_FUNC_END(as__pkeys_sd_entry)

AS_ASM_TRAILER
