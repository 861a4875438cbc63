/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/aarch64/user.c - the EL0 side of the aarch64 kernel's
 * user-mode checks.  Linked with user.S and its own copy of the library
 * (stack, switch, activation, share) into one object whose symbols all get
 * the prefix u_ (see el0.h), placed in the user pages: code readable and
 * executable at EL0, data read-write at EL0.  It calls only its own copy
 * of the library and the kernel's system calls.
 *
 *   usys_main     user_syscall: system calls from a 1 KiB user stack
 *   upre_main     user_preempt: sets up three tasks and the upcall, then
 *   upre_upcall     the scheduler the kernel enters on each preemption
 *   uiso_main     isolation: domains whose hook is a system call
 */
#include <altstack.h>
#include "el0.h"
#include "mem.h"

/* --- what the kernel links against ----------------------------------------------- */

struct upre_task upre_tasks[UPRE_TASKS];
struct upre_stat upre_stat;
as_act upre_recs[UPRE_RECORDS] __attribute__((aligned(64)));
as_act_pool upre_pool;
struct usys_run usys_runs[2];
struct uiso uiso;
char usys_stacks[2][1024] __attribute__((aligned(16)));
char upre_stacks[UPRE_TASKS][4096] __attribute__((aligned(16)));
char upre_sched_stack[4096] __attribute__((aligned(16)));
char uiso_stack[8192] __attribute__((aligned(16)));
/* The managed stacks: whole pages, as the hook protects whole pages. */
char uiso_stacks[3][8192] __attribute__((aligned(4096)));

void upre_task(void *i);
extern const char upre_task_lo[], upre_task_hi[];
long usvc_check(long nr, long a0, uint64_t *bad);
long uprobe_read(const void *p);
long uprobe_write(void *p);

static long usvc(long nr, long a0, long a1, long a2, long a3, long a4)
{
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a0;
    register long x1 __asm__("x1") = a1;
    register long x2 __asm__("x2") = a2;
    register long x3 __asm__("x3") = a3;
    register long x4 __asm__("x4") = a4;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
}

__attribute__((noreturn)) static void uexit(long r)
{
    usvc(USYS_EXIT, r, 0, 0, 0, 0);
    for (;;)
        ;
}

/* --- user_syscall ----------------------------------------------------------------- */

void usys_main(void *arg)
{
    struct usys_run *r = arg;
    for (long i = 0; i < USYS_CALLS + USYS_TICKS; i++) {
        uint64_t bad = 0;
        long nr = i < USYS_CALLS ? USYS_PROBE : USYS_TICK;
        long got = usvc_check(nr, i, &bad);
        r->calls++;
        if (bad && !r->bad_regs)
            r->bad_regs = bad;
        if (nr == USYS_PROBE && got != i + 0x801)
            r->bad_result++;
        if (nr == USYS_TICK) {
            if (got <= 0)
                r->bad_result++;
            else
                r->ticks += (uint64_t)got;
        }
    }
    uexit(0);
}

/* --- user_preempt ------------------------------------------------------------------- */

static as_act *ring[UPRE_TASKS + 1];
static unsigned head, tail;

static void push(as_act *a)
{
    ring[tail++ % (UPRE_TASKS + 1)] = a;
}

static as_act *pop(void)
{
    return ring[head++ % (UPRE_TASKS + 1)];
}

/* Which task a record belongs to, by its sp; -1 if none. */
static int task_of(const as_act *a)
{
    uintptr_t sp = as_act_sp(a);
    for (int i = 0; i < UPRE_TASKS; i++)
        if (sp - (uintptr_t)upre_stacks[i] <= sizeof upre_stacks[i])
            return i;
    return -1;
}

/* A record taken inside the task's loop holds its pattern (user.S). */
static bool record_ok(const as_act *a, int i)
{
    if (as_act_kind(a) != AS_ACT_FULL)
        return false;
    uintptr_t pc = as_act_pc(a);
    if (pc < (uintptr_t)upre_task_lo || pc >= (uintptr_t)upre_task_hi || !a->x[22])
        return true;                    /* still setting up: nothing to compare */
    uint64_t base = upre_tasks[i].base;
    if (a->x[0] != base || a->x[20] != (uintptr_t)&upre_tasks[i])
        return false;
    for (int r = 1; r <= 30; r++)
        if (r != 16 && r != 17 && r != 20 && r != 22 && a->x[r] != base + (uint64_t)r)
            return false;
    for (int v = 0; v < 32; v++) {
        uint64_t lo, hi;
        memcpy(&lo, a->v[v], 8);
        memcpy(&hi, a->v[v] + 8, 8);
        if (lo != base + 100 + (uint64_t)v || hi != base + 200 + (uint64_t)v)
            return false;
    }
    return true;
}

