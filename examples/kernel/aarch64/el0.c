/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/aarch64/el0.c - user mode (EL0) for the aarch64 kernel:
 * page tables with user pages, entering and leaving EL0, the system calls
 * of el0.h, upcalls into a user-level scheduler, and the three checks
 *
 *   user_syscall  EL0 tasks on 1 KiB user stacks (SP_EL0) make svc calls,
 *                 USYS_CALLS + USYS_TICKS per CPU (el0.h), on both CPUs; the handler runs on the CPU's aux stack
 *                 with TPIDR_EL1 = the CPU's record; one call opens
 *                 interrupts until a timer tick lands in it; every register
 *                 comes back (eret), timer ticks taken at EL0 meanwhile too
 *   user_preempt  three CPU-bound EL0 tasks that never yield; each tick
 *                 that lands outside the scheduler fills a FULL as_act from
 *                 the user pool (AS_EL0_ENTRY's frame + q0-q31, FPSR, FPCR,
 *                 then as_act_rollforward) and enters the EL0 scheduler
 *                 with it, which resumes records with as_act_resume (the
 *                 staged user-mode path) and so gives them back to the pool
 *   isolation     EL0 contexts in domains; the domain hook is a system
 *                 call that rewrites the AP bits of the stacks' page-table
 *                 entries (tlbi vale1is + dsb + isb); probes that fault are
 *                 reported and resumed by the abort handler
 *
 * Memory map (4 KiB pages over the image, arch_mmu_init):
 *   0x00000000-0x3fffffff  devices, 1 GiB block, execute-never
 *   0x40000000-0x407fffff  4 KiB pages: the kernel EL1-only, the user pages
 *                          [__user_text, __user_data) EL0+EL1 read-only and
 *                          EL0-executable, [__user_data, __user_end) EL0+EL1
 *                          read-write, never executable
 *   0x40800000-0x7fffffff  2 MiB blocks, EL1-only
 */
#include "kernel.h"
#include "el0.h"

#define PT_TABLE    3ul
#define PT_PAGE     3ul
#define PT_BLOCK    1ul
#define PT_ATTR_DEV (0ul << 2)
#define PT_ATTR_MEM (1ul << 2)
#define PT_AP_EL0   (1ul << 6)          /* AP[1]: EL0 may access            */
#define PT_AP_RO    (1ul << 7)          /* AP[2]: read-only (EL0 and EL1)    */
#define PT_AP_MASK  (3ul << 6)
#define PT_SH_INNER (3ul << 8)
#define PT_AF       (1ul << 10)
#define PT_PXN      (1ul << 53)
#define PT_UXN      (1ul << 54)
#define PAGE        4096ul
#define RAM_BASE    0x40000000ul
#define L3_TABLES   4                   /* 4 x 2 MiB of pages */

#define ESR_EC_SVC64   0x15
#define ESR_EC_DABT_LO 0x24
#define ESR_EC_BRK_LO  0x30             /* hardware breakpoint from EL0 */

extern char __user_text[], __user_data[], __user_end[];

static uint64_t l1[512] __attribute__((aligned(4096)));
static uint64_t l2[512] __attribute__((aligned(4096)));
static uint64_t l3[L3_TABLES][512] __attribute__((aligned(4096)));

/* The page-table entry of a page in the first L3_TABLES * 2 MiB of RAM. */
static uint64_t *pte(uintptr_t va)
{
    uintptr_t i = (va - RAM_BASE) / PAGE;
    return &l3[i / 512][i % 512];
}

