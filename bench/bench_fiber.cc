// SPDX-License-Identifier: MIT
// bench/bench_fiber.cc - Boost.Context's fiber and callcc, unmodified, on
// whichever fcontext the program is linked with.  Built twice
// (bench/meson.build): fiber-bench-altstack-fcontext links
// libaltstack-fcontext.so before -lboost_context, fiber-bench-boost links
// Boost alone.  One process cannot hold both (they are the same three
// symbols), so scripts/bench runs the two programs alternately and prints
// the ratio.  FIBER_IMPL names the implementation in the benchmark names:
// fiber_rt/<impl>/depth:N, callcc_rt/<impl>.
#include <boost/context/continuation.hpp>
#include <boost/context/fiber.hpp>
#include <benchmark/benchmark.h>

#ifndef FIBER_IMPL
# error "FIBER_IMPL must name the fcontext implementation"
#endif

namespace ctx = boost::context;
#define NOINLINE __attribute__((noinline))

// The fiber yields from call depth D, so both sides' return-address
// predictions are exercised as in real code, not only a flat ping-pong.
template <int D> struct deep {
    static NOINLINE ctx::fiber yield(ctx::fiber &&m)
    {
        ctx::fiber r = deep<D - 1>::yield(std::move(m));
        benchmark::ClobberMemory();
        return r;
    }
};
template <> struct deep<0> {
    static NOINLINE ctx::fiber yield(ctx::fiber &&m) { return std::move(m).resume(); }
};

template <int D> static void BM_fiber(benchmark::State &st)
{
    bool stop = false;
    ctx::fiber f{[&stop](ctx::fiber &&m) {
        while (!stop)
            m = deep<D>::yield(std::move(m));
        return std::move(m);
    }};
    f = std::move(f).resume();
    for (auto _ : st)
        f = std::move(f).resume();           // one round trip
    stop = true;
    f = std::move(f).resume();
}
BENCHMARK(BM_fiber<0>)->Name("fiber_rt/" FIBER_IMPL "/depth:0");
BENCHMARK(BM_fiber<4>)->Name("fiber_rt/" FIBER_IMPL "/depth:4");

static void BM_callcc(benchmark::State &st)
{
    bool stop = false;
    ctx::continuation c = ctx::callcc([&stop](ctx::continuation &&m) {
        while (!stop)
            m = m.resume();
        return std::move(m);
    });
    for (auto _ : st)
        c = c.resume();
    stop = true;
    c = c.resume();
}
BENCHMARK(BM_callcc)->Name("callcc_rt/" FIBER_IMPL);

// Creation to completion: make_fcontext, the first resume, the return.
static void BM_fiber_life(benchmark::State &st)
{
    ctx::fixedsize_stack alloc(64 * 1024);
    for (auto _ : st) {
        ctx::fiber f{std::allocator_arg, alloc, [](ctx::fiber &&m) { return std::move(m); }};
        f = std::move(f).resume();
        benchmark::DoNotOptimize(f);
    }
}
BENCHMARK(BM_fiber_life)->Name("fiber_life/" FIBER_IMPL);

BENCHMARK_MAIN();
