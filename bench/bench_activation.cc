// SPDX-License-Identifier: MIT
// bench/bench_activation.cc - activations and preemptive upcalls against
// their peers.
//
//   act_capture_resume/<impl>  capture the caller's state and resume it:
//       altstack     as_act_capture + as_act_resume (a CALL record)
//       getcontext   glibc getcontext + setcontext
//       sigsetjmp    sigsetjmp(env, 1) + siglongjmp (saves the mask too)
//       floor        the least a capture and resume of a call must do:
//                    store the callee-saved registers, rsp and the return
//                    address, load them back and jump (written below, no
//                    FP control, no pool).  Like every resume it is a call
//                    that never returns, so the return after the capture
//                    point is mispredicted: that, not the work, is most of
//                    the time on CPUs with a return stack buffer.
//   act_full_resume/<impl>     resume a record captured from a signal frame,
//                              with the whole XSAVE state (AVX-512 dirtied
//                              where the CPU has it), back into a loop:
//       altstack     as_act_resume of an as_act_from_ucontext record
//       rt_sigreturn rt_sigreturn of the kernel's own frame, kept intact
//       xrstor       the floor: a bare XRSTOR of the very record's FP area
//                    with the mask the resume uses (x86_64 only), which
//                    is all the hardware must do to bring that state back
//     Every iteration also includes one as_act_capture/as_act_resume pair
//     (a CALL record, ~15 ns) that brings the resumed code back to the
//     loop; the floor pays the same pair around its XRSTOR, so the ratio
//     compares the full resume with the XRSTOR alone.
//   preempt_rt/<impl>          a signal to ourselves and back:
//       altstack     tick -> handler captures -> upcall -> as_act_resume
//       bare_signal  signal -> empty SA_SIGINFO handler -> sigreturn
//     Both send the signal with a raw tgkill, so both pay the same syscall.
//   preempt_sleep/<impl>       nanosleep(40 ms):
//       altstack     with preemption at 1 ms of CPU time
//       plain        without
#include <benchmark/benchmark.h>
#include <csetjmp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>

extern "C" {
#include <altstack.h>
}

#define NOINLINE __attribute__((noinline))

static long raw_tgkill(long pid, long tid, long sig)
{
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"(sig)
                     : "rcx", "r11", "memory");
    return ret;
#else
    register long x0 __asm__("x0") = pid, x1 __asm__("x1") = tid, x2 __asm__("x2") = sig;
    register long x8 __asm__("x8") = SYS_tgkill;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x1), "r"(x2), "r"(x8) : "memory");
    return x0;
#endif
}

static long g_pid, g_tid;
static void ids()
{
    g_pid = getpid();
    g_tid = syscall(SYS_gettid);
}

// ---------------------------------------------------------------------------
// act_capture_resume
// ---------------------------------------------------------------------------
static as_act g_act;

static NOINLINE void as_round_trip(as_act *a)
{
    if (as_act_capture(a) == 0)
        as_act_resume(a);
}

static void BM_capture_resume_as(benchmark::State &st)
{
    for (auto _ : st)
        as_round_trip(&g_act);
}
BENCHMARK(BM_capture_resume_as)->Name("act_capture_resume/altstack");

// The floor (x86_64, aarch64): an as_act-sized buffer, callee-saved
// registers, sp and the return address in it.
extern "C" int bench_floor_capture(void *buf);
extern "C" __attribute__((noreturn)) void bench_floor_resume(void *buf);
#if defined(__x86_64__)
__asm__(".text\n.globl bench_floor_capture\n.type bench_floor_capture,@function\n"
        ".p2align 4\nbench_floor_capture:\n"
        "  endbr64\n"
        "  movq (%rsp), %rax\n  leaq 8(%rsp), %rcx\n"
        "  movq %rbx, 0(%rdi)\n  movq %rbp, 8(%rdi)\n  movq %r12, 16(%rdi)\n"
        "  movq %r13, 24(%rdi)\n  movq %r14, 32(%rdi)\n  movq %r15, 40(%rdi)\n"
        "  movq %rax, 48(%rdi)\n  movq %rcx, 56(%rdi)\n"
        "  xorl %eax, %eax\n  ret\n"
        ".size bench_floor_capture, .-bench_floor_capture\n"
        ".globl bench_floor_resume\n.type bench_floor_resume,@function\n"
        ".p2align 4\nbench_floor_resume:\n"
        "  endbr64\n"
        "  movq 0(%rdi), %rbx\n  movq 8(%rdi), %rbp\n  movq 16(%rdi), %r12\n"
        "  movq 24(%rdi), %r13\n  movq 32(%rdi), %r14\n  movq 40(%rdi), %r15\n"
        "  movq 48(%rdi), %rdx\n  movq 56(%rdi), %rsp\n"
        "  movl $1, %eax\n  notrack jmp *%rdx\n"
        ".size bench_floor_resume, .-bench_floor_resume\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl bench_floor_capture\n.type bench_floor_capture,%function\n"
        ".p2align 4\nbench_floor_capture:\n"
        "  bti c\n"
        "  stp x19, x20, [x0, #0]\n  stp x21, x22, [x0, #16]\n  stp x23, x24, [x0, #32]\n"
        "  stp x25, x26, [x0, #48]\n  stp x27, x28, [x0, #64]\n  stp x29, x30, [x0, #80]\n"
        "  mov x1, sp\n  str x1, [x0, #96]\n"
        "  stp d8, d9, [x0, #112]\n  stp d10, d11, [x0, #128]\n"
        "  stp d12, d13, [x0, #144]\n  stp d14, d15, [x0, #160]\n"
        "  mov w0, #0\n  ret\n"
        ".size bench_floor_capture, .-bench_floor_capture\n"
        ".globl bench_floor_resume\n.type bench_floor_resume,%function\n"
        ".p2align 4\nbench_floor_resume:\n"
        "  bti c\n"
        "  ldp x19, x20, [x0, #0]\n  ldp x21, x22, [x0, #16]\n  ldp x23, x24, [x0, #32]\n"
        "  ldp x25, x26, [x0, #48]\n  ldp x27, x28, [x0, #64]\n  ldp x29, x30, [x0, #80]\n"
        "  ldr x1, [x0, #96]\n  mov sp, x1\n"
        "  ldp d8, d9, [x0, #112]\n  ldp d10, d11, [x0, #128]\n"
        "  ldp d12, d13, [x0, #144]\n  ldp d14, d15, [x0, #160]\n"
        "  mov w0, #1\n  ret\n"
        ".size bench_floor_resume, .-bench_floor_resume\n");