static void mmu_build(void)
{
    l1[0] = 0x00000000ul | PT_UXN | PT_PXN | PT_AF | PT_ATTR_DEV | PT_BLOCK;
    l1[1] = (uintptr_t)l2 | PT_TABLE;
    for (unsigned i = 0; i < 512; i++) {
        uintptr_t pa = RAM_BASE + i * (2ul << 20);
        l2[i] = i < L3_TABLES ? (uintptr_t)l3[i] | PT_TABLE
                              : pa | PT_UXN | PT_AF | PT_SH_INNER | PT_ATTR_MEM | PT_BLOCK;
    }
    for (uintptr_t va = RAM_BASE; va < RAM_BASE + L3_TABLES * (2ul << 20); va += PAGE) {
        uint64_t e = va | PT_AF | PT_SH_INNER | PT_ATTR_MEM | PT_PAGE;
        if (va >= (uintptr_t)__user_text && va < (uintptr_t)__user_data)
            e |= PT_AP_EL0 | PT_AP_RO | PT_PXN;            /* user code */
        else if (va >= (uintptr_t)__user_data && va < (uintptr_t)__user_end)
            e |= PT_AP_EL0 | PT_UXN | PT_PXN;              /* user data */
        else
            e |= PT_UXN;                                   /* kernel */
        *pte(va) = e;
    }
}

/* Every CPU, from arch_cpu_init: the boot map (1 GiB blocks, boot.S) gives
 * way to the page map.  The first call, on the boot CPU, builds it. */
void arch_mmu_init(void)
{
    static bool built;
    if (!built) {
        if ((uintptr_t)__user_end > RAM_BASE + L3_TABLES * (2ul << 20)) {
            kprintf("FAIL mmu: the image ends past the page map\n");
            arch_exit(false);
        }
        mmu_build();
        built = true;
    }
    __asm__ volatile("dsb ishst\n\t"
                     "msr ttbr0_el1, %0\n\t"
                     "isb\n\t"
                     "tlbi vmalle1\n\t"
                     "dsb ish\n\t"
                     "isb" : : "r"(l1) : "memory");
}

/* --- entering and leaving EL0 ---------------------------------------------------- */

/* Per CPU: the kernel's frame while EL0 runs, and the upcall set-up. */
static struct el0_cpu {
    as_el1_frame kframe;
    bool in_user;
    bool upcalls;
    uintptr_t up_entry, up_lo, up_stack;    /* entry, its stack [lo, top) */
    as_act_pool *up_pool;
    unsigned long user_ticks, upcalls_made, deferred, dropped, rolled;
    unsigned long bp_next, bp_hits, bp_deferred;
    /* user_syscall: what the handler saw */
    unsigned long probes, probe_bad;
    uintptr_t fp_lo, fp_hi, caller_lo, caller_hi;
    /* isolation */
    unsigned long faults, protects, pages;
} el0[NCPU];

static struct el0_cpu *me(void)
{
    return &el0[this_cpu()->idx];
}

/*
 * Run fn(arg) at EL0 on the stack whose top is sp until it makes
 * USYS_EXIT; returns the exit's value.  The svc enters the trap half as
 * any system call does; its handler saves the kernel's frame and turns it
 * into an EL0 one, which the trap exit leaves through AS_EL0_EXIT.
 * USYS_EXIT puts the saved frame back, and the same exit returns here
 * through AS_EL1_EXIT.
 */
static long user_run(void (*fn)(void *), void *sp, void *arg)
{
    register long x8 __asm__("x8") = KSYS_USER;
    register long x0 __asm__("x0") = (long)fn;
    register long x1 __asm__("x1") = (long)sp;
    register long x2 __asm__("x2") = (long)arg;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}

static bool from_el0(const as_el1_frame *f)
{
    return (f->pstate & 0x1f) == 0;
}

static void enter_user(as_el1_frame *f)
{
    struct el0_cpu *e = me();
    e->kframe = *f;
    e->kframe.x[0] = 0;
    e->in_user = true;
    uintptr_t pc = f->x[0], sp = f->x[1], arg = f->x[2];
    memset(f, 0, sizeof *f);
    f->x[0] = arg;
    f->sp = sp & ~15ul;
    f->pc = pc;
    f->pstate = 0;                      /* EL0t, interrupts open */
}

/* The breakpoint that stands in for a tick (see el0_tick). */
static void bp_set(uintptr_t pc, bool on);
static void bp_init(void);
static void bp_hit(as_el1_frame *f);

static void leave_user(as_el1_frame *f, long r)
{
    struct el0_cpu *e = me();
    e->in_user = false;
    if (e->upcalls)
        bp_set(0, false);
    e->upcalls = false;
    *f = e->kframe;
    f->x[0] = (uint64_t)r;
}

