/* SPDX-License-Identifier: MIT */
/*
 * tests/test_share.c - isolation domains and shareable stacks (hosted).
 *
 * Accesses are probed with tiny load/store functions; a SIGSEGV inside
 * them is turned into a return value by moving the PC of the interrupted
 * state to a landing pad, and the handler returns normally.  Returning
 * through rt_sigreturn (rather than siglongjmp) matters for the "pkeys"
 * back-end: the kernel runs handlers with its default PKRU and only
 * sigreturn restores the thread's own.
 *
 * Every isolation test body runs once per back-end: "mprotect", "hook"
 * (a test hook that calls mprotect, so faults prove the regions and rights
 * the hook receives), and "pkeys" (skipped with the reason where the CPU or
 * kernel has no protection keys).  Criterion runs each test in its own
 * process, so each starts with no managed stacks.
 */
#include <criterion/criterion.h>
#include <altstack.h>
#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include "cpu_expect.h"
#include "fp_strategy.h"

/* ---- probes ---------------------------------------------------------------- */

/* int probe_load(const void *p), probe_store(void *p): 0, or 1 if faulted.
 * probe_store rewrites the byte it read, so probing live memory is harmless. */
int probe_load(const void *p);
int probe_store(void *p);
extern char probe_begin[], probe_end[], probe_pad[];

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl probe_load, probe_store, probe_begin, probe_end, probe_pad\n"
        ".hidden probe_begin, probe_end, probe_pad\n"
        "probe_begin:\n"
        "probe_load:\n"
        "    endbr64\n"
        "    movb (%rdi), %al\n"
        "    xorl %eax, %eax\n"
        "    ret\n"
        "probe_store:\n"
        "    endbr64\n"
        "    movb (%rdi), %al\n"
        "    movb %al, (%rdi)\n"
        "    xorl %eax, %eax\n"
        "    ret\n"
        "probe_pad:\n"
        "    movl $1, %eax\n"
        "    ret\n"
        "probe_end:\n");
#define UC_PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl probe_load, probe_store, probe_begin, probe_end, probe_pad\n"
        ".hidden probe_begin, probe_end, probe_pad\n"
        "probe_begin:\n"
        "probe_load:\n"
        "    hint #34\n"                /* bti c */
        "    ldrb w1, [x0]\n"
        "    mov w0, #0\n"
        "    ret\n"
        "probe_store:\n"
        "    hint #34\n"
        "    ldrb w1, [x0]\n"
        "    strb w1, [x0]\n"
        "    mov w0, #0\n"
        "    ret\n"
        "probe_pad:\n"
        "    mov w0, #1\n"
        "    ret\n"
        "probe_end:\n");
#define UC_PC(uc) ((uc)->uc_mcontext.pc)
#endif

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    (void)si;
    ucontext_t *uc = ctx;
    uintptr_t pc = (uintptr_t)UC_PC(uc);
    if (pc >= (uintptr_t)probe_begin && pc < (uintptr_t)probe_end) {
        UC_PC(uc) = (uintptr_t)probe_pad;
        return;
    }
    signal(sig, SIG_DFL);           /* a real crash: let it happen */
}

/* Per thread: each thread that probes has its own alternate signal stack
 * (two threads faulting at once must not share one). */
static void probes_init(void)
{
    /* mmap, not malloc: AddressSanitizer munmaps a thread's alternate
     * stack when the thread exits. */
    static _Thread_local char *altstack;
    if (!altstack)
        altstack = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);   /* not a managed stack */
    cr_assert_neq(altstack, MAP_FAILED);
    stack_t ss = { .ss_sp = altstack, .ss_size = 64 << 10 };
    cr_assert_eq(sigaltstack(&ss, NULL), 0);
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
    cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
}

/* What the calling thread may do at p: AS_PROT_NONE, _READ or _RW. */
static int access_of(void *p)
{
    if (probe_load(p))
        return AS_PROT_NONE;
    return probe_store(p) ? AS_PROT_READ : AS_PROT_RW;
}

/* The first and last bytes of a stack's usable range. */
static int access_stack(const as_stack *s)
{
    int a = access_of(s->lo), b = access_of((char *)s->hi - 1);
    return a == b ? a : -1;
}

/* ---- back-ends ------------------------------------------------------------- */

static unsigned hook_calls;

static int mprotect_hook(void *arg, const as_domain_region *r, size_t n)
{
    (void)arg;
    hook_calls++;
    for (size_t i = 0; i < n; i++) {
        int p = r[i].prot == AS_PROT_NONE ? PROT_NONE
              : r[i].prot == AS_PROT_READ ? PROT_READ : PROT_READ | PROT_WRITE;
        if (mprotect(r[i].lo, (size_t)((char *)r[i].hi - (char *)r[i].lo), p) != 0)
            return -errno;
    }
    return 0;
}

static void use_backend(const char *name)
{
    probes_init();
    if (strcmp(name, "hook") == 0) {
        cr_assert_eq(as_domain_set_hook(mprotect_hook, NULL), 0);
    } else if (strcmp(name, "pkeys") == 0 && !as_domain_pkeys_supported()) {
        cpu_expect_missing("pku", "protection keys");
        cr_skip_test("no memory protection keys here (CPU without PKU/OSPKE, "
                     "kernel without pkey_alloc, or not x86_64)");
    } else {
        cr_assert_eq(as_domain_set_backend(name), 0);
    }
    cr_assert_str_eq(as_domain_backend(), name);
}

/* Each body runs as three tests, one per back-end. */
#define BACKEND_TEST(body)                                                 \
    static void body(void);                                               \
    Test(share_mprotect, body) { use_backend("mprotect"); body(); }       \
    Test(share_hook, body) { use_backend("hook"); body(); }               \
    Test(share_pkeys, body) { use_backend("pkeys"); body(); }             \
    static void body(void)

static as_stack new_stack(size_t size)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, size), 0);
    return s;
}

/* n 16 KiB stacks, each the own stack of its domain; and their end. */
static void many_init(as_stack *s, as_domain *d, int n)
{
    for (int i = 0; i < n; i++) {
        s[i] = new_stack(16 << 10);
        cr_assert_eq(as_domain_init(&d[i], &s[i]), 0);
    }
}

