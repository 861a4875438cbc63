/* SPDX-License-Identifier: MIT */
/* tests/test_activation.c - as_act capture/resume, fresh records, pools,
 * signal-frame interop and the roll-forward of interrupted resumes.  The
 * signal storms' counts are divided by AS_TEST_SCALE (default 1; see
 * tests/scale.h). */
#include <criterion/criterion.h>
#include <altstack.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "act_probe.h"
#include "scale.h"

struct act_probe act_probe;

static as_act *new_records(size_t n)
{
    as_act *r = aligned_alloc(64, n * sizeof *r);
    cr_assert_not_null(r);
    memset(r, 0, n * sizeof *r);
    return r;
}

/* ---- capture returns 0, then 1 when resumed ---- */

Test(activation, capture_returns_twice)
{
    static as_act a;
    volatile int passes = 0;
    int r = as_act_capture(&a);
    passes++;
    if (r == 0) {
        cr_assert_eq(as_act_kind(&a), AS_ACT_CALL);
        as_act_resume(&a);
    }
    cr_assert_eq(r, 1);
    cr_assert_eq(passes, 2);
}

/* ---- every callee-saved register and the FP control words ---- */

static void check_call_record(void)
{
    static as_act a;
    for (uint64_t seed = 1; seed <= 64; seed++) {
        uint64_t in[TEST_NREGS], out[TEST_NREGS];
        test_regs_random(in, seed);
        act_call_regs(&a, in, out);
        for (int i = 0; i < TEST_NREGS; i++)
            cr_assert_eq(out[i] & test_regs_mask(i), in[i] & test_regs_mask(i),
                         "seed %lu reg %d: %#lx != %#lx", (unsigned long)seed, i,
                         (unsigned long)out[i], (unsigned long)in[i]);
    }
}

Test(activation, call_record_keeps_callee_saved_registers)
{
    check_call_record();
}

/* The CALL resume's FP control is bound with the switch's strategy. */
Test(activation, call_record_fidelity_in_every_strategy)
{
    static const int strategies[] = { AS_FP_COMPARE, AS_FP_RELOAD };
    int n = 0;
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++) {
        if (as_switch_set_fp_strategy(strategies[i]) != 0)
            continue;                           /* aarch64: compare only */
        n++;
#if defined(__x86_64__)
        /* The site begins with stmxcsr (0f ae /3) or ldmxcsr (0f ae /2). */
        extern const unsigned char as__act_fp_site[];
        cr_assert(as__act_fp_site[0] == 0x0f && as__act_fp_site[1] == 0xae &&
                  (as__act_fp_site[2] >> 3 & 7) == (strategies[i] == AS_FP_RELOAD ? 2 : 3),
                  "as_act_resume's site is bound to strategy %d", strategies[i]);
#endif
        check_call_record();
    }
    as_switch_init();
    cr_assert_geq(n, 1);
}

/* ---- accessors ---- */

Test(activation, pc_and_sp)
{
    static as_act a;
    memset(&a, 0, sizeof a);
    cr_assert_eq(as_act_pc(NULL), 0);
    cr_assert_eq(as_act_sp(NULL), 0);
    cr_assert_eq(as_act_kind(NULL), AS_ACT_NONE);
    cr_assert_eq(as_act_pc(&a), 0, "unfilled record");
    char here;
    if (as_act_capture(&a) == 0) {
        uintptr_t sp = as_act_sp(&a);
        cr_assert(sp > (uintptr_t)&here - 4096 && sp <= (uintptr_t)&here + 4096,
                  "sp %#lx near %p", (unsigned long)sp, (void *)&here);
        cr_assert_neq(as_act_pc(&a), 0);
    }
}

/* ---- fresh records: a new stack, default FP control ---- */

static as_stack fresh_stack;
static as_act fresh_back;
static volatile uintptr_t fresh_local;
static volatile uint64_t fresh_fpctl, fresh_aligned;

static void fresh_fn(void *arg)
{
    int local;
    fresh_local = (uintptr_t)&local;
    *(int *)arg = 42;
#if defined(__x86_64__)
    uint32_t mx; uint16_t cw;
    __asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mx), "=m"(cw));
    fresh_fpctl = (uint64_t)mx << 16 | cw;
#else
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fresh_fpctl = fpcr;
#endif
    /* With frame pointers the frame address is the entry sp - 16 (x86_64:
     * return address and saved rbp) or the entry sp - 16 (aarch64 frame
     * record): 16-byte aligned iff the entry was ABI-aligned. */
    fresh_aligned = (uintptr_t)__builtin_frame_address(0);
    as_act_resume(&fresh_back);
}

Test(activation, init_runs_fn_on_a_fresh_stack_with_default_fp_control)
{
    static as_act a;
    cr_assert_eq(as_stack_alloc(&fresh_stack, 64 << 10), 0);
    static int value;
    /* Dirty the FP control state: the fresh record must not inherit it. */
#if defined(__x86_64__)
    uint32_t mx = 0x7f80 | 0x6000; /* round toward zero, FZ off */
    uint32_t old_mx;
    __asm__ volatile("stmxcsr %0; ldmxcsr %1" : "=m"(old_mx) : "m"(mx));
#else
    uint64_t old_fpcr, fpcr = 3u << 22;
    __asm__ volatile("mrs %0, fpcr; msr fpcr, %1" : "=&r"(old_fpcr) : "r"(fpcr));
#endif
    as_act_init(&a, &fresh_stack, fresh_fn, &value);
    cr_assert_eq(as_act_kind(&a), AS_ACT_FRESH);
    cr_assert_eq(as_act_sp(&a), (uintptr_t)fresh_stack.hi & ~(uintptr_t)15);
    if (as_act_capture(&fresh_back) == 0)
        as_act_resume(&a);
#if defined(__x86_64__)
    __asm__ volatile("ldmxcsr %0" : : "m"(old_mx));
    cr_assert_eq(fresh_fpctl, (uint64_t)0x1f80 << 16 | 0x37f, "MXCSR:FCW %#lx",
                 (unsigned long)fresh_fpctl);
    cr_assert_eq(fresh_aligned % 16, 0, "the ABI's stack alignment at entry");
#else
    __asm__ volatile("msr fpcr, %0" : : "r"(old_fpcr));
    cr_assert_eq(fresh_fpctl, 0, "FPCR %#lx", (unsigned long)fresh_fpctl);
    cr_assert_eq(fresh_aligned % 16, 0);
#endif
    cr_assert_eq(value, 42);
    cr_assert(fresh_local >= (uintptr_t)fresh_stack.lo && fresh_local < (uintptr_t)fresh_stack.hi,
              "fn ran on the record's stack");
    as_stack_free(&fresh_stack);
}

