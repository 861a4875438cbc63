// SPDX-License-Identifier: MIT
// bench/bench_share.cc - what isolation costs a context switch.
//
//   share_switch/<impl>   a round trip between a scheduler loop (outside
//                         every domain) and a fiber in its own domain
//
//   plain_switch               as_switch both ways: no isolation (baseline)
//   altstack_domain_mprotect   as_switch_domain, "mprotect" back-end: each
//                              round trip opens and closes the fiber's stack
//                              (two mprotect calls)
//   altstack_domain_pkeys      "pkeys" back-end: two PKRU writes, no system
//                              call (only where the CPU has protection keys)
//   altstack_domain_hook       "hook" back-end with a hook that does nothing:
//                              the library's own bookkeeping alone
//
// scripts/bench prints each altstack_domain_* against plain_switch.
#include <benchmark/benchmark.h>
#include <cerrno>
#include <cstdlib>

extern "C" {
#include <altstack.h>
}

static as_transfer plain_peer(as_transfer t)
{
    for (;;) {
        t = as_switch(t.ctx, t.data);
        if (!t.data)
            return {t.ctx, nullptr};
    }
}

static void BM_plain_switch(benchmark::State &st)
{
    as_stack s;
    if (as_stack_alloc(&s, 64 << 10) != 0)
        abort();
    as_transfer t{as_ctx_make(&s, plain_peer), nullptr};
    for (auto _ : st)
        t = as_switch(t.ctx, (void *)1);
    as_switch(t.ctx, nullptr);
    as_stack_free(&s);
}
BENCHMARK(BM_plain_switch)->Name("share_switch/plain_switch");

static as_transfer domain_peer(as_transfer t)
{
    for (;;) {
        t = as_switch_domain(t.ctx, nullptr, t.data);   // back to the scheduler
        if (!t.data)
            return {t.ctx, nullptr};
    }
}

static int noop_hook(void *, const as_domain_region *, size_t)
{
    return 0;
}

// backend: "mprotect", "pkeys" or "hook".
static void BM_domain_switch(benchmark::State &st, const char *backend)
{
    bool hook = backend[0] == 'h';
    int err = hook ? as_domain_set_hook(noop_hook, nullptr) : as_domain_set_backend(backend);
    if (err) {
        st.SkipWithError(err == -ENOTSUP ? "no protection keys on this machine"
                                         : "cannot choose the back-end");
        return;
    }
    as_stack s;
    as_domain d;
    if (as_stack_alloc(&s, 64 << 10) != 0 || as_domain_init(&d, &s) != 0)
        abort();
    as_transfer t{as_domain_ctx_make(&d, domain_peer), nullptr};
    for (auto _ : st)
        t = as_switch_domain(t.ctx, &d, (void *)1);
    as_switch_domain(t.ctx, &d, nullptr);
    as_domain_fini(&d);
    as_stack_free(&s);
    if (hook)
        as_domain_set_hook(nullptr, nullptr);
}
BENCHMARK_CAPTURE(BM_domain_switch, mprotect, "mprotect")
    ->Name("share_switch/altstack_domain_mprotect");
BENCHMARK_CAPTURE(BM_domain_switch, hook, "hook")->Name("share_switch/altstack_domain_hook");
// Registered only where it can run, so the table has no empty rows.
static int pkeys_registered = as_domain_pkeys_supported()
    ? (benchmark::RegisterBenchmark("share_switch/altstack_domain_pkeys",
                                    [](benchmark::State &st) { BM_domain_switch(st, "pkeys"); }),
       1)
    : 0;
