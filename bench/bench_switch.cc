// SPDX-License-Identifier: MIT
// bench/bench_switch.cc - as_switch and as_call_on against their peers.
//
//   switch_rt/<impl>/depth:0   a round trip (two switches) between a loop
//                              and a context that just switches back
//   switch_rt/<impl>/depth:4   both sides switch from call depth 4, in
//                              different functions: return prediction is
//                              no longer trivially in step
//   call_on/<impl>             run a function on another stack vs a plain
//                              indirect call
// Peers: Boost.Context's jump_fcontext (libboost-context-dev) and glibc's
// swapcontext.
#include <benchmark/benchmark.h>
#include <boost/context/detail/fcontext.hpp>
#include <ucontext.h>
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
template <int D> struct as_chain {
    static NOINLINE as_transfer a(as_transfer t) { return as_chain<D - 1>::a(t); }
    static NOINLINE as_transfer b(as_transfer t) { return as_chain<D - 1>::b(t); }
};
template <> struct as_chain<0> {
    static NOINLINE as_transfer a(as_transfer t) { return as_switch(t.ctx, t.data); }
    static NOINLINE as_transfer b(as_transfer t) { return as_switch(t.ctx, t.data); }
};

template <int D> static as_transfer as_peer(as_transfer t)
{
    for (;;) {
        t = as_chain<D>::b(t);
        if (!t.data)
            return {t.ctx, nullptr};
    }
}

template <int D> static void BM_as_switch(benchmark::State &st)
{
    as_stack s = bench_stack();
    as_transfer t{as_ctx_make(&s, as_peer<D>), (void *)1};
    for (auto _ : st) {
        t.data = (void *)1;
        t = as_chain<D>::a(t);
    }
    t = as_switch(t.ctx, nullptr);
    as_stack_free(&s);
}
BENCHMARK(BM_as_switch<0>)->Name("switch_rt/altstack/depth:0");
BENCHMARK(BM_as_switch<4>)->Name("switch_rt/altstack/depth:4");

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
