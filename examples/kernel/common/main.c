/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/common/main.c - what the example kernels check, on any
 * architecture.  Each check prints "PASS <name>" or "FAIL <name>"; the
 * last line is the verdict, and the exit status (isa-debug-exit, or
 * semihosting) says the same.  scripts/test-kernels wants every PASS.
 *
 *   switch      as_ctx_make / as_switch: a generator on a stack of its own
 *   call_on_aux as_call_on_aux runs on this CPU's aux stack
 *   syscall     a context on a 512-byte stack makes a system call; the
 *               handler runs on the aux stack and uses 2 KiB of it.
 *               x86_64 repeats it with a foreign GS_BASE, as from user
 *               code; on aarch64 the handler makes a nested svc, which the
 *               EL1t entry takes below its frame on the same stack
 *   smp         the second CPU comes up with its own base register
 *   dlock       a combining-mode delegation lock shared by both CPUs: cpu0
 *               holds it until cpu1 waits, and its unlock runs cpu1's
 *               section on cpu0; then both increment one counter under it,
 *               half through as_dlock_call and half through the transparent
 *               lock/unlock; the total is exact
 *   preempt     a timer interrupt captures whatever runs into a pooled
 *               as_act (AS_ACT_FULL) and resumes the next record of a
 *               round-robin queue through the interrupt return (iretq /
 *               eret); three CPU-bound contexts that never yield, and the
 *               boot context itself, all make progress with their
 *               registers intact
 */
#include "kernel.h"

struct cpu cpus[NCPU];

static int npass, nfail;

static void check(bool ok, const char *name)
{
    kprintf("%s %s\n", ok ? "PASS" : "FAIL", name);
    if (ok)
        npass++;
    else
        nfail++;
}

void kcheck(bool ok, const char *name)
{
    check(ok, name);
}

static bool within(const void *lo, size_t size, uintptr_t p)
{
    return p - (uintptr_t)lo < size;
}

/* --- switch ---------------------------------------------------------------- */

static as_transfer counter_gen(as_transfer t)
{
    for (uintptr_t i = 0; i < 3; i++)
        t = as_switch(t.ctx, (void *)i);
    return (as_transfer){ t.ctx, (void *)0x600d };
}

static void check_switch(void)
{
    static char mem[8192] __attribute__((aligned(16)));
    as_stack s;
    bool ok = as_stack_init(&s, mem, sizeof mem) == 0;
    as_transfer t = { as_ctx_make(&s, counter_gen), NULL };
    for (uintptr_t want = 0; ok && want < 3; want++) {
        t = as_switch(t.ctx, NULL);
        ok = t.ctx && (uintptr_t)t.data == want;
    }
    if (ok) {
        t = as_switch(t.ctx, NULL);
        ok = !t.ctx && t.data == (void *)0x600d;
    }
    check(ok, "switch");
}

/* --- as_call_on_aux ---------------------------------------------------------- */

static void *aux_probe(void *arg)
{
    *(uintptr_t *)arg = (uintptr_t)__builtin_frame_address(0);
    return as_on_auxstack() ? (void *)42 : NULL;
}

static void check_call_on_aux(void)
{
    struct cpu *c = this_cpu();
    uintptr_t fp = 0;
    void *r = as_call_on_aux(aux_probe, &fp);
    check(r == (void *)42 && !as_on_auxstack() &&
          within(c->pc.aux_lo, (char *)c->pc.aux_top - (char *)c->pc.aux_lo, fp),
          "call_on_aux");
}

/* --- syscall from a small stack ------------------------------------------------- */

#define SYS_PROBE 7
#define SYS_NESTED 8
#define SYS_GS 9
static struct {
    uint64_t guard[64];                 /* below the stack: must stay intact */
    char stack[512] __attribute__((aligned(16)));
} small;
static volatile long sys_nr;
static volatile bool sys_on_aux;
static volatile uintptr_t sys_caller_sp, sys_handler_fp, nested_caller_sp, nested_fp;

