/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/x86_64/entry.S - the kernel's entry points.
 *
 *   syscall_entry  MSR_LSTAR: onto the aux stack with the library's
 *                  AS_SYSCALL_ENTER, then ksyscall(nr, a0, a1, caller_sp)
 *   timer_entry    vector 0x20 on IST1: saves every GPR into a struct
 *                  arch_frame and calls x86_timer(frame), which may put
 *                  another context's state into the frame; iretq resumes
 *                  whatever the frame then holds
 *   exc_<n>        vectors 0-31: a frame, then x86_fault(frame), which
 *                  either stops the machine or fixes the frame up (a
 *                  probe's expected page fault) for the iretq
 *
 * Each entry from ring 3 (CS & 3 in the frame) swaps GS on the way in and
 * on the way out; from ring 0 GS is already the kernel's.  SYSCALL from
 * ring 3 is told apart by its return address (x86_64 has no other sign).
 *
 * Interrupt frame on IST1 (struct arch_frame, rsp points at r15):
 *
 *   +--------+ IST1 top (16-byte aligned)
 *   | ss     | +160
 *   | rsp    | +152    pushed by the CPU
 *   | rflags | +144
 *   | cs     | +136
 *   | rip    | +128
 *   | error  | +120    0 where the CPU pushes none
 *   | vector | +112
 *   | rax    | +104
 *   | ...    |         rbx rcx rdx rsi rdi rbp r8 ... r14
 *   | r15    | +0      <- rsp, 16-byte aligned (176 bytes below the top)
 *   +--------+
 */
#include <altstack/arch/x86_64/entry.h>

#define USER_DS 0x43
#define USER_CS 0x4b

    .text

/*
 * syscall_entry
 *   on entry: rax = nr, rdi = a0, rsi = a1, rcx = return rip, r11 = rflags,
 *   rsp = the caller's (small) stack, IF = 0 (SFMASK).  The kernel's system
 *   call ABI clobbers every caller-saved register, so C may use them all.
 */
    .globl  syscall_entry
syscall_entry:
    AS_SYSCALL_ENTER                   /* rsp = aux top - 8, (%rsp) = caller's rsp */
    cmpq    $__user_start, %rcx        /* SYSCALL's rcx is the CPU's: which ring? */
    jb      1f
    cmpq    $__user_end, %rcx
    jb      syscall_user
1:  pushq   %r11
    pushq   %rcx
    subq    $8, %rsp                   /* 16-byte aligned for the call */
    movq    24(%rsp), %rcx             /* caller_sp */
    movq    %rsi, %rdx
    movq    %rdi, %rsi
    movq    %rax, %rdi
    call    ksyscall
    addq    $8, %rsp
    popq    %rcx
    popq    %r11
    AS_SYSCALL_RETURN_KERNEL

/*
 * From ring 3 (the return address lies in the user pages): GS_BASE is the
 * user's after AS_SYSCALL_ENTER, so the kernel swaps to its own for the
 * handler, which may enable interrupts (a tick landing in it finds the
 * kernel's GS, as every entry from ring 0 expects).  Going back, the
 * interrupts go off before the swapgs: from that swapgs on GS_BASE is the
 * user's again while still in ring 0, and an interrupt there would run the
 * kernel on the user's GS.  So: cli; swapgs; AS_SYSCALL_RETURN_USER.
 *   x86_usyscall(nr, a0, a1, a2, caller_sp)
 */
syscall_user:
    swapgs                             /* GS_BASE = this CPU's record */
    pushq   %r11
    pushq   %rcx
    subq    $8, %rsp
    movq    24(%rsp), %r8              /* caller_sp */
    movq    %rdx, %rcx
    movq    %rsi, %rdx
    movq    %rdi, %rsi
    movq    %rax, %rdi
    call    x86_usyscall
    cli
    addq    $8, %rsp
    popq    %rcx
    popq    %r11
    xorl    %edi, %edi                 /* leave no kernel value behind */
    xorl    %esi, %esi
    xorl    %edx, %edx
    xorl    %r8d, %r8d
    xorl    %r9d, %r9d
    xorl    %r10d, %r10d
    swapgs                             /* GS_BASE = the user's */
    AS_SYSCALL_RETURN_USER

/*
 * x86_user_enter(rip, arg, rsp) - into ring 3 at rip(arg) on stack rsp,
 * with interrupts on and GS_BASE = KERNEL_GS_BASE (the user's, which the
 * caller wrote).  Never returns: the program leaves with USYS_EXIT.
 */
    .globl  x86_user_enter
x86_user_enter:
    cli
    pushq   $USER_DS
    pushq   %rdx
    pushq   $0x202
    pushq   $USER_CS
    pushq   %rdi
    movq    %rsi, %rdi
    xorl    %eax, %eax
    xorl    %ebx, %ebx
    xorl    %ecx, %ecx
    xorl    %edx, %edx
    xorl    %esi, %esi
    xorl    %ebp, %ebp
    xorl    %r8d, %r8d
    xorl    %r9d, %r9d
    xorl    %r10d, %r10d
    xorl    %r11d, %r11d
    xorl    %r12d, %r12d
    xorl    %r13d, %r13d
    xorl    %r14d, %r14d
    xorl    %r15d, %r15d
    swapgs
    iretq

/* SMAP: entries run with AC clear (SYSCALL clears it through SFMASK;
 * interrupts and exceptions do not). */
.macro ENTRY_CLAC
    testb   $1, x86_smap(%rip)
    jz      9f
    clac
9:
.endm

/* swapgs if the frame (vector at 0(%rsp)) came from, or goes to, ring 3. */
.macro SWAPGS_IF_USER
    testb   $3, 24(%rsp)
    jz      9f
    swapgs
9:
.endm

.macro PUSH_GPRS
    pushq   %rax
    pushq   %rbx
    pushq   %rcx
    pushq   %rdx
    pushq   %rsi
    pushq   %rdi
    pushq   %rbp
    pushq   %r8
    pushq   %r9
    pushq   %r10
    pushq   %r11
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
.endm

.macro POP_GPRS
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %r11
    popq    %r10
    popq    %r9
    popq    %r8
    popq    %rbp
    popq    %rdi
    popq    %rsi
    popq    %rdx
    popq    %rcx
    popq    %rbx
    popq    %rax
.endm

    .globl  timer_entry
timer_entry:
    pushq   $0
    pushq   $0x20
    SWAPGS_IF_USER
    ENTRY_CLAC
    PUSH_GPRS
    movq    %rsp, %rdi
    call    x86_timer
    POP_GPRS
    SWAPGS_IF_USER                     /* the frame's CS now: where iretq goes */
    addq    $16, %rsp
    iretq

    .globl  spurious_entry
spurious_entry:
    iretq

.macro EXC n
exc_\n:
    .if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushq   $0
    .endif
    pushq   $\n
    jmp     exc_common
.endm

.altmacro
.macro EXC_ALL
    .set i, 0
    .rept 32
    EXC %i
    .set i, i + 1
    .endr
.endm
.macro EXC_PTR n
    .quad exc_\n
.endm
.macro EXC_TABLE
    .set i, 0
    .rept 32
    EXC_PTR %i
    .set i, i + 1
    .endr
.endm

    EXC_ALL
exc_common:
    SWAPGS_IF_USER
    ENTRY_CLAC
    PUSH_GPRS
    movq    %rsp, %rdi
    movq    %rsp, %rbx
    andq    $-16, %rsp
    call    x86_fault                  /* returns only for a fault it fixed up */
    movq    %rbx, %rsp
    POP_GPRS
    SWAPGS_IF_USER
    addq    $16, %rsp
    iretq

    .section .rodata
    .globl  exc_table
exc_table:
    EXC_TABLE

    .section .note.GNU-stack, "", %progbits