static void many_fini(as_stack *s, as_domain *d, int n)
{
    for (int i = 0; i < n; i++) {
        cr_assert_eq(as_domain_fini(&d[i]), 0);
        as_stack_free(&s[i]);
    }
}

/* ---- one domain, grants and revokes ---------------------------------------- */

static int global_word = 7;

BACKEND_TEST(grant_read_write_revoke)
{
    as_stack a = new_stack(64 << 10), b = new_stack(64 << 10), u = new_stack(16 << 10);
    as_domain da, db;
    char *heap = malloc(4096);
    cr_assert_eq(as_domain_init(&da, &a), 0);
    cr_assert_eq(as_domain_init(&db, &b), 0);
    /* Managed but no domain entered yet: everything is still accessible. */
    cr_assert_eq(access_stack(&b), AS_PROT_RW);

    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(as_domain_current(), &da);
    cr_assert_eq(access_stack(&a), AS_PROT_RW, "own stack");
    cr_assert_eq(access_stack(&b), AS_PROT_NONE, "another managed stack");
    cr_assert_eq(access_stack(&u), AS_PROT_RW, "a stack no domain manages");
    cr_assert_eq(access_of(heap), AS_PROT_RW);
    cr_assert_eq(access_of(&global_word), AS_PROT_RW);

    cr_assert_eq(as_domain_grant(&da, &b, AS_PROT_READ), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_NONE, "grants apply at the next entry");
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_READ);

    cr_assert_eq(as_domain_grant(&da, &b, AS_PROT_READ | AS_PROT_WRITE), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_RW);

    cr_assert_eq(as_domain_revoke(&da, &b), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_NONE);

    /* AS_PROT_WRITE alone means read-write; AS_PROT_NONE revokes. */
    cr_assert_eq(as_domain_grant(&da, &b, AS_PROT_WRITE), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_RW);
    cr_assert_eq(as_domain_grant(&da, &b, AS_PROT_NONE), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_NONE);

    /* The other domain: the mirror image. */
    cr_assert_eq(as_domain_enter(&db), 0);
    cr_assert_eq(access_stack(&a), AS_PROT_NONE);
    cr_assert_eq(access_stack(&b), AS_PROT_RW);

    /* Granting a stack no domain manages is allowed and changes nothing. */
    cr_assert_eq(as_domain_grant(&db, &u, AS_PROT_READ), 0);
    cr_assert_eq(as_domain_enter(&db), 0);
    cr_assert_eq(access_stack(&u), AS_PROT_RW);

    /* Leaving: every managed stack is ordinary memory again. */
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_null(as_domain_current());
    cr_assert_eq(access_stack(&a), AS_PROT_RW);
    cr_assert_eq(access_stack(&b), AS_PROT_RW);
    cr_assert_eq(as_domain_fini(&da), 0);
    cr_assert_eq(as_domain_fini(&db), 0);
    as_stack_free(&a);
    as_stack_free(&b);
    as_stack_free(&u);
    free(heap);
}

