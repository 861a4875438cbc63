/* SPDX-License-Identifier: MIT */
/*
 * altstack/arch/aarch64/entry.h - EL1 exception entry onto per-CPU exception
 * stacks, for aarch64 kernels (freestanding builds).  Assembler macros for
 * a kernel's vector table, plus the frame's C view.
 *
 * The model (Unikraft's): kernel code and its contexts run at EL1 with
 * SPSel = 1, each on its own stack (SP_EL1).  SP_EL0, which no EL1 code
 * then uses, holds the middle of this CPU's double-size exception stack
 * buffer whenever EL1 runs (EL0 tasks have it meanwhile: see "EL0 tasks"
 * below); TPIDR_EL1 holds the CPU's as_percpu record.
 *
 *   buf + 2*half  +----------------------+  trap top: synchronous
 *                 |  trap half           |  exceptions, svc, and the aux
 *                 |  (= the aux stack)   |  stack (as_call_on_aux)
 *   buf + half    +----------------------+  <- SP_EL0, the middle
 *                 |  guard (optional)    |  AS_EL1_STACK_GUARD bytes the
 *                 +----------------------+  kernel may leave unmapped
 *                 |  IRQ half            |  IRQ / FIQ / SError
 *   buf           +----------------------+
 *
 * as_el1_stacks_set(buf, half) (altstack/percpu.h) sets it up.  Entry from
 * EL1h needs no free register and never touches the interrupted stack:
 * its first instruction, `msr spsel, #0`, makes sp the middle; a trap entry
 * then moves up by `half`, an IRQ entry down by the guard.  So an
 * interrupt that arrives while code runs on the aux stack (the trap half)
 * lands in the IRQ half, and the two never share memory.
 *
 * While a handler runs, SPSel = 0 and sp is SP_EL0 itself.  An exception
 * taken then arrives in the "current EL with SP_EL0" vectors, whose entry
 * (kind `nested`) simply continues below the handler's sp.  The exit
 * returns SP_EL0 to the middle, so the invariant "SP_EL0 is the middle
 * whenever SPSel = 1" holds at every EL1h instruction.
 *
 * Vector table sketch.  An entry and its exit take more than the 0x80
 * bytes of a vector slot, so each slot branches to a routine:
 *
 *     .balign 2048
 *   vectors:                                   // VBAR_EL1
 *     .balign 0x80; b el1t_sync                // current EL, SP_EL0
 *     .balign 0x80; b el1t_irq
 *     ...                                      // FIQ, SError
 *     .balign 0x80; b el1h_sync                // current EL, SP_ELx
 *     .balign 0x80; b el1h_irq
 *     ...                                      // FIQ, SError, lower ELs
 *
 *   el1h_sync: AS_EL1_ENTRY trap;   bl sync_handler; AS_EL1_EXIT trap
 *   el1h_irq:  AS_EL1_ENTRY irq;    bl irq_handler;  AS_EL1_EXIT irq
 *   el1t_sync: AS_EL1_ENTRY nested; bl sync_handler; AS_EL1_EXIT nested
 *   el1t_irq:  AS_EL1_ENTRY nested; bl irq_handler;  AS_EL1_EXIT nested
 *
 * The handler gets x0 = the frame (struct as_el1_frame below) and may
 * rewrite it: AS_EL1_EXIT resumes whatever state the frame then holds,
 * including another context's sp, pc and pstate (the eret path of a
 * preemptive scheduler).  For `nested` frames the stack pointer field is
 * informational: the exit returns to the handler's own stack.
 *
 * EL0 tasks.  An EL0 task's stack is SP_EL0, so while it runs SP_EL0 is
 * not the middle; instead SP_EL1 holds this CPU's trap top (buf + 2*half),
 * which AS_EL0_EXIT leaves there.  An exception from EL0 is taken with
 * SPSel = 1, so its entry (AS_EL0_ENTRY, in the "lower EL, AArch64"
 * vectors) starts on that top: a trap stays there, an IRQ moves down into
 * the IRQ half.  It saves the user's SP_EL0 in the frame, puts the middle
 * back into SP_EL0 and ends with SPSel = 0 on the frame: the handler runs
 * exactly as after AS_EL1_ENTRY, on the same stacks, with the per-CPU
 * base in TPIDR_EL1 (EL0 can neither read nor write it), and exceptions it
 * takes enter through the `nested` path.  A frame built by an EL0 entry
 * sits where the same kind of EL1h entry puts its own (trap: top - 272;
 * irq: middle - guard - 272), so the handler may turn one into the other:
 *
 *   frame's pstate on exit    leave with
 *   EL0t (M[4:0] = 0)         AS_EL0_EXIT kind: SP_EL0 = the frame's sp,
 *                             SP_EL1 = the trap top, eret to EL0
 *   EL1h                      AS_EL1_EXIT kind: SP_EL1 = the frame's sp,
 *                             SP_EL0 = the middle, eret to EL1
 *
 * so a kernel enters user mode by rewriting a trap frame (its own svc) into
 * an EL0 one, and gets back by rewriting an EL0 frame into the saved EL1h
 * one; its vectors test the frame's pstate after the handler:
 *
 *   el0_sync:  AS_EL0_ENTRY trap;   bl sync_handler;  b ret_trap
 *   el0_irq:   AS_EL0_ENTRY irq;    bl irq_handler;   b ret_irq
 *   ret_trap:  ldr x0, [sp, #AS_EF_PSTATE]; tst x0, #0x1f; b.eq 1f
 *              AS_EL1_EXIT trap
 *   1:         AS_EL0_EXIT trap
 *
 * The EL0 entry assumes nothing is left on the half it lands on: true as
 * long as every handler that started on it has ended (a kernel that
 * blocks inside a handler and runs EL0 meanwhile must move the handler off
 * the exception stacks first).
 *
 * CFI.  The macros emit none: an entry point is an outermost frame.
 */
