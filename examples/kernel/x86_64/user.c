/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/x86_64/user.c - ring 3: the user pages, SMEP/SMAP, entry
 * to and exit from user mode, the system calls of the ring-3 program
 * (x86_64/uprog.c, linked in with its own copy of the library, every
 * symbol prefixed u_), and the checks that use them:
 *
 *   user_syscall  on each CPU a ring-3 task on a 1 KiB user stack makes
 *                 USER_SYS_CALLS system calls; each handler checks that it
 *                 runs on this CPU's aux stack, that the caller's rsp was
 *                 the user stack and that GS is the kernel's; every 64th
 *                 call waits, interrupts on, for a timer tick inside the
 *                 handler; every tick checks GS against the LAPIC id; the
 *                 task checks its own GS (%gs:0) after every call
 *   user_preempt  a ring-3 scheduler (uprog.c) and three ring-3 tasks that
 *                 never yield: each tick in ring 3 becomes an upcall with
 *                 a FULL record from a pool in user memory; the scheduler
 *                 resumes records with its own as_act_resume
 *   isolation     three ring-3 contexts in domains (as_switch_domain); the
 *                 library's hook is a system call that edits the stacks'
 *                 PTEs; probes of ungranted, read-only and revoked stacks
 *                 page-fault on the TSS.RSP0 stack, and the fault handler
 *                 reports them and resumes the probes
 */
#include "kernel.h"
#include "usys.h"

#define PTE_P  1ull
#define PTE_RW 2ull
#define PTE_US 4ull
#define CR0_WP   (1ul << 16)
#define CR4_SMEP (1ul << 20)
#define CR4_SMAP (1ul << 21)

extern char __user_start[], __user_end[];
extern uint64_t pml4[], pdpt[], pd[];
void x86_user_enter(uintptr_t rip, uintptr_t arg, uintptr_t rsp);
long x86_usyscall(long nr, long a0, long a1, long a2, uintptr_t caller_sp);

/* The ring-3 program (uprog.c). */
extern void u_syscall_task(void *cpu);
extern struct ugs u_ugs[USER_NCPU];
extern char u_sys_stack[USER_NCPU][USER_SYS_STACK];
extern struct sys_result u_sysres[USER_NCPU];
extern void u_preempt_main(void *);
extern char u_sched_stack[USER_SCHED_STACK];
extern struct pre_result u_preres;
/* as_act_resume in both copies of the library: the same object code */
extern const char u_as_act_resume[], u_as__act_resume_end[];
extern void u_iso_main(void *);
extern char u_iso_main_stack[USER_ISO_STACK];
extern struct iso_result u_isores;
extern const char u_probe_read_insn[], u_probe_write_insn[], u_probe_fixup[];

_Static_assert(NCPU == USER_NCPU, "the ring-3 program's CPU count");

/* The first 2 MiB (the whole image) in 4 KiB pages, so that the user
 * pages can be user-accessible and stacks protected one page at a time. */
static uint64_t pt0[512] __attribute__((aligned(4096)));
static bool smep;

static bool user_range(uintptr_t lo, uintptr_t hi)
{
    return lo >= (uintptr_t)__user_start && hi <= (uintptr_t)__user_end && lo <= hi;
}

static inline uint64_t read_cr(int n)
{
    uint64_t v = 0;
    if (n == 0)
        __asm__ volatile("mov %%cr0, %0" : "=r"(v));
    else if (n == 3)
        __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    else
        __asm__ volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

void x86_user_boot(void)
{
    for (uintptr_t i = 0; i < 512; i++) {
        uintptr_t a = i << 12;
        pt0[i] = a | PTE_P | PTE_RW;
        if (user_range(a, a + 4096))
            pt0[i] |= PTE_US;
    }
    pt0[0] = 0;                        /* page 0 absent: NULL faults */
    /* U/S must be set at every level above a user page; the leaves decide. */
    pd[0] = (uintptr_t)pt0 | PTE_P | PTE_RW | PTE_US;
    pdpt[0] |= PTE_US;
    pml4[0] |= PTE_US;
    __asm__ volatile("mov %0, %%cr3" : : "r"(read_cr(3)) : "memory");
}

/* CR0.WP: read-only pages are read-only for ring 0 too.  SMEP: ring 0
 * never executes a user page.  SMAP: ring 0 touches user pages only
 * between stac and clac.  Where the CPU offers them (CPUID.7.0:EBX). */
void x86_user_cpu_init(struct cpu *c)
{
    uint32_t a, b, cc, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d) : "a"(7), "c"(0));
    uint64_t cr4 = read_cr(4);
    smep = b >> 7 & 1;
    x86_smap = b >> 20 & 1;
    if (smep)
        cr4 |= CR4_SMEP;
    if (x86_smap)
        cr4 |= CR4_SMAP;
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
    __asm__ volatile("mov %0, %%cr0" : : "r"(read_cr(0) | CR0_WP));
    (void)c;
}

