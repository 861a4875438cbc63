// SPDX-License-Identifier: MIT
// bench/bench_share.cc - what isolation costs a context switch.
//
//   share_switch/<impl>   a round trip between a scheduler loop (outside
//                         every domain) and a fiber in its own domain
//
//   plain_switch               as_switch both ways: no isolation (baseline)
//   wrpkru_pair                two PKRU writes and nothing else: the floor
//                              the pkeys target is stated against (only where
//                              the CPU has protection keys)
//   plain_plus_wrpkru          plain_switch with a PKRU write before each of
//                              its two switches: the same floor measured as
//                              one loop (under an emulator, which flushes its
//                              TLB at each write, the honest one)
//   altstack_domain_pkeys      "pkeys" back-end: one PKRU write per switch,
//                              no lock, no system call
//   altstack_domain_mprotect   "mprotect" back-end: each round trip opens
//                              and closes the fiber's stack
//   altstack_domain_hook       "hook" back-end with a hook that does nothing:
//                              the library's own bookkeeping alone
//
//   share_two/<impl>      two fibers, each in its own domain, switching to
//                         each other (domain to domain); counter
//                         syscalls_per_switch = mprotect calls per switch
//                         (altstack_mprotect_counted: the "mprotect"
//                         back-end's page engine behind a counting hook that
//                         calls mprotect itself)
//
//   share_cycle/<impl>/stacks:N   the scheduler resumes N fibers in turn,
//                         each in its own domain.  With N <= 15 every stack
//                         keeps its key ("pkeys" hits); with N > 15 each
//                         switch takes a key from the least recently used
//                         stack: the miss cost (two pkey_mprotect, a
//                         shootdown: reading /proc/self/task, one signal per
//                         other thread).
//
// Target (DESIGN.md): altstack_domain_pkeys <= plain_switch + wrpkru_pair
// + 10 ns, all three from the same run; scripts/bench prints the sum.
#include <benchmark/benchmark.h>
#include <cerrno>
#include <cstdlib>
#include <sys/mman.h>

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

#if defined(__x86_64__)
static inline unsigned rdpkru_now()
{
    unsigned eax, edx;
    __asm__ volatile("rdpkru" : "=a"(eax), "=d"(edx) : "c"(0));
    return eax;
}

static inline void wrpkru_now(unsigned v)
{
    __asm__ volatile("wrpkru" : : "a"(v), "c"(0), "d"(0) : "memory");
}

// Two PKRU writes (the two a domain round trip needs), same value twice:
// what the hardware charges, nothing of the library.
static void BM_wrpkru_pair(benchmark::State &st)
{
    unsigned v = rdpkru_now();
    for (auto _ : st) {
        wrpkru_now(v ^ 0x80000000u);   // key 15's write-disable bit
        wrpkru_now(v);
    }
}

// The floor measured as a whole: a plain round trip with one PKRU write
// before each switch (same value), so whatever the write costs the next
// memory accesses (an emulator flushes its TLB) is in it too.
static as_transfer wrpkru_peer(as_transfer t)
{
    unsigned v = rdpkru_now();
    for (;;) {
        wrpkru_now(v);
        t = as_switch(t.ctx, t.data);
        if (!t.data)
            return {t.ctx, nullptr};
    }
}

static void BM_plain_plus_wrpkru(benchmark::State &st)
{
    as_stack s;
    if (as_stack_alloc(&s, 64 << 10) != 0)
        abort();
    unsigned v = rdpkru_now();
    as_transfer t{as_ctx_make(&s, wrpkru_peer), nullptr};
    for (auto _ : st) {
        wrpkru_now(v);
        t = as_switch(t.ctx, (void *)1);
    }
    as_switch(t.ctx, nullptr);
    as_stack_free(&s);
}
#else
static void BM_wrpkru_pair(benchmark::State &st)
{
    st.SkipWithError("no PKRU on this architecture");
}
static void BM_plain_plus_wrpkru(benchmark::State &st) { BM_wrpkru_pair(st); }
#endif

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

static unsigned long mprotect_calls;

static int counting_mprotect_hook(void *, const as_domain_region *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int p = r[i].prot == AS_PROT_NONE ? PROT_NONE
              : r[i].prot == AS_PROT_READ ? PROT_READ : PROT_READ | PROT_WRITE;
        if (mprotect(r[i].lo, (size_t)((char *)r[i].hi - (char *)r[i].lo), p) != 0)
            return -errno;
        mprotect_calls++;
    }
    return 0;
}

// backend: "mprotect", "pkeys", "hook" (a no-op hook) or "counted" (the
// counting mprotect hook).  false: skipped with the reason.
static bool use_backend(benchmark::State &st, const char *backend)
{
    bool hook = backend[0] == 'h' || backend[0] == 'c';
    int err = !hook ? as_domain_set_backend(backend)
            : as_domain_set_hook(backend[0] == 'h' ? noop_hook : counting_mprotect_hook, nullptr);
    if (err)
        st.SkipWithError(err == -ENOTSUP ? "no protection keys on this machine"
                                         : "cannot choose the back-end");
    return !err;
}

static void done_backend(const char *backend)
{
    if (backend[0] == 'h' || backend[0] == 'c')
        as_domain_set_hook(nullptr, nullptr);
    as_domain_set_backend(nullptr);
}

