// SPDX-License-Identifier: MIT
// bench/bench_dlock.cc - delegation locks against the locks people use,
// all through bench/lock_harness.h (same workload, same threads, same run).
//
//   dlock/pthread_mutex                    glibc's mutex (futex-based)
//   dlock/pthread_spinlock                 glibc's spinlock
//   dlock/ck_mcs, dlock/ck_ticket          Concurrency Kit (Debian libck-dev);
//                                          only up to one thread per CPU: these
//                                          FIFO spinlocks hand the lock to a
//                                          waiter that may be descheduled, and
//                                          with 4 threads on 2 CPUs one 0.1 s
//                                          run did not finish in 4 minutes
//   dlock/flat_combining                   a flat-combining baseline (below)
//   dlock/altstack_combining_transparent   as_dlock_lock/unlock, combining
//   dlock/altstack_combining_call          as_dlock_call, combining
//   dlock/altstack_server_transparent      ... with a dedicated server thread
//   dlock/altstack_server_call             (one thread more than `threads`)
//
// A short run (under a minute on 2 cores), then the whole matrix:
//   scripts/bench BUILD -- --benchmark_filter='^dlock/.*/lines:(1|64)/work:0/real_time/threads:(1|8)$'
//   scripts/bench BUILD -- --benchmark_filter='^dlock/'
//
// What to expect on a 2-CPU machine shared with other work (measured; the
// rows with no work outside vary 2-4x from run to run with the load):
//   - with ~1000 cycles outside, combining mode matches the best peer at 1
//     and 16 lines (2 threads) and beats it by 1.3-1.5x at 8 threads,
//     where spinning peers and pthread_mutex convoy; at 64 lines it loses
//     (1.3-1.6x behind pthread_mutex, which lets one thread keep the lines);
//   - back to back (work 0) it is 1-3.5x behind pthread_mutex/spinlock,
//     which hand the lock to the thread already holding the lines;
//   - server mode costs 0.3-1.6 us per operation: every request waits for
//     the server thread to be scheduled on a CPU the clients also use.
// Delegation pays where the server (or combiner) keeps a CPU of its own and
// the shared lines are many; two busy CPUs show little of either.

#include "lock_harness.h"

#include <atomic>
#include <pthread.h>
#include <sched.h>
#include <cstdlib>

extern "C" {
#include <altstack.h>
}
#include "ck_peers.h"

// ---- peers -----------------------------------------------------------------

struct pthread_mutex_lock_ : lh_lock_style<pthread_mutex_lock_> {
    pthread_mutex_t m;
    void init() { pthread_mutex_init(&m, nullptr); }
    void fini() { pthread_mutex_destroy(&m); }
    void lock(unsigned) { pthread_mutex_lock(&m); }
    void unlock(unsigned) { pthread_mutex_unlock(&m); }
};
LH_REGISTER("dlock/pthread_mutex", pthread_mutex_lock_);

struct pthread_spin_lock_ : lh_lock_style<pthread_spin_lock_> {
    pthread_spinlock_t s;
    void init() { pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE); }
    void fini() { pthread_spin_destroy(&s); }
    void lock(unsigned) { pthread_spin_lock(&s); }
    void unlock(unsigned) { pthread_spin_unlock(&s); }
};
LH_REGISTER("dlock/pthread_spinlock", pthread_spin_lock_);

struct ck_mcs_lock_ : lh_lock_style<ck_mcs_lock_> {
    alignas(128) void *q;
    struct alignas(128) node { unsigned char c[BENCH_CK_NODE]; } nodes[64];
    void init() { bench_ck_mcs_init(&q); }
    void fini() {}
    void lock(unsigned t) { bench_ck_mcs_lock(&q, &nodes[t]); }
    void unlock(unsigned t) { bench_ck_mcs_unlock(&q, &nodes[t]); }
};
LH_REGISTER_UPTO("dlock/ck_mcs", ck_mcs_lock_, lh_cpus());