long ksyscall(long nr, long a0, long a1, uintptr_t caller_sp)
{
    if (nr == SYS_GS) {                 /* which GS does the handler run with? */
        sys_handler_fp = (uintptr_t)__builtin_frame_address(0);
        return (long)(uintptr_t)as_percpu_get();
    }
    if (nr == SYS_NESTED) {
        nested_caller_sp = caller_sp;
        nested_fp = (uintptr_t)__builtin_frame_address(0);
        return a0 * a1;
    }
    volatile char big[2048];            /* four times the caller's stack */
    memset((char *)big, 0x5a, sizeof big);
    sys_nr = nr;
    sys_on_aux = as_on_auxstack();
    sys_caller_sp = caller_sp;
    sys_handler_fp = (uintptr_t)__builtin_frame_address(0);
#if AS_ARCH_AARCH64
    if (arch_syscall(SYS_NESTED, 6, 7) != 42)
        return -1;
#endif
    return a0 + a1 + big[sizeof big - 1] - 0x5a;
}

static as_transfer syscaller(as_transfer t)
{
    long r = arch_syscall(SYS_PROBE, 20, 22);
    return (as_transfer){ t.ctx, (void *)r };
}

static void check_syscall(void)
{
    as_stack s;
    for (unsigned i = 0; i < 64; i++)
        small.guard[i] = 0xdeadbeefcafef00dull;
    bool ok = as_stack_init(&s, small.stack, sizeof small.stack) == 0;
    as_transfer t = as_switch(as_ctx_make(&s, syscaller), NULL);
    ok = ok && !t.ctx && (long)t.data == 42 && sys_nr == SYS_PROBE && sys_on_aux &&
         within(small.stack, sizeof small.stack, sys_caller_sp);
    for (unsigned i = 0; i < 64; i++)
        ok = ok && small.guard[i] == 0xdeadbeefcafef00dull;
    kprintf("  syscall: caller sp %lx on a %u-byte stack, handler frame %lx on the aux stack\n",
            (unsigned long)sys_caller_sp, (unsigned)sizeof small.stack,
            (unsigned long)sys_handler_fp);
#if AS_ARCH_AARCH64
    /* The nested svc came from the handler's own stack and was handled
     * below it, on the same (aux) stack. */
    struct cpu *c = this_cpu();
    size_t aux_size = (size_t)((char *)c->pc.aux_top - (char *)c->pc.aux_lo);
    kprintf("  nested svc: caller sp %lx, handler frame %lx\n",
            (unsigned long)nested_caller_sp, (unsigned long)nested_fp);
    ok = ok && nested_caller_sp <= sys_handler_fp && nested_fp < nested_caller_sp &&
         within(c->pc.aux_lo, aux_size, nested_fp);
#endif
#if AS_ARCH_X86_64
    /* The GS invariant: a caller whose GS_BASE is its own (a user GS)
     * still enters on this CPU's aux stack, found through KERNEL_GS_BASE
     * inside the swapgs window, and the handler and the caller keep the
     * caller's GS. */
    static as_percpu foreign;
    foreign.self = &foreign;
    struct cpu *c = this_cpu();
    size_t aux_size = (size_t)((char *)c->pc.aux_top - (char *)c->pc.aux_lo);
    arch_gs_base_set(&foreign);
    void *handler_gs = (void *)arch_syscall(SYS_GS, 0, 0);
    void *after_gs = as_percpu_get();
    arch_gs_base_set(c);
    kprintf("  syscall with a foreign GS: handler frame %lx, handler's %%gs:0 %p, caller's after %p\n",
            (unsigned long)sys_handler_fp, handler_gs, after_gs);
    ok = ok && handler_gs == &foreign && after_gs == &foreign && as_percpu_get() == c &&
         within(c->pc.aux_lo, aux_size, sys_handler_fp);
#endif
    check(ok, "syscall");
}

/* --- second CPU --------------------------------------------------------------- */

static volatile bool ap_online;
static volatile void *ap_base;
static void dlock_worker(void);
static void (*volatile ap_fn)(void);

void kmain_ap(void)
{
    struct cpu *c = this_cpu();
    ap_base = as_percpu_get();
    kprintf("cpu%u: online, base %p\n", c->idx, (void *)c);
    __atomic_store_n(&ap_online, true, __ATOMIC_RELEASE);
    dlock_worker();
    for (;;) {
        void (*fn)(void) = __atomic_load_n(&ap_fn, __ATOMIC_ACQUIRE);
        if (fn) {
            fn();
            __atomic_store_n(&ap_fn, NULL, __ATOMIC_RELEASE);
        }
        arch_relax();
    }
}

void krun_on_ap(void (*fn)(void))
{
    __atomic_store_n(&ap_fn, fn, __ATOMIC_RELEASE);
    while (__atomic_load_n(&ap_fn, __ATOMIC_ACQUIRE))
        arch_relax();
}

