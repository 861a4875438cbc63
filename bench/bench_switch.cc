// SPDX-License-Identifier: MIT
// bench/bench_switch.cc - as_switch and as_call_on against their peers.
//
//   switch_rt/<impl>/depth:0   a round trip (two switches) between a loop
//                              and a context that just switches back
//   switch_rt/<impl>/depth:4   both sides switch from call depth 4, in
//                              different functions (the loop's chain and the
//                              context's are separate code): return
//                              prediction is no longer trivially in step
//   call_on/<impl>             run a function on another stack vs a plain
//                              indirect call and vs the floor (the same
//                              call on another stack with nothing checked)
// Ours: altstack (exact mode, the strategy bound for this CPU),
// altstack_compare / altstack_reload (exact mode, each strategy forced;
// x86_64), altstack_fast (fast mode).
// Peers: the floor (callee-saved GPRs only: push/pop + jmp, written below,
// the least a switch must do), Boost.Context's jump_fcontext
// (libboost-context-dev) and glibc's swapcontext.
// Every switch benchmark starts with the FP exception flags clear, the
// state the earlier benchmarks' arithmetic would otherwise leave to
// chance (reloading MXCSR costs more on some CPUs with a flag set).
#include <benchmark/benchmark.h>
#include <boost/context/detail/fcontext.hpp>
#include <ucontext.h>
#include <cfenv>
#include <cstdint>
#include <cstdlib>

extern "C" {
#include <altstack.h>
}

namespace bc = boost::context::detail;

#define NOINLINE __attribute__((noinline))

static as_stack bench_stack(size_t size = 256 << 10)
{
    as_stack s;
    if (as_stack_alloc(&s, size) != 0)
        abort();
    return s;
}

// ---------------------------------------------------------------------------
// libaltstack
// ---------------------------------------------------------------------------
typedef as_transfer (*as_switch_fn)(as_ctx, void *);
extern "C" as_transfer bench_floor_switch(as_ctx to, void *data);

template <as_switch_fn SW, int D> struct as_chain {
    static NOINLINE as_transfer a(as_transfer t) { return as_chain<SW, D - 1>::a(t); }
    static NOINLINE as_transfer b(as_transfer t) { return as_chain<SW, D - 1>::b(t); }
};
template <as_switch_fn SW> struct as_chain<SW, 0> {
    static NOINLINE as_transfer a(as_transfer t) { return SW(t.ctx, t.data); }
    static NOINLINE as_transfer b(as_transfer t) { return SW(t.ctx, t.data); }
};

template <as_switch_fn SW, int D> static as_transfer as_peer(as_transfer t)
{
    for (;;) {
        t = as_chain<SW, D>::b(t);
        if (!t.data)
            return {t.ctx, nullptr};
    }
}

// strategy: AS_FP_AUTO (what start-up bound), or one forced for the run.
template <as_switch_fn SW, int D, int STRATEGY = AS_FP_AUTO>
static void BM_as_switch(benchmark::State &st)
{
    if (STRATEGY != AS_FP_AUTO && as_switch_set_fp_strategy(STRATEGY) != 0) {
        st.SkipWithError("strategy not available here");
        return;
    }
    as_stack s = bench_stack();
    as_transfer t{as_ctx_make(&s, as_peer<SW, D>), (void *)1};
    std::feclearexcept(FE_ALL_EXCEPT);
    for (auto _ : st) {
        t.data = (void *)1;
        t = as_chain<SW, D>::a(t);
    }
    if (SW != bench_floor_switch)       // the floor cannot finish a context:
        t = SW(t.ctx, nullptr);         // its peer stays parked, stack freed
    as_stack_free(&s);
    as_switch_init();
}
BENCHMARK(BM_as_switch<as_switch, 0>)->Name("switch_rt/altstack/depth:0");
BENCHMARK(BM_as_switch<as_switch, 4>)->Name("switch_rt/altstack/depth:4");
BENCHMARK(BM_as_switch<as_switch_fast, 0>)->Name("switch_rt/altstack_fast/depth:0");
BENCHMARK(BM_as_switch<as_switch_fast, 4>)->Name("switch_rt/altstack_fast/depth:4");
#if defined(__x86_64__)
BENCHMARK(BM_as_switch<as_switch, 0, AS_FP_COMPARE>)->Name("switch_rt/altstack_compare/depth:0");
BENCHMARK(BM_as_switch<as_switch, 4, AS_FP_COMPARE>)->Name("switch_rt/altstack_compare/depth:4");
BENCHMARK(BM_as_switch<as_switch, 0, AS_FP_RELOAD>)->Name("switch_rt/altstack_reload/depth:0");
BENCHMARK(BM_as_switch<as_switch, 4, AS_FP_RELOAD>)->Name("switch_rt/altstack_reload/depth:4");
#endif