#endif

static NOINLINE void floor_round_trip(void *buf)
{
    if (bench_floor_capture(buf) == 0)
        bench_floor_resume(buf);
}

static void BM_capture_resume_floor(benchmark::State &st)
{
    for (auto _ : st)
        floor_round_trip(&g_act);
}
BENCHMARK(BM_capture_resume_floor)->Name("act_capture_resume/floor");

static NOINLINE void uc_round_trip(ucontext_t *uc)
{
    volatile int resumed = 0;
    getcontext(uc);
    if (!resumed) {
        resumed = 1;
        setcontext(uc);
    }
}

static void BM_capture_resume_uc(benchmark::State &st)
{
    ucontext_t uc;
    for (auto _ : st)
        uc_round_trip(&uc);
}
BENCHMARK(BM_capture_resume_uc)->Name("act_capture_resume/getcontext");

static NOINLINE void sj_round_trip(sigjmp_buf *jb)
{
    if (!sigsetjmp(*jb, 1))
        siglongjmp(*jb, 1);
}

static void BM_capture_resume_sj(benchmark::State &st)
{
    sigjmp_buf jb;
    for (auto _ : st)
        sj_round_trip(&jb);
}
BENCHMARK(BM_capture_resume_sj)->Name("act_capture_resume/sigsetjmp");

// ---------------------------------------------------------------------------
// act_full_resume: a point captured by a signal on a stack of its own.
// full_point raises the signal; the handler records the interrupted state
// (as a FULL record, or just where the kernel's frame is).  Each benchmark
// iteration resumes that state, which continues after the raise and
// resumes g_back, the loop.
// ---------------------------------------------------------------------------
enum { CAPTURE_RECORD, CAPTURE_FRAME };
static volatile int g_capture_mode, g_bench_active;
static as_act g_full, g_back;
static void *volatile g_frame;

static void full_handler(int, siginfo_t *, void *uc)
{
    if (g_capture_mode == CAPTURE_RECORD)
        as_act_from_ucontext(&g_full, uc);
    else
        g_frame = uc;   // the frame sigreturn reads starts at the ucontext
}

static void *full_point(void *)
{
#if defined(__x86_64__)
    // Make the upper vector state non-initial, so XRSTOR has real work.
    if (__builtin_cpu_supports("avx512f"))
        // zmm16-31 are never used by this (non-AVX-512) code: no clobber.
        __asm__ volatile("vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
                         "vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16" ::: "memory");
    else if (__builtin_cpu_supports("avx"))
        __asm__ volatile("vpcmpeqd %%ymm15, %%ymm15, %%ymm15" ::: "xmm15");
#endif
    raw_tgkill(g_pid, g_tid, SIGUSR2);
    if (g_bench_active)
        as_act_resume(&g_back);
    return nullptr;
}

static as_stack full_setup(int mode)
{
    ids();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = full_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, nullptr);
    as_stack s;
    if (as_stack_alloc(&s, 64 << 10) != 0)
        abort();
    g_bench_active = 0;
    g_capture_mode = mode;
    as_call_on(&s, full_point, nullptr);
    g_bench_active = 1;
    return s;
}

static NOINLINE void full_as_once()
{
    if (as_act_capture(&g_back) == 0)
        as_act_resume(&g_full);
}

static void BM_full_as(benchmark::State &st)
{
    as_stack s = full_setup(CAPTURE_RECORD);
    for (auto _ : st)
        full_as_once();
    g_bench_active = 0;
    as_stack_free(&s);
}
BENCHMARK(BM_full_as)->Name("act_full_resume/altstack");