BACKEND_TEST(fini_restores_and_refuses_current)
{
    as_stack a = new_stack(16 << 10), b = new_stack(16 << 10);
    as_domain da, db;
    cr_assert_eq(as_domain_init(&da, &a), 0);
    cr_assert_eq(as_domain_init(&db, &b), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(as_domain_fini(&da), -EBUSY, "the current domain");
    cr_assert_eq(access_stack(&b), AS_PROT_NONE);
    cr_assert_eq(as_domain_fini(&db), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_RW, "unmanaged again");
    cr_assert_eq(as_domain_fini(&db), -EINVAL, "twice");
    /* A grant on b went dormant; it revives when b is managed again. */
    cr_assert_eq(as_domain_grant(&da, &b, AS_PROT_READ), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_RW);
    cr_assert_eq(as_domain_init(&db, &b), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(access_stack(&b), AS_PROT_READ);
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_eq(as_domain_fini(&da), 0);
    cr_assert_eq(as_domain_fini(&db), 0);
    as_stack_free(&a);
    as_stack_free(&b);
}

/* ---- a fiber in a domain: its own stack works, others do not --------------- */

static as_stack g_a, g_b;

static unsigned deep(unsigned n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    return n ? deep(n - 1) + (unsigned char)pad[0] : 0;
}

static as_transfer confined(as_transfer t)
{
    int *res = t.data;
    res[0] = (int)deep(64);             /* ~40 KiB of its own stack */
    res[1] = access_stack(&g_b);
    res[2] = access_of(res);             /* the caller's (unmanaged) stack */
    res[3] = as_domain_current() == NULL ? -1 : 0;
    return (as_transfer){ t.ctx, NULL };
}

BACKEND_TEST(fiber_own_stack_always_works)
{
    g_a = new_stack(128 << 10);
    g_b = new_stack(64 << 10);
    as_domain da, db;
    cr_assert_eq(as_domain_init(&da, &g_a), 0);
    cr_assert_eq(as_domain_init(&db, &g_b), 0);
    int res[4] = { -9, -9, -9, -9 };
    as_transfer t = as_switch_domain(as_domain_ctx_make(&da, confined), &da, res);
    cr_assert_null(t.ctx);
    cr_assert_eq(res[0], 64 * 65 / 2, "deep recursion on its own stack");
    cr_assert_eq(res[1], AS_PROT_NONE, "another managed stack");
    cr_assert_eq(res[2], AS_PROT_RW, "the unmanaged caller stack");
    cr_assert_eq(res[3], 0, "the fiber runs in its domain");
    cr_assert_eq(as_domain_enter(&db), 0);
    cr_assert_eq(access_stack(&g_a), AS_PROT_NONE);
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_eq(as_domain_fini(&da), 0);
    cr_assert_eq(as_domain_fini(&db), 0);
    as_stack_free(&g_a);
    as_stack_free(&g_b);
}

/* ---- FP control per context, across domain switches --------------------
 * Two fibers in two domains ping-pong with as_switch_domain, each in its
 * own rounding mode, and each checks after every resume that its
 * arithmetic still rounds its way: 1/3 in double (SSE on x86_64, FPCR on
 * aarch64) and, on x86_64, in long double (the x87 control word).  The
 * caller, outside every domain, keeps round-to-nearest.  Under pkeys the
 * fibers switch through the protection-key switch (share.S), whose
 * FP-control code is patched per exact-mode strategy like as_switch's, so
 * the check runs under each strategy. */
enum { FP_ROUNDS = 40 };

static volatile double fp_num = 1.0, fp_den = 3.0;

struct fp_expect { double d; long double ld; };

/* Out of line and from volatile operands: the division happens here, in
 * the rounding mode of the moment (the compiler may otherwise move it
 * across fesetround, which it treats as unrelated to arithmetic). */
static __attribute__((noinline)) struct fp_expect fp_now(void)
{
    return (struct fp_expect){ fp_num / fp_den, (long double)fp_num / fp_den };
}

static struct fp_expect fp_in_mode(int mode)
{
    int old = fegetround();
    fesetround(mode);
    struct fp_expect e = fp_now();
    fesetround(old);
    return e;
}

static struct {
    as_domain d[2];
    struct fp_expect want[2];
    int wrong[2];                       /* resumes that rounded otherwise */
    int mode[2];
    as_ctx fresh1;                      /* fiber 1, made by the caller */
} fpd;

static void fp_check(int me)
{
    struct fp_expect e = fp_now();
    if (e.d != fpd.want[me].d || e.ld != fpd.want[me].ld || fegetround() != fpd.mode[me])
        fpd.wrong[me]++;
}

/* Fiber 0 starts fiber 1 (made by the caller); then they alternate FP_ROUNDS times; fiber 0
 * goes back to the caller at the end (fiber 1 stays suspended). */
static as_transfer fp_fiber1(as_transfer t)
{
    fesetround(fpd.mode[1]);
    for (;;) {
        fp_check(1);
        t = as_switch_domain(t.ctx, &fpd.d[0], NULL);
    }
    return t;                           /* not reached */
}

static as_transfer fp_fiber0(as_transfer t)
{
    as_ctx caller = t.ctx;
    fesetround(fpd.mode[0]);
    as_transfer u = as_switch_domain(fpd.fresh1, &fpd.d[1], NULL);
    for (int i = 0; i < FP_ROUNDS; i++) {
        fp_check(0);
        u = as_switch_domain(u.ctx, &fpd.d[1], NULL);
    }
    fp_check(0);
    return (as_transfer){ caller, NULL };
}

static void check_fp_across_domains(void)
{
    as_stack s[2] = { new_stack(64 << 10), new_stack(64 << 10) };
    fpd.mode[0] = FE_UPWARD;
    fpd.mode[1] = FE_DOWNWARD;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(as_domain_init(&fpd.d[i], &s[i]), 0);
        fpd.want[i] = fp_in_mode(fpd.mode[i]);
        fpd.wrong[i] = 0;
    }
    struct fp_expect near = fp_in_mode(FE_TONEAREST);
    cr_assert_neq(fpd.want[0].d, fpd.want[1].d, "the modes round 1/3 apart");
    cr_assert_neq(fpd.want[0].ld, fpd.want[1].ld);
    cr_assert_eq(fegetround(), FE_TONEAREST);
    /* Made here: inside domain 0, fiber 1's stack is closed. */
    fpd.fresh1 = as_domain_ctx_make(&fpd.d[1], fp_fiber1);
    cr_assert_not_null(fpd.fresh1);
    as_transfer t = as_switch_domain(as_domain_ctx_make(&fpd.d[0], fp_fiber0), &fpd.d[0], NULL);
    cr_assert_null(t.ctx);
    struct fp_expect e = fp_now();
    cr_assert_eq(fegetround(), FE_TONEAREST, "the caller's mode");
    cr_assert(e.d == near.d && e.ld == near.ld, "the caller rounds to nearest");
    cr_assert_eq(fpd.wrong[0], 0, "fiber 0 lost its rounding mode %d times", fpd.wrong[0]);
    cr_assert_eq(fpd.wrong[1], 0, "fiber 1 lost its rounding mode %d times", fpd.wrong[1]);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(as_domain_fini(&fpd.d[i]), 0);
        as_stack_free(&s[i]);
    }
}

BACKEND_TEST(fp_control_per_context_across_domain_switches)
{
    each_fp_strategy(check_fp_across_domains);
}

/* ---- 16 fibers switching among themselves with random grants --------------- */

#define NF 16
static as_stack fst[NF];
static as_domain fdm[NF];
static as_ctx fctx[NF + 1];             /* [NF]: the main context */
static int rights[NF][NF];
static uint64_t rng_state;
static long budget;
static unsigned long probes, mismatches, wrong_domain;