#ifndef ALTSTACK_ARCH_AARCH64_ENTRY_H
#define ALTSTACK_ARCH_AARCH64_ENTRY_H

#include "../../percpu.h"

/* Size of each half of the exception stack buffer (a multiple of 4096, at
 * most 16 MiB), and the guard kept below the middle for the IRQ half.
 * Override with -D; as_el1_stacks_set must be given the same half. */
#ifndef AS_EL1_STACK_HALF
# define AS_EL1_STACK_HALF 16384
#endif
#ifndef AS_EL1_STACK_GUARD
# define AS_EL1_STACK_GUARD 0
#endif

/*
 * Exception frame (struct as_el1_frame), at sp after AS_EL1_ENTRY:
 *
 *   +---------------+ frame + 272 (16-byte aligned, like the frame)
 *   | SPSR_EL1      | +264   pstate to return with
 *   | ELR_EL1       | +256   pc to return to
 *   | sp            | +248   the interrupted SP_EL1 (nested: SP_EL0)
 *   | x30           | +240
 *   | x28 | x29     | +224
 *   | ...           |        x2 .. x27 in pairs
 *   | x0  | x1      | +0
 *   +---------------+ frame = sp = x0 for the handler
 */
#define AS_EF_X0      0       /* x0 .. x29 in pairs at 8 * n  */
#define AS_EF_X30   240
#define AS_EF_SP    248       /* the interrupted SP_EL1 (SP_EL0 for nested) */
#define AS_EF_PC    256       /* ELR_EL1                       */
#define AS_EF_PSTATE 264      /* SPSR_EL1                      */
#define AS_EF_SIZE  272

#ifdef __ASSEMBLER__

/*
 * AS_EF_STORE_X0_X29 / AS_EF_LOAD_X2_X29 - the general registers of the
 * frame at sp (the layout above), for the entry and exit macros below:
 * the store of x0-x29, and the load of x2-x29 (each exit loads x0, x1 and
 * x30 itself, around its own use of them).
 */
.macro AS_EF_STORE_X0_X29
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
.endm
.macro AS_EF_LOAD_X2_X29
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
.endm

/*
 * AS_EL1_ENTRY kind - the first instructions of a vector entry.
 *   kind = irq     from EL1h: the IRQ half (below the middle and guard)
 *          trap    from EL1h: the trap half (top of the buffer)
 *          nested  from EL1t (a handler was running): below its sp
 *   on exit: SPSel = 0, sp = x0 = the frame, every GPR saved in it, and
 *            the interrupted sp, ELR_EL1 and SPSR_EL1 too.  x1, x2 hold
 *            copies of pc and pstate; x3-x30 are as interrupted.
 * The EL1h-only `msr spsel, #1; mov x2, sp; msr spsel, #0` reads SP_EL1,
 * which EL1 cannot name directly (mrs sp_el1 is an EL2 register access).
 * Interrupts are masked (PSTATE.I was set by the exception), so nothing
 * runs on either stack meanwhile.
 */
