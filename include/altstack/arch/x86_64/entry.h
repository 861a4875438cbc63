/* SPDX-License-Identifier: MIT */
/*
 * altstack/arch/x86_64/entry.h - SYSCALL entry onto the current CPU's
 * auxiliary stack, for x86_64 kernels (freestanding builds).  Assembler
 * macros: include this from a .S file.
 *
 * A SYSCALL leaves rsp pointing at whatever stack the caller had: a user
 * stack, or in a kernel whose threads make system calls, a small thread
 * stack that the handler must not grow into.  The entry below moves to the
 * CPU's auxiliary stack (as_auxstack_set) the way Unikraft does, through a
 * %gs:-relative slot of the per-CPU record (as_percpu, altstack/percpu.h):
 *
 *     syscall_entry:                    // MSR_LSTAR points here
 *         AS_SYSCALL_ENTER              // rsp = aux top - 8, caller's rsp at (%rsp)
 *         pushq %r11                    // caller's rflags
 *         pushq %rcx                    // return address
 *         ...                           // save what the kernel's ABI keeps,
 *         call  handler                 // align rsp to 16, call C
 *         ...
 *         popq  %rcx
 *         popq  %r11
 *         AS_SYSCALL_RETURN_KERNEL      // to a CPL-0 caller
 *
 * From CPL 3 the kernel adds its own swapgs around the handler (the macro
 * leaves the caller's GS in GS_BASE):
 *
 *         AS_SYSCALL_ENTER
 *         swapgs                        // GS_BASE = this CPU's record
 *         ...                           // as above; the handler may sti
 *         cli
 *         swapgs                        // GS_BASE = the user's again
 *         AS_SYSCALL_RETURN_USER        // sysretq
 *
 * The GS invariant.  as_percpu_set writes the per-CPU base into both
 * GS_BASE and KERNEL_GS_BASE.  At every SYSCALL, KERNEL_GS_BASE holds this
 * CPU's as_percpu record and GS_BASE the caller's GS: the same record in a
 * kernel that never loads a user GS, or the user's value in one that does
 * (which then swaps for its own code exactly as on every other entry from
 * CPL 3).  Such a kernel runs its own code with the two swapped, the
 * user's GS parked in KERNEL_GS_BASE, so a SYSCALL from CPL 0 is wrong
 * there; kernel threads that make system calls run with KERNEL_GS_BASE =
 * the record again (examples/kernel/x86_64 writes it back when it leaves
 * ring 3 for good).
 *
 * The swapgs window is the three instructions between the two swapgs of
 * AS_SYSCALL_ENTER.  Inside it GS_BASE is the record and KERNEL_GS_BASE the
 * caller's GS.  It runs with interrupts off (SYSCALL clears RFLAGS bits set
 * in MSR_SFMASK, which must include IF, 0x200), touches only the record,
 * and cannot fault (the record is mapped; the aux top is not dereferenced
 * until after the window).  Only an NMI or machine check can land inside
 * it; their handlers must find the per-CPU base by reading the MSR, never
 * by trusting GS, as Linux's paranoid entries do.
 *
 * The scratch slot.  SYSCALL leaves no free register: rcx and r11 hold the
 * return state, all others are the caller's.  The caller's rsp is parked
 * in the record's `scratch` word for the two instructions it takes to load
 * the aux top and push it there; interrupts are off, and each CPU has its
 * own record, so nothing else can use the slot meanwhile.
 *
 * No re-entry.  The entry starts at the aux stack's top unconditionally:
 * code already running on the aux stack (the handler, as_call_on_aux's fn)
 * must not execute SYSCALL.
 *
 * CFI.  These macros emit none: an entry point is an outermost frame
 * (`.cfi_undefined rip` in the kernel's own entry routine says so).
 */
#ifndef ALTSTACK_ARCH_X86_64_ENTRY_H
#define ALTSTACK_ARCH_X86_64_ENTRY_H

#include "../../percpu.h"

#ifdef __ASSEMBLER__

/*
 * AS_SYSCALL_ENTER - the first instructions at MSR_LSTAR.
 *   on entry: rcx = caller's rip, r11 = caller's rflags, rsp = caller's
 *             stack, IF = 0, GS_BASE = caller's GS.
 *   on exit:  rsp = aux top - 8, (%rsp) = caller's rsp (so rsp is 8 off
 *             16-byte alignment, as right after a call);
 *             GS_BASE = caller's GS again; every other register as on entry.
 */
.macro AS_SYSCALL_ENTER
    swapgs                                  /* GS_BASE = this CPU's record  */
    movq    %rsp, %gs:AS_PERCPU_SCRATCH
    movq    %gs:AS_PERCPU_AUX_TOP, %rsp
    pushq   %gs:AS_PERCPU_SCRATCH           /* caller's rsp, at aux top - 8 */
    swapgs                                  /* GS_BASE = caller's GS        */
.endm

/*
 * AS_SYSCALL_RETURN_KERNEL - return to a CPL-0 caller (a kernel thread
 * that used SYSCALL; SYSRET can only go to CPL 3).
 *   on entry: rsp = aux top - 8 as AS_SYSCALL_ENTER left it, rcx = the
 *             return address, r11 = the rflags to restore.
 * Restores rflags while still on the aux stack, so an interrupt that the
 * restored IF lets in lands there rather than below the caller's rsp, then
 * reloads the caller's rsp and jumps back.  Writes nothing to the caller's
 * stack.  (With CET IBT enforced at CPL 0 the return target would need an
 * endbr64; kernels using IBT return through `pushq %rcx; ret` instead.)
 */
.macro AS_SYSCALL_RETURN_KERNEL
    pushq   %r11
    popfq
    popq    %rsp
    jmpq    *%rcx
.endm

/*
 * AS_SYSCALL_RETURN_USER - return to a CPL-3 caller with SYSRET.
 *   on entry: as for AS_SYSCALL_RETURN_KERNEL, interrupts off, and
 *             GS_BASE = the user's GS.
 * A kernel that swapped to its own GS for the handler (it must, before
 * any code of its own reads %gs:) swaps back with interrupts already off:
 *
 *         cli                       // before the swapgs, not after:
 *         swapgs                    // from here GS_BASE is the user's,
 *         AS_SYSCALL_RETURN_USER    // and an interrupt taken at CPL 0
 *                                   // would run the kernel on it
 *
 * The macro's own cli covers a handler that never swapped.  Interrupts
 * stay off until SYSRET loads the user's rflags: an interrupt taken at
 * CPL 0 pushes onto the current rsp, which must never be a user stack.
 * rcx must be canonical (SYSRET faults at CPL 0 otherwise on Intel CPUs);
 * return through IRETQ if the kernel lets user code change it.
 * examples/kernel/x86_64 (entry.S, syscall_user) runs this path from
 * ring-3 tasks on both CPUs, with timer ticks landing inside handlers.
 */
.macro AS_SYSCALL_RETURN_USER
    cli
    popq    %rsp
    sysretq
.endm

#endif /* __ASSEMBLER__ */

#endif /* ALTSTACK_ARCH_X86_64_ENTRY_H */