/* --- into ring 3 and back ------------------------------------------------------ */

/* Run fn(arg) in ring 3 on the user stack ending at top, with GS_BASE =
 * gs, until it makes USYS_EXIT; returns the exit code, interrupts off. */
static long user_run(void (*fn)(void *), void *arg, char *top, void *gs)
{
    struct cpu *c = this_cpu();
    c->arch.user.gs = gs;
    if (as_act_capture(&c->arch.user.ret) == 0) {
        wrmsr(MSR_KERNEL_GS_BASE, (uintptr_t)gs);
        /* rsp as a call leaves it: 8 below a 16-byte boundary */
        x86_user_enter((uintptr_t)fn, (uintptr_t)arg, ((uintptr_t)top & ~15ul) - 8);
    }
    arch_irq_disable();
    c = this_cpu();
    wrmsr(MSR_KERNEL_GS_BASE, (uintptr_t)c);   /* AS_SYSCALL_ENTER's swapgs, from ring 0 */
    return c->arch.user.exit_code;
}

static struct cpu *hw_cpu(void)
{
    return &cpus[x86_cpu_hw_index()];
}

static struct {
    uintptr_t fp, caller_sp;
} sys_seen[NCPU];

static long sys_probe(struct cpu *c, long slow, uintptr_t caller_sp)
{
    long r = PROBE_OK;
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    size_t aux = (size_t)((char *)c->pc.aux_top - (char *)c->pc.aux_lo);
    if (!as_on_auxstack() || fp - (uintptr_t)c->pc.aux_lo >= aux)
        r |= PROBE_NOT_AUX;
    char *us = u_sys_stack[c->idx];
    if (caller_sp - (uintptr_t)us >= USER_SYS_STACK)
        r |= PROBE_CALLER_SP;
    if (c != hw_cpu())
        r |= PROBE_KERNEL_GS;
    sys_seen[c->idx].fp = fp;
    sys_seen[c->idx].caller_sp = caller_sp;
    if (slow) {
        unsigned long t = c->ticks;
        c->arch.user.in_sys = true;
        arch_irq_enable();
        for (unsigned long spin = 0; c->ticks == t && spin < 100000000ul; spin++)
            arch_relax();
        arch_irq_disable();
        c->arch.user.in_sys = false;
        if (c->ticks == t)
            r |= PROBE_NO_TICK;
        if (this_cpu() != hw_cpu())
            r |= PROBE_KERNEL_GS;
    }
    return r;
}

/* USYS_UPCALL: the scheduler's entry, its stack and the pool, checked to
 * lie in the user pages (the kernel writes records into that pool). */
static long sys_upcall(struct cpu *c, const struct usys_upcall *d)
{
    struct user_cpu *u = &c->arch.user;
    if (!d) {
        u->upcall_on = false;
        return 0;
    }
    if (!user_range((uintptr_t)d, (uintptr_t)(d + 1)))
        return -1;
    user_access_begin();
    struct usys_upcall k = *d;
    user_access_end();
    if (!user_range(k.entry, k.entry + 1) || !user_range(k.stack_lo, k.stack_hi) ||
        k.stack_hi - k.stack_lo < 512 ||
        !user_range((uintptr_t)k.pool, (uintptr_t)k.pool + sizeof(as_act_pool)))
        return -1;
    u->up_entry = k.entry;
    u->up_lo = k.stack_lo;
    u->up_hi = k.stack_hi;
    u->up_pool = k.pool;
    u->upcall_on = true;
    return 0;
}

/*
 * USYS_PROT: the domain hook's system call.  Each region's whole pages,
 * which must be user pages, get the new rights in their PTEs: present or
 * not, writable or not; each entry that changed is flushed from this
 * CPU's TLB with invlpg.  (cpu1 runs no ring-3 code meanwhile; a kernel
 * whose other CPUs run the same address space would shoot their entries
 * down too.)
 */
