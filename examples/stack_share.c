/* SPDX-License-Identifier: MIT */
/*
 * examples/stack_share.c - a message queue whose receive buffer lives on the
 * blocked receiver's stack, with every fiber confined to its own stack.
 *
 * Three fibers, each in its own isolation domain, and a scheduler on the
 * thread's original stack, outside every domain:
 *
 *   receiver  passes a buffer on its own stack to chan_recv and blocks;
 *   sender    copies each message straight into that buffer: while the
 *             receiver waits, the scheduler grants the sender write access
 *             to exactly the receiver's stack, and revokes it once the
 *             message is in;
 *   rogue     tries to write into the receiver's buffer too, with no grant.
 *             Its store faults; the SIGSEGV handler sees a write into a
 *             managed stack, and instead of letting the process die it
 *             makes the rogue fiber continue in fiber_stopped(), which hands
 *             control back to the scheduler for good.
 *
 * The handler returns through the kernel's sigreturn (it edits the saved
 * PC and SP rather than siglongjmp away), so whichever back-end is in use,
 * the interrupted thread's rights come back exactly as they were.
 *
 * Run with AS_DOMAIN_BACKEND=mprotect to force the portable back-end.
 */
#include <altstack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

enum { RECEIVER, SENDER, ROGUE, NFIBERS };

static struct fiber {
    const char *name;
    as_stack stack;
    as_domain dom;
    as_ctx ctx;
    int done;
} fib[NFIBERS] = { { .name = "receiver" }, { .name = "sender" }, { .name = "rogue" } };

static as_ctx scheduler;                /* main, suspended while a fiber runs */

static int self(void)
{
    for (int i = 0; i < NFIBERS; i++)
        if (as_domain_current() == &fib[i].dom)
            return i;
    return -1;
}

/* Back to the scheduler; returns when it runs us again. */
static void yield(void)
{
    scheduler = as_switch_domain(scheduler, NULL, NULL).ctx;
}

/* ---- a one-slot channel; the buffer belongs to the waiting receiver ------ */

static struct {
    char  *buf;                         /* on the receiver's stack          */
    size_t cap, len;
    int    receiver;                    /* a fiber blocked in chan_recv, or -1 */
} chan = { .receiver = -1 };

static size_t chan_recv(char *buf, size_t cap)
{
    chan.buf = buf;
    chan.cap = cap;
    chan.len = 0;
    chan.receiver = self();
    while (chan.len == 0)
        yield();
    chan.receiver = -1;
    return chan.len;
}

static void chan_send(const char *msg)
{
    while (chan.receiver < 0 || chan.len != 0)
        yield();
    size_t n = strlen(msg) + 1;
    if (n > chan.cap)
        n = chan.cap;
    memcpy(chan.buf, msg, n);           /* a write into the receiver's stack */
    chan.buf[n - 1] = '\0';
    chan.len = n;
}

/* ---- the fibers ------------------------------------------------------------ */

static const char *const messages[] = { "hello", "from the sender", "goodbye" };
#define NMSG (sizeof messages / sizeof messages[0])
static int received_ok;

static as_transfer receiver(as_transfer t)
{
    scheduler = t.ctx;
    for (unsigned i = 0; i < NMSG; i++) {
        char buf[64];                   /* the receive buffer, on our stack */
        chan_recv(buf, sizeof buf);
        printf("receiver: \"%s\" arrived in its stack buffer at %p\n", buf, (void *)buf);
        received_ok += strcmp(buf, messages[i]) == 0;
    }
    fib[RECEIVER].done = 1;
    return (as_transfer){ scheduler, NULL };
}

static as_transfer sender(as_transfer t)
{
    scheduler = t.ctx;
    for (unsigned i = 0; i < NMSG; i++)
        chan_send(messages[i]);
    fib[SENDER].done = 1;
    return (as_transfer){ scheduler, NULL };
}

static as_transfer rogue(as_transfer t)
{
    scheduler = t.ctx;
    while (chan.receiver < 0)           /* wait for a buffer to spoil */
        yield();
    printf("rogue: writing into the receiver's buffer at %p\n", (void *)chan.buf);
    strcpy(chan.buf, "forged!");        /* faults: no grant */
    printf("rogue: the write went through; isolation failed\n");
    fib[ROGUE].done = 1;
    return (as_transfer){ scheduler, NULL };
}