static uint64_t rnd(void)
{
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* me: a fiber's index, or NF for main (outside every domain). */
static void check_all(int me)
{
    for (int j = 0; j < NF; j++) {
        int want = me == NF ? AS_PROT_NONE : j == me ? AS_PROT_RW : rights[me][j];
        probes++;
        if (access_stack(&fst[j]) != want)
            mismatches++;
    }
}

static void randomize_rights(void)
{
    static const int choice[4] = { AS_PROT_NONE, AS_PROT_NONE, AS_PROT_READ, AS_PROT_RW };
    for (int i = 0; i < NF; i++) {
        int granted = 0;
        for (int j = 0; j < NF; j++) {
            if (i == j)
                continue;
            /* At most 12 grants: with its own stack and the switcher's,
             * a domain then needs 14 keys, within the 15 "pkeys" has. */
            rights[i][j] = granted < 12 ? choice[rnd() % 4] : AS_PROT_NONE;
            granted += rights[i][j] != AS_PROT_NONE;
            cr_assert_eq(as_domain_grant(&fdm[i], &fst[j], rights[i][j]), 0);
        }
    }
}

static as_transfer hopper(as_transfer t)
{
    int me = (int)(as_domain_current() - fdm);
    for (;;) {
        int from = (int)(intptr_t)t.data;
        fctx[from] = t.ctx;
        if (as_domain_current() != &fdm[me])
            wrong_domain++;
        check_all(me);
        int next = NF;
        if (--budget > 0 && rnd() % 8) {
            next = (int)(rnd() % (NF - 1));
            next += next >= me;
        }
        t = as_switch_domain(fctx[next], next == NF ? NULL : &fdm[next], (void *)(intptr_t)me);
    }
    __builtin_unreachable();            /* never finishes: main stops resuming it */
}

BACKEND_TEST(sixteen_fibers_random_grants)
{
    rng_state = 12345;
    for (int i = 0; i < NF; i++) {
        fst[i] = new_stack(64 << 10);
        cr_assert_eq(as_domain_init(&fdm[i], &fst[i]), 0);
    }
    for (int i = 0; i < NF; i++)
        cr_assert_not_null(fctx[i] = as_domain_ctx_make(&fdm[i], hopper));
    randomize_rights();
    budget = 600;
    for (int round = 0; budget > 0; round++) {
        if (round == 20)
            randomize_rights();     /* new grants apply at each next entry */
        int k = (int)(rnd() % NF);
        as_transfer t = as_switch_domain(fctx[k], &fdm[k], (void *)(intptr_t)NF);
        fctx[(intptr_t)t.data] = t.ctx;
        cr_assert_null(as_domain_current());
        check_all(NF);
    }
    cr_assert_gt(probes, 600 * NF);
    cr_assert_eq(mismatches, 0, "%lu of %lu probes disagree with the rights table",
                 mismatches, probes);
    cr_assert_eq(wrong_domain, 0);
    for (int i = 0; i < NF; i++) {
        cr_assert_eq(as_domain_fini(&fdm[i]), 0);
        as_stack_free(&fst[i]);
    }
}

/* ---- more managed stacks than protection keys ------------------------------ */

#define NMANY 64

BACKEND_TEST(sixty_four_stacks)
{
    static as_stack s[NMANY];
    static as_domain d[NMANY];
    many_init(s, d, NMANY);
    for (int i = 0; i < NMANY; i++) {
        cr_assert_eq(as_domain_grant(&d[i], &s[(i + 1) % NMANY], AS_PROT_READ), 0);
        cr_assert_eq(as_domain_grant(&d[i], &s[(i + 2) % NMANY], AS_PROT_RW), 0);
    }
    unsigned long bad = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int n = 0; n < NMANY; n++) {
            int i = pass == 1 ? (n * 37) % NMANY : n;     /* another order */
            cr_assert_eq(as_domain_enter(&d[i]), 0);
            bad += access_stack(&s[i]) != AS_PROT_RW;
            bad += access_stack(&s[(i + 1) % NMANY]) != AS_PROT_READ;
            bad += access_stack(&s[(i + 2) % NMANY]) != AS_PROT_RW;
            bad += access_stack(&s[(i + 3) % NMANY]) != AS_PROT_NONE;
            bad += access_stack(&s[(i + NMANY - 1) % NMANY]) != AS_PROT_NONE;
            bad += access_stack(&s[(i + 32) % NMANY]) != AS_PROT_NONE;
        }
    }
    cr_assert_eq(bad, 0);
    cr_assert_eq(as_domain_leave(), 0);
    for (int i = 0; i < NMANY; i++) {
        cr_assert_eq(access_stack(&s[i]), AS_PROT_RW);
        cr_assert_eq(as_domain_fini(&d[i]), 0);
        as_stack_free(&s[i]);
    }
}

/* ---- exact key allocation (issue: protection-key domains) ------------------ */

/* Rights are per thread ("pkeys") or for the whole process (the others). */
static bool per_thread(void)
{
    return strcmp(as_domain_backend(), "pkeys") == 0;
}

#define N13 13

/* A domain of 13 stacks (own + 12 grants) to another, disjoint one: 26
 * stacks in all, more than 15 keys, but each domain fits alone. */
BACKEND_TEST(thirteen_stack_domain_to_thirteen_stack_domain)
{
    static as_stack s[2 * N13];
    static as_domain d[2 * N13];
    many_init(s, d, 2 * N13);
    for (int side = 0; side < 2; side++)
        for (int j = 1; j < N13; j++)
            cr_assert_eq(as_domain_grant(&d[side * N13], &s[side * N13 + j],
                                         j % 2 ? AS_PROT_READ : AS_PROT_RW), 0);
    for (int round = 0; round < 4; round++) {
        int side = round % 2, other = 1 - side;
        cr_assert_eq(as_domain_enter(&d[side * N13]), 0, "round %d", round);
        cr_assert_eq(as_domain_current(), &d[side * N13]);
        for (int j = 0; j < N13; j++) {
            int want = j == 0 ? AS_PROT_RW : j % 2 ? AS_PROT_READ : AS_PROT_RW;
            cr_assert_eq(access_stack(&s[side * N13 + j]), want, "round %d stack %d", round, j);
            cr_assert_eq(access_stack(&s[other * N13 + j]), AS_PROT_NONE);
        }
    }
    cr_assert_eq(as_domain_leave(), 0);
    many_fini(s, d, 2 * N13);
}

#define N16 16

/* An entry that cannot be satisfied ("pkeys": a domain of 16 stacks needs
 * 16 keys) must leave everything as it was: the current domain and its
 * rights, and stacks that were still open stay open.  The page back-ends
 * have no such limit: there the same entry works. */