/* --- system calls from EL0 --------------------------------------------------------- */

static bool user_range(uintptr_t lo, uintptr_t hi)
{
    return lo <= hi && lo >= (uintptr_t)__user_data && hi <= (uintptr_t)__user_end;
}

static uint64_t read_tpidr(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, tpidr_el1" : "=r"(v));
    return v;
}

static long sys_probe(as_el1_frame *f)
{
    struct el0_cpu *e = me();
    struct cpu *c = this_cpu();
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    size_t aux = (size_t)((char *)c->pc.aux_top - (char *)c->pc.aux_lo);
    bool ok = as_on_auxstack() && fp - (uintptr_t)c->pc.aux_lo < aux &&
              read_tpidr() == (uintptr_t)c && as_percpu_get() == (void *)c && from_el0(f);
    if (!e->probes++) {
        e->fp_lo = e->fp_hi = fp;
        e->caller_lo = e->caller_hi = f->sp;
    }
    e->fp_lo = fp < e->fp_lo ? fp : e->fp_lo;
    e->fp_hi = fp > e->fp_hi ? fp : e->fp_hi;
    e->caller_lo = f->sp < e->caller_lo ? f->sp : e->caller_lo;
    e->caller_hi = f->sp > e->caller_hi ? f->sp : e->caller_hi;
    if (!ok)
        e->probe_bad++;
    return (long)(f->x[0] + f->x[1]);
}

/* Open interrupts inside the handler until a tick lands (it enters
 * through the `nested` path, below this frame), then close them. */
static long sys_tick(void)
{
    struct cpu *c = this_cpu();
    unsigned long t0 = c->ticks;
    arch_irq_enable();
    for (unsigned long spin = 0; c->ticks == t0 && spin < 400000000ul; spin++)
        arch_relax();
    arch_irq_disable();
    return (long)(c->ticks - t0);
}

static long sys_upcalls(as_el1_frame *f)
{
    struct el0_cpu *e = me();
    if (!user_range(f->x[2], f->x[2] + sizeof(as_act_pool)) || f->x[0] < (uintptr_t)__user_text ||
        f->x[0] >= (uintptr_t)__user_data || !user_range(f->x[3], f->x[1]))
        return -AS_EINVAL;
    e->up_entry = f->x[0];
    e->up_stack = f->x[1] & ~15ul;
    e->up_pool = (as_act_pool *)f->x[2];
    e->up_lo = f->x[3];
    e->upcalls = true;
    bp_init();
    arch_timer_start();
    return 0;
}

/* The domain hook's system call: new AP bits for whole pages of user data. */
static long sys_protect(as_el1_frame *f)
{
    struct el0_cpu *e = me();
    const as_domain_region *r = (const as_domain_region *)f->x[0];
    size_t n = f->x[1];
    if (n > 64 || !user_range((uintptr_t)r, (uintptr_t)(r + n)))
        return -AS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        uintptr_t lo = (uintptr_t)r[i].lo, hi = (uintptr_t)r[i].hi;
        if ((lo | hi) & (PAGE - 1) || !user_range(lo, hi))
            return -AS_EINVAL;
    }
    e->protects++;
    for (size_t i = 0; i < n; i++) {
        uint64_t ap = r[i].prot & AS_PROT_WRITE ? PT_AP_EL0              /* EL0 RW */
                    : r[i].prot & AS_PROT_READ  ? PT_AP_EL0 | PT_AP_RO   /* EL0 RO */
                    : 0;                                                 /* EL1 only */
        for (uintptr_t va = (uintptr_t)r[i].lo; va < (uintptr_t)r[i].hi; va += PAGE) {
            uint64_t *p = pte(va);
            *p = (*p & ~PT_AP_MASK) | ap;
            /* The store before the invalidation, which every CPU sees. */
            __asm__ volatile("dsb ishst\n\ttlbi vale1is, %0" : : "r"(va >> 12) : "memory");
            e->pages++;
        }
    }
    __asm__ volatile("dsb ish\n\tisb" : : : "memory");
    return 0;
}

/* An abort from EL0: a probe (user.S) is told and resumed; anything else
 * is a failure. */
