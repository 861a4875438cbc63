/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/x86_64/uprog.c - the ring-3 program of the example
 * kernel.  It is linked, with a copy of the library's objects of its own,
 * into one relocatable object whose every symbol gets the prefix u_
 * (objcopy --prefix-symbols) and whose sections land in the user pages
 * (x86_64/user.ld, kernel.ld): a user-mode library in the same image, as
 * a process would have it.  The kernel names these symbols u_*.
 * Built with the red zone (ring 3 has one; the kernel does not).
 */
#include <altstack.h>
#include "usys.h"

static inline void *gs_self(void)
{
    void *p;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(p));
    return p;
}

/* --- user_syscall --------------------------------------------------------------- */

struct ugs ugs[USER_NCPU];
char sys_stack[USER_NCPU][USER_SYS_STACK] __attribute__((aligned(16)));
struct sys_result sysres[USER_NCPU];

void syscall_task(void *arg)
{
    unsigned long cpu = (unsigned long)arg;
    struct sys_result *r = &sysres[cpu];
    for (unsigned long i = 0; i < USER_SYS_CALLS; i++) {
        long slow = i % 64 == 0;
        long v = usys(USYS_PROBE, (long)i, slow, 0);
        r->calls++;
        r->slow += (unsigned long)slow;
        r->bad_bits |= (v & PROBE_OK) ? (unsigned long)(v & ~PROBE_OK) : 0x200ul;
        if (gs_self() != &ugs[cpu])
            r->gs_bad++;
        for (volatile int k = 0; k < 2000; k++)
            ;                           /* time in ring 3, for ticks there */
    }
    usys(USYS_EXIT, r->bad_bits || r->gs_bad, 0, 0);
}

/* --- user_preempt ----------------------------------------------------------------- */

/*
 * A user-level scheduler driven by activations.  The tasks never yield;
 * the kernel's timer takes each one off the CPU, fills a FULL record from
 * the pool with its registers and upcalls sched_upcall(record) on the
 * scheduler's stack.  The scheduler queues the record and resumes the
 * oldest with as_act_resume (no iretq, no system call), which puts that
 * record back in the pool.
 */
static as_act recs[USER_NREC] __attribute__((aligned(64)));
static as_act_pool pool;
static as_act *runq[USER_NTASK + 1];
static unsigned rq_head, rq_tail;
char sched_stack[USER_SCHED_STACK] __attribute__((aligned(16)));
static char task_stack[USER_NTASK][8192] __attribute__((aligned(16)));
static volatile unsigned long progress[USER_NTASK], bad[USER_NTASK];
static unsigned long last_seen[USER_NTASK];
struct pre_result preres;

static void rq_push(as_act *a)
{
    runq[rq_tail++ % (USER_NTASK + 1)] = a;
}

static as_act *rq_pop(void)
{
    return runq[rq_head++ % (USER_NTASK + 1)];
}

/*
 * task_spin(&progress, &bad) - never returns.  Twelve registers (rax,
 * rbx, rcx, rdx, rbp, r8-r14), xmm0 and the sixteen words of the red zone
 * below rsp (all 128 bytes) hold values tied to the counter in rax; a busy
 * loop, where the ticks mostly land, separates writing them from checking
 * them.  A register or red-zone word that a
 * preemption lost counts in *bad.
 */
