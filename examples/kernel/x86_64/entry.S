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
 *   exc_<n>        vectors 0-31: a frame, then x86_fault(frame)
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
    pushq   %r11
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
    PUSH_GPRS
    movq    %rsp, %rdi
    call    x86_timer
    POP_GPRS
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
    PUSH_GPRS
    movq    %rsp, %rdi
    andq    $-16, %rsp
    call    x86_fault

    .section .rodata
    .globl  exc_table
exc_table:
    EXC_TABLE

    .section .note.GNU-stack, "", %progbits