extern const char u_uprobe_lo[], u_uprobe_hi[];
static void user_abort(as_el1_frame *f, uint64_t esr)
{
    uint64_t far;
    __asm__ volatile("mrs %0, far_el1" : "=r"(far));
    if (f->pc >= (uintptr_t)u_uprobe_lo && f->pc < (uintptr_t)u_uprobe_hi &&
        (esr & 0x3c) == 0x0c) {                     /* DFSC: permission fault */
        me()->faults++;
        kprintf("  isolation: permission fault, EL0 %s of %lx at pc %lx: resumed\n",
                esr & (1u << 6) ? "write" : "read", (unsigned long)far, (unsigned long)f->pc);
        f->x[0] = 1;
        f->pc += 4;
        return;
    }
    a64_bad(f, 8);
}

/* The synchronous exceptions of user mode; false: not one (arch.c goes on). */
bool el0_sync(as_el1_frame *f, uint64_t esr)
{
    unsigned ec = (unsigned)(esr >> 26);
    if (!from_el0(f)) {
        if (ec == ESR_EC_SVC64 && f->x[8] == KSYS_USER && !me()->in_user) {
            enter_user(f);
            return true;
        }
        return false;
    }
    if (ec == ESR_EC_DABT_LO) {
        user_abort(f, esr);
        return true;
    }
    if (ec == ESR_EC_BRK_LO) {
        bp_hit(f);
        return true;
    }
    if (ec != ESR_EC_SVC64)
        a64_bad(f, 8);
    long r;
    switch (f->x[8]) {
    case USYS_EXIT:    leave_user(f, (long)f->x[0]); return true;
    case USYS_PROBE:   r = sys_probe(f); break;
    case USYS_TICK:    r = sys_tick(); break;
    case USYS_UPCALLS: r = sys_upcalls(f); break;
    case USYS_PROTECT: r = sys_protect(f); break;
    default:           r = -AS_EINVAL; break;
    }
    f->x[0] = (uint64_t)r;
    return true;
}

/* --- upcalls ------------------------------------------------------------------------- */

/*
 * An upcall for the EL0 code interrupted at f (a tick, or a breakpoint
 * standing in for one).  Unless the scheduler itself runs (sp on its
 * stack) or the interrupted code is inside the part of the user copy's
 * as_act_resume that still reads its record, take a record from the user
 * pool, fill it (AS_ACT_FULL) from the frame, roll it forward if that
 * resume had already given its own record back, and make the exit enter
 * the scheduler at its entry, on its stack, with the record in x0 (and
 * in x1 whether a breakpoint stood in for the tick).  The user copy of as_act_resume is the kernel's own object code (the same
 * activation.S.o) at another address, so its PCs are translated for
 * as_act_resume_busy and as_act_rollforward, and back.  Returns false if
 * it left the frame alone.
 */
extern const char u_as_act_resume[], u_as__act_resume_end[];
static bool upcall(struct el0_cpu *e, as_el1_frame *f, bool from_bp)
{
    uintptr_t ulo = (uintptr_t)u_as_act_resume;
    uintptr_t delta = (uintptr_t)as_act_resume - ulo;
    bool in_resume = f->pc - ulo < (uintptr_t)u_as__act_resume_end - ulo;
    if (f->sp - e->up_lo <= e->up_stack - e->up_lo ||
        (in_resume && as_act_resume_busy(f->pc + delta))) {
        e->deferred++;                  /* the next tick will do */
        return false;
    }
    as_act *a = as_act_alloc(e->up_pool);
    if (!a) {
        e->dropped++;
        return false;
    }
    arch_act_save(a, f);                /* AS_ACT_FULL, from the frame */
    if (in_resume) {
        a->pc += delta;
        if (as_act_rollforward(a))
            e->rolled++;                /* the resumed task's own state now */
        else
            a->pc -= delta;
    }
    memset(f, 0, sizeof *f);
    f->x[0] = (uintptr_t)a;
    f->x[1] = from_bp;
    f->sp = e->up_stack;
    f->pc = e->up_entry;
    f->pstate = 0;
    e->upcalls_made++;
    return true;
}

