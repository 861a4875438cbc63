/* SPDX-License-Identifier: MIT */
/* examples/kernel/x86_64/arch.h - the x86_64 half of kernel.h. */
#ifndef ARCH_H
#define ARCH_H

/* What entry.S pushes for an interrupt or exception, lowest address first:
 * the GPRs it saves, then vector and error code, then the CPU's own
 * interrupt frame (RIP, CS, RFLAGS, RSP, SS). */
struct arch_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3, iomap_base;
} __attribute__((packed));

struct arch_cpu {
    struct tss tss;
    uint32_t apic_id;
    char aux[AUX_STACK_SIZE] __attribute__((aligned(16)));
    char irq[IRQ_STACK_SIZE] __attribute__((aligned(16)));   /* IST1 */
};

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10

static inline unsigned long arch_irq_save(void)
{
    unsigned long f;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(f) : : "memory");
    return f;
}

static inline void arch_irq_restore(unsigned long f)
{
    if (f & 0x200)
        __asm__ volatile("sti" : : : "memory");
}

static inline void arch_relax(void)
{
    __asm__ volatile("pause" : : : "memory");
}

#endif
