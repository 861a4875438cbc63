// SPDX-License-Identifier: MIT
// bench/lock_harness.h - one throughput harness every lock plugs into, in
// the manner of Concurrency Kit's regressions: the workload is written once,
// and a lock supplies only how to enter and leave its critical section.
//
// A lock plugs in as a struct:
//
//     struct my_lock : lh_lock_style<my_lock> {  // LOCK/UNLOCK locks
//         void init();                 // LOCK_INIT: once per run, one thread
//         void fini();                 //   and its undo after the run
//         void lock(unsigned tid);     // LOCK
//         void unlock(unsigned tid);   // UNLOCK
//     };
//
// Delegating locks (which run the critical section somewhere else) define
// `template <class F> void critical(F &f, unsigned tid)` instead of
// lock/unlock.  tid is the benchmark thread's index, 0 .. threads-1, for
// locks that keep per-thread records (MCS nodes, combining slots).
//
//     LH_REGISTER("dlock/my_lock", my_lock);
//     LH_REGISTER_UPTO("dlock/my_lock", my_lock, lh_cpus());  // no oversubscription
//
// registers the whole matrix, named <group>/<impl>/lines:L/work:W/threads:T:
//   lines  1, 4, 16, 64  shared cache lines the critical section increments
//   work   0, 1000       about that many cycles of private work between
//                        critical sections (a dependent multiply chain)
//   threads 1, 2, 4, 8
// Reported: real time per operation (lower is better; scripts/bench prints
// ours/peer ratios), items_per_second = operations per second over all
// threads, and ops_per_cpu_s = operations per second of process CPU time
// (a dedicated server thread counts against its lock there).
#ifndef ALTSTACK_BENCH_LOCK_HARNESS_H
#define ALTSTACK_BENCH_LOCK_HARNESS_H

#include <benchmark/benchmark.h>
#include <cstdint>
#include <ctime>
#include <unistd.h>

struct alignas(64) lh_line { uint64_t v; };

// The shared data: what every critical section touches.
inline lh_line lh_shared[64];

// Private work between critical sections: n/3 dependent multiply-adds,
// about n cycles on cores with a 3-cycle multiplier.
static inline uint64_t lh_work(uint64_t x, unsigned n)
{
    for (unsigned i = 0; i < n / 3; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ __volatile__("" : "+r"(x));
    }
    return x;
}

// What a spinning waiter does between two looks.
static inline void lh_relax()
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline double lh_cpu_seconds()
{
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Base for locks with lock/unlock: the critical section runs in place.
template <class L> struct lh_lock_style {
    template <class F> void critical(F &f, unsigned tid)
    {
        static_cast<L *>(this)->lock(tid);
        f();
        static_cast<L *>(this)->unlock(tid);
    }
};

template <class L> void lh_throughput(benchmark::State &st)
{
    static L lock;
    const unsigned lines = (unsigned)st.range(0), work = (unsigned)st.range(1);
    const unsigned tid = (unsigned)st.thread_index();
    double cpu0 = 0;
    if (tid == 0) {
        for (auto &l : lh_shared)
            l.v = 0;
        lock.init();
        cpu0 = lh_cpu_seconds();
    }
    uint64_t x = tid + 1;
    auto cs = [lines] {
        for (unsigned i = 0; i < lines; i++)
            lh_shared[i].v++;
    };
    for (auto _ : st) {
        lock.critical(cs, tid);
        x = lh_work(x, work);
    }
    benchmark::DoNotOptimize(x);
    st.SetItemsProcessed(st.iterations());
    if (tid == 0) {
        double cpu = lh_cpu_seconds() - cpu0;
        lock.fini();
        st.counters["ops_per_cpu_s"] =
            cpu > 0 ? (double)st.iterations() * st.threads() / cpu : 0;
    }
}

// The thread counts, up to `most`.
static inline void lh_threads(benchmark::internal::Benchmark *b, int most)
{
    for (int t = 1; t <= 8 && t <= most; t *= 2)
        b->Threads(t);
}

static inline int lh_cpus()
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

#define LH_REGISTER_UPTO(name, L, most)                                       \
    BENCHMARK_TEMPLATE(lh_throughput, L)                                      \
        ->Name(name)                                                          \
        ->ArgNames({"lines", "work"})                                         \
        ->ArgsProduct({{1, 4, 16, 64}, {0, 1000}})                            \
        ->Apply([](benchmark::internal::Benchmark *b) { lh_threads(b, most); }) \
        ->UseRealTime()

#define LH_REGISTER(name, L) LH_REGISTER_UPTO(name, L, 8)

#endif