// ---------------------------------------------------------------------------
// The floor: save the callee-saved general registers, switch the stack
// pointer, restore, jump.  No FP control, no unwinding support, no frame
// retiring: what every switch in this file must at least do.  Frames have
// the layout of as_switch's (an as_ctx_make frame works: x86_64 pops the
// FP word unread; aarch64 skips it), so fresh contexts start the same way.
// ---------------------------------------------------------------------------
#if defined(__x86_64__)
__asm__(".text\n.globl bench_floor_switch\n.type bench_floor_switch,@function\n"
        ".p2align 4\nbench_floor_switch:\n"
        "  endbr64\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  leaq -8(%rsp), %rsp\n"
        "  movq %rsp, %rax\n  movq %rsi, %rdx\n  movq %rdi, %rsp\n"
        "  leaq 8(%rsp), %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  popq %r8\n  notrack jmp *%r8\n"
        ".size bench_floor_switch, .-bench_floor_switch\n");
#elif defined(__aarch64__)
// Frame as in src/arch/aarch64/layout.h: d8-d15 at 16, x19-x28 at 80,
// x29/lr at 160; the return goes through the plain lr (no PAC), and the
// FPCR and signed-lr words are not touched.
__asm__(".text\n.globl bench_floor_switch\n.type bench_floor_switch,%function\n"
        ".p2align 4\nbench_floor_switch:\n"
        "  bti c\n"
        "  sub sp, sp, #176\n"
        "  stp d8, d9, [sp, #16]\n  stp d10, d11, [sp, #32]\n"
        "  stp d12, d13, [sp, #48]\n  stp d14, d15, [sp, #64]\n"
        "  stp x19, x20, [sp, #80]\n  stp x21, x22, [sp, #96]\n  stp x23, x24, [sp, #112]\n"
        "  stp x25, x26, [sp, #128]\n  stp x27, x28, [sp, #144]\n  stp x29, x30, [sp, #160]\n"
        "  mov x2, sp\n  mov sp, x0\n  mov x0, x2\n"
        "  ldp d8, d9, [sp, #16]\n  ldp d10, d11, [sp, #32]\n"
        "  ldp d12, d13, [sp, #48]\n  ldp d14, d15, [sp, #64]\n"
        "  ldp x19, x20, [sp, #80]\n  ldp x21, x22, [sp, #96]\n  ldp x23, x24, [sp, #112]\n"
        "  ldp x25, x26, [sp, #128]\n  ldp x27, x28, [sp, #144]\n  ldp x29, x30, [sp, #160]\n"
        "  add sp, sp, #176\n  ret\n"
        ".size bench_floor_switch, .-bench_floor_switch\n");
#endif

// The floor resumes frames it made itself, and once a fresh as_ctx_make
// frame (whose layout it shares), after which the peer loops through the
// floor too.
BENCHMARK(BM_as_switch<bench_floor_switch, 0>)->Name("switch_rt/floor/depth:0");
BENCHMARK(BM_as_switch<bench_floor_switch, 4>)->Name("switch_rt/floor/depth:4");

// ---------------------------------------------------------------------------
// Boost.Context
// ---------------------------------------------------------------------------
template <int D> struct bc_chain {
    static NOINLINE bc::transfer_t a(bc::transfer_t t) { return bc_chain<D - 1>::a(t); }
    static NOINLINE bc::transfer_t b(bc::transfer_t t) { return bc_chain<D - 1>::b(t); }
};
template <> struct bc_chain<0> {
    static NOINLINE bc::transfer_t a(bc::transfer_t t) { return bc::jump_fcontext(t.fctx, t.data); }
    static NOINLINE bc::transfer_t b(bc::transfer_t t) { return bc::jump_fcontext(t.fctx, t.data); }
};

template <int D> static void bc_peer(bc::transfer_t t)
{
    for (;;) {
        t = bc_chain<D>::b(t);
        if (!t.data)
            bc::jump_fcontext(t.fctx, nullptr);     // never resumed again
    }
}

