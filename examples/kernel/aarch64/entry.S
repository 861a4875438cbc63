/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/aarch64/entry.S - the EL1 vector table.
 *
 * Every entry branches to a routine built from the library's AS_EL1_ENTRY /
 * AS_EL1_EXIT (include/altstack/arch/aarch64/entry.h):
 *
 *   from EL1h (kernel code, contexts)    sync/svc -> trap half (aux stack)
 *                                        IRQ      -> IRQ half
 *   from EL1t (a handler was running)    both     -> below the handler's sp
 *   from EL0 (user tasks, AS_EL0_ENTRY)  sync/svc -> trap half (aux stack)
 *                                        IRQ      -> IRQ half
 *
 * a64_irq / a64_sync (arch.c) get x0 = the frame.  A timer tick may rewrite
 * the frame with another context's state, and a system call may turn an
 * EL1h frame into an EL0 one (entering user mode) or back: the exits look
 * at the frame's pstate and leave through AS_EL0_EXIT or AS_EL1_EXIT.
 */
#include <altstack/arch/aarch64/entry.h>

    .text
    .balign 2048
    .globl  vectors
vectors:
    /* current EL, SP_EL0: a handler was running */
    .balign 0x80
    b       el1t_sync
    .balign 0x80
    b       el1t_irq
    .balign 0x80
    b       bad_2
    .balign 0x80
    b       bad_3
    /* current EL, SP_ELx: kernel code and its contexts */
    .balign 0x80
    b       el1h_sync
    .balign 0x80
    b       el1h_irq
    .balign 0x80
    b       bad_6
    .balign 0x80
    b       bad_7
    /* lower EL, AArch64: user tasks */
    .balign 0x80
    b       el0_sync
    .balign 0x80
    b       el0_irq
    .balign 0x80
    b       bad_10
    .balign 0x80
    b       bad_11
    /* lower EL, AArch32: none */
    .irp n, 12, 13, 14, 15
    .balign 0x80
    b       bad_\n
    .endr

el1h_sync:
    AS_EL1_ENTRY trap
    bl      a64_sync
    b       ret_trap

el1h_irq:
    AS_EL1_ENTRY irq
    bl      a64_irq
    b       ret_irq

el0_sync:
    AS_EL0_ENTRY trap
    bl      a64_sync
    b       ret_trap

el0_irq:
    AS_EL0_ENTRY irq
    bl      a64_irq
    b       ret_irq

/* Leave by the frame's pstate: M[4:0] = 0 is EL0t. */
ret_trap:
    ldr     x0, [sp, #AS_EF_PSTATE]
    tst     x0, #0x1f
    b.eq    1f
    AS_EL1_EXIT trap
1:  AS_EL0_EXIT trap

ret_irq:
    ldr     x0, [sp, #AS_EF_PSTATE]
    tst     x0, #0x1f
    b.eq    1f
    AS_EL1_EXIT irq
1:  AS_EL0_EXIT irq

el1t_sync:
    AS_EL1_ENTRY nested
    bl      a64_sync
    AS_EL1_EXIT nested

el1t_irq:
    AS_EL1_ENTRY nested
    bl      a64_irq
    AS_EL1_EXIT nested

    .irp n, 2, 3, 6, 7
bad_\n:
    AS_EL1_ENTRY trap
    mov     x1, #\n
    bl      a64_bad
    .endr

    .irp n, 10, 11, 12, 13, 14, 15
bad_\n:
    AS_EL0_ENTRY trap
    mov     x1, #\n
    bl      a64_bad
    .endr

    .section .note.GNU-stack, "", %progbits
