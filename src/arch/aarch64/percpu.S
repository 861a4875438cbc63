/* SPDX-License-Identifier: MIT */
/*
 * src/arch/aarch64/percpu.S - the per-CPU base register of freestanding
 * aarch64 builds (hosted builds use src/hosted/percpu.c).  Runs at EL1.
 *
 * The base is an as_percpu record (include/altstack/percpu.h), kept in
 * TPIDR_EL1, which EL0 cannot read:
 *
 *   +------------------+ base + 64
 *   | reserved         | +40
 *   | scratch          | +32   (x86_64 only)
 *   | aux_depth        | +24
 *   | aux_lo           | +16
 *   | aux_top          | + 8
 *   | self             | + 0   == base
 *   +------------------+ base  = TPIDR_EL1
 *
 * SP_EL0 holds the middle of the CPU's exception stacks (see
 * include/altstack/arch/aarch64/entry.h); EL1 code runs with SPSel = 1,
 * so SP_EL0 is not the stack of anything while it holds that value.
 */
#include "../asm.h"
#include "altstack/percpu.h"

/*
 * void as_percpu_set(void *base)
 *   on entry: x0 = base (an as_percpu record, or NULL).  A leaf: lr is not
 *   saved, so there is nothing to sign.
 */
AS_FUNC_BEGIN(as_percpu_set)
    cbz     x0, 1f
    str     x0, [x0, #AS_PERCPU_SELF]
1:  msr     tpidr_el1, x0
    ret
AS_FUNC_END(as_percpu_set)

/* void *as_percpu_get(void): x0 = TPIDR_EL1. */
AS_FUNC_BEGIN(as_percpu_get)
    mrs     x0, tpidr_el1
    ret
AS_FUNC_END(as_percpu_get)

/*
 * void as__sp_el0_set(uintptr_t sp): SP_EL0 = x0.  Called with SPSel = 1,
 * so this writes the banked register, not the running stack pointer.
 */
AS_FUNC_HIDDEN(as__sp_el0_set)
    msr     sp_el0, x0
    ret
AS_FUNC_END(as__sp_el0_set)

AS_ASM_TRAILER