Test(activation, init_rejects_bad_arguments)
{
    static as_act a;
    static char small[64] __attribute__((aligned(16)));
    as_stack tiny = { small, small + sizeof small, NULL, 0 };
    as_stack ok;
    cr_assert_eq(as_stack_alloc(&ok, 16 << 10), 0);
    as_act_init(NULL, &ok, fresh_fn, NULL);         /* must not crash */
    a.kind = AS_ACT_CALL;
    as_act_init(&a, NULL, fresh_fn, NULL);
    cr_assert_eq(as_act_kind(&a), AS_ACT_NONE);
    as_act_init(&a, &ok, NULL, NULL);
    cr_assert_eq(as_act_kind(&a), AS_ACT_NONE);
    as_act_init(&a, &tiny, fresh_fn, NULL);
    cr_assert_eq(as_act_kind(&a), AS_ACT_NONE);
    cr_assert_eq(as_act_pc(&a), 0);
    as_stack_free(&ok);
}

/* ---- pools ---- */

Test(activation, pool_rejects_bad_arguments)
{
    as_act_pool p;
    as_act *r = new_records(2);
    cr_assert_eq(as_act_pool_init(NULL, r, 2), -AS_EINVAL);
    cr_assert_eq(as_act_pool_init(&p, NULL, 2), -AS_EINVAL);
    cr_assert_eq(as_act_pool_init(&p, r, 0), -AS_EINVAL);
    cr_assert_eq(as_act_pool_init(&p, (as_act *)((char *)r + 16), 1), -AS_EINVAL);
    cr_assert_null(as_act_alloc(NULL));
    as_act_release(NULL);
    cr_assert_eq(as_act_pool_free(NULL), 0);
    free(r);
}

Test(activation, fpu_fits)
{
    cr_assert_geq(as_act_fpu_size(), 512);
    cr_assert_eq(as_act_fpu_check(), 0, "this CPU's state (%zu bytes) fits %d",
                 as_act_fpu_size(), AS_ACT_FPU_SIZE);
}

Test(activation, pool_hands_out_each_record_once)
{
    enum { N = 8 };
    as_act_pool p;
    as_act *r = new_records(N);
    cr_assert_eq(as_act_pool_init(&p, r, N), 0);
    cr_assert_eq(as_act_pool_free(&p), N);
    as_act *got[N];
    for (int i = 0; i < N; i++) {
        got[i] = as_act_alloc(&p);
        cr_assert_not_null(got[i]);
        cr_assert(got[i] >= r && got[i] < r + N);
        for (int j = 0; j < i; j++)
            cr_assert_neq(got[i], got[j]);
    }
    cr_assert_null(as_act_alloc(&p), "exhausted");
    cr_assert_eq(as_act_pool_free(&p), 0);
    static as_act loose;
    as_act copy = *got[0];
    as_act_release(&loose);                 /* not pooled: ignored */
    as_act_release(&copy);                  /* a copy is not the record */
    cr_assert_eq(as_act_pool_free(&p), 0);
    for (int i = 0; i < N; i++)
        as_act_release(got[i]);
    cr_assert_eq(as_act_pool_free(&p), N);
    free(r);
}

Test(activation, resume_returns_a_pooled_record)
{
    enum { N = 4 };
    static as_act_pool p;
    as_act *r = new_records(N);
    cr_assert_eq(as_act_pool_init(&p, r, N), 0);
    static as_act *a;
    static volatile int rounds;
    rounds = 0;
    for (int i = 0; i < 1000; i++) {
        a = as_act_alloc(&p);
        cr_assert_not_null(a);
        if (as_act_capture(a) == 0) {
            rounds++;
            as_act_resume(a);
        }
        cr_assert_eq(as_act_pool_free(&p), N, "released by the resume");
    }
    cr_assert_eq(rounds, 1000);
    free(r);
}

/* Four threads and their signal handlers allocate and release from one
 * pool; each record carries an owner flag that must be free when it is
 * handed out. */
enum { CN = 16, CTHREADS = 4 };
static as_act_pool cpool;
static as_act *crec;
static atomic_int cowned[CN];
static atomic_int cdouble, cstop, csigs;

static void take_and_give(void)
{
    as_act *a = as_act_alloc(&cpool);
    if (!a)
        return;
    int i = (int)(a - crec);
    if (atomic_exchange(&cowned[i], 1) != 0)
        atomic_fetch_add(&cdouble, 1);
    atomic_store(&cowned[i], 0);
    as_act_release(a);
}

static void csig(int sig)
{
    (void)sig;
    atomic_fetch_add(&csigs, 1);
    for (int i = 0; i < 3; i++)
        take_and_give();
}

static void *cworker(void *arg)
{
    (void)arg;
    while (!atomic_load(&cstop)) {
        as_act *held[3];
        int n = 0;
        for (; n < 3; n++) {
            held[n] = as_act_alloc(&cpool);
            if (!held[n])
                break;
            int i = (int)(held[n] - crec);
            if (atomic_exchange(&cowned[i], 1) != 0)
                atomic_fetch_add(&cdouble, 1);
        }
        for (int k = 0; k < n; k++) {
            atomic_store(&cowned[held[k] - crec], 0);
            as_act_release(held[k]);
        }
    }
    return NULL;
}

