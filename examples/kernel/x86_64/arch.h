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

#define KSTACK_SIZE 16384              /* per CPU: exceptions from ring 3 */

/* What user.c keeps per CPU: the kernel context a ring-3 run returns to,
 * and the state of the user-mode checks. */
struct user_cpu {
    as_act ret;                        /* user_run's caller, captured    */
    long exit_code;
    void *gs;                          /* the user's GS_BASE while in ring 3 */
    volatile unsigned long user_ticks, sys_ticks, gs_bad;
    volatile bool in_sys;
    /* upcalls (user_preempt) */
    bool upcall_on;
    uintptr_t up_entry, up_lo, up_hi;  /* scheduler entry and its stack */
    as_act_pool *up_pool;              /* in user memory               */
    unsigned long upcalls, up_deferred, up_rolled, up_starved;
    bool stepping;                     /* single-stepping the scheduler  */
    unsigned step_k, step_n;
    unsigned long step_forced;
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
    char kstack[KSTACK_SIZE] __attribute__((aligned(16)));   /* TSS RSP0 */
    struct user_cpu user;                                     /* user.c */
};

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS   0x43                 /* GDT 0x40 | RPL 3 (SYSRET: STAR + 8)  */
#define USER_CS   0x4b                 /* GDT 0x48 | RPL 3 (SYSRET: STAR + 16) */

/* User mode (x86_64/user.c): arch_user_checks runs user_syscall,
 * user_preempt and isolation in ring 3. */
#define ARCH_USER_MODE 1

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

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

#define MSR_GS_BASE        0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102

void x86_timer_period(uint32_t count);  /* LAPIC initial count, /16 */
unsigned x86_cpu_hw_index(void);

/* x86_64/user.c, for arch.c */
struct cpu;
struct arch_frame;
void x86_user_boot(void);
void x86_user_cpu_init(struct cpu *c);
bool x86_user_tick(struct arch_frame *f);
bool x86_user_fault(struct arch_frame *f);

/* SMAP: kernel accesses to user pages go between these two (stac/clac,
 * where the CPU has SMAP and the kernel enabled it). */
extern bool x86_smap;
static inline void user_access_begin(void)
{
    if (x86_smap)
        __asm__ volatile("stac" : : : "memory");
}

static inline void user_access_end(void)
{
    if (x86_smap)
        __asm__ volatile("clac" : : : "memory");
}

#endif
