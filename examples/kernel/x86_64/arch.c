/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/x86_64/arch.c - serial port, descriptor tables, local
 * APIC (timer, INIT-SIPI-SIPI), SYSCALL MSRs, isa-debug-exit.
 */
#include "kernel.h"

#define COM1          0x3f8
#define DEBUG_EXIT    0xf4             /* -device isa-debug-exit,iobase=0xf4 */
#define LAPIC_BASE    0xfee00000ul
#define LAPIC_ID      0x020
#define LAPIC_EOI     0x0b0
#define LAPIC_SVR     0x0f0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310
#define LAPIC_LVT_TMR 0x320
#define LAPIC_TMR_INIT 0x380
#define LAPIC_TMR_DIV 0x3e0
#define TIMER_VECTOR  0x20
#define MSR_EFER      0xc0000080
#define MSR_STAR      0xc0000081
#define MSR_LSTAR     0xc0000082
#define MSR_SFMASK    0xc0000084
#define AP_TRAMP      0x8000

extern uint64_t gdt[];
extern uint64_t ap_boot_rsp;
extern char ap_tramp[], ap_tramp_end[];
extern void *const exc_table[32];
void syscall_entry(void), timer_entry(void), spurious_entry(void);
void arch_boot_bsp(void), arch_boot_ap(void);
void x86_timer(struct arch_frame *f);
void x86_fault(struct arch_frame *f);
bool x86_smap;

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t lapic_r(unsigned reg)
{
    return *(volatile uint32_t *)(LAPIC_BASE + reg);
}

static inline void lapic_w(unsigned reg, uint32_t v)
{
    *(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}

void arch_putc(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

void arch_exit(bool pass)
{
    /* QEMU exits with status (value << 1) | 1: 33 for pass, 35 for fail. */
    outl(DEBUG_EXIT, pass ? 0x10 : 0x11);
    for (;;)
        __asm__ volatile("cli; hlt");
}

void arch_irq_enable(void)
{
    __asm__ volatile("sti" : : : "memory");
}

void arch_irq_disable(void)
{
    __asm__ volatile("cli" : : : "memory");
}

/* --- IDT ------------------------------------------------------------------- */

struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t ist, type;
    uint16_t off_mid;
    uint32_t off_hi, zero;
};
static struct idt_gate idt[256] __attribute__((aligned(16)));

void idt_set(unsigned vec, void *fn, unsigned ist);
void idt_set(unsigned vec, void *fn, unsigned ist)
{
    uintptr_t a = (uintptr_t)fn;
    idt[vec] = (struct idt_gate){
        .off_lo = (uint16_t)a, .sel = KERNEL_CS, .ist = (uint8_t)ist,
        .type = 0x8e,                  /* present, DPL 0, interrupt gate */
        .off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32),
    };
}

static void load_idt(void)
{
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } r = {
        sizeof idt - 1, (uintptr_t)idt,
    };
    __asm__ volatile("lidt %0" : : "m"(r));
}

/* --- per-CPU setup ---------------------------------------------------------- */

