/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/aarch64/arch.c - PL011 UART, GICv2, the EL1 virtual
 * timer, PSCI (CPU_ON, SYSTEM_OFF) and semihosting exit, on QEMU's virt
 * machine.
 */
#include "kernel.h"

#define UART_BASE   0x09000000ul
#define UART_DR     0x000
#define UART_FR     0x018
#define UART_TXFF   (1u << 5)
#define GICD_BASE   0x08000000ul
#define GICC_BASE   0x08010000ul
#define GICD_CTLR   0x000
#define GICD_ISENABLER0 0x100
#define GICC_CTLR   0x000
#define GICC_PMR    0x004
#define GICC_IAR    0x00c
#define GICC_EOIR   0x010
#define TIMER_INTID 27                 /* EL1 virtual timer, PPI 11 */
#define PSCI_CPU_ON     0xc4000003ul
#define PSCI_SYSTEM_OFF 0x84000008ul

#define ESR_EC_SVC64 0x15

void secondary_entry(void);
void arch_boot_bsp(void), arch_boot_ap(void);
void a64_sync(as_el1_frame *f);
void a64_irq(as_el1_frame *f);

#define SYSREG_READ(name) ({ uint64_t v_; __asm__ volatile("mrs %0, " #name : "=r"(v_)); v_; })
#define SYSREG_WRITE(name, v) __asm__ volatile("msr " #name ", %0" : : "r"((uint64_t)(v)) : "memory")

static inline void mmio_w(uintptr_t a, uint32_t v)
{
    *(volatile uint32_t *)a = v;
}

static inline uint32_t mmio_r(uintptr_t a)
{
    return *(volatile uint32_t *)a;
}

void arch_putc(char c)
{
    while (mmio_r(UART_BASE + UART_FR) & UART_TXFF)
        ;
    mmio_w(UART_BASE + UART_DR, (uint8_t)c);
}

static unsigned long psci(unsigned long fn, unsigned long a, unsigned long b, unsigned long c)
{
    register unsigned long x0 __asm__("x0") = fn;
    register unsigned long x1 __asm__("x1") = a;
    register unsigned long x2 __asm__("x2") = b;
    register unsigned long x3 __asm__("x3") = c;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
    return x0;
}

/* Semihosting SYS_EXIT with ADP_Stopped_ApplicationExit: QEMU (run with
 * -semihosting) exits with the given status.  Without semihosting the hlt
 * traps; PSCI SYSTEM_OFF is the fallback, and the printed verdict still
 * says how the run went. */
void arch_exit(bool pass)
{
    static uint64_t block[2];
    block[0] = 0x20026;
    block[1] = pass ? 0 : 1;
    register uint64_t x0 __asm__("x0") = 0x18;
    register uint64_t x1 __asm__("x1") = (uintptr_t)block;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    psci(PSCI_SYSTEM_OFF, 0, 0, 0);
    for (;;)
        __asm__ volatile("wfi");
}

void arch_irq_enable(void)
{
    __asm__ volatile("msr daifclr, #2" : : : "memory");
}

void arch_irq_disable(void)
{
    __asm__ volatile("msr daifset, #2" : : : "memory");
}

/* --- per-CPU setup ---------------------------------------------------------- */

void arch_cpu_init(struct cpu *c)
{
    arch_mmu_init();                                   /* pages, user pages */
    as_percpu_set(c);                                  /* TPIDR_EL1 = c */
    as_el1_stacks_set(c->arch.exc, AS_EL1_STACK_HALF); /* SP_EL0, aux stack */
    mmio_w(GICD_BASE + GICD_ISENABLER0, 1u << TIMER_INTID);   /* banked per CPU */
    mmio_w(GICC_BASE + GICC_PMR, 0xff);
    mmio_w(GICC_BASE + GICC_CTLR, 1);
}

void arch_boot_bsp(void)
{
    mmio_w(GICD_BASE + GICD_CTLR, 1);
    cpus[0].idx = 0;
    arch_cpu_init(&cpus[0]);
    kmain();
}

static char ap_stack[NCPU][16384] __attribute__((aligned(16)));
static volatile unsigned ap_idx;

void arch_boot_ap(void)
{
    struct cpu *c = &cpus[ap_idx];
    c->idx = ap_idx;
    arch_cpu_init(c);
    kmain_ap();
}

/* QEMU's virt machine numbers the cores' MPIDR affinity 0 .. n-1.  The
 * context value reaches the new CPU in x0, with its MMU still off: passing
 * the stack in a register avoids reading memory the caches may hold. */
void arch_start_cpu(unsigned idx)
{
    ap_idx = idx;
    unsigned long r = psci(PSCI_CPU_ON, idx, (uintptr_t)secondary_entry,
                           (uintptr_t)(ap_stack[idx] + sizeof ap_stack[idx]));
    if (r)
        kprintf("psci CPU_ON(%u) failed: %ld\n", idx, (long)r);
}

/* --- timer ------------------------------------------------------------------- */

static uint64_t tick_period;
static unsigned tick_us = 1000;

void arch_timer_period_us(unsigned us)
{
    tick_us = us;
}

void arch_timer_start(void)
{
    tick_period = SYSREG_READ(cntfrq_el0) * tick_us / 1000000;   /* 1 ms unless set */
    SYSREG_WRITE(cntv_tval_el0, tick_period);
    SYSREG_WRITE(cntv_ctl_el0, 1);                     /* enabled, unmasked */
}

void arch_timer_stop(void)
{
    SYSREG_WRITE(cntv_ctl_el0, 2);                     /* masked */
}