static void check_smp(void)
{
    arch_start_cpu(1);
    for (unsigned long spin = 0; !__atomic_load_n(&ap_online, __ATOMIC_ACQUIRE); spin++)
        if (spin > 200000000ul)
            break;
    check(ap_online && ap_base == (void *)&cpus[1] && as_percpu_get() == (void *)&cpus[0], "smp");
}

/* --- delegation lock shared by both CPUs ----------------------------------------- */

#define DLOCK_ROUNDS  100000          /* per CPU, after the hand-off */
#define HANDOFF_TRIES 10
#define HANDOFF_DONE  (~0u)
static volatile unsigned dlock_go, dlock_done, handoff_req, handoff_ack;
static as_dlock dlock = AS_DLOCK_INITIALIZER;
/* Not atomic, on purpose: only the lock makes the increments exact.  The
 * read-modify-write is spread out so that a race would lose updates. */
static volatile unsigned long dl_counter;
static volatile unsigned long dl_delegated[NCPU];

/* The hook the freestanding dlock asks for: this CPU's index. */
unsigned as_hook_cpu_id(void)
{
    return this_cpu()->idx;
}

/* arg: the CPU that asked.  The section may run on the other one: the
 * base register says where it runs. */
static void *dl_increment(void *arg)
{
    unsigned long v = dl_counter;
    for (volatile int i = 0; i < 64; i++)
        ;
    dl_counter = v + 1;
    unsigned me = this_cpu()->idx;
    if (me != (uintptr_t)arg)
        dl_delegated[me]++;
    return arg;
}

/* Both CPUs: DLOCK_ROUNDS increments, alternating the closure API and the
 * transparent lock/unlock.  cpu1 first answers cpu0's hand-off requests. */
static void dlock_worker(void)
{
    void *me = (void *)(uintptr_t)this_cpu()->idx;
    if (me) {
        unsigned last = 0, r;
        while ((r = __atomic_load_n(&handoff_req, __ATOMIC_ACQUIRE)) != HANDOFF_DONE) {
            if (r != last) {
                as_dlock_call(&dlock, dl_increment, me);
                last = r;
                __atomic_store_n(&handoff_ack, r, __ATOMIC_RELEASE);
            }
            arch_relax();
        }
    }
    while (!__atomic_load_n(&dlock_go, __ATOMIC_ACQUIRE))
        arch_relax();
    for (unsigned i = 0; i < DLOCK_ROUNDS; i++) {
        if (i & 1) {
            as_dlock_lock(&dlock);
            dl_increment(me);
            as_dlock_unlock(&dlock);
        } else {
            as_dlock_call(&dlock, dl_increment, me);
        }
    }
    __atomic_fetch_add(&dlock_done, 1, __ATOMIC_RELEASE);
}

static void check_dlock(void)
{
    /* The hand-off: cpu0 holds the lock until cpu1 is queued on it (the
     * lock word counts waiters), then unlocks, which in combining mode
     * runs cpu1's waiting section here, on cpu0, before releasing.
     * Repeated in the unlikely case cpu1 had not published its request
     * yet and took the lock over instead. */
    unsigned tries = 0;
    while (tries < HANDOFF_TRIES && !dl_delegated[0]) {
        tries++;
        as_dlock_lock(&dlock);
        __atomic_store_n(&handoff_req, tries, __ATOMIC_RELEASE);
        while (!(__atomic_load_n(&dlock.word, __ATOMIC_ACQUIRE) >> 1))
            arch_relax();
        for (volatile int i = 0; i < 100000; i++)
            ;
        dl_increment((void *)0);
        as_dlock_unlock(&dlock);
        while (__atomic_load_n(&handoff_ack, __ATOMIC_ACQUIRE) != tries)
            arch_relax();
    }
    __atomic_store_n(&handoff_req, HANDOFF_DONE, __ATOMIC_RELEASE);
    unsigned long handoff_served = dl_delegated[0];

    /* The free-for-all. */
    __atomic_store_n(&dlock_go, 1, __ATOMIC_RELEASE);
    dlock_worker();
    while (__atomic_load_n(&dlock_done, __ATOMIC_ACQUIRE) < NCPU)
        arch_relax();
    unsigned long want = 2ul * tries + (unsigned long)NCPU * DLOCK_ROUNDS;
    kprintf("  dlock: hand-off served on cpu0 after %u tries; counter %lu (want %lu); "
            "sections served for the other CPU: by cpu0 %lu, by cpu1 %lu\n",
            tries, dl_counter, want, dl_delegated[0], dl_delegated[1]);
    check(dl_counter == want && handoff_served >= 1, "dlock");
}