void arch_cpu_init(struct cpu *c)
{
    struct arch_cpu *a = &c->arch;

    as_percpu_set(c);                  /* GS_BASE = KERNEL_GS_BASE = c */
    as_stack aux;
    as_stack_init(&aux, a->aux, sizeof a->aux);
    as_auxstack_set(&aux);

    /* TSS: IST1 is this CPU's interrupt stack, RSP0 the stack exceptions
     * from ring 3 land on; no I/O bitmap. */
    a->tss.ist[0] = (uintptr_t)(a->irq + sizeof a->irq);
    a->tss.rsp[0] = (uintptr_t)(a->kstack + sizeof a->kstack);
    a->tss.iomap_base = sizeof a->tss;
    uintptr_t base = (uintptr_t)&a->tss;
    uint64_t limit = sizeof a->tss - 1;
    unsigned slot = 4 + 2 * c->idx;
    gdt[slot] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
                ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
    gdt[slot + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"(slot * 8));
    load_idt();

    /* SYSCALL: CS 0x08 / SS 0x10, clear IF, TF, DF and AC on entry;
     * SYSRET: SS 0x43, CS 0x4b (boot.S). */
    wrmsr(MSR_STAR, (uint64_t)(USER_DS - 3 - 8) << 48 | (uint64_t)KERNEL_CS << 32);
    wrmsr(MSR_LSTAR, (uintptr_t)syscall_entry);
    wrmsr(MSR_SFMASK, 0x200 | 0x100 | 0x400 | 0x40000);

    lapic_w(LAPIC_SVR, 0x100 | 0xff);  /* enable, spurious vector 0xff */
    a->apic_id = lapic_r(LAPIC_ID) >> 24;
    x86_user_cpu_init(c);              /* CR0.WP, SMEP, SMAP (user.c) */
}

void arch_boot_bsp(void)
{
    outb(0x21, 0xff);                  /* mask the legacy PICs: APIC only */
    outb(0xa1, 0xff);
    /* Exceptions on the current stack (RSP0 from ring 3), but NMI, #DF
     * and #MC, which may come with any stack, on IST1. */
    for (unsigned v = 0; v < 32; v++)
        idt_set(v, exc_table[v], v == 2 || v == 8 || v == 18);
    x86_user_boot();                   /* page tables: the user pages (user.c) */
    idt_set(TIMER_VECTOR, timer_entry, 1);
    idt_set(0xff, spurious_entry, 1);
    cpus[0].idx = 0;
    arch_cpu_init(&cpus[0]);
    kmain();
}

/* --- second CPU -------------------------------------------------------------- */

static volatile unsigned ap_idx;
static char ap_stack[16384] __attribute__((aligned(16)));

void arch_boot_ap(void)
{
    struct cpu *c = &cpus[ap_idx];
    c->idx = ap_idx;
    arch_cpu_init(c);
    kmain_ap();
}

static void delay(unsigned long n)
{
    for (volatile unsigned long i = 0; i < n; i++)
        arch_relax();
}

static void send_ipi(uint32_t apic_id, uint32_t lo)
{
    lapic_w(LAPIC_ICR_HI, apic_id << 24);
    lapic_w(LAPIC_ICR_LO, lo);
    while (lapic_r(LAPIC_ICR_LO) & (1u << 12))   /* delivery pending */
        arch_relax();
}

/* INIT, then two STARTUPs pointing at the trampoline's page (vector 0x08 =
 * 0x8000 >> 12), as the MP specification prescribes.  QEMU numbers the
 * APIC ids 0..n-1. */
void arch_start_cpu(unsigned idx)
{
    memcpy((void *)AP_TRAMP, ap_tramp, (size_t)(ap_tramp_end - ap_tramp));
    ap_idx = idx;
    ap_boot_rsp = (uintptr_t)(ap_stack + sizeof ap_stack);
    send_ipi(idx, 0x4500);             /* INIT, assert */
    delay(100000);
    for (int i = 0; i < 2; i++) {
        send_ipi(idx, 0x4600 | (AP_TRAMP >> 12));
        delay(10000);
    }
}

/* --- timer ------------------------------------------------------------------- */

static uint32_t timer_count = 200000;

void x86_timer_period(uint32_t count)
{
    timer_count = count;
}

void arch_timer_start(void)
{
    lapic_w(LAPIC_TMR_DIV, 0x3);       /* divide by 16 */
    lapic_w(LAPIC_LVT_TMR, TIMER_VECTOR | (1u << 17));  /* periodic */
    lapic_w(LAPIC_TMR_INIT, timer_count);
}

/* This CPU's index, from the hardware rather than GS (QEMU numbers the
 * APIC ids 0..n-1, as cpus[] does). */
unsigned x86_cpu_hw_index(void)
{
    return lapic_r(LAPIC_ID) >> 24;
}

void arch_timer_stop(void)
{
    lapic_w(LAPIC_LVT_TMR, 1u << 16);  /* masked */
    lapic_w(LAPIC_TMR_INIT, 0);
}

void x86_timer(struct arch_frame *f)
{
    lapic_w(LAPIC_EOI, 0);
    if (!x86_user_tick(f))             /* user.c: GS checks, upcalls */
        ktick(f);
}

void x86_fault(struct arch_frame *f)
{
    if (x86_user_fault(f))             /* user.c: a probe's expected fault */
        return;
    kprintf("FAIL cpu exception %lu (error %lx) at rip %lx, rsp %lx\n",
            (unsigned long)f->vector, (unsigned long)f->error,
            (unsigned long)f->rip, (unsigned long)f->rsp);
    arch_exit(false);
}

/* --- system call --------------------------------------------------------------- */

void arch_gs_base_set(void *base)
{
    wrmsr(MSR_GS_BASE, (uintptr_t)base);
}

long arch_syscall(long nr, long a0, long a1)
{
    long r = nr;
    __asm__ volatile("syscall"
                     : "+a"(r), "+D"(a0), "+S"(a1)
                     :
                     : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
    return r;
}

/* --- activations: the interrupt frame <-> as_act ------------------------------------ */

#define RFLAGS_IF 0x200

void arch_act_save(as_act *a, const struct arch_frame *f)
{
    a->r15 = f->r15; a->r14 = f->r14; a->r13 = f->r13; a->r12 = f->r12;
    a->rbp = f->rbp; a->rbx = f->rbx; a->r11 = f->r11; a->r10 = f->r10;
    a->r9 = f->r9;   a->r8 = f->r8;   a->rax = f->rax; a->rcx = f->rcx;
    a->rdx = f->rdx; a->rsi = f->rsi; a->rdi = f->rdi;
    a->rflags = f->rflags;
    a->rip = f->rip;
    a->rsp = f->rsp;
    /* The interrupted FP/SSE state is still in the registers (the entry
     * and all C here are integer-only).  FXSAVE is the XSAVE legacy
     * region; a header with XSTATE_BV = x87|SSE makes it a valid
     * standard-format XSAVE image too. */
    __asm__ volatile("fxsave64 %0" : "=m"(*(unsigned char (*)[512])a->fpu));
    memset(a->fpu + 512, 0, 64);
    a->fpu[512] = 3;
    a->mxcsr = *(const uint32_t *)(const void *)(a->fpu + 24);
    a->fcw = *(const uint16_t *)(const void *)a->fpu;
    a->flags = 0;                      /* no protection keys: the live PKRU */
    a->kind = AS_ACT_FULL;
}

void arch_act_load(struct arch_frame *f, const as_act *a)
{
    f->r15 = a->r15; f->r14 = a->r14; f->r13 = a->r13; f->r12 = a->r12;
    f->rbp = a->rbp; f->rbx = a->rbx; f->r11 = a->r11; f->r10 = a->r10;
    f->r9 = a->r9;   f->r8 = a->r8;   f->rax = a->rax; f->rcx = a->rcx;
    f->rdx = a->rdx; f->rsi = a->rsi; f->rdi = a->rdi;
    f->rip = a->rip;
    f->rsp = a->rsp;
    f->cs = KERNEL_CS;
    f->ss = KERNEL_DS;
    if (as_act_kind(a) == AS_ACT_FULL) {
        f->rflags = a->rflags;
        __asm__ volatile("fxrstor64 %0" : : "m"(*(const unsigned char (*)[512])a->fpu));
    } else {
        /* CALL and FRESH records hold the callee-saved state and the FP
         * control words; a CALL resumes with capture's return value 1. */
        f->rflags = RFLAGS_IF | 0x2;
        if (as_act_kind(a) == AS_ACT_CALL)
            f->rax = 1;
        __asm__ volatile("ldmxcsr %0; fldcw %1" : : "m"(a->mxcsr), "m"(a->fcw));
    }
}