void task_spin(volatile unsigned long *progress, volatile unsigned long *bad);
__asm__(
    "   .text\n"
    "   .globl task_spin\n"
    "task_spin:\n"
    "   xorl    %eax, %eax\n"
    "1:  leaq    1(%rax), %rbx\n"
    "    leaq    2(%rax), %rcx\n"
    "    leaq    3(%rax), %rdx\n"
    "    leaq    4(%rax), %rbp\n"
    "    leaq    5(%rax), %r8\n"
    "    leaq    6(%rax), %r9\n"
    "    leaq    7(%rax), %r10\n"
    "    leaq    8(%rax), %r11\n"
    "    leaq    9(%rax), %r12\n"
    "    leaq    10(%rax), %r13\n"
    "    leaq    11(%rax), %r14\n"
    "   movq    %rax, %xmm0\n"
    "   movq    %rax, -8(%rsp)\n"
    "   movq    %rbx, -16(%rsp)\n"
    "   movq    %rcx, -24(%rsp)\n"
    "   movq    %rdx, -32(%rsp)\n"
    "   movq    %rbp, -40(%rsp)\n"
    "   movq    %r8, -48(%rsp)\n"
    "   movq    %r9, -56(%rsp)\n"
    "   movq    %r10, -64(%rsp)\n"
    "   movq    %r11, -72(%rsp)\n"
    "   movq    %r12, -80(%rsp)\n"
    "   movq    %r13, -88(%rsp)\n"
    "   movq    %r14, -96(%rsp)\n"
    "   movq    %rax, -104(%rsp)\n"
    "   movq    %rbx, -112(%rsp)\n"
    "   movq    %rcx, -120(%rsp)\n"
    "   movq    %rdx, -128(%rsp)\n"
    "   movl    $300, %r15d\n"
    "2: decl    %r15d\n"
    "   jnz     2b\n"
    "   leaq    1(%rax), %r15\n"
    "   cmpq    %r15, %rbx\n"
    "   jne     3f\n"
    "   leaq    2(%rax), %r15\n"
    "   cmpq    %r15, %rcx\n"
    "   jne     3f\n"
    "   leaq    3(%rax), %r15\n"
    "   cmpq    %r15, %rdx\n"
    "   jne     3f\n"
    "   leaq    4(%rax), %r15\n"
    "   cmpq    %r15, %rbp\n"
    "   jne     3f\n"
    "   leaq    5(%rax), %r15\n"
    "   cmpq    %r15, %r8\n"
    "   jne     3f\n"
    "   leaq    6(%rax), %r15\n"
    "   cmpq    %r15, %r9\n"
    "   jne     3f\n"
    "   leaq    7(%rax), %r15\n"
    "   cmpq    %r15, %r10\n"
    "   jne     3f\n"
    "   leaq    8(%rax), %r15\n"
    "   cmpq    %r15, %r11\n"
    "   jne     3f\n"
    "   leaq    9(%rax), %r15\n"
    "   cmpq    %r15, %r12\n"
    "   jne     3f\n"
    "   leaq    10(%rax), %r15\n"
    "   cmpq    %r15, %r13\n"
    "   jne     3f\n"
    "   leaq    11(%rax), %r15\n"
    "   cmpq    %r15, %r14\n"
    "   jne     3f\n"
    "   movq    %xmm0, %r15\n"
    "   cmpq    %r15, %rax\n"
    "   jne     3f\n"
    "   cmpq    %rax, -8(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rbx, -16(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rcx, -24(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rdx, -32(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rbp, -40(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %r8, -48(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %r9, -56(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %r10, -64(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %r11, -72(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %r12, -80(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %r13, -88(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %r14, -96(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rax, -104(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rbx, -112(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rcx, -120(%rsp)\n"
    "   jne     3f\n"
    "   cmpq    %rdx, -128(%rsp)\n"
    "   jne     3f\n"
    "   incq    %rax\n"
    "   movq    %rax, (%rdi)\n"
    "   jmp     1b\n"
    "3: incq    (%rsi)\n"
    "   incq    %rax\n"
    "   jmp     1b\n");

static void task(void *arg)
{
    unsigned long i = (unsigned long)arg;
    task_spin(&progress[i], &bad[i]);
}

static unsigned long task_of(const as_act *a)
{
    uintptr_t sp = as_act_sp(a);
    for (unsigned long i = 0; i < USER_NTASK; i++)
        if (sp - (uintptr_t)task_stack[i] < sizeof task_stack[i])
            return i;
    return USER_NTASK;
}

/* The upcall: entered by the kernel at the top of sched_stack. */
static void sched_upcall(as_act *a)
{
    struct pre_result *r = &preres;
    r->upcalls++;
    if (as_act_pool_free(&pool) != USER_NREC - USER_NTASK)
        r->free_wrong++;
    unsigned long i = task_of(a);
    if (i < USER_NTASK) {
        r->slices[i]++;
        if (progress[i] != last_seen[i])
            r->moved[i]++;
        last_seen[i] = progress[i];
    } else {
        r->strays++;
    }
    if (r->upcalls >= USER_UPCALLS) {
        usys(USYS_UPCALL, 0, 0, 0);
        as_act_release(a);
        while (rq_head != rq_tail)
            as_act_release(rq_pop());
        for (unsigned long k = 0; k < USER_NTASK; k++) {
            r->progress[k] = progress[k];
            r->bad[k] = bad[k];
        }
        r->free_end = as_act_pool_free(&pool);
        usys(USYS_EXIT, 0, 0, 0);
    }
    rq_push(a);
    as_act_resume(rq_pop());
}

/* Entered by the kernel in ring 3 (on sched_stack too). */
void preempt_main(void *unused)
{
    (void)unused;
    if (as_act_pool_init(&pool, recs, USER_NREC))
        usys(USYS_EXIT, 1, 0, 0);
    for (unsigned long i = 0; i < USER_NTASK; i++) {
        as_stack s;
        as_act *a = as_act_alloc(&pool);
        if (!a || as_stack_init(&s, task_stack[i], sizeof task_stack[i]))
            usys(USYS_EXIT, 2, 0, 0);
        as_act_init(a, &s, task, (void *)i);
        rq_push(a);
    }
    static struct usys_upcall d;
    d.entry = (unsigned long)sched_upcall;
    d.stack_lo = (unsigned long)sched_stack;
    d.stack_hi = (unsigned long)(sched_stack + sizeof sched_stack);
    d.pool = &pool;
    if (usys(USYS_UPCALL, (long)&d, 0, 0))
        usys(USYS_EXIT, 3, 0, 0);
    as_act_resume(rq_pop());
}