Test(activation, pool_concurrent_with_signal_handlers)
{
    crec = new_records(CN);
    cr_assert_eq(as_act_pool_init(&cpool, crec, CN), 0);
    struct sigaction sa = { .sa_handler = csig, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t th[CTHREADS];
    for (int i = 0; i < CTHREADS; i++)
        pthread_create(&th[i], NULL, cworker, NULL);
    for (long k = 0; k < test_scaled(20000, 1); k++)
        pthread_kill(th[k % CTHREADS], SIGUSR1);
    atomic_store(&cstop, 1);
    for (int i = 0; i < CTHREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&cdouble), 0, "a record was handed out twice");
    cr_assert_gt(atomic_load(&csigs), 0);
    cr_assert_eq(as_act_pool_free(&cpool), CN, "every record came back");
    free(crec);
}

/* ---- FULL records from a signal frame: every register survives ---- */

static as_act_pool spool;
static as_act *srec;
static int use_staged;
#if defined(__aarch64__)
AS_NORETURN void as__act_resume_staged(as_act *a);
#endif
static atomic_int shandled;
static int swant;

static void full_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si;
    int n = atomic_fetch_add(&shandled, 1) + 1;
    as_act *a = as_act_alloc(&spool);
    if (!a)
        return;
    as_act_from_ucontext(a, uc);
    if (as_act_kind(a) != AS_ACT_FULL)
        act_probe.fail = 100;
    if (n >= swant) {
#if defined(__x86_64__)
        act_probe.stop = 1;
#else
        a->pstate |= 1u << 30;      /* Z: the aarch64 loop's stop request */
#endif
    }
    if (use_staged) {
#if defined(__aarch64__)
        as__act_resume_staged(a);   /* the freestanding FULL path */
#endif
    }
    if (n & 1) {
        as_act_resume(a);           /* leave the handler through the record */
    } else {
        as_act_to_ucontext(a, uc);  /* or through sigreturn of the frame */
        as_act_release(a);
    }
}

static atomic_int sdone;
static void *bombard(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    while (!atomic_load(&sdone)) {
        if (atomic_load(&shandled) < swant + 1)
            pthread_kill(target, SIGUSR1);
        usleep(20);
    }
    return NULL;
}

/* Run the probe loop while a helper thread keeps signalling it; the
 * handler resumes each interrupted state from a pooled FULL record
 * (as_act_resume, or, with staged, the aarch64 staged path) or, every
 * other time, through as_act_to_ucontext and sigreturn. */
static uint64_t run_full_probe(uint64_t seed, int want, int staged)
{
    srec = new_records(4);
    cr_assert_eq(as_act_pool_init(&spool, srec, 4), 0);
    swant = want;
    use_staged = staged;
    struct sigaction sa = { .sa_sigaction = full_handler,
                            .sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    act_probe_fill(seed);
    pthread_t self = pthread_self(), th;
    pthread_create(&th, NULL, bombard, &self);
    uint64_t ret = act_probe_run();
    atomic_store(&sdone, 1);
    pthread_join(th, NULL);
    cr_assert_geq(atomic_load(&shandled), swant);
    cr_assert_eq(as_act_pool_free(&spool), 4, "no record leaked");
    free(srec);
    return ret;
}

Test(activation, full_record_restores_every_register)
{
    act_probe_check(run_full_probe(7, (int)test_scaled(2000, 1), 0));
}

#if defined(__x86_64__)
/* ---- roll-forward of a resume interrupted in its tail ---- */

extern const char as__act_ctail[], as__act_ftail[], as__act_ftail_load[],
    as__act_ftail_popf[], as__act_ftail_ret[], as__act_cwin[];

Test(activation, rollforward_completes_an_interrupted_tail)
{
    static as_act a;
    uint64_t stage[17 + 16];
    for (int i = 0; i < 17; i++)
        stage[i] = 0x1000 + i;
    uintptr_t S = (uintptr_t)stage;

    /* In the loads: every register from S, rsp = S + 136 + 128. */
    memset(&a, 0, sizeof a);
    a.rip = (uintptr_t)as__act_ftail_load + 4;
    a.rsp = S;
    a.rbx = 99;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.r15, 0x1000);
    cr_assert_eq(a.rdi, 0x1000 + 14);
    cr_assert_eq(a.rbx, 0x1000 + 5);
    cr_assert_eq(a.rflags, 0x1000 + 15);
    cr_assert_eq(a.rip, 0x1000 + 16);
    cr_assert_eq(a.rsp, S + 264);

    /* Before rsp = S: S is in rsi. */
    memset(&a, 0, sizeof a);
    a.rip = (uintptr_t)as__act_ftail;
    a.rsi = S;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.rip, 0x1000 + 16);
    cr_assert_eq(a.rsp, S + 264);

    /* At popfq: registers are live, flags and rip still staged. */
    memset(&a, 0, sizeof a);
    a.rip = (uintptr_t)as__act_ftail_popf;
    a.rsp = S + 120;
    a.r15 = 7;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.r15, 7);
    cr_assert_eq(a.rflags, 0x1000 + 15);
    cr_assert_eq(a.rip, 0x1000 + 16);
    cr_assert_eq(a.rsp, S + 264);

    /* At ret $128: only rip is staged. */
    memset(&a, 0, sizeof a);
    a.rip = (uintptr_t)as__act_ftail_ret;
    a.rsp = S + 128;
    a.rflags = 0x202;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.rflags, 0x202);
    cr_assert_eq(a.rip, 0x1000 + 16);
    cr_assert_eq(a.rsp, S + 264);

    /* CALL tail: rbx, rsp, rip wait in r9, r10, r11. */
    memset(&a, 0, sizeof a);
    a.rip = (uintptr_t)as__act_ctail + 3;
    a.r9 = 1; a.r10 = 2; a.r11 = 3;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.rbx, 1);
    cr_assert_eq(a.rsp, 2);
    cr_assert_eq(a.rip, 3);
    cr_assert_eq(a.rax, 1);

    /* At the jnz after the release CAS: ZF decides. */
    memset(&a, 0, sizeof a);
    a.rip = (uintptr_t)as__act_cwin;
    a.r11 = 3;
    a.rflags = 0x202;
    cr_assert_eq(as_act_rollforward(&a), 0, "CAS failed: still busy");
    cr_assert(as_act_resume_busy((uintptr_t)as__act_cwin));
    a.rflags = 0x242;
    cr_assert_eq(as_act_rollforward(&a), 1, "CAS done: released");
    cr_assert_eq(a.rip, 3);

    /* Anywhere else: untouched. */
    memset(&a, 0, sizeof a);
    a.rip = (uintptr_t)as_act_capture;
    cr_assert_eq(as_act_rollforward(&a), 0);
    cr_assert(as_act_resume_busy((uintptr_t)as_act_resume + 1));
    cr_assert(!as_act_resume_busy((uintptr_t)as__act_ftail_popf));
    cr_assert(!as_act_resume_busy((uintptr_t)as_act_capture));
}
#endif