BACKEND_TEST(failed_entry_leaves_no_trace)
{
    static as_stack s[N16];
    static as_domain d[N16];
    as_stack ab[2];
    as_domain dab[2];
    many_init(ab, dab, 2);
    cr_assert_eq(as_domain_grant(&dab[0], &ab[1], AS_PROT_READ), 0);
    cr_assert_eq(as_domain_enter(&dab[0]), 0);
    for (int i = 0; i < N16; i++) {
        s[i] = new_stack(16 << 10);
        cr_assert_eq(as_domain_init(&d[i], &s[i]), 0);
        cr_assert_eq(access_stack(&s[i]), AS_PROT_RW, "open until the next entry");
    }
    for (int i = 1; i < N16; i++)
        cr_assert_eq(as_domain_grant(&d[0], &s[i], AS_PROT_RW), 0);
    if (per_thread()) {
        cr_assert_eq(as_domain_enter(&d[0]), -EBUSY, "16 stacks, 15 keys");
        cr_assert_eq(as_domain_current(), &dab[0], "still in the old domain");
        cr_assert_eq(access_stack(&ab[0]), AS_PROT_RW);
        cr_assert_eq(access_stack(&ab[1]), AS_PROT_READ);
        for (int i = 0; i < N16; i++)
            cr_assert_eq(access_stack(&s[i]), AS_PROT_RW, "stack %d: still open", i);
        /* And once the domain fits, entering it works. */
        cr_assert_eq(as_domain_revoke(&d[0], &s[N16 - 1]), 0);
    }
    cr_assert_eq(as_domain_enter(&d[0]), 0);
    cr_assert_eq(access_stack(&ab[0]), AS_PROT_NONE);
    for (int i = 0; i < N16 - 1; i++)
        cr_assert_eq(access_stack(&s[i]), AS_PROT_RW, "stack %d", i);
    cr_assert_eq(as_domain_leave(), 0);
    many_fini(s, d, N16);
    many_fini(ab, dab, 2);
}

/* ---- no thread gains rights ------------------------------------------------- */

#define NMOVE 20

static as_stack mv_s[NMOVE];
static as_domain mv_d[NMOVE];
static atomic_int mv_phase;
static int mv_seen[NMOVE];

/* A thread created inside domain mv_d[0] (so it starts with that
 * domain's PKRU), that never enters a domain itself: once the keys have
 * moved, it probes every stack. */
static void *inheritor(void *arg)
{
    (void)arg;
    probes_init();
    atomic_store(&mv_phase, 1);
    while (atomic_load(&mv_phase) != 2)
        sched_yield();
    for (int i = 0; i < NMOVE; i++)
        mv_seen[i] = access_stack(&mv_s[i]);
    atomic_store(&mv_phase, 3);
    return NULL;
}

BACKEND_TEST(threads_created_inside_a_domain_gain_nothing)
{
    many_init(mv_s, mv_d, NMOVE);
    cr_assert_eq(as_domain_enter(&mv_d[0]), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, inheritor, NULL), 0);
    while (atomic_load(&mv_phase) != 1)
        sched_yield();
    /* Every key moves at least once: 19 more domains, one stack each. */
    for (int i = 1; i < NMOVE; i++)
        cr_assert_eq(as_domain_enter(&mv_d[i]), 0);
    atomic_store(&mv_phase, 2);
    while (atomic_load(&mv_phase) != 3)
        sched_yield();
    pthread_join(t, NULL);
    for (int i = 0; i < NMOVE; i++) {
        /* Per thread: it entered nothing, so nothing.  Process-wide: what
         * the last entry gave everybody. */
        int want = !per_thread() && i == NMOVE - 1 ? AS_PROT_RW : AS_PROT_NONE;
        cr_assert_eq(mv_seen[i], want, "stack %d: the thread sees %d", i, mv_seen[i]);
    }
    cr_assert_eq(as_domain_leave(), 0);
    many_fini(mv_s, mv_d, NMOVE);
}

/* A thread in a domain keeps its rights, exactly, while another thread
 * moves every other key around it. */
static void *resident(void *arg)
{
    (void)arg;
    probes_init();
    long bad = 0;
    cr_assert_eq(as_domain_enter(&mv_d[0]), 0);
    atomic_store(&mv_phase, 1);
    while (atomic_load(&mv_phase) == 1) {
        bad += access_stack(&mv_s[0]) != AS_PROT_RW;
        bad += access_stack(&mv_s[1]) != AS_PROT_READ;
        for (int i = 2; i < NMOVE; i++)
            bad += access_stack(&mv_s[i]) != AS_PROT_NONE;
    }
    return (void *)bad;
}

Test(share_pkeys, a_thread_keeps_its_rights_while_keys_move)
{
    use_backend("pkeys");
    many_init(mv_s, mv_d, NMOVE);
    cr_assert_eq(as_domain_grant(&mv_d[0], &mv_s[1], AS_PROT_READ), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, resident, NULL), 0);
    while (atomic_load(&mv_phase) != 1)
        sched_yield();
    for (int round = 0; round < 3; round++)
        for (int i = 2; i < NMOVE; i++) {
            cr_assert_eq(as_domain_enter(&mv_d[i]), 0);
            cr_assert_eq(access_stack(&mv_s[i]), AS_PROT_RW);
            cr_assert_eq(access_stack(&mv_s[0]), AS_PROT_NONE);
        }
    cr_assert_eq(as_domain_fini(&mv_d[0]), -EBUSY, "the other thread is in it");
    atomic_store(&mv_phase, 2);
    void *bad;
    pthread_join(t, &bad);
    cr_assert_eq((long)bad, 0, "%ld wrong probes in the resident thread", (long)bad);
}

/* ---- fork ------------------------------------------------------------------- */

static atomic_int fk_phase;
static as_stack fk_s[3];
static as_domain fk_d[3];

static void *fk_thread(void *arg)
{
    (void)arg;
    as_domain_enter(&fk_d[1]);
    atomic_store(&fk_phase, 1);
    while (atomic_load(&fk_phase) != 2)
        sched_yield();
    return NULL;
}

/* After fork the child has one thread: domains entered by the parent's
 * other threads are nobody's, so they can be finalized and their keys
 * reused. */