void a64_irq(as_el1_frame *f)
{
    uint32_t iar = mmio_r(GICC_BASE + GICC_IAR);
    uint32_t id = iar & 0x3ff;
    if (id == 1023)
        return;                                        /* spurious */
    if (id == TIMER_INTID)
        SYSREG_WRITE(cntv_tval_el0, tick_period);
    mmio_w(GICC_BASE + GICC_EOIR, iar);
    if (id == TIMER_INTID) {
        ktick(f);
        if ((f->pstate & 0x1f) == 0)
            el0_tick(f);                               /* EL0 was running */
    }
}

/* --- synchronous exceptions: svc is the system call ---------------------------- */

void a64_sync(as_el1_frame *f)
{
    uint64_t esr = SYSREG_READ(esr_el1);
    if (el0_sync(f, esr))
        return;
    if (esr >> 26 == ESR_EC_SVC64) {
        f->x[0] = (uint64_t)ksyscall((long)f->x[8], (long)f->x[0], (long)f->x[1], f->sp);
        return;                                        /* ELR is past the svc */
    }
    a64_bad(f, 100);
}

void a64_bad(as_el1_frame *f, unsigned long vector)
{
    kprintf("FAIL exception (vector %lu) esr %lx far %lx elr %lx sp %lx\n", vector,
            (unsigned long)SYSREG_READ(esr_el1), (unsigned long)SYSREG_READ(far_el1),
            (unsigned long)f->pc, (unsigned long)f->sp);
    arch_exit(false);
}

/* --- system call ------------------------------------------------------------------ */

long arch_syscall(long nr, long a0, long a1)
{
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a0;
    register long x1 __asm__("x1") = a1;
    __asm__ volatile("svc #0" : "+r"(x0), "+r"(x1) : "r"(x8) : "memory");
    return x0;
}

/* --- activations: the exception frame <-> as_act ------------------------------------ */

#define PSTATE_EL1H 0x5                /* EL1 with SP_EL1, DAIF clear */

/* The frame is the record's first 272 bytes: x0-x30, sp, pc, pstate. */
_Static_assert(__builtin_offsetof(as_act, x) == 0 && __builtin_offsetof(as_act, sp) == AS_EF_SP &&
               __builtin_offsetof(as_act, pc) == AS_EF_PC &&
               __builtin_offsetof(as_act, pstate) == AS_EF_PSTATE,
               "as_act starts with an as_el1_frame");

void arch_act_save(as_act *a, const as_el1_frame *f)
{
    memcpy(a, f, sizeof *f);
    /* q0-q31 still hold the interrupted values: the entry and all C here
     * are integer-only. */
    __asm__ volatile(
        "stp q0, q1, [%0, #0]\n\t"      "stp q2, q3, [%0, #32]\n\t"
        "stp q4, q5, [%0, #64]\n\t"     "stp q6, q7, [%0, #96]\n\t"
        "stp q8, q9, [%0, #128]\n\t"    "stp q10, q11, [%0, #160]\n\t"
        "stp q12, q13, [%0, #192]\n\t"  "stp q14, q15, [%0, #224]\n\t"
        "stp q16, q17, [%0, #256]\n\t"  "stp q18, q19, [%0, #288]\n\t"
        "stp q20, q21, [%0, #320]\n\t"  "stp q22, q23, [%0, #352]\n\t"
        "stp q24, q25, [%0, #384]\n\t"  "stp q26, q27, [%0, #416]\n\t"
        "stp q28, q29, [%0, #448]\n\t"  "stp q30, q31, [%0, #480]"
        : : "r"(a->v) : "memory");
    a->fpsr = (uint32_t)SYSREG_READ(fpsr);
    a->fpcr = (uint32_t)SYSREG_READ(fpcr);
    a->kind = AS_ACT_FULL;
}

void arch_act_load(as_el1_frame *f, const as_act *a)
{
    memcpy(f, a, sizeof *f);
    if (as_act_kind(a) == AS_ACT_FULL) {
        __asm__ volatile(
            "ldp q0, q1, [%0, #0]\n\t"      "ldp q2, q3, [%0, #32]\n\t"
            "ldp q4, q5, [%0, #64]\n\t"     "ldp q6, q7, [%0, #96]\n\t"
            "ldp q8, q9, [%0, #128]\n\t"    "ldp q10, q11, [%0, #160]\n\t"
            "ldp q12, q13, [%0, #192]\n\t"  "ldp q14, q15, [%0, #224]\n\t"
            "ldp q16, q17, [%0, #256]\n\t"  "ldp q18, q19, [%0, #288]\n\t"
            "ldp q20, q21, [%0, #320]\n\t"  "ldp q22, q23, [%0, #352]\n\t"
            "ldp q24, q25, [%0, #384]\n\t"  "ldp q26, q27, [%0, #416]\n\t"
            "ldp q28, q29, [%0, #448]\n\t"  "ldp q30, q31, [%0, #480]"
            : : "r"(a->v) : "memory");
        SYSREG_WRITE(fpsr, a->fpsr);
    } else {
        /* CALL and FRESH records: callee-saved state, d8-d15 in the low
         * halves of v[8..15], FPCR; a CALL resumes with capture's 1. */
        __asm__ volatile(
            "ldr d8, [%0, #128]\n\t"  "ldr d9, [%0, #144]\n\t"
            "ldr d10, [%0, #160]\n\t" "ldr d11, [%0, #176]\n\t"
            "ldr d12, [%0, #192]\n\t" "ldr d13, [%0, #208]\n\t"
            "ldr d14, [%0, #224]\n\t" "ldr d15, [%0, #240]"
            : : "r"(a->v) : "memory");
        f->pstate = PSTATE_EL1H;
        if (as_act_kind(a) == AS_ACT_CALL)
            f->x[0] = 1;
    }
    SYSREG_WRITE(fpcr, a->fpcr);
}