#if defined(__x86_64__)
/* ---- records carry PKRU (protection keys) ---- */
#include <errno.h>
#include <sys/mman.h>

static uint32_t rdpkru(void)
{
    uint32_t eax, edx;
    __asm__ volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}

static void wrpkru(uint32_t v)
{
    __asm__ volatile("wrpkru" : : "a"(v), "c"(0), "d"(0) : "memory");
}

/* A key this thread may read but not write: PKRU then differs from both
 * the initial value (0) and what signal handlers start with. */
static int pk_key = -1;
static uint32_t pk_rights;
static void pk_setup(void)
{
    pk_key = pkey_alloc(0, PKEY_DISABLE_WRITE);
    if (pk_key < 0)
        cr_skip("no protection keys (pkey_alloc: %s)", strerror(errno));
    pk_rights = rdpkru();
    cr_assert_neq(pk_rights & (2u << (2 * pk_key)), 0, "write-disabled key %d", pk_key);
}
static void pk_teardown(void)
{
    if (pk_key >= 0) {
        wrpkru(pk_rights & ~(3u << (2 * pk_key)));
        pkey_free(pk_key);
    }
}

static as_act pk_rec;
static volatile uint32_t pk_in_handler;

static void pk_to_uc_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si;
    pk_in_handler = rdpkru();
    as_act_from_ucontext(&pk_rec, uc);
    as_act_to_ucontext(&pk_rec, uc);
}

Test(activation, from_and_to_ucontext_keep_pkru, .fini = pk_teardown)
{
    pk_setup();
    struct sigaction sa = { .sa_sigaction = pk_to_uc_handler, .sa_flags = SA_SIGINFO };
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    uint32_t after = rdpkru();
    cr_log_info("PKRU %#x, in the handler %#x, after %#x", pk_rights, pk_in_handler, after);
    cr_assert_eq(pk_rec.flags & AS_ACT_F_PKRU, AS_ACT_F_PKRU, "the record holds PKRU");
    cr_assert_eq(pk_rec.pkru, pk_rights, "the frame's PKRU, not the handler's");
    cr_assert_eq(after, pk_rights, "sigreturn of the written frame restores PKRU %#x, got %#x",
                 pk_rights, after);
}

/* The handler leaves through as_act_resume of a pooled FULL record, with
 * PKRU changed meanwhile: the resumed code must get its own back. */
static as_act_pool pk_pool;
static as_act *pk_recs;
static void pk_resume_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si;
    as_act *a = as_act_alloc(&pk_pool);
    if (!a)
        return;
    as_act_from_ucontext(a, uc);
    wrpkru(0);                          /* the handler opens everything */
    as_act_resume(a);
}

Test(activation, full_resume_restores_pkru, .fini = pk_teardown)
{
    pk_setup();
    pk_recs = new_records(2);
    cr_assert_eq(as_act_pool_init(&pk_pool, pk_recs, 2), 0);
    struct sigaction sa = { .sa_sigaction = pk_resume_handler, .sa_flags = SA_SIGINFO | SA_NODEFER };
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    uint32_t after = rdpkru();
    cr_assert_eq(as_act_pool_free(&pk_pool), 2);
    cr_assert_eq(after, pk_rights, "resumed with PKRU %#x, want %#x", after, pk_rights);
    free(pk_recs);
}

/* A CALL record keeps the rights it was captured with; a FRESH record has
 * none of its own and runs with the live ones. */
static volatile uint32_t pk_fresh_saw;
static as_act pk_back;
static void pk_fresh_fn(void *arg)
{
    (void)arg;
    pk_fresh_saw = rdpkru();
    as_act_resume(&pk_back);
}

Test(activation, call_resume_restores_pkru_fresh_keeps_the_live_one, .fini = pk_teardown)
{
    pk_setup();
    static as_act a;
    if (as_act_capture(&a) == 0) {
        wrpkru(0);
        as_act_resume(&a);
    }
    uint32_t after = rdpkru();
    cr_assert_eq(after, pk_rights, "CALL: resumed with PKRU %#x, want %#x", after, pk_rights);

    as_stack st;
    cr_assert_eq(as_stack_alloc(&st, 64 << 10), 0);
    static as_act f;
    as_act_init(&f, &st, pk_fresh_fn, NULL);
    uint32_t live = pk_rights ^ (1u << (2 * pk_key));   /* also access-disabled */
    wrpkru(live);
    if (as_act_capture(&pk_back) == 0)
        as_act_resume(&f);
    wrpkru(pk_rights);
    cr_assert_eq(pk_fresh_saw, live, "FRESH: PKRU %#x, want the live %#x", pk_fresh_saw, live);
    as_stack_free(&st);
}