/* ---- stopping a fiber that touched a stack it was not granted ------------- */

static volatile sig_atomic_t rogue_stopped;
static void *volatile fault_addr;

/* Where a faulting fiber continues, on its own stack: it never runs again. */
static _Noreturn void fiber_stopped(void)
{
    int me = self();
    printf("%s: stopped by the fault at %p (not granted to it)\n",
           me >= 0 ? fib[me].name : "?", fault_addr);
    if (me == ROGUE)
        rogue_stopped = 1;
    if (me >= 0)
        fib[me].done = 1;
    as_switch_domain(scheduler, NULL, NULL);
    abort();                            /* the scheduler never resumes it */
}

static int in_managed_stack(const void *p)
{
    for (int i = 0; i < NFIBERS; i++)
        if ((const char *)p >= (const char *)fib[i].stack.lo &&
            (const char *)p < (const char *)fib[i].stack.hi)
            return 1;
    return 0;
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    if (!in_managed_stack(si->si_addr) || self() < 0) {
        signal(sig, SIG_DFL);           /* a real bug: let it crash */
        return;
    }
    fault_addr = si->si_addr;
    /* Continue in fiber_stopped, on the fiber's own stack, below what the
     * interrupted code used (x86_64: past the 128-byte red zone), aligned
     * as at a function's entry. */
#if defined(__x86_64__)
    greg_t sp = (uc->uc_mcontext.gregs[REG_RSP] - 256) & ~(greg_t)15;
    uc->uc_mcontext.gregs[REG_RSP] = sp - 8;        /* as if called */
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)fiber_stopped;
#elif defined(__aarch64__)
    uc->uc_mcontext.sp = (uc->uc_mcontext.sp - 256) & ~(unsigned long long)15;
    uc->uc_mcontext.regs[30] = 0;                   /* no return address */
    uc->uc_mcontext.pc = (uintptr_t)fiber_stopped;
#endif
}

/* ---- the scheduler --------------------------------------------------------- */

/* The sender may write to the receiver's stack exactly while it waits. */
static void update_grants(void)
{
    if (chan.receiver >= 0 && chan.len == 0)
        as_domain_grant(&fib[SENDER].dom, &fib[chan.receiver].stack, AS_PROT_RW);
    else
        as_domain_revoke(&fib[SENDER].dom, &fib[RECEIVER].stack);
}

int main(void)
{
    static char sigstack[64 << 10];     /* handlers run outside managed stacks */
    stack_t ss = { .ss_sp = sigstack, .ss_size = sizeof sigstack };
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK };
    sigemptyset(&sa.sa_mask);
    if (sigaltstack(&ss, NULL) || sigaction(SIGSEGV, &sa, NULL))
        return perror("signals"), 1;

    static const as_entry entry[NFIBERS] = { receiver, sender, rogue };
    for (int i = 0; i < NFIBERS; i++) {
        if (as_stack_alloc(&fib[i].stack, 64 << 10) || as_domain_init(&fib[i].dom, &fib[i].stack))
            return fprintf(stderr, "cannot set up %s\n", fib[i].name), 1;
        fib[i].ctx = as_domain_ctx_make(&fib[i].dom, entry[i]);
    }
    printf("isolation back-end: %s\n", as_domain_backend());

    for (int live = NFIBERS; live > 0;) {
        live = 0;
        for (int i = 0; i < NFIBERS; i++) {
            if (fib[i].done)
                continue;
            update_grants();
            fib[i].ctx = as_switch_domain(fib[i].ctx, &fib[i].dom, NULL).ctx;
            live += !fib[i].done;
        }
    }

    for (int i = 0; i < NFIBERS; i++) {
        as_domain_fini(&fib[i].dom);
        as_stack_free(&fib[i].stack);
    }
    int ok = received_ok == (int)NMSG && rogue_stopped;
    printf("%s\n", ok ? "every message arrived; the rogue write was stopped"
                      : "FAILED");
    return ok ? 0 : 1;
}