BACKEND_TEST(fork_child_registry_is_consistent)
{
    many_init(fk_s, fk_d, 3);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fk_thread, NULL), 0);
    while (atomic_load(&fk_phase) != 1)
        sched_yield();
    cr_assert_eq(as_domain_enter(&fk_d[0]), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int code = 0;
        if (as_domain_current() != &fk_d[0])
            code |= 1;
        if (access_stack(&fk_s[0]) != AS_PROT_RW || access_stack(&fk_s[1]) != AS_PROT_NONE)
            code |= 2;
        if (as_domain_fini(&fk_d[1]) != 0)        /* its thread is gone */
            code |= 4;
        if (as_domain_enter(&fk_d[2]) != 0 || access_stack(&fk_s[2]) != AS_PROT_RW)
            code |= 8;
        _exit(code);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "child check mask %d (1 current, 2 rights, "
                 "4 fini of the other thread's domain, 8 entry)", WEXITSTATUS(status));
    /* The parent is unchanged: the thread still holds fk_d[1]. */
    if (per_thread())
        cr_assert_eq(as_domain_fini(&fk_d[1]), -EBUSY);
    atomic_store(&fk_phase, 2);
    pthread_join(t, NULL);
}

/* ---- signal handlers and PKRU ------------------------------------------------ */

#if defined(__x86_64__)
static unsigned rdpkru_now(void)
{
    unsigned eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xee" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}

static volatile unsigned handler_pkru;
static void note_pkru(int sig)
{
    (void)sig;
    handler_pkru = rdpkru_now();
}

/* What share.h says: handlers run with key 0 allowed and keys 1-15
 * access-disabled, whatever the interrupted code had; sigreturn gives the
 * interrupted code its own rights back. */
Test(share_pkeys, signal_handlers_run_with_key_0_only)
{
    use_backend("pkeys");
    as_stack a = new_stack(16 << 10);
    as_domain da;
    cr_assert_eq(as_domain_init(&da, &a), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    unsigned before = rdpkru_now();
    signal(SIGUSR1, note_pkru);
    raise(SIGUSR1);
    cr_assert_eq(handler_pkru, 0x55555554u, "in the handler: %#x", handler_pkru);
    cr_assert_eq(rdpkru_now(), before, "after sigreturn");
    cr_assert_eq(access_stack(&a), AS_PROT_RW);
}
#endif

/* ---- as_domain_init on memory that is not there ------------------------------ */

BACKEND_TEST(init_on_an_unmapped_range_fails)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(munmap(m + 4 * page, page), 0);     /* a hole in the middle */
    as_stack holed = { .lo = m, .hi = m + 8 * page, .map = NULL, .map_size = 0 };
    as_stack gone = { .lo = m + 4 * page, .hi = m + 5 * page, .map = NULL, .map_size = 0 };
    as_domain d;
    /* The hook is the kernel's: it decides what it can protect. */
    int want = strcmp(as_domain_backend(), "hook") == 0 ? 0 : -EFAULT;
    cr_assert_eq(as_domain_init(&d, &holed), want);
    if (want == 0)
        cr_assert_eq(as_domain_fini(&d), 0);
    cr_assert_eq(as_domain_init(&d, &gone), want);
    if (want == 0)
        cr_assert_eq(as_domain_fini(&d), 0);
    as_stack whole = { .lo = m, .hi = m + 4 * page, .map = NULL, .map_size = 0 };
    cr_assert_eq(as_domain_init(&d, &whole), 0, "the mapped part is fine");
    cr_assert_eq(as_domain_fini(&d), 0);
    munmap(m, 8 * page);
}

/* ---- a plain fault, seen by the process ------------------------------------ */

Test(share, touching_a_closed_stack_raises_sigsegv, .signal = SIGSEGV)
{
    as_stack a = new_stack(16 << 10), b = new_stack(16 << 10);
    as_domain da, db;
    cr_assert_eq(as_domain_set_backend("mprotect"), 0);
    cr_assert_eq(as_domain_init(&da, &a), 0);
    cr_assert_eq(as_domain_init(&db, &b), 0);
    cr_assert_eq(as_domain_enter(&da), 0);
    *(volatile char *)b.lo = 1;
}

/* ---- back-end selection and the hook's view -------------------------------- */

Test(share, backend_choice)
{
    cr_assert_eq(setenv("AS_DOMAIN_BACKEND", "mprotect", 1), 0);
    cr_assert_eq(as_domain_set_backend(NULL), 0);
    cr_assert_str_eq(as_domain_backend(), "mprotect");
    cr_assert_eq(unsetenv("AS_DOMAIN_BACKEND"), 0);
    cr_assert_eq(as_domain_set_backend(NULL), 0);
    cr_assert_str_eq(as_domain_backend(), as_domain_pkeys_supported() ? "pkeys" : "mprotect");
    cr_assert_eq(as_domain_set_backend("pkeys"), as_domain_pkeys_supported() ? 0 : -ENOTSUP);
    cr_assert_eq(as_domain_set_backend("bogus"), -EINVAL);
    cr_assert_eq(as_domain_set_backend("mprotect"), 0);

    as_stack a = new_stack(16 << 10);
    as_domain da;
    cr_assert_eq(as_domain_init(&da, &a), 0);
    cr_assert_eq(as_domain_set_backend("mprotect"), -EBUSY, "stacks are managed");
    cr_assert_eq(as_domain_set_hook(mprotect_hook, NULL), -EBUSY);
    cr_assert_eq(as_domain_fini(&da), 0);
    cr_assert_eq(as_domain_set_hook(mprotect_hook, NULL), 0);
    cr_assert_str_eq(as_domain_backend(), "hook");
    cr_assert_eq(as_domain_set_backend("mprotect"), -EBUSY, "a hook is installed");
    cr_assert_eq(as_domain_set_hook(NULL, NULL), 0);
    cr_assert_str_neq(as_domain_backend(), "hook");
    as_stack_free(&a);
}

static as_domain_region seen[64];
static size_t nseen;

static int recording_hook(void *arg, const as_domain_region *r, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n && nseen < 64; i++)
        seen[nseen++] = r[i];
    return 0;
}

static int seen_prot(const as_stack *s)
{
    int p = -1;
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].lo == s->lo && seen[i].hi == s->hi)
            p = seen[i].prot;
    return p;
}