/* Preemption: the upcall runs with the handler's PKRU, changes it (as a
 * scheduler entering another domain would) and resumes the preempted
 * record, which must come back with exactly its own rights. */
static volatile int pk_upcalls;
static void pk_upcall(as_act *interrupted, void *arg)
{
    (void)arg;
    pk_upcalls++;
    wrpkru(0);
    as_act_resume(interrupted);
}

Test(activation, preempted_code_keeps_its_pkru, .fini = pk_teardown)
{
    pk_setup();
    static as_act prec[4] __attribute__((aligned(64)));
    static as_act_pool pp;
    cr_assert_eq(as_act_pool_init(&pp, prec, 4), 0);
    as_stack up;
    cr_assert_eq(as_stack_alloc(&up, 256 << 10), 0);
    as_preempt_cfg cfg = { .interval_us = 10000000, .upcall = pk_upcall,
                           .pool = &pp, .upcall_stack = &up };
    cr_assert_eq(as_preempt_start(&cfg), 0);
    int wrong = 0;
    uint32_t seen = pk_rights;
    for (int i = 0; i < 200; i++) {
        raise(as_preempt_signal());         /* a tick, now */
        uint32_t now = rdpkru();
        if (now != pk_rights) {
            wrong++;
            seen = now;
            wrpkru(pk_rights);
        }
    }
    as_preempt_stop();
    as_stack_free(&up);
    cr_assert_gt(pk_upcalls, 100, "the upcall ran (%d times)", pk_upcalls);
    cr_assert_eq(wrong, 0, "%d of 200 preemptions resumed with PKRU %#x, want %#x",
                 wrong, seen, pk_rights);
    cr_assert_eq(as_act_pool_free(&pp), 4);
}

/* The full resume restores fewer components than the mask where it can
 * (only what the record marks or the live state uses): a component the
 * record holds in its initial state must come back initial even when the
 * live one is in use. */
Test(activation, full_resume_initialises_what_the_record_holds_initial)
{
    static int level;
    level = act_probe_level();
    if (level == 0)
        cr_skip("no AVX: no upper vector state to test with");
    static unsigned bit;
    bit = level == 2 ? 7 : 2;                   /* Hi16_ZMM, or YMM_Hi128 */
    if (!(as_act_fpu_mask() >> bit & 1))
        cr_skip("the record does not hold component %u", bit);
    static as_act r;
    static unsigned char out[64] __attribute__((aligned(64)));
    if (as_act_capture_full(&r) == 0) {
        uint64_t bv;
        memcpy(&bv, r.fpu + 512, 8);
        bv &= ~(1ull << bit);                   /* the record: initial */
        memcpy(r.fpu + 512, &bv, 8);
        if (level == 2)                         /* live: in use */
            __asm__ volatile("vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16" ::: "memory");
        else
            __asm__ volatile("vpcmpeqd %%ymm15, %%ymm15, %%ymm15" ::: "xmm15");
        as_act_resume(&r);
    }
    if (level == 2)
        __asm__ volatile("vmovdqu64 %%zmm16, %0" : "=m"(out));
    else
        __asm__ volatile("vmovdqu %%ymm15, %0\n\tvzeroupper" : "=m"(out) : : "xmm15");
    static const unsigned char zero[64];
    cr_assert_eq(memcmp(out + (level == 2 ? 0 : 16), zero, level == 2 ? 64 : 16), 0,
                 "component %u came back in use, not initial", bit);
}

/* ---- the full resume without XRSTOR loads exactly what XRSTOR loads ----
 * Where as__act_xdirect allows it, as_act_resume loads a record's vector
 * state with plain loads.  One state, captured with every component in
 * use, as a compacted record (as_act_capture_full) and as a standard-format
 * one; for every subset of the components the record marks, both formats,
 * with the x87 state as captured or held at its initial values, are
 * resumed over a live state that is in use everywhere (or everywhere but
 * x87), once through the direct loads and once through XRSTOR, and the
 * registers each leaves (an XSAVE dump, components it leaves out counted
 * as initial) must be the same: loaded where the subset has them, initial
 * where it does not. */
extern uint8_t as__act_xdirect;
void act_xr_point(as_act *a, unsigned char *std_fpu, void (*next)(int resumed));
AS_NORETURN void act_xr_resume(as_act *a, int x87_init);
unsigned char act_xr_dump[4096] __attribute__((aligned(64)));

static int cpu_xgetbv1_bw(void)
{
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(1));
    int xgetbv1 = a >> 2 & 1;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    return xgetbv1 | (int)(b >> 30 & 1) << 1;
}

/* The first byte where two standard-format dumps differ in register
 * state: the legacy region (x87, MXCSR, xmm) and each component of mask;
 * -1 if none. */
static int xr_differs(const unsigned char *x, const unsigned char *y, uint64_t mask)
{
    for (int i = 0; i < 416; i++)
        if (x[i] != y[i] && !(i >= 28 && i < 32))       /* MXCSR_MASK */
            return i;
    for (unsigned c = 2; c < 64; c++) {
        if (!(mask >> c & 1))
            continue;
        unsigned a, b, cc, d;
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d) : "a"(0xd), "c"(c));
        for (unsigned i = b; i < b + a; i++)
            if (x[i] != y[i])
                return (int)i;
    }
    return -1;
}

static struct {
    as_act cmp, std, t;
    unsigned char dump[2][4096] __attribute__((aligned(64)));
    unsigned trial, path, nbits, bit[64], bad_trial;
    int bad_at;
    uint64_t mask, all, bad_bv;
    uint8_t direct;
} xr;

/* act_xr_point's next: record what the last resume left, then resume the
 * next trial or return when done.  Trial t: bit 0 the format (compacted,
 * standard), bit 1 the live x87 state in use or initial and not in use;
 * t >> 2 = 3 * subset + x87, x87 saying whether the record's x87 state is
 * as captured, held with the initial values (as a signal frame's usually
 * is) or those but for one byte, subset which of the mask's bits are in
 * XSTATE_BV.  Path 0 direct, path 1 XRSTOR. */
