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
 *               handler runs on the aux stack and uses 2 KiB of it
 *   smp         the second CPU comes up with its own base register
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
static struct {
    uint64_t guard[64];                 /* below the stack: must stay intact */
    char stack[512] __attribute__((aligned(16)));
} small;
static volatile long sys_nr;
static volatile bool sys_on_aux;
static volatile uintptr_t sys_caller_sp, sys_handler_fp;

long ksyscall(long nr, long a0, long a1, uintptr_t caller_sp)
{
    volatile char big[2048];            /* four times the caller's stack */
    memset((char *)big, 0x5a, sizeof big);
    sys_nr = nr;
    sys_on_aux = as_on_auxstack();
    sys_caller_sp = caller_sp;
    sys_handler_fp = (uintptr_t)__builtin_frame_address(0);
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
    check(ok, "syscall");
}

/* --- second CPU --------------------------------------------------------------- */

static volatile bool ap_online;
static volatile void *ap_base;

void kmain_ap(void)
{
    struct cpu *c = this_cpu();
    ap_base = as_percpu_get();
    kprintf("cpu%u: online, base %p\n", c->idx, (void *)c);
    __atomic_store_n(&ap_online, true, __ATOMIC_RELEASE);
    for (;;)
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

void ktick(struct arch_frame *f)
{
    (void)f;
    this_cpu()->ticks++;
}

void kmain(void)
{
    kprintf("altstack example kernel (%s): %u CPUs\n", AS_ARCH_NAME, NCPU);
    check_switch();
    check_call_on_aux();
    check_syscall();
    check_smp();
    kprintf("%s: %d passed, %d failed\n", nfail ? "FAILED" : "ALL PASSED", npass, nfail);
    arch_exit(nfail == 0);
}