Test(share, hook_sees_only_changes)
{
    as_stack a = new_stack(16 << 10), b = new_stack(16 << 10), c = new_stack(16 << 10);
    as_domain da, db, dc;
    cr_assert_eq(as_domain_set_hook(recording_hook, NULL), 0);
    cr_assert_eq(as_domain_init(&da, &a), 0);
    cr_assert_eq(as_domain_init(&db, &b), 0);
    cr_assert_eq(as_domain_init(&dc, &c), 0);
    cr_assert_eq(as_domain_grant(&da, &b, AS_PROT_READ), 0);
    cr_assert_eq(nseen, 0, "nothing changes before an entry");
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(nseen, 2, "b becomes read-only, c closes; a stays as it is");
    cr_assert_eq(seen_prot(&b), AS_PROT_READ);
    cr_assert_eq(seen_prot(&c), AS_PROT_NONE);
    nseen = 0;
    cr_assert_eq(as_domain_enter(&da), 0);
    cr_assert_eq(nseen, 0, "entering again changes nothing");
    cr_assert_eq(as_domain_enter(&dc), 0);
    cr_assert_eq(nseen, 3);
    cr_assert_eq(seen_prot(&a), AS_PROT_NONE);
    cr_assert_eq(seen_prot(&b), AS_PROT_NONE);
    cr_assert_eq(seen_prot(&c), AS_PROT_RW);
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_eq(as_domain_fini(&da), 0);
    cr_assert_eq(as_domain_fini(&db), 0);
    cr_assert_eq(as_domain_fini(&dc), 0);
    as_stack_free(&a);
    as_stack_free(&b);
    as_stack_free(&c);
}

/* ---- the registry under concurrent use -------------------------------------- */

#define CHURN_STACKS 8
#define CHURN_SIZE   (16 << 10)

static void *churn(void *arg)
{
    char *mem = aligned_alloc(4096, CHURN_STACKS * CHURN_SIZE);
    as_stack s[CHURN_STACKS];
    as_domain d[CHURN_STACKS];
    long errors = 0;
    (void)arg;
    for (int i = 0; i < CHURN_STACKS; i++)
        errors += as_stack_init(&s[i], mem + i * CHURN_SIZE, CHURN_SIZE) != 0;
    for (int round = 0; round < 300; round++) {
        for (int i = 0; i < CHURN_STACKS; i++)
            errors += as_domain_init(&d[i], &s[i]) != 0;
        for (int i = 0; i < CHURN_STACKS; i++)
            errors += as_domain_grant(&d[i], &s[(i + 1) % CHURN_STACKS], AS_PROT_READ) != 0;
        for (int i = CHURN_STACKS; i-- > 0;)
            errors += as_domain_fini(&d[i]) != 0;
    }
    free(mem);
    return (void *)errors;
}

Test(share, registry_is_thread_safe)
{
    pthread_t th[4];
    cr_assert_eq(as_domain_set_backend("mprotect"), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, churn, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *errors;
        cr_assert_eq(pthread_join(th[i], &errors), 0);
        cr_assert_null(errors, "thread %d saw %ld failures", i, (long)errors);
    }
    cr_assert_eq(as_domain_set_backend("mprotect"), 0, "every stack unmanaged again");
}

/* ---- bad arguments ----------------------------------------------------------- */

Test(share, bad_arguments)
{
    as_stack a = new_stack(16 << 10), b = new_stack(16 << 10);
    as_domain da, db, zero;
    memset(&zero, 0, sizeof zero);
    cr_assert_eq(as_domain_set_backend("mprotect"), 0);

    cr_assert_eq(as_domain_init(NULL, &a), -EINVAL);
    cr_assert_eq(as_domain_init(&da, NULL), -EINVAL);
    as_stack empty = { 0 };
    cr_assert_eq(as_domain_init(&da, &empty), -EINVAL);
    static char raw[3 * 4096 + 64];
    as_stack adopted;                   /* not page-aligned: mprotect cannot */
    cr_assert_eq(as_stack_init(&adopted, raw + 16, sizeof raw - 32), 0);
    cr_assert_eq(as_domain_init(&da, &adopted), -EINVAL);

    cr_assert_eq(as_domain_init(&da, &a), 0);
    cr_assert_eq(as_domain_init(&da, &b), -EBUSY, "already initialized");
    cr_assert_eq(as_domain_init(&db, &a), -EBUSY, "a is already managed");
    as_stack part = { (char *)a.lo + 4096, a.hi, NULL, 0 };
    cr_assert_eq(as_domain_init(&db, &part), -EBUSY, "overlaps a");
    cr_assert_eq(as_domain_init(&db, &b), 0);

    cr_assert_eq(as_domain_grant(NULL, &b, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_grant(&zero, &b, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_grant(&da, NULL, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_grant(&da, &b, 4), -EINVAL);
    cr_assert_eq(as_domain_grant(&da, &b, -1), -EINVAL);
    cr_assert_eq(as_domain_grant(&da, &a, AS_PROT_READ), -EINVAL, "its own stack");
    cr_assert_eq(as_domain_revoke(NULL, &b), -EINVAL);
    cr_assert_eq(as_domain_revoke(&da, NULL), -EINVAL);
    cr_assert_eq(as_domain_revoke(&da, &b), 0, "nothing granted: nothing to do");

    static as_stack many[AS_DOMAIN_GRANTS + 1];
    static _Alignas(16) char mem[AS_DOMAIN_GRANTS + 1][AS_STACK_MIN];
    for (int i = 0; i <= AS_DOMAIN_GRANTS; i++) {
        cr_assert_eq(as_stack_init(&many[i], mem[i], sizeof mem[i]), 0);
        cr_assert_eq(as_domain_grant(&da, &many[i], AS_PROT_READ),
                     i < AS_DOMAIN_GRANTS ? 0 : -ENOSPC);
    }

    cr_assert_eq(as_domain_enter(NULL), -EINVAL);
    cr_assert_eq(as_domain_enter(&zero), -EINVAL);
    cr_assert_eq(as_domain_fini(NULL), -EINVAL);
    cr_assert_eq(as_domain_fini(&zero), -EINVAL);
    cr_assert_null(as_domain_ctx_make(NULL, NULL));
    cr_assert_null(as_domain_ctx_make(&da, NULL));

    cr_assert_eq(as_stack_alloc_shareable(NULL, 4096), -EINVAL);
    as_stack sh;
    cr_assert_eq(as_stack_alloc_shareable(&sh, 0), -EINVAL);
    cr_assert_null(sh.map);
    cr_assert_eq(as_stack_alloc_shareable(&sh, 16 << 10), 0);
    void *al = (void *)1;
    cr_assert_eq(as_stack_alias(NULL, AS_PROT_READ, &al), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, AS_PROT_READ, NULL), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, AS_PROT_NONE, &al), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, 7, &al), -EINVAL);
    cr_assert_eq(as_stack_alias(&a, AS_PROT_READ, &al), -EINVAL, "not shareable");
    cr_assert_eq(as_stack_alias(&adopted, AS_PROT_READ, &al), -EINVAL, "adopted memory");
    cr_assert_eq(as_stack_unalias(NULL, al), -EINVAL);
    cr_assert_eq(as_stack_unalias(&sh, NULL), -EINVAL);
    cr_assert_eq(as_stack_unalias(&sh, (char *)sh.lo + 1), -EINVAL);
    as_stack_free(&sh);

    cr_assert_eq(as_domain_fini(&da), 0);
    cr_assert_eq(as_domain_fini(&db), 0);
    as_stack_free(&a);
    as_stack_free(&b);
}