/*
 * The upcall: the kernel took `a` from the pool, filled it (AS_ACT_FULL)
 * from its exception frame, and entered here at EL0 on the scheduler's
 * stack (from_bp: a breakpoint in a resume's tail stood in for the tick,
 * so `a` was rolled forward).  Queue it, resume the oldest: as_act_resume,
 * the staged user-mode path, gives the record back to the pool before it
 * jumps.
 */
__attribute__((noreturn)) void upre_upcall(as_act *a, long from_bp)
{
    if (from_bp)
        upre_stat.bp_upcalls++;
    else
        upre_stat.upcalls++;
    int i = task_of(a);
    if (i < 0) {
        upre_stat.stray++;
    } else {
        if (!record_ok(a, i) && !upre_stat.bad_record)
            upre_stat.bad_record = upre_stat.upcalls + upre_stat.bp_upcalls;
        if (a->x[22] > upre_tasks[i].seen) {
            upre_tasks[i].seen = a->x[22];
            upre_tasks[i].slices++;
        }
    }
    bool all = upre_stat.upcalls >= UPRE_UPCALLS;
    for (int t = 0; t < UPRE_TASKS; t++)
        all = all && upre_tasks[t].slices >= 2;
    push(a);
    if (all) {
        while (head != tail)
            as_act_release(pop());
        uexit(0);
    }
    as_act_resume(pop());
}

void upre_main(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < UPRE_TASKS; i++) {
        as_stack s;
        as_act *a = as_act_alloc(&upre_pool);
        if (!a || as_stack_init(&s, upre_stacks[i], sizeof upre_stacks[i]))
            uexit(-1);
        as_act_init(a, &s, upre_task, (void *)i);
        if (as_act_kind(a) != AS_ACT_FRESH)
            uexit(-2);
        push(a);
    }
    if (usvc(USYS_UPCALLS, (long)upre_upcall, (long)(upre_sched_stack + sizeof upre_sched_stack),
             (long)&upre_pool, (long)upre_sched_stack, 0))
        uexit(-3);
    as_act_resume(pop());
}

/* --- isolation ------------------------------------------------------------------------ */

/* The hook: the kernel owns the page tables, so the hook is a system call. */
static int uiso_hook(void *arg, const as_domain_region *r, size_t n)
{
    (void)arg;
    return (int)usvc(USYS_PROTECT, (long)r, (long)n, 0, 0, 0);
}

static as_stack sa, sb, sc;
static as_domain da, db, dc;

/* Probe a word in the middle of stack s. */
static void *mid(const as_stack *s)
{
    return (char *)s->lo + as_stack_size(s) / 2;
}

static void note(int err)
{
    if (err && !uiso.err)
        uiso.err = err;
}

/* Runs in domain A: its own stack read-write, B read-only, C nothing. */
static as_transfer fiber_a(as_transfer t)
{
    volatile uint64_t own = 1;
    own++;
    uiso.own_rw = uprobe_write((void *)&own);
    uiso.ro_read = uprobe_read(mid(&sb));
    uiso.ro_write = uprobe_write(mid(&sb));
    uiso.none_read = uprobe_read(mid(&sc));
    uiso.none_write = uprobe_write(mid(&sc));
    t = as_switch_domain(t.ctx, NULL, NULL);        /* the scheduler revokes B */
    uiso.revoked_read = uprobe_read(mid(&sb));
    return (as_transfer){ t.ctx, NULL };        /* the context ends */
}

void uiso_main(void *arg)
{
    (void)arg;
    note(as_domain_set_hook(uiso_hook, NULL));
    as_stack *st[3] = { &sa, &sb, &sc };
    as_domain *dm[3] = { &da, &db, &dc };
    for (int i = 0; i < 3; i++) {
        note(as_stack_init(st[i], uiso_stacks[i], sizeof uiso_stacks[i]));
        note(as_domain_init(dm[i], st[i]));
    }
    note(as_domain_grant(&da, &sb, AS_PROT_READ));
    as_ctx ca = as_domain_ctx_make(&da, fiber_a);
    if (!ca)
        note(-1);
    as_transfer t = as_switch_domain(ca, &da, NULL);
    uiso.out_read = uprobe_read(mid(&sa));
    note(as_domain_revoke(&da, &sb));
    t = as_switch_domain(t.ctx, &da, NULL);
    note(as_domain_leave());
    for (int i = 0; i < 3; i++)
        note(as_domain_fini(dm[i]));
    note(as_domain_set_hook(NULL, NULL));
    uiso.done = 1;
    uexit(0);
}