#define XR_TRIALS (12u << xr.nbits)
static void xr_next(int resumed)
{
    if (!resumed) {
        memcpy(&xr.std, &xr.cmp, offsetof(as_act, fpu));
        memcpy(&xr.all, xr.cmp.fpu + 512, 8);
    } else {
        memcpy(xr.dump[xr.path], act_xr_dump, sizeof xr.dump[0]);
        uint64_t bv;
        memcpy(&bv, xr.dump[xr.path] + 512, 8);
        if (!(bv & 1)) {                        /* x87 left initial: FCW 0x37f */
            xr.dump[xr.path][0] = 0x7f;
            xr.dump[xr.path][1] = 0x03;
        }
        if (xr.path == 0) {
            xr.path = 1;
        } else {
            int at = xr_differs(xr.dump[0], xr.dump[1], xr.mask);
            if (at >= 0 && xr.bad_at < 0) {
                xr.bad_at = at;
                xr.bad_trial = xr.trial;
                memcpy(&xr.bad_bv, xr.t.fpu + 512, 8);
            }
            xr.path = 0;
            xr.trial++;
        }
    }
    as__act_xdirect = xr.direct;
    if (xr.trial == XR_TRIALS)
        return;
    unsigned x87 = (xr.trial >> 2) % 3, subset = (xr.trial >> 2) / 3;
    uint64_t bv = 0;
    for (unsigned k = 0; k < xr.nbits; k++)
        if (subset >> k & 1)
            bv |= 1ull << xr.bit[k];
    xr.t = xr.trial & 1 ? xr.std : xr.cmp;
    memcpy(xr.t.fpu + 512, &bv, 8);
    if (x87) {                                  /* x87 held, initial values */
        memset(xr.t.fpu, 0, 24);
        memset(xr.t.fpu + 32, 0, 128);
        xr.t.fpu[0] = 0x7f;
        xr.t.fpu[1] = 0x03;
    }
    if (x87 == 2) {     /* but one byte past FCW and FSW, the subset's pick */
        unsigned at = 4 + subset % 148;
        xr.t.fpu[at < 24 ? at : at + 8] = 1;
    }
    memset(act_xr_dump, 0, sizeof act_xr_dump);
    as__act_xdirect = xr.path ? 0 : xr.direct;
    act_xr_resume(&xr.t, xr.trial >> 1 & 1);
}

static void xr_run(void);

Test(activation, full_resume_loads_what_xrstor_loads)
{
    uint64_t mask = as_act_fpu_mask();
    int level = act_probe_level(), has = cpu_xgetbv1_bw();
    if (level == 2 && has == 3)
        cr_assert_eq(as__act_xdirect, 2, "AVX-512 with XGETBV(1): the direct loads (mask %#lx)",
                     (unsigned long)mask);
    if (level == 1 && (has & 1) && mask == 7)
        cr_assert_eq(as__act_xdirect, 1, "AVX with XGETBV(1): the direct loads");
    xr_run();
}

/* The AVX-only level on an AVX-512 CPU: the library believes XCR0 holds
 * x87|SSE|AVX alone (the components it then leaves alone are not
 * compared). */
void as__act_cpu_reinit(void);
extern void (*as__act_cpuid_hook)(uint32_t leaf, uint32_t sub, uint32_t r[4]);
static void avx_only_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    if (leaf == 0xffffffffu) {
        __asm__ volatile("xgetbv" : "=a"(r[0]), "=d"(r[3]) : "c"(0));
        r[0] &= 7;
        r[3] = 0;
        return;
    }
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static void avx_only_fini(void)
{
    as__act_cpuid_hook = NULL;
    as__act_cpu_reinit();
}

Test(activation, full_resume_loads_what_xrstor_loads_avx_only, .fini = avx_only_fini)
{
    if (as__act_xdirect != 2)
        cr_skip("no AVX-512 direct loads here to narrow");
    as__act_cpuid_hook = avx_only_cpuid;
    as__act_cpu_reinit();
    cr_assert_eq(as_act_fpu_mask(), 7);
    cr_assert_eq(as__act_xdirect, 1);
    xr_run();
}

static void xr_run(void)
{
    xr.direct = as__act_xdirect;
    xr.mask = as_act_fpu_mask();
    if (!xr.direct)
        cr_skip("the full resume is XRSTOR or FXRSTOR here (mask %#lx)", (unsigned long)xr.mask);
    xr.nbits = 0;
    for (unsigned c = 0; c < 64; c++)
        if (xr.mask >> c & 1)
            xr.bit[xr.nbits++] = c;
    xr.trial = xr.path = 0;
    xr.bad_at = -1;
    act_probe_fill(41);
    memset(xr.std.fpu, 0, sizeof xr.std.fpu);
    act_xr_point(&xr.cmp, xr.std.fpu, xr_next);
    as__act_xdirect = xr.direct;
    cr_assert_eq(xr.all, xr.mask, "every component in use at the capture: %#lx",
                 (unsigned long)xr.all);
    cr_assert_eq(xr.trial, XR_TRIALS);
    static const char *const x87[] = { "as captured", "initial values", "initial but a byte" };
    cr_assert_lt(xr.bad_at, 0, "trial %u (%s format, XSTATE_BV %#lx, x87 %s, live x87 %s): "
                 "the direct loads and XRSTOR leave different registers (byte %d of the "
                 "XSAVE dump)", xr.bad_trial, xr.bad_trial & 1 ? "standard" : "compacted",
                 (unsigned long)xr.bad_bv, x87[(xr.bad_trial >> 2) % 3],
                 xr.bad_trial & 2 ? "initial" : "in use", xr.bad_at);
}

/* ---- a larger XSAVE area than a record's FP area (AMX-like) ---- */


/* The real CPUID, plus AMX-like tile config (17) and data (18): enabled
 * in XCR0, first-use disableable (XFD), and the data ending at 11008. */