/* ---- shareable stacks and aliases ------------------------------------------- */

static as_transfer fill(as_transfer t)
{
    char msg[64];
    strcpy(msg, "written on the shareable stack");
    memcpy(t.data, &msg, sizeof msg);   /* t.data: where the caller wants it */
    return (as_transfer){ t.ctx, NULL };
}

Test(share, alias_sees_writes_both_ways)
{
    probes_init();
    as_stack s;
    cr_assert_eq(as_stack_alloc_shareable(&s, 32 << 10), 0);
    size_t n = as_stack_size(&s);
    cr_assert_geq(n, 32 << 10);
    cr_assert_eq(access_of((char *)s.lo - 1), AS_PROT_NONE, "the guard page is kept");
    char *rw, *ro;
    cr_assert_eq(as_stack_alias(&s, AS_PROT_RW, (void **)&rw), 0);
    cr_assert_eq(as_stack_alias(&s, AS_PROT_READ, (void **)&ro), 0);
    cr_assert_neq(rw, (char *)s.lo);
    char *lo = s.lo;
    strcpy(lo + 100, "through the stack");
    cr_assert_str_eq(rw + 100, "through the stack");
    cr_assert_str_eq(ro + 100, "through the stack");
    strcpy(rw + n - 200, "through the alias");
    cr_assert_str_eq(lo + n - 200, "through the alias");
    cr_assert_str_eq(ro + n - 200, "through the alias");
    cr_assert_eq(access_of(ro + 100), AS_PROT_READ, "a read-only alias faults on write");
    cr_assert_eq(access_of(ro + n - 1), AS_PROT_READ);
    cr_assert_eq(access_of(rw + 5), AS_PROT_RW);

    /* The stack runs code; what the context writes shows in the aliases. */
    as_transfer t = as_switch(as_ctx_make(&s, fill), rw + 1024);
    cr_assert_null(t.ctx);
    cr_assert_str_eq(ro + 1024, "written on the shareable stack");
    cr_assert_str_eq(lo + 1024, "written on the shareable stack");

    /* An alias is not a managed stack: a domain closing s leaves it alone. */
    as_stack other = new_stack(16 << 10);
    as_domain ds, dother;
    cr_assert_eq(as_domain_set_backend("mprotect"), 0);
    cr_assert_eq(as_domain_init(&ds, &s), 0);
    cr_assert_eq(as_domain_init(&dother, &other), 0);
    cr_assert_eq(as_domain_enter(&dother), 0);
    cr_assert_eq(access_of(lo + 100), AS_PROT_NONE);
    cr_assert_eq(access_of(rw + 100), AS_PROT_RW);
    cr_assert_eq(access_of(ro + 100), AS_PROT_READ);
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_eq(as_domain_fini(&ds), 0);
    cr_assert_eq(as_domain_fini(&dother), 0);
    as_stack_free(&other);

    /* The aliases keep the memory after the stack is freed. */
    as_stack copy = s;
    as_stack_free(&s);
    cr_assert_str_eq(ro + 100, "through the stack");
    cr_assert_eq(as_stack_unalias(&copy, ro), 0);
    cr_assert_eq(as_stack_unalias(&copy, rw), 0);
}

/* A private stack mapped where a freed shareable stack was is not
 * shareable: as_stack_alias refuses it (it found the freed stack's memfd
 * where the kernel cannot duplicate a mapping, as under qemu-user).  Where
 * as_stack_alloc does not map the same address again (qemu-user moves on),
 * the private stack is mapped there by hand, laid out as as_stack_alloc
 * lays it out. */
Test(share, private_stack_where_a_shareable_one_was_has_no_alias)
{
    as_stack p = { 0 };
    bool same = false, by_hand = false;
    void *was = NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < 4 && !same; i++) {
        as_stack sh;
        cr_assert_eq(as_stack_alloc_shareable(&sh, 32 << 10), 0);
        was = sh.map;
        size_t len = sh.map_size;
        as_stack_free(&sh);
        cr_assert_eq(as_stack_alloc(&p, 32 << 10), 0);
        same = p.map == was;
        if (same)
            break;
        as_stack_free(&p);
        void *m = mmap(was, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
        if (m == MAP_FAILED)
            continue;
        if (m != was || mprotect((char *)m + page, len - page, PROT_READ | PROT_WRITE) != 0) {
            munmap(m, len);
            continue;
        }
        p = (as_stack){ (char *)m + page, (char *)m + len, m, len };
        same = by_hand = true;
    }
    if (!same)
        cr_skip_test("no private stack could be mapped where the shareable one had been");
    void *al = NULL;
    int r = as_stack_alias(&p, AS_PROT_READ, &al);
    if (by_hand)
        munmap(p.map, p.map_size);
    else
        as_stack_free(&p);
    cr_assert_eq(r, -EINVAL, "alias %p of a private stack", al);
    cr_assert_null(al);
}