static struct {
    unsigned long calls, ptes, flushes;
} prot_stats;

static long sys_prot(const as_domain_region *ur, long n)
{
    as_domain_region r[16];
    if (n < 0 || n > 16 || !user_range((uintptr_t)ur, (uintptr_t)(ur + n)))
        return -AS_EINVAL;
    user_access_begin();
    memcpy(r, ur, (size_t)n * sizeof r[0]);
    user_access_end();
    for (long i = 0; i < n; i++) {
        uintptr_t lo = ((uintptr_t)r[i].lo + 4095) & ~4095ul, hi = (uintptr_t)r[i].hi & ~4095ul;
        if (!user_range(lo, hi) || r[i].prot & ~AS_PROT_RW)
            return -AS_EINVAL;
    }
    prot_stats.calls++;
    for (long i = 0; i < n; i++) {
        uintptr_t lo = ((uintptr_t)r[i].lo + 4095) & ~4095ul, hi = (uintptr_t)r[i].hi & ~4095ul;
        uint64_t bits = r[i].prot == AS_PROT_NONE ? 0 :
                        r[i].prot & AS_PROT_WRITE ? PTE_P | PTE_RW : PTE_P;
        for (uintptr_t pg = lo; pg < hi; pg += 4096) {
            uint64_t *pte = &pt0[pg >> 12];
            uint64_t v = (*pte & ~(PTE_P | PTE_RW)) | bits;
            if (v == *pte)
                continue;
            *pte = v;
            prot_stats.ptes++;
            __asm__ volatile("invlpg (%0)" : : "r"(pg) : "memory");
            prot_stats.flushes++;
        }
    }
    return 0;
}

long x86_usyscall(long nr, long a0, long a1, long a2, uintptr_t caller_sp)
{
    struct cpu *c = this_cpu();
    (void)a2;
    switch (nr) {
    case USYS_EXIT:
        c->arch.user.exit_code = a0;
        as_act_resume(&c->arch.user.ret);
    case USYS_PROBE:
        return sys_probe(c, a1, caller_sp);
    case USYS_UPCALL:
        return sys_upcall(c, (const struct usys_upcall *)a0);
    case USYS_PROT:
        return sys_prot((const as_domain_region *)a0, a1);
    }
    return -1;
}

/*
 * A tick in ring 3 with upcalls on: unless the scheduler itself runs (its
 * stack) or the interrupted code is inside the part of as_act_resume that
 * still reads its record, take a record from the user's pool, fill it
 * (AS_ACT_FULL) from the interrupt frame, roll it forward if the resume
 * had already released its own record, and make the iretq enter the
 * scheduler at its entry, on its stack, with the record as argument.
 * The ring-3 as_act_resume is the kernel's own object code at another
 * address (the u_ copy), so its PCs are translated for the library's
 * as_act_resume_busy and as_act_rollforward, and back.
 */
#define RFLAGS_TF 0x100
#define STEP_EVERY 8                   /* every 8th upcall is single-stepped, */
#define STEP_TAIL  19                  /* once per instruction of the FULL tail */

/* Where f's rip lies in the user copy of as_act_resume: 0 outside it,
 * 1 in the part that still reads the record, 2 in a tail. */
static int resume_part(const struct arch_frame *f)
{
    uintptr_t ulo = (uintptr_t)u_as_act_resume;
    if (f->rip - ulo >= (uintptr_t)u_as__act_resume_end - ulo)
        return 0;
    return as_act_resume_busy(f->rip - ulo + (uintptr_t)as_act_resume) ? 1 : 2;
}