/* --- preemption: activations on real timer interrupts ------------------------------ */

#define NWORKERS 3
#define SWITCHES 48                     /* round-robin switches to watch */
static as_act act_recs[2 * (NWORKERS + 1)];
static as_act_pool act_pool;
static as_act *runq[NWORKERS + 2];      /* ring of the runnable records */
static unsigned rq_head, rq_tail;
static volatile bool sched_on;
static volatile unsigned long switches, progress[NWORKERS], slices[NWORKERS];
static volatile bool corrupt[NWORKERS];
static char worker_stack[NWORKERS][8192] __attribute__((aligned(16)));

static void rq_push(as_act *a)
{
    runq[rq_tail++ % (NWORKERS + 2)] = a;
}

static as_act *rq_pop(void)
{
    return runq[rq_head++ % (NWORKERS + 2)];
}

/* A CPU-bound context: it never yields, and keeps three counters in
 * registers whose relation a lost or mixed-up register would break. */
static void worker(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    uint64_t a = 0, b = 0, c = 0;
    for (;;) {
        a += 1;
        b += 2;
        c += 3;
        __asm__ volatile("" : "+r"(a), "+r"(b), "+r"(c));
        if (b != 2 * a || c != 3 * a)
            corrupt[i] = true;
        progress[i] = a;
    }
}

/* The tick: capture what ran into a pooled record, queue it, resume the
 * oldest queued record through the interrupt return.  Interrupts are off. */
void ktick(struct arch_frame *f)
{
    this_cpu()->ticks++;
    if (!sched_on || this_cpu()->idx != 0)
        return;
    as_act *cur = as_act_alloc(&act_pool);
    if (!cur)
        return;                         /* cannot happen: 2 per context */
    arch_act_save(cur, f);              /* AS_ACT_FULL */
    as_act_rollforward(cur);
    rq_push(cur);
    as_act *next = rq_pop();
    arch_act_load(f, next);             /* iretq / eret resumes it */
    as_act_release(next);              /* the frame holds it now */
    switches++;
}

static void check_preempt(void)
{
    bool ok = as_act_pool_init(&act_pool, act_recs, sizeof act_recs / sizeof act_recs[0]) == 0;
    for (uintptr_t i = 0; ok && i < NWORKERS; i++) {
        as_stack s;
        as_act *a = as_act_alloc(&act_pool);
        ok = a && as_stack_init(&s, worker_stack[i], sizeof worker_stack[i]) == 0;
        if (ok) {
            as_act_init(a, &s, worker, (void *)i);
            ok = as_act_kind(a) == AS_ACT_FRESH;
            rq_push(a);
        }
    }
    /* This context is one of the round robin too: it spins, never
     * yielding, until every worker has run and SWITCHES ticks went by. */
    volatile uint64_t mine = 0;
    unsigned long seen[NWORKERS] = { 0 };
    if (ok) {
        sched_on = true;
        arch_timer_start();
        arch_irq_enable();
        for (;;) {
            mine++;
            bool all = true;
            for (unsigned i = 0; i < NWORKERS; i++) {
                if (progress[i] != seen[i]) {
                    seen[i] = progress[i];
                    slices[i]++;        /* it ran since we last looked */
                }
                all = all && slices[i] >= 2;
            }
            if (all && switches >= SWITCHES)
                break;
        }
        arch_irq_disable();
        arch_timer_stop();
        sched_on = false;
    }
    kprintf("  preempt: %lu switches; workers ran %lu/%lu/%lu times "
            "(counters %lu/%lu/%lu); boot context looped %lu times\n",
            switches, slices[0], slices[1], slices[2],
            progress[0], progress[1], progress[2], (unsigned long)mine);
    for (unsigned i = 0; i < NWORKERS; i++)
        ok = ok && slices[i] >= 2 && !corrupt[i];
    check(ok && switches >= SWITCHES, "preempt");
}

void kmain(void)
{
    kprintf("altstack example kernel (%s): %u CPUs\n", AS_ARCH_NAME, NCPU);
    check_switch();
    check_call_on_aux();
    check_syscall();
    check_smp();
    check_dlock();
    check_preempt();
#if ARCH_USER_MODE
    arch_user_checks();
#endif
    kprintf("%s: %d passed, %d failed\n", nfail ? "FAILED" : "ALL PASSED", npass, nfail);
    arch_exit(nfail == 0);
}
