/* SPDX-License-Identifier: MIT */
/*
 * src/arch/x86_64/percpu.S - the per-CPU base register of freestanding
 * x86_64 builds (hosted builds use src/hosted/percpu.c).  Runs at CPL 0.
 *
 * The base is an as_percpu record (include/altstack/percpu.h):
 *
 *   +------------------+ base + 64
 *   | reserved         | +40
 *   | scratch          | +32   syscall entry: the caller's rsp, briefly
 *   | aux_depth        | +24
 *   | aux_lo           | +16
 *   | aux_top          | + 8   what the syscall entry loads into rsp
 *   | self             | + 0   == base: `movq %gs:0, %rax` is the base
 *   +------------------+ base  = GS_BASE = KERNEL_GS_BASE
 *
 * Both GS MSRs get the base.  A kernel without user GS values then never
 * sees GS move, whichever way a swapgs goes; one that loads user GS values
 * keeps the per-CPU base in whichever of the two MSRs is not the user's.
 */
#include "../asm.h"
#include "altstack/percpu.h"

#define MSR_GS_BASE        0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102

/*
 * void as_percpu_set(void *base)
 *   on entry: rdi = base (an as_percpu record, or NULL)
 * wrmsr takes ecx = MSR, edx:eax = value; all three are caller-saved.
 */
AS_FUNC_BEGIN(as_percpu_set)
    testq   %rdi, %rdi
    jz      1f
    movq    %rdi, AS_PERCPU_SELF(%rdi)
1:  movl    %edi, %eax
    movq    %rdi, %rdx
    shrq    $32, %rdx
    movl    $MSR_GS_BASE, %ecx
    wrmsr
    movl    $MSR_KERNEL_GS_BASE, %ecx
    wrmsr
    ret
AS_FUNC_END(as_percpu_set)

/*
 * void *as_percpu_get(void)
 *   returns rax = %gs:0, the record's self pointer.
 */
AS_FUNC_BEGIN(as_percpu_get)
    movq    %gs:AS_PERCPU_SELF, %rax
    ret
AS_FUNC_END(as_percpu_get)

AS_ASM_TRAILER