/*
 * Ticks rarely land in the few instructions of the resume's tail, so the
 * kernel makes them: after each timer upcall it puts a hardware
 * breakpoint (EL0 only) on the next instruction of the user copy's FULL
 * tail, from the cbnz after the release to the final ret, and the
 * scheduler's next resume takes it there, where the breakpoint stands in
 * for a tick.  Only timer upcalls arm it, so tasks run between them.
 */
extern const char u_as__act_fwin[], u_as__act_ftail_end[];

static void bp_set(uintptr_t pc, bool on)
{
    __asm__ volatile("msr dbgbvr0_el1, %0\n\t"
                     "msr dbgbcr0_el1, %1\n\t"
                     "isb"
                     : : "r"(pc), "r"(on ? (0xful << 5) | (2ul << 1) | 1 : 0ul) : "memory");
}

static void bp_init(void)
{
    uint64_t mdscr;
    __asm__ volatile("msr oslar_el1, xzr\n\t"        /* OS lock off */
                     "mrs %0, mdscr_el1" : "=r"(mdscr));
    __asm__ volatile("msr mdscr_el1, %0\n\tisb" : : "r"(mdscr | (1ul << 15)) : "memory"); /* MDE */
    bp_set(0, false);
}

static void bp_hit(as_el1_frame *f)
{
    struct el0_cpu *e = me();
    bp_set(0, false);
    e->bp_hits++;
    if (!e->upcalls || !upcall(e, f, true))
        e->bp_deferred++;               /* the instruction runs, unwatched */
}

/* The timer interrupted EL0 code. */
void el0_tick(as_el1_frame *f)
{
    struct el0_cpu *e = me();
    e->user_ticks++;
    if (!e->upcalls || !upcall(e, f, false))
        return;
    size_t n = (size_t)(u_as__act_ftail_end - u_as__act_fwin) / 4;
    bp_set((uintptr_t)u_as__act_fwin + 4 * (e->bp_next++ % n), true);
}

/* --- the checks ------------------------------------------------------------------------- */

extern struct usys_run u_usys_runs[2];
extern char u_usys_stacks[2][1024];
void u_usys_main(void *);

/* One CPU's user_syscall run, the timer ticking throughout. */
static void el0_syscall_run(void)
{
    unsigned i = this_cpu()->idx;
    arch_timer_start();
    long r = user_run(u_usys_main, u_usys_stacks[i] + sizeof u_usys_stacks[i], &u_usys_runs[i]);
    arch_timer_stop();
    if (r)
        u_usys_runs[i].bad_result++;
}

static void check_user_syscall(void)
{
    el0_syscall_run();
    krun_on_ap(el0_syscall_run);
    bool ok = true;
    for (unsigned i = 0; i < NCPU; i++) {
        struct usys_run *u = &u_usys_runs[i];
        struct el0_cpu *e = &el0[i];
        kprintf("  user_syscall cpu%u: %lu calls, %lu probes (handler frames %lx-%lx, "
                "callers' sp %lx-%lx on a %u-byte user stack), %lu ticks inside calls, "
                "%lu at EL0, bad regs %lu, bad results %lu, bad handler state %lu\n",
                i, (unsigned long)u->calls, e->probes, (unsigned long)e->fp_lo,
                (unsigned long)e->fp_hi, (unsigned long)e->caller_lo,
                (unsigned long)e->caller_hi, (unsigned)sizeof u_usys_stacks[i],
                (unsigned long)u->ticks, e->user_ticks, (unsigned long)u->bad_regs,
                (unsigned long)u->bad_result, e->probe_bad);
        ok = ok && u->calls == USYS_CALLS + USYS_TICKS && e->probes == USYS_CALLS && !u->bad_regs &&
             !u->bad_result && !e->probe_bad && u->ticks >= USYS_TICKS &&
             e->caller_lo >= (uintptr_t)u_usys_stacks[i] &&
             e->caller_hi < (uintptr_t)u_usys_stacks[i] + sizeof u_usys_stacks[i];
    }
    kcheck(ok, "user_syscall");
}

/* A short period, so that ticks also land inside the scheduler's resume. */
#ifndef UPRE_TICK_US
#define UPRE_TICK_US 100
#endif