static NOINLINE void full_sigreturn_once()
{
    if (as_act_capture(&g_back) == 0) {
#if defined(__x86_64__)
        __asm__ volatile("movq %0, %%rsp\n\t"
                         "movl $15, %%eax\n\t"      // __NR_rt_sigreturn
                         "syscall" : : "r"(g_frame) : "memory");
#else
        // aarch64: the frame is {siginfo, ucontext}; sp points at siginfo.
        __asm__ volatile("mov sp, %0\n\t"
                         "mov x8, #139\n\t"
                         "svc #0" : : "r"((char *)g_frame - sizeof(siginfo_t)) : "memory");
#endif
        __builtin_unreachable();
    }
}

static void BM_full_sigreturn(benchmark::State &st)
{
    as_stack s = full_setup(CAPTURE_FRAME);
    for (auto _ : st)
        full_sigreturn_once();
    g_bench_active = 0;
    as_stack_free(&s);
}
BENCHMARK(BM_full_sigreturn)->Name("act_full_resume/rt_sigreturn");

#if defined(__x86_64__)
extern "C" uint64_t as__act_xmask;  // the mask as_act_resume restores with

static NOINLINE void full_xrstor_once(uint64_t m)
{
    if (as_act_capture(&g_back) == 0) {
        // The same area, the same requested-feature bitmap as the resume;
        // what it loads (AVX-512 included) this code never reads.
        __asm__ volatile("xrstor64 %0" : : "m"(g_full.fpu), "a"((uint32_t)m),
                         "d"((uint32_t)(m >> 32)) : "memory");
        as_act_resume(&g_back);
    }
}

static void BM_full_xrstor(benchmark::State &st)
{
    as_stack s = full_setup(CAPTURE_RECORD);
    uint64_t m = as__act_xmask;
    if (!m) {
        st.SkipWithError("no XSAVE: the resume uses FXRSTOR");
        g_bench_active = 0;
        as_stack_free(&s);
        return;
    }
    for (auto _ : st)
        full_xrstor_once(m);
    g_bench_active = 0;
    as_stack_free(&s);
}
BENCHMARK(BM_full_xrstor)->Name("act_full_resume/xrstor");
#endif

// ---------------------------------------------------------------------------
// preempt_rt
// ---------------------------------------------------------------------------
static void resume_at_once(as_act *a, void *) { as_act_resume(a); }

// Preemption on the calling thread with an upcall that resumes at once;
// its records and upcall stack are held until preempt_end.
static as_stack g_up;
static void preempt_begin(unsigned interval_us)
{
    static as_act recs[8];
    static as_act_pool pool;
    as_act_pool_init(&pool, recs, 8);
    if (as_stack_alloc(&g_up, 256 << 10) != 0)
        abort();
    as_preempt_cfg cfg = {};
    cfg.interval_us = interval_us;
    cfg.upcall = resume_at_once;
    cfg.pool = &pool;
    cfg.upcall_stack = &g_up;
    if (as_preempt_start(&cfg) != 0)
        abort();
}

static void preempt_end(void)
{
    as_preempt_stop();
    as_stack_free(&g_up);
}

static void BM_preempt_as(benchmark::State &st)
{
    ids();
    preempt_begin(10000000);        // the timer stays out of the way
    int sig = as_preempt_signal();
    for (auto _ : st)
        raw_tgkill(g_pid, g_tid, sig);
    preempt_end();
}
BENCHMARK(BM_preempt_as)->Name("preempt_rt/altstack");

static void empty_handler(int, siginfo_t *, void *) {}

static void BM_preempt_bare(benchmark::State &st)
{
    ids();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = empty_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, nullptr);
    for (auto _ : st)
        raw_tgkill(g_pid, g_tid, SIGUSR1);
}
BENCHMARK(BM_preempt_bare)->Name("preempt_rt/bare_signal");

// preempt_sleep: nanosleep(40 ms) while preemption ticks every 1 ms of CPU
// time (the thread computes ~2 ms between sleeps, so ticks are live), and
// the same sleep without preemption.  Ticks count CPU time, so the sleep
// runs to its end: the target is at most 1 ms longer than the plain one.
static void burn_cpu_ms(int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < ms * 1000000L);
}

static void sleep_40ms(benchmark::State &st)
{
    for (auto _ : st) {
        st.PauseTiming();
        burn_cpu_ms(2);
        st.ResumeTiming();
        struct timespec ts = { 0, 40 * 1000000L };
        if (nanosleep(&ts, nullptr) != 0)
            st.SkipWithError("nanosleep was interrupted");
    }
}

static void BM_preempt_sleep_as(benchmark::State &st)
{
    preempt_begin(1000);
    sleep_40ms(st);
    preempt_end();
}
BENCHMARK(BM_preempt_sleep_as)->Name("preempt_sleep/altstack")
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);

static void BM_preempt_sleep_plain(benchmark::State &st) { sleep_40ms(st); }
BENCHMARK(BM_preempt_sleep_plain)->Name("preempt_sleep/plain")
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);