template <int D> static void BM_boost_switch(benchmark::State &st)
{
    as_stack s = bench_stack();
    bc::transfer_t t{bc::make_fcontext(s.hi, as_stack_size(&s), bc_peer<D>), (void *)1};
    std::feclearexcept(FE_ALL_EXCEPT);
    for (auto _ : st) {
        t.data = (void *)1;
        t = bc_chain<D>::a(t);
    }
    t = bc::jump_fcontext(t.fctx, nullptr);
    as_stack_free(&s);
}
BENCHMARK(BM_boost_switch<0>)->Name("switch_rt/boost/depth:0");
BENCHMARK(BM_boost_switch<4>)->Name("switch_rt/boost/depth:4");

// ---------------------------------------------------------------------------
// glibc ucontext
// ---------------------------------------------------------------------------
static ucontext_t uc_main, uc_peer;
template <int D> struct uc_chain {
    static NOINLINE void a() { uc_chain<D - 1>::a(); }
    static NOINLINE void b() { uc_chain<D - 1>::b(); }
};
template <> struct uc_chain<0> {
    static NOINLINE void a() { swapcontext(&uc_main, &uc_peer); }
    static NOINLINE void b() { swapcontext(&uc_peer, &uc_main); }
};
template <int D> static void uc_peer_fn() { for (;;) uc_chain<D>::b(); }

template <int D> static void BM_ucontext_switch(benchmark::State &st)
{
    as_stack s = bench_stack();
    getcontext(&uc_peer);
    uc_peer.uc_stack.ss_sp = s.lo;
    uc_peer.uc_stack.ss_size = as_stack_size(&s);
    uc_peer.uc_link = nullptr;
    makecontext(&uc_peer, uc_peer_fn<D>, 0);
    for (auto _ : st)
        uc_chain<D>::a();
    as_stack_free(&s);     // the peer is parked for good; its stack goes
}
BENCHMARK(BM_ucontext_switch<0>)->Name("switch_rt/ucontext/depth:0");
BENCHMARK(BM_ucontext_switch<4>)->Name("switch_rt/ucontext/depth:4");

// ---------------------------------------------------------------------------
// as_call_on vs a plain indirect call
// ---------------------------------------------------------------------------
static NOINLINE void *bump(void *p) { return (char *)p + 1; }

static void BM_call_on(benchmark::State &st)
{
    as_stack s = bench_stack(64 << 10);
    void *v = nullptr;
    for (auto _ : st) {
        v = as_call_on(&s, bump, v);
        benchmark::DoNotOptimize(v);
    }
    as_stack_free(&s);
}
BENCHMARK(BM_call_on)->Name("call_on/altstack");

// The floor of a call on another stack: a frame record, the stack pointer
// set to a top computed once before the loop, the call, the stack pointer
// back.  No argument checks: the least as_call_on must do beyond a call.
extern "C" void *bench_floor_call_on(void *top, void *(*fn)(void *), void *arg);
#if defined(__x86_64__)
__asm__(".text\n.globl bench_floor_call_on\n.type bench_floor_call_on,@function\n"
        ".p2align 4\nbench_floor_call_on:\n"
        "  endbr64\n"
        "  pushq %rbp\n  movq %rsp, %rbp\n  movq %rdi, %rsp\n  movq %rdx, %rdi\n"
        "  call *%rsi\n"
        "  movq %rbp, %rsp\n  popq %rbp\n  ret\n"
        ".size bench_floor_call_on, .-bench_floor_call_on\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl bench_floor_call_on\n.type bench_floor_call_on,%function\n"
        ".p2align 4\nbench_floor_call_on:\n"
        "  bti c\n"
        "  stp x29, x30, [sp, #-16]!\n  mov x29, sp\n  mov sp, x0\n  mov x0, x2\n"
        "  blr x1\n"
        "  mov sp, x29\n  ldp x29, x30, [sp], #16\n  ret\n"
        ".size bench_floor_call_on, .-bench_floor_call_on\n");
#endif

static void BM_floor_call_on(benchmark::State &st)
{
    as_stack s = bench_stack(64 << 10);
    void *top = (void *)((uintptr_t)s.hi & ~(uintptr_t)15);
    void *v = nullptr;
    for (auto _ : st) {
        v = bench_floor_call_on(top, bump, v);
        benchmark::DoNotOptimize(v);
    }
    as_stack_free(&s);
}
BENCHMARK(BM_floor_call_on)->Name("call_on/floor");

static void BM_indirect_call(benchmark::State &st)
{
    void *(*volatile fp)(void *) = bump;
    void *v = nullptr;
    for (auto _ : st) {
        v = fp(v);
        benchmark::DoNotOptimize(v);
    }
}
BENCHMARK(BM_indirect_call)->Name("call_on/indirect_call");