static void big_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    if (leaf == 0xffffffffu) {
        __asm__ volatile("xgetbv" : "=a"(r[0]), "=d"(r[3]) : "c"(0));
        r[0] |= 3u << 17;
        return;
    }
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
    if (leaf == 0xd && sub == 0) {
        r[0] |= 3u << 17;
        r[1] = r[2] = 11008;
    } else if (leaf == 0xd && sub == 17) {
        r[0] = 64; r[1] = 2752; r[2] = 1u << 4 | 1u << 1; r[3] = 0;
    } else if (leaf == 0xd && sub == 18) {
        r[0] = 8192; r[1] = 2816; r[2] = 1u << 4 | 1u << 1; r[3] = 0;
    }
}

static void big_fini(void)
{
    as__act_cpuid_hook = NULL;
    as__act_cpu_reinit();
}

Test(activation, records_work_where_the_xsave_area_is_larger, .fini = big_fini)
{
    if (act_probe_level() == 0)
        cr_skip("no XSAVE");
    uint64_t real = as_act_fpu_mask();
    as__act_cpuid_hook = big_cpuid;
    as__act_cpu_reinit();
    cr_assert_eq(as_act_fpu_size(), 11008);
    cr_assert_eq(as_act_fpu_check(), -AS_ENOSPC, "tile state is left out of records");
    cr_assert_eq(as_act_fpu_mask(), real, "the record holds what it held, no tiles: %#lx",
                 (unsigned long)as_act_fpu_mask());
    /* Pools and full records work all the same: every register survives. */
    act_probe_check(run_full_probe(11, (int)test_scaled(300, 1), 0));
}
#endif

/* ---- as_act_capture_full: vector registers come back, by resume or
 * through a signal frame (as_act_to_ucontext, sigreturn) ---- */

static as_act *vec_rec;

static void to_uc_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)si;
    as_act_to_ucontext(vec_rec, uc);
}

/* The handler's sigreturn lands in act_full_vec, above this frame: keep
 * the frame free of locals a sanitizer would have to unpoison. */
void act_full_vec_signal(as_act *a)
{
    static struct sigaction sa = { .sa_sigaction = to_uc_handler, .sa_flags = SA_SIGINFO };
    vec_rec = a;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
}

static void check_vectors(void)
{
#if defined(__x86_64__)
    int bytes = act_probe.level == 2 ? 64 : act_probe.level == 1 ? 32 : 16;
    int nvec = act_probe.level == 2 ? 32 : 16;
    for (int i = 0; i < nvec; i++)
        cr_assert_eq(memcmp(act_probe.vout[i], act_probe.vin[i], bytes), 0, "vector %d", i);
    if (act_probe.level == 2)
        for (int i = 1; i < 8; i++)
            cr_assert_eq(act_probe.kout[i], act_probe.kin[i], "k%d", i);
#else
    for (int i = 0; i < 32; i++)
        cr_assert_eq(memcmp(act_probe.vout[i], act_probe.vin[i], 16), 0, "q%d", i);
#endif
}

Test(activation, capture_full_keeps_vector_registers)
{
    static as_act a;
    for (int via_signal = 0; via_signal <= 1; via_signal++) {
        act_probe_fill(30 + via_signal);
        act_full_vec(&a, via_signal);
        cr_assert_eq(as_act_kind(&a), AS_ACT_FULL);
        check_vectors();
    }
}

#if defined(__aarch64__)
/* The staged FULL resume freestanding builds use (x16 ends up = pc),
 * driven here from a signal handler like the hosted path above. */
Test(activation, staged_full_resume_keeps_all_but_x16)
{
    uint64_t ret = run_full_probe(9, (int)test_scaled(500, 1), 1);
    act_probe.gout[16] = act_probe.gpr[16];     /* x16 carries the pc */
    act_probe_check(ret);
}
#endif

#if defined(__aarch64__)
/* ---- PSTATE beyond NZCV: DIT, SSBS, TCO survive capture_full + resume ---- */
#include <sys/auxv.h>

/* The bits this CPU has, in SPSR positions, found independently of the
 * library: ID registers (the kernel emulates them at EL0 with
 * HWCAP_CPUID), else the hwcaps. */
__attribute__((noinline)) static uint64_t pstate_ext_bits(void)
{
    uint64_t bits = 0;
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (hw & (1ul << 11)) {                         /* HWCAP_CPUID */
        uint64_t pfr0, pfr1;
        __asm__ volatile("mrs %0, ID_AA64PFR0_EL1; mrs %1, ID_AA64PFR1_EL1"
                         : "=r"(pfr0), "=r"(pfr1));
        if (pfr0 >> 48 & 0xf) bits |= 1u << 24;     /* DIT */
        if (pfr1 >> 4 & 0xf) bits |= 1u << 12;      /* SSBS */
        if (pfr1 >> 8 & 0xf) bits |= 1u << 25;      /* MTE: TCO */
    } else {
        if (hw & (1ul << 24)) bits |= 1u << 24;     /* HWCAP_DIT */
        if (hw & (1ul << 28)) bits |= 1u << 12;     /* HWCAP_SSBS */
        if (hw2 & (1ul << 18)) bits |= 1u << 25;    /* HWCAP2_MTE */
    }
    return bits;
}

/* Only the registers the CPU has: the others are UNDEFINED (a CPU without
 * MTE, as a virt machine without mte=on, raises SIGILL on TCO). */
static uint64_t pstate_ext_read(uint64_t have)
{
    uint64_t d = 0, s = 0, t = 0;
    if (have & (1u << 24))
        __asm__ volatile("mrs %0, S3_3_C4_C2_5" : "=r"(d));
    if (have & (1u << 12))
        __asm__ volatile("mrs %0, S3_3_C4_C2_6" : "=r"(s));
    if (have & (1u << 25))
        __asm__ volatile("mrs %0, S3_3_C4_C2_7" : "=r"(t));
    return d | s | t;
}

