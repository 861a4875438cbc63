/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/common/kernel.h - what the portable part of the example
 * kernels (main.c, lib.c) needs from each architecture, and what it gives.
 *
 * Each CPU's data starts with the library's as_percpu record, so the base
 * register (GS_BASE / TPIDR_EL1) points at both at once.
 */
#ifndef KERNEL_H
#define KERNEL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <altstack.h>

#define NCPU 2
#define AUX_STACK_SIZE  16384   /* per CPU: syscalls, as_call_on_aux        */
#define IRQ_STACK_SIZE  16384   /* per CPU: interrupts (IST1 / the IRQ half) */

#include "arch.h"               /* struct arch_cpu, inline helpers          */

struct cpu {
    as_percpu pc;               /* first: the base register points here */
    unsigned idx;
    volatile unsigned long ticks;
    struct arch_cpu arch;
};

extern struct cpu cpus[NCPU];

static inline struct cpu *this_cpu(void)
{
    return (struct cpu *)as_percpu_get();
}

/* --- provided by arch/<arch>/ -------------------------------------------- */
void arch_putc(char c);
__attribute__((noreturn)) void arch_exit(bool pass);
void arch_cpu_init(struct cpu *c);          /* base register, aux stack, vectors */
void arch_start_cpu(unsigned idx);          /* start CPU idx at kmain_ap()       */
long arch_syscall(long nr, long a0, long a1);
#if AS_ARCH_X86_64
void arch_gs_base_set(void *base);         /* GS_BASE only, as a user GS would */
#endif
void arch_timer_start(void);                /* periodic tick on this CPU         */
void arch_timer_stop(void);
void arch_irq_enable(void);
void arch_irq_disable(void);

/* Fill `a` as an AS_ACT_FULL record from an interrupt frame (every GPR,
 * flags, pc, sp, and the FP/SIMD registers, which are still live), and
 * put the state a record holds into a frame, for the interrupt return. */
void arch_act_save(as_act *a, const struct arch_frame *f);
void arch_act_load(struct arch_frame *f, const as_act *a);

#if ARCH_USER_MODE
/* Ring 3 / EL0 (issue 16): user_syscall, user_preempt and isolation, each
 * reported through kcheck.  Called by kmain after check_preempt, with the
 * timer stopped, interrupts off and cpu1 idle in kmain_ap. */
void arch_user_checks(void);
#endif

/* --- provided by common/ -------------------------------------------------- */
void kmain(void);                           /* BSP, after arch boot              */
void kmain_ap(void);                        /* APs, after arch boot              */
long ksyscall(long nr, long a0, long a1, uintptr_t caller_sp);
/* The timer interrupt, with the interrupted state in the arch's frame;
 * may replace the frame's contents with another context's state. */
void ktick(struct arch_frame *f);

void kcheck(bool ok, const char *name);     /* PASS/FAIL name, counted   */
void krun_on_ap(void (*fn)(void));          /* fn() on cpu1, then return */
void kprintf(const char *fmt, ...);
#include "mem.h"                            /* memcpy, memset, ... */

#endif