extern struct upre_task u_upre_tasks[UPRE_TASKS];
extern struct upre_stat u_upre_stat;
extern as_act u_upre_recs[UPRE_RECORDS];
extern as_act_pool u_upre_pool;
extern char u_upre_sched_stack[4096];
void u_upre_main(void *);

static void check_user_preempt(void)
{
    struct el0_cpu *e = me();
    bool ok = as_act_pool_init(&u_upre_pool, u_upre_recs, UPRE_RECORDS) == 0;
    /* The kernel's copy initialises the pool: EL0 cannot read the ID
     * registers (activation.h, "User mode"). */
    arch_timer_period_us(UPRE_TICK_US);
    long r = ok ? user_run(u_upre_main, u_upre_sched_stack + sizeof u_upre_sched_stack, NULL) : -1;
    arch_timer_stop();
    arch_timer_period_us(1000);
    size_t nfree = as_act_pool_free(&u_upre_pool);
    kprintf("  user_preempt: exit %ld; %lu timer upcalls, %lu deferred in the scheduler, "
            "%lu dropped; %lu breakpoints in the resume's tail: %lu upcalls, %lu deferred; "
            "%lu records rolled forward; tasks resumed further on %lu/%lu/%lu times "
            "(counters %lu/%lu/%lu); bad register %lu/%lu/%lu, bad record at upcall %lu, "
            "stray %lu; pool %lu of %u free\n",
            r, (unsigned long)u_upre_stat.upcalls, e->deferred, e->dropped, e->bp_hits,
            (unsigned long)u_upre_stat.bp_upcalls, e->bp_deferred, e->rolled,
            (unsigned long)u_upre_tasks[0].slices, (unsigned long)u_upre_tasks[1].slices,
            (unsigned long)u_upre_tasks[2].slices, (unsigned long)u_upre_tasks[0].count,
            (unsigned long)u_upre_tasks[1].count, (unsigned long)u_upre_tasks[2].count,
            (unsigned long)u_upre_tasks[0].bad, (unsigned long)u_upre_tasks[1].bad,
            (unsigned long)u_upre_tasks[2].bad, (unsigned long)u_upre_stat.bad_record,
            (unsigned long)u_upre_stat.stray, (unsigned long)nfree, UPRE_RECORDS);
    ok = ok && r == 0 && u_upre_stat.upcalls >= UPRE_UPCALLS &&
         u_upre_stat.upcalls + u_upre_stat.bp_upcalls == e->upcalls_made &&
         e->rolled >= u_upre_stat.bp_upcalls && !u_upre_stat.bad_record &&
         !u_upre_stat.stray && nfree == UPRE_RECORDS;
    for (unsigned i = 0; i < UPRE_TASKS; i++)
        ok = ok && u_upre_tasks[i].slices >= 2 && !u_upre_tasks[i].bad;
    kcheck(ok, "user_preempt");
}

extern struct uiso u_uiso;
extern char u_uiso_stack[8192];
void u_uiso_main(void *);

static void check_isolation(void)
{
    struct el0_cpu *e = me();
    long r = user_run(u_uiso_main, u_uiso_stack + sizeof u_uiso_stack, NULL);
    struct uiso *u = &u_uiso;
    kprintf("  isolation: exit %ld, error %ld; faulted: own write %lu, read-only read %lu, "
            "read-only write %lu, ungranted read %lu, ungranted write %lu, revoked read %lu, "
            "outside-domain read %lu; %lu faults, %lu hook calls, %lu page entries changed\n",
            r, (long)u->err, (unsigned long)u->own_rw, (unsigned long)u->ro_read,
            (unsigned long)u->ro_write, (unsigned long)u->none_read, (unsigned long)u->none_write,
            (unsigned long)u->revoked_read, (unsigned long)u->out_read, e->faults, e->protects,
            e->pages);
    kcheck(r == 0 && u->done && !u->err && !u->own_rw && !u->ro_read && u->ro_write &&
          u->none_read && u->none_write && u->revoked_read && u->out_read && e->faults == 6,
          "isolation");
}

void arch_user_checks(void)
{
    check_user_syscall();
    check_user_preempt();
    check_isolation();
}