.macro AS_EL1_ENTRY kind
    msr     spsel, #0
    .ifc \kind, trap
    add     sp, sp, #AS_EL1_STACK_HALF
    .endif
    .ifc \kind, irq
    .if AS_EL1_STACK_GUARD
    sub     sp, sp, #AS_EL1_STACK_GUARD
    .endif
    .endif
    sub     sp, sp, #AS_EF_SIZE
    AS_EF_STORE_X0_X29
    .ifc \kind, nested
    add     x2, sp, #AS_EF_SIZE
    .else
    msr     spsel, #1
    mov     x2, sp
    msr     spsel, #0
    .endif
    stp     x30, x2, [sp, #AS_EF_X30]
    mrs     x1, elr_el1
    mrs     x2, spsr_el1
    stp     x1, x2, [sp, #AS_EF_PC]
    mov     x0, sp
.endm

/*
 * AS_EL1_EXIT kind - resume the state in the frame at sp (same kind as the
 * entry).  For irq and trap, the frame's sp becomes SP_EL1 and SP_EL0
 * returns to the middle; then eret to the frame's pc with its pstate.
 */
.macro AS_EL1_EXIT kind
    ldp     x0, x1, [sp, #AS_EF_PC]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    .ifnc \kind, nested
    ldr     x0, [sp, #AS_EF_SP]
    msr     spsel, #1
    mov     sp, x0
    msr     spsel, #0
    .endif
    AS_EF_LOAD_X2_X29
    ldr     x30, [sp, #AS_EF_X30]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #AS_EF_SIZE
    .ifc \kind, trap
    sub     sp, sp, #AS_EL1_STACK_HALF
    .endif
    .ifc \kind, irq
    .if AS_EL1_STACK_GUARD
    add     sp, sp, #AS_EL1_STACK_GUARD
    .endif
    .endif
    eret
.endm

/*
 * AS_EL0_ENTRY kind - the first instructions of a lower-EL (AArch64) vector
 * entry.  kind = trap (synchronous, svc) or irq (IRQ, FIQ, SError).
 *   on entry: SPSel = 1, sp = SP_EL1 = this CPU's trap top (left there by
 *             AS_EL0_EXIT), SP_EL0 = the user's sp.
 *   on exit:  as AS_EL1_ENTRY: SPSel = 0, sp = x0 = the frame, every GPR
 *             saved in it, the user's sp (SP_EL0) in its sp slot, ELR_EL1
 *             and SPSR_EL1 too, SP_EL0 = the middle again.  x1, x2 hold
 *             the middle and pstate; x3-x30 are as interrupted.
 * The middle is computed from sp (the trap top minus half), so nothing is
 * read from memory the user could reach.
 */
.macro AS_EL0_ENTRY kind
    .ifc \kind, irq
    sub     sp, sp, #AS_EL1_STACK_HALF
    .if AS_EL1_STACK_GUARD
    sub     sp, sp, #AS_EL1_STACK_GUARD
    .endif
    .endif
    sub     sp, sp, #AS_EF_SIZE
    AS_EF_STORE_X0_X29
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #AS_EF_X30]
    mrs     x1, elr_el1
    mrs     x2, spsr_el1
    stp     x1, x2, [sp, #AS_EF_PC]
    .ifc \kind, trap
    add     x1, sp, #AS_EF_SIZE
    sub     x1, x1, #AS_EL1_STACK_HALF
    .else
    add     x1, sp, #AS_EF_SIZE
    .if AS_EL1_STACK_GUARD
    add     x1, x1, #AS_EL1_STACK_GUARD
    .endif
    .endif
    msr     sp_el0, x1
    mov     x0, sp
    msr     spsel, #0
    mov     sp, x0
.endm

/*
 * AS_EL0_EXIT kind - resume the EL0 state in the frame at sp (SPSel = 0,
 * kind = the kind of the entry that put the frame there, EL0 or EL1h).
 * The frame's pstate must be an EL0t one.  SP_EL0 becomes the frame's sp,
 * SP_EL1 this CPU's trap top (for the next entry from EL0); then eret.
 * SP_EL0 can only be written with SPSel = 1, so the exit moves to SP_EL1
 * first, onto the frame itself.
 */
.macro AS_EL0_EXIT kind
    ldp     x0, x1, [sp, #AS_EF_PC]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    mov     x0, sp
    msr     spsel, #1
    mov     sp, x0
    ldr     x1, [sp, #AS_EF_SP]
    msr     sp_el0, x1
    AS_EF_LOAD_X2_X29
    ldr     x30, [sp, #AS_EF_X30]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #AS_EF_SIZE
    .ifc \kind, irq
    .if AS_EL1_STACK_GUARD
    add     sp, sp, #AS_EL1_STACK_GUARD
    .endif
    add     sp, sp, #AS_EL1_STACK_HALF
    .endif
    eret
.endm

#else /* C */

#include <stdint.h>

/* The C view of the frame AS_EL1_ENTRY builds. */
typedef struct as_el1_frame {
    uint64_t x[31];         /* x0 .. x30                             */
    uint64_t sp;            /* interrupted stack pointer             */
    uint64_t pc;            /* ELR_EL1: where to resume              */
    uint64_t pstate;        /* SPSR_EL1                              */
} as_el1_frame;

#ifndef __cplusplus
_Static_assert(sizeof(as_el1_frame) == AS_EF_SIZE, "as_el1_frame layout");
_Static_assert(__builtin_offsetof(as_el1_frame, x[30]) == AS_EF_X30, "as_el1_frame layout");
_Static_assert(__builtin_offsetof(as_el1_frame, sp) == AS_EF_SP, "as_el1_frame layout");
_Static_assert(__builtin_offsetof(as_el1_frame, pc) == AS_EF_PC, "as_el1_frame layout");
_Static_assert(__builtin_offsetof(as_el1_frame, pstate) == AS_EF_PSTATE, "as_el1_frame layout");
#endif

#endif /* __ASSEMBLER__ */

#endif /* ALTSTACK_ARCH_AARCH64_ENTRY_H */