static void upcall(struct user_cpu *u, struct arch_frame *f)
{
    int part = resume_part(f);
    if (part == 1 || (part == 0 && f->rsp - u->up_lo < u->up_hi - u->up_lo)) {
        u->up_deferred++;              /* the next tick will do */
        return;
    }
    uintptr_t delta = (uintptr_t)as_act_resume - (uintptr_t)u_as_act_resume;
    f->rflags &= ~(uint64_t)RFLAGS_TF; /* a stepped resume is preempted for good */
    u->stepping = false;
    user_access_begin();
    as_act *a = as_act_alloc(u->up_pool);
    if (a) {
        arch_act_save(a, f);
        if (part == 2) {
            a->rip += delta;
            if (as_act_rollforward(a))
                u->up_rolled++;        /* the resumed task's own state now */
            else
                a->rip -= delta;
        }
    }
    user_access_end();
    if (!a) {
        u->up_starved++;
        return;
    }
    f->rip = u->up_entry;
    f->rsp = (u->up_hi & ~15ul) - 8;   /* as a call leaves it */
    f->rdi = (uintptr_t)a;
    f->rflags = 0x202;
    if (++u->upcalls % STEP_EVERY == 0 && u->step_n < STEP_TAIL) {
        /* Single-step this run of the scheduler and preempt its resume at
         * the step_k-th instruction of the tail (x86_user_fault, #DB):
         * every instruction of it in turn, where a tick rarely lands. */
        f->rflags |= RFLAGS_TF;
        u->stepping = true;
        u->step_k = u->step_n++;
    }
}

/* Every tick: is GS the kernel's?  (From ring 3 the entry swapped.) */
bool x86_user_tick(struct arch_frame *f)
{
    struct cpu *c = hw_cpu();
    if (this_cpu() != c)
        c->arch.user.gs_bad++;
    if (!(f->cs & 3)) {
        if (c->arch.user.in_sys)
            c->arch.user.sys_ticks++;
        return false;                  /* ktick */
    }
    c->ticks++;
    c->arch.user.user_ticks++;
    if (c->arch.user.upcall_on)
        upcall(&c->arch.user, f);
    return true;
}

/* A page fault at one of the ring-3 probe instructions: report it, and
 * resume at the probe's fixup, which returns -1. */
static unsigned long iso_faults, iso_gs_bad, iso_not_rsp0;

/* #DB from ring 3: a step of a scheduler run that upcall() single-steps. */
static bool user_step(struct arch_frame *f)
{
    struct user_cpu *u = &hw_cpu()->arch.user;
    int part = resume_part(f);
    if (u->stepping && part == 2 && u->step_k-- == 0) {
        u->step_forced++;
        upcall(u, f);                  /* as if a tick had landed here */
        return true;
    }
    if (!u->stepping || (part == 0 && f->rsp - u->up_lo >= u->up_hi - u->up_lo)) {
        f->rflags &= ~(uint64_t)RFLAGS_TF;   /* the task runs: stop stepping */
        u->stepping = false;
    }
    return true;
}

bool x86_user_fault(struct arch_frame *f)
{
    if (f->vector == 1 && (f->cs & 3))
        return user_step(f);
    if (f->vector != 14 || !(f->cs & 3) ||
        (f->rip != (uintptr_t)u_probe_read_insn && f->rip != (uintptr_t)u_probe_write_insn))
        return false;
    uintptr_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    struct cpu *c = hw_cpu();
    if (this_cpu() != c)               /* the entry swapped GS (from ring 3) */
        iso_gs_bad++;
    if ((uintptr_t)f - (uintptr_t)c->arch.kstack >= KSTACK_SIZE)
        iso_not_rsp0++;                /* from ring 3 the CPU takes TSS.RSP0 */
    kprintf("  #PF from ring 3 at %lx: %s %lx, %s\n", (unsigned long)f->rip,
            f->error & 2 ? "write to" : "read of", (unsigned long)cr2,
            f->error & 1 ? "read-only page" : "page not present");
    iso_faults++;
    f->rip = (uintptr_t)u_probe_fixup;
    return true;
}

/* --- user_syscall ---------------------------------------------------------------- */

static long sys_rc[NCPU];

static void sys_run_here(void)
{
    unsigned i = this_cpu()->idx;
    user_access_begin();
    u_ugs[i].self = &u_ugs[i];
    u_ugs[i].cpu = i;
    user_access_end();
    arch_timer_start();
    sys_rc[i] = user_run(u_syscall_task, (void *)(uintptr_t)i,
                         u_sys_stack[i] + USER_SYS_STACK, &u_ugs[i]);
    arch_timer_stop();
}