/* --- isolation --------------------------------------------------------------------- */

/*
 * Three contexts in three domains on page-aligned stacks A, B, C; the
 * library's "hook" back-end, whose hook is a system call that changes the
 * stacks' page-table entries.  probe_read / probe_write return -1 if the
 * access faulted: the kernel's page-fault handler knows the two
 * instructions and resumes at probe_fixup.
 */
long probe_read(const volatile char *p);
long probe_write(volatile char *p);
__asm__(
    "   .text\n"
    "   .globl probe_read, probe_write, probe_read_insn, probe_write_insn, probe_fixup\n"
    "probe_read:\n"
    "probe_read_insn:\n"
    "   movzbl  (%rdi), %eax\n"
    "   ret\n"
    "probe_write:\n"
    "probe_write_insn:\n"
    "   movb    $0x5a, (%rdi)\n"
    "   xorl    %eax, %eax\n"
    "   ret\n"
    "probe_fixup:\n"
    "   movq    $-1, %rax\n"
    "   ret\n");

#define ISO_STACK 8192
static char iso_a[ISO_STACK] __attribute__((aligned(4096)));
static char iso_b[ISO_STACK] __attribute__((aligned(4096)));
static char iso_c[ISO_STACK] __attribute__((aligned(4096)));
char iso_main_stack[USER_ISO_STACK] __attribute__((aligned(16)));   /* unmanaged */
static as_stack sa, sb, sc;
static as_domain da, db, dc;
static as_ctx iso_cb;
struct iso_result isores;

static void expect(unsigned probe, long got, bool fault)
{
    bool faulted = got == -1;
    isores.faults += faulted;
    if (faulted != fault)
        isores.wrong |= 1ul << probe;
}

static void note(long err)
{
    if (err && !isores.err)
        isores.err = err;
}

static int prot_hook(void *arg, const as_domain_region *r, size_t n)
{
    (void)arg;
    isores.hook_calls++;
    return (int)usys(USYS_PROT, (long)r, (long)n, 0);
}

/* B's context: A is not its to read. */
static as_transfer in_b(as_transfer t)
{
    expect(ISO_OTHER_READ, probe_read(iso_a + 64), true);
    for (;;)
        t = as_switch_domain(t.ctx, &da, NULL);
    return t;
}

/* A's context: its own stack, B read-only, C nothing. */
static as_transfer in_a(as_transfer t)
{
    expect(ISO_OWN_WRITE, probe_write(iso_a + 64), false);
    expect(ISO_RO_READ, probe_read(iso_b + 64), false);
    expect(ISO_RO_WRITE, probe_write(iso_b + 64), true);
    expect(ISO_UNGRANTED_READ, probe_read(iso_c + 64), true);
    expect(ISO_UNGRANTED_WRITE, probe_write(iso_c + 64), true);
    as_switch_domain(iso_cb, &db, NULL);       /* B probes A, comes back */
    note(as_domain_revoke(&da, &sb));          /* effective at A's next entry */
    expect(ISO_REVOKED_BEFORE, probe_read(iso_b + 64), false);
    t = as_switch_domain(t.ctx, NULL, NULL);   /* to main and back: an entry */
    expect(ISO_REVOKED_AFTER, probe_read(iso_b + 64), true);
    for (;;)
        t = as_switch_domain(t.ctx, NULL, NULL);
    return t;
}

void iso_main(void *unused)
{
    (void)unused;
    note(as_stack_init(&sa, iso_a, sizeof iso_a));
    note(as_stack_init(&sb, iso_b, sizeof iso_b));
    note(as_stack_init(&sc, iso_c, sizeof iso_c));
    note(as_domain_set_hook(prot_hook, NULL));
    note(as_domain_init(&da, &sa));
    note(as_domain_init(&db, &sb));
    note(as_domain_init(&dc, &sc));
    note(as_domain_grant(&da, &sb, AS_PROT_READ));
    /* Both fresh contexts now, while every stack is still open: making
     * one writes its first frame on its domain's stack. */
    as_ctx ca = as_domain_ctx_make(&da, in_a);
    iso_cb = as_domain_ctx_make(&db, in_b);
    as_transfer t = as_switch_domain(ca, &da, NULL);  /* A runs up to its revoke */
    t = as_switch_domain(t.ctx, &da, NULL);           /* A again: the next entry */
    (void)t;
    /* Outside every domain now (A switched here naming NULL). */
    expect(ISO_OUTSIDE_READ, probe_read(iso_a + 64), true);
    note(as_domain_leave());
    note(as_domain_fini(&da));
    note(as_domain_fini(&db));
    note(as_domain_fini(&dc));
    note(as_domain_set_hook(NULL, NULL));
    usys(USYS_EXIT, isores.err || isores.wrong, 0, 0);
}