static void BM_domain_switch(benchmark::State &st, const char *backend)
{
    if (!use_backend(st, backend))
        return;
    as_stack s;
    as_domain d;
    if (as_stack_alloc(&s, 64 << 10) != 0 || as_domain_init(&d, &s) != 0)
        abort();
    as_transfer t{as_domain_ctx_make(&d, domain_peer), nullptr};
    t = as_switch_domain(t.ctx, &d, (void *)1);     // the first entry, untimed
    for (auto _ : st)
        t = as_switch_domain(t.ctx, &d, (void *)1);
    as_switch_domain(t.ctx, &d, nullptr);
    as_domain_fini(&d);
    as_stack_free(&s);
    done_backend(backend);
}
BENCHMARK_CAPTURE(BM_domain_switch, mprotect, "mprotect")
    ->Name("share_switch/altstack_domain_mprotect");
BENCHMARK_CAPTURE(BM_domain_switch, hook, "hook")->Name("share_switch/altstack_domain_hook");

// ---- domain to domain ----------------------------------------------------------

static as_domain two_d[2];
static as_ctx two_b;

// Fiber B, in two_d[1]: back to A, forever (never finishes; its stack is
// freed while it is suspended, which is allowed).
static as_transfer two_fiber_b(as_transfer t)
{
    for (;;)
        t = as_switch_domain(t.ctx, &two_d[0], nullptr);
}

// Fiber A, in two_d[0]: runs the timed loop, each iteration A -> B -> A.
static as_transfer two_fiber_a(as_transfer t)
{
    auto *st = static_cast<benchmark::State *>(t.data);
    as_ctx sched = t.ctx;
    as_transfer p = as_switch_domain(two_b, &two_d[1], nullptr);   // B's first entry
    for (auto _ : *st)
        p = as_switch_domain(p.ctx, &two_d[1], nullptr);
    return {sched, nullptr};
}

static void BM_two_domains(benchmark::State &st, const char *backend)
{
    if (!use_backend(st, backend))
        return;
    as_stack s[2];
    for (int i = 0; i < 2; i++)
        if (as_stack_alloc(&s[i], 64 << 10) != 0 || as_domain_init(&two_d[i], &s[i]) != 0)
            abort();
    two_b = as_domain_ctx_make(&two_d[1], two_fiber_b);
    unsigned long before = mprotect_calls;
    as_switch_domain(as_domain_ctx_make(&two_d[0], two_fiber_a), &two_d[0], &st);
    double switches = 2.0 * (double)st.iterations();
    if (backend[0] == 'c' && switches > 0)
        st.counters["syscalls_per_switch"] = (double)(mprotect_calls - before) / switches;
    for (int i = 0; i < 2; i++) {
        as_domain_fini(&two_d[i]);
        as_stack_free(&s[i]);
    }
    done_backend(backend);
}
BENCHMARK_CAPTURE(BM_two_domains, mprotect, "mprotect")->Name("share_two/altstack_mprotect");
BENCHMARK_CAPTURE(BM_two_domains, counted, "counted")
    ->Name("share_two/altstack_mprotect_counted");

// ---- more stacks than keys -------------------------------------------------------

static void BM_cycle(benchmark::State &st, const char *backend)
{
    if (!use_backend(st, backend))
        return;
    int n = (int)st.range(0);
    as_stack s[32];
    as_domain d[32];
    as_ctx c[32];
    for (int i = 0; i < n; i++) {
        if (as_stack_alloc(&s[i], 16 << 10) != 0 || as_domain_init(&d[i], &s[i]) != 0)
            abort();
        c[i] = as_domain_ctx_make(&d[i], domain_peer);
        c[i] = as_switch_domain(c[i], &d[i], (void *)1).ctx;   // first entries, untimed
    }
    int i = 0;
    for (auto _ : st) {
        c[i] = as_switch_domain(c[i], &d[i], (void *)1).ctx;
        i = i + 1 == n ? 0 : i + 1;
    }
    for (i = 0; i < n; i++) {
        as_switch_domain(c[i], &d[i], nullptr);
        as_domain_fini(&d[i]);
        as_stack_free(&s[i]);
    }
    done_backend(backend);
}
BENCHMARK_CAPTURE(BM_cycle, mprotect, "mprotect")
    ->Name("share_cycle/altstack_mprotect")->ArgName("stacks")->Arg(8)->Arg(24);

// Registered only where they can run, so the tables have no empty rows.
static int pkeys_registered = as_domain_pkeys_supported()
    ? (benchmark::RegisterBenchmark("share_switch/altstack_domain_pkeys",
                                    [](benchmark::State &st) { BM_domain_switch(st, "pkeys"); }),
       benchmark::RegisterBenchmark("share_switch/wrpkru_pair", BM_wrpkru_pair),
       benchmark::RegisterBenchmark("share_switch/plain_plus_wrpkru", BM_plain_plus_wrpkru),
       benchmark::RegisterBenchmark("share_two/altstack_pkeys",
                                    [](benchmark::State &st) { BM_two_domains(st, "pkeys"); }),
       benchmark::RegisterBenchmark("share_cycle/altstack_pkeys",
                                    [](benchmark::State &st) { BM_cycle(st, "pkeys"); })
           ->ArgName("stacks")->Arg(8)->Arg(24),
       1)
    : 0;