static void pstate_ext_write(uint64_t have, uint64_t v)
{
    if (have & (1u << 24))
        __asm__ volatile("msr S3_3_C4_C2_5, %0" : : "r"(v & (1u << 24)));
    if (have & (1u << 12))
        __asm__ volatile("msr S3_3_C4_C2_6, %0" : : "r"(v & (1u << 12)));
    if (have & (1u << 25))
        __asm__ volatile("msr S3_3_C4_C2_7, %0" : : "r"(v & (1u << 25)));
}

Test(activation, capture_full_keeps_dit_ssbs_tco)
{
    uint64_t have = pstate_ext_bits();
    if (!have)
        cr_skip("this CPU has none of DIT, SSBS, MTE");
    static as_act a;
    uint64_t before = pstate_ext_read(have) & have;
    for (int staged = 0; staged <= 1; staged++) {
        for (int flip = 0; flip <= 1; flip++) {
            static volatile uint64_t want, got, recorded;
            want = flip ? have : 0;
            pstate_ext_write(have, want);
            if (as_act_capture_full(&a) == 0) {
                recorded = a.pstate & have;
                pstate_ext_write(have, ~want);
                if (staged)
                    as__act_resume_staged(&a);
                as_act_resume(&a);
            }
            got = pstate_ext_read(have) & have;
            pstate_ext_write(have, before);
            cr_assert_eq(recorded, want, "recorded %#lx, want %#lx",
                         (unsigned long)recorded, (unsigned long)want);
            cr_assert_eq(got, want, "%s resume: %#lx, want %#lx (have %#lx)",
                         staged ? "staged" : "sigreturn", (unsigned long)got,
                         (unsigned long)want, (unsigned long)have);
        }
    }
}
#endif

#if defined(__aarch64__)
/* ---- roll-forward of a resume interrupted in its tail (aarch64) ---- */

extern const char as__act_ctail[], as__act_cwin[], as__act_ftail[],
    as__act_ftail_load[], as__act_ftail_ret[], as__act_fwin[];

Test(activation, rollforward_completes_an_interrupted_tail)
{
    static as_act a;
    uint64_t stage[34] __attribute__((aligned(16)));
    for (int i = 0; i < 34; i++)
        stage[i] = 0x1000 + i;
    stage[33] = 0x60000000;                 /* pstate: Z C */
    uintptr_t S = (uintptr_t)stage;

    /* CALL tail: pc and sp wait in x16 and x17. */
    memset(&a, 0, sizeof a);
    a.pc = (uintptr_t)as__act_ctail + 4;
    a.x[16] = 3; a.x[17] = 2;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.pc, 3);
    cr_assert_eq(a.sp, 2);
    cr_assert_eq(a.x[0], 1);

    /* At the cbnz after STLXR: w7 == 0 means released. */
    memset(&a, 0, sizeof a);
    a.pc = (uintptr_t)as__act_cwin;
    a.x[7] = 1; a.x[16] = 3;
    cr_assert_eq(as_act_rollforward(&a), 0, "store failed: still busy");
    cr_assert(as_act_resume_busy((uintptr_t)as__act_cwin));
    a.x[7] = 0;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.pc, 3);

    /* Staged FULL tail, in the loads: everything from S. */
    memset(&a, 0, sizeof a);
    a.pc = (uintptr_t)as__act_ftail_load + 8;
    a.sp = S;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.x[0], 0x1000);
    cr_assert_eq(a.x[30], 0x1000 + 30);
    cr_assert_eq(a.pc, 0x1000 + 32);
    cr_assert_eq(a.x[16], a.pc, "x16 carries the pc on this path");
    cr_assert_eq(a.pstate >> 28, 0x6);
    cr_assert_eq(a.sp, S + 272);

    /* Before sp = S: S is in x8. */
    memset(&a, 0, sizeof a);
    a.pc = (uintptr_t)as__act_ftail;
    a.x[8] = S;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.sp, S + 272);

    /* At the final ret: only pc is left, in x16. */
    memset(&a, 0, sizeof a);
    a.pc = (uintptr_t)as__act_ftail_ret;
    a.x[16] = 5;
    a.sp = 99;
    cr_assert_eq(as_act_rollforward(&a), 1);
    cr_assert_eq(a.pc, 5);
    cr_assert_eq(a.sp, 99);

    cr_assert(!as_act_resume_busy((uintptr_t)as__act_ctail));
    cr_assert(as_act_resume_busy((uintptr_t)as_act_resume + 4));
}

/* Once the STLXR that releases the record has succeeded, the very next
 * instruction is in the tail: a handler stopped there must find the
 * resume rolled forward, not "busy" with a record already given back. */
Test(activation, released_path_leads_straight_into_the_tail)
{
    static as_act a;
    uint64_t stage[34] __attribute__((aligned(16)));
    for (int i = 0; i < 34; i++)
        stage[i] = 0x2000 + i;
    stage[33] = 0;

    uintptr_t next = (uintptr_t)as__act_cwin + 4;   /* after the cbnz */
    memset(&a, 0, sizeof a);
    a.pc = next;
    a.x[16] = 3; a.x[17] = 2;
    cr_assert(!as_act_resume_busy(next), "CALL: pc after the release is not busy");
    cr_assert_eq(as_act_rollforward(&a), 1, "CALL: rolled forward");
    cr_assert_eq(a.pc, 3);
    cr_assert_eq(a.sp, 2);

    next = (uintptr_t)as__act_fwin + 4;
    memset(&a, 0, sizeof a);
    a.pc = next;
    a.x[8] = (uintptr_t)stage;
    cr_assert(!as_act_resume_busy(next), "FULL: pc after the release is not busy");
    cr_assert_eq(as_act_rollforward(&a), 1, "FULL: rolled forward");
    cr_assert_eq(a.pc, 0x2000 + 32);
    cr_assert_eq(a.sp, (uintptr_t)stage + 272);
}
#endif