struct ck_ticket_lock_ : lh_lock_style<ck_ticket_lock_> {
    alignas(128) unsigned char t[BENCH_CK_NODE];
    void init() { bench_ck_ticket_init(t); }
    void fini() {}
    void lock(unsigned) { bench_ck_ticket_lock(t); }
    void unlock(unsigned) { bench_ck_ticket_unlock(t); }
};
LH_REGISTER_UPTO("dlock/ck_ticket", ck_ticket_lock_, lh_cpus());

template <class F> static void *call_closure(void *f)
{
    (*static_cast<F *>(f))();
    return nullptr;
}

// Flat combining (Hendler, Incze, Shavit, Tzafrir 2010), reduced to its
// core: a thread publishes its operation in its own record and tries the
// lock; the winner runs every published operation, then releases.  It
// waits like the library does (spin, then yield), so both survive
// oversubscription and the difference measured is the protocol.
struct flat_combining_lock {
    struct alignas(128) rec {
        std::atomic<void *(*)(void *)> fn;
        void *arg;
    } recs[64];
    alignas(128) std::atomic<int> held;
    unsigned nrec;
    void init()
    {
        for (auto &r : recs)
            r.fn.store(nullptr, std::memory_order_relaxed);
        held.store(0, std::memory_order_relaxed);
        nrec = 64;
    }
    void fini() {}
    template <class F> void critical(F &f, unsigned tid)
    {
        rec &me = recs[tid];
        me.arg = &f;
        me.fn.store(call_closure<F>, std::memory_order_release);
        for (unsigned spins = 0;;) {
            if (!me.fn.load(std::memory_order_acquire))
                return;                                 // served
            if (!held.load(std::memory_order_relaxed) &&
                !held.exchange(1, std::memory_order_acquire)) {
                for (int pass = 0; pass < 2; pass++)
                    for (unsigned i = 0; i < nrec; i++) {
                        auto fn = recs[i].fn.load(std::memory_order_acquire);
                        if (fn) {
                            fn(recs[i].arg);
                            recs[i].fn.store(nullptr, std::memory_order_release);
                        }
                    }
                held.store(0, std::memory_order_release);
                continue;
            }
            if (++spins < 128)
                lh_relax();
            else
                sched_yield();
        }
    }
};
LH_REGISTER("dlock/flat_combining", flat_combining_lock);

// ---- libaltstack -------------------------------------------------------------

struct dlock_base {
    as_dlock l;
    as_dserver srv;
    pthread_t th;
    bool server_mode = false;
    static void *serve(void *s)
    {
        as_dserver_run(static_cast<as_dserver *>(s));
        return nullptr;
    }
    void start(bool server)
    {
        server_mode = server;
        if (server) {
            as_dserver_init(&srv);
            as_dlock_init(&l, &srv);
            if (pthread_create(&th, nullptr, serve, &srv))
                abort();
        } else {
            as_dlock_init(&l, nullptr);
        }
    }
    void fini()
    {
        if (server_mode) {
            as_dserver_stop(&srv);
            pthread_join(th, nullptr);
        }
    }
};

template <bool Server> struct altstack_transparent : dlock_base,
                                                     lh_lock_style<altstack_transparent<Server>> {
    void init() { start(Server); }
    void lock(unsigned) { as_dlock_lock(&l); }
    void unlock(unsigned) { as_dlock_unlock(&l); }
};

template <bool Server> struct altstack_call : dlock_base {
    void init() { start(Server); }
    template <class F> void critical(F &f, unsigned) { as_dlock_call(&l, call_closure<F>, &f); }
};

LH_REGISTER("dlock/altstack_combining_transparent", altstack_transparent<false>);
LH_REGISTER("dlock/altstack_combining_call", altstack_call<false>);
LH_REGISTER("dlock/altstack_server_transparent", altstack_transparent<true>);
LH_REGISTER("dlock/altstack_server_call", altstack_call<true>);
