/* SPDX-License-Identifier: MIT */
/* examples/kernel/aarch64/arch.h - the aarch64 half of kernel.h. */
#ifndef ARCH_H
#define ARCH_H

#include <altstack/arch/aarch64/entry.h>

/* The interrupt frame is the library's exception frame. */
#define arch_frame as_el1_frame

_Static_assert(AS_EL1_STACK_HALF == AUX_STACK_SIZE && AS_EL1_STACK_HALF == IRQ_STACK_SIZE,
               "each half of the exception stacks is one of the two stacks");

struct arch_cpu {
    /* IRQ half, then the trap half (this CPU's aux stack); SP_EL0 = middle. */
    char exc[2 * AS_EL1_STACK_HALF] __attribute__((aligned(16)));
};

/* User mode (el0.c): arch_user_checks (kernel.h) runs user_syscall,
 * user_preempt and isolation at EL0. */
#define ARCH_USER_MODE 1
void arch_mmu_init(void);                   /* every CPU: the page map        */
bool el0_sync(as_el1_frame *f, uint64_t esr); /* svc / aborts of user mode    */
void el0_tick(as_el1_frame *f);             /* a tick that interrupted EL0    */
void arch_timer_period_us(unsigned us);     /* for the next arch_timer_start  */
__attribute__((noreturn)) void a64_bad(as_el1_frame *f, unsigned long vector);

static inline unsigned long arch_irq_save(void)
{
    unsigned long f;
    __asm__ volatile("mrs %0, daif; msr daifset, #2" : "=r"(f) : : "memory");
    return f;
}

static inline void arch_irq_restore(unsigned long f)
{
    __asm__ volatile("msr daif, %0" : : "r"(f) : "memory");
}

static inline void arch_relax(void)
{
    __asm__ volatile("yield" : : : "memory");
}

#endif