static void check_user_syscall(void)
{
    x86_timer_period(20000);
    sys_run_here();
    krun_on_ap(sys_run_here);
    bool ok = true;
    for (unsigned i = 0; i < NCPU; i++) {
        struct user_cpu *u = &cpus[i].arch.user;
        user_access_begin();
        struct sys_result r = u_sysres[i];
        user_access_end();
        kprintf("  user_syscall cpu%u: %lu calls from ring 3, %lu waited for a tick in the "
                "handler (%lu ticks there, %lu in ring 3); handler frame %lx on the aux stack, "
                "caller sp %lx on a %u-byte user stack; wrong GS: %lu in ring 3, %lu in the kernel; "
                "problems %lx\n",
                i, r.calls, r.slow, u->sys_ticks, u->user_ticks, (unsigned long)sys_seen[i].fp,
                (unsigned long)sys_seen[i].caller_sp, USER_SYS_STACK, r.gs_bad, u->gs_bad,
                r.bad_bits);
        ok = ok && sys_rc[i] == 0 && r.calls == USER_SYS_CALLS && r.bad_bits == 0 &&
             r.gs_bad == 0 && u->gs_bad == 0 && u->sys_ticks >= r.slow && r.slow > 0;
    }
    kcheck(ok, "user_syscall");
}

/* --- user_preempt ---------------------------------------------------------------- */

#ifndef PREEMPT_PERIOD
#define PREEMPT_PERIOD 20000
#endif

static void check_user_preempt(void)
{
    struct user_cpu *u = &this_cpu()->arch.user;
    x86_timer_period(PREEMPT_PERIOD);
    arch_timer_start();
    long rc = user_run(u_preempt_main, NULL, u_sched_stack + sizeof u_sched_stack, &u_ugs[0]);
    arch_timer_stop();
    u->upcall_on = false;
    user_access_begin();
    struct pre_result r = u_preres;
    user_access_end();
    kprintf("  user_preempt: %lu upcalls (scheduler counted %lu, %lu of them forced inside the "
            "resume's tail by single-stepping), %lu ticks deferred, %lu records "
            "rolled forward, %lu without a record; slices per task %lu/%lu/%lu (counter moved in "
            "%lu/%lu/%lu), counters %lu/%lu/%lu, corrupted %lu/%lu/%lu; pool free %lu of %u at the "
            "end, wrong during %lu upcalls\n",
            u->upcalls, r.upcalls, u->step_forced, u->up_deferred, u->up_rolled, u->up_starved,
            r.slices[0], r.slices[1], r.slices[2], r.moved[0], r.moved[1], r.moved[2],
            r.progress[0], r.progress[1], r.progress[2], r.bad[0], r.bad[1], r.bad[2],
            r.free_end, USER_NREC, r.free_wrong);
    bool ok = rc == 0 && r.upcalls >= USER_UPCALLS && u->upcalls == r.upcalls &&
              u->step_forced > 0 && u->up_rolled >= STEP_TAIL / 2 && u->up_rolled >= u->step_forced &&
              r.strays == 0 && r.free_wrong == 0 && r.free_end == USER_NREC;
    for (unsigned i = 0; i < USER_NTASK; i++)
        ok = ok && r.bad[i] == 0 && r.slices[i] >= USER_UPCALLS / USER_NTASK / 2 &&
             2 * r.moved[i] >= r.slices[i];
    kcheck(ok, "user_preempt");
}

/* --- isolation --------------------------------------------------------------------- */

static void check_isolation(void)
{
    long rc = user_run(u_iso_main, NULL, u_iso_main_stack + sizeof u_iso_main_stack, &u_ugs[0]);
    user_access_begin();
    struct iso_result r = u_isores;
    user_access_end();
    kprintf("  isolation: %lu hook calls (%lu system calls), %lu page entries changed, %lu "
            "invlpg; %lu faults reported (want %u; the probes saw %lu, wrong GS in %lu, off "
            "the RSP0 stack %lu), wrong probes %lx, error %ld\n",
            r.hook_calls, prot_stats.calls, prot_stats.ptes, prot_stats.flushes, iso_faults,
            ISO_FAULTS_WANT, r.faults, iso_gs_bad, iso_not_rsp0, r.wrong, r.err);
    kcheck(rc == 0 && r.err == 0 && r.wrong == 0 && iso_faults == ISO_FAULTS_WANT && !iso_gs_bad &&
           !iso_not_rsp0 &&
           r.faults == ISO_FAULTS_WANT && r.hook_calls == prot_stats.calls && prot_stats.ptes > 0,
           "isolation");
}

void arch_user_checks(void)
{
    kprintf("  ring 3: SMEP %s, SMAP %s, user pages %p-%p\n", smep ? "on" : "off",
            x86_smap ? "on" : "off", (void *)__user_start, (void *)__user_end);
    check_user_syscall();
    check_user_preempt();
    check_isolation();
}
