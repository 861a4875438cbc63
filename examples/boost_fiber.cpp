// SPDX-License-Identifier: MIT
//
// examples/boost_fiber.cpp - an ordinary Boost.Fiber program: a thousand
// fibers in a ring of channels pass a token round, then each fiber reports
// to a collector over one shared channel.  Nothing in it knows about
// libaltstack; it runs on it by being linked with libaltstack-fcontext
// before Boost.Context:
//
//   g++ -O2 boost_fiber.cpp -o boost_fiber $(pkg-config --libs altstack-fcontext)
//       -lboost_fiber -lboost_context -lunwind              (one command line)
//
// or, built against Boost alone, by
//
//   LD_PRELOAD=libaltstack-fcontext.so.0 ./boost_fiber
//
// What that buys shows at the start: a backtrace taken (with libunwind)
// inside the first fiber of the ring continues through the fiber scheduler
// into main, which it blocked in a channel pop to let the fibers run, which Boost's own switch cannot give (its assembly has no
// unwind information, so backtraces stop at the fiber's first frame).
// A debugger sees the same: `gdb -batch -ex 'break fiber_backtrace' -ex run
// -ex bt ./boost_fiber`.
#include <boost/fiber/all.hpp>

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace bf = boost::fibers;

// Print the calling fiber's backtrace; returns whether it reached main.
extern "C" __attribute__((noinline)) bool fiber_backtrace()
{
    unw_context_t uc;
    unw_cursor_t c;
    unw_getcontext(&uc);
    unw_init_local(&c, &uc);
    bool main_seen = false;
    int i = 0;
    do {
        char name[512];
        unw_word_t off, pc;
        unw_get_reg(&c, UNW_REG_IP, &pc);
        if (unw_get_proc_name(&c, name, sizeof name, &off) != 0)
            std::snprintf(name, sizeof name, "?");
        main_seen |= std::strcmp(name, "main") == 0;
        int st;
        char *d = abi::__cxa_demangle(name, nullptr, nullptr, &st);
        const char *shown = st == 0 && d ? d : name;
        // Boost's template frames have long names: keep the line short.
        std::printf("  #%-2d %#014lx %.80s%s\n", i, (unsigned long)pc, shown,
                    std::strlen(shown) > 80 ? "..." : "");
        std::free(d);
    } while (++i < 40 && unw_step(&c) > 0);
    return main_seen;
}

int main(int argc, char **argv)
{
    const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int laps = 10;
    std::vector<std::unique_ptr<bf::buffered_channel<long>>> ring;
    for (int i = 0; i < n; i++)
        ring.emplace_back(new bf::buffered_channel<long>(2));
    bf::buffered_channel<long> done(1024);
    bool reached_main = false;

    std::vector<bf::fiber> fibers;
    for (int i = 0; i < n; i++) {
        fibers.emplace_back([&, i] {
            long token = 0, hops = 0;
            for (int lap = 0; lap < laps; lap++) {
                if (!(i == 0 && lap == 0))
                    ring[i]->pop(token);
                token++;
                hops++;
                if (i == 0 && lap == 0) {
                    std::printf("backtrace inside fiber %d:\n", i);
                    reached_main = fiber_backtrace();
                }
                if (!(i == n - 1 && lap == laps - 1))
                    ring[(i + 1) % n]->push(token);
            }
            done.push(hops);
        });
    }
    long total = 0;
    for (int i = 0; i < n; i++) {
        long h;
        done.pop(h);
        total += h;
    }
    for (auto &f : fibers)
        f.join();
    std::printf("%d fibers, %d laps: %ld hops (expected %ld); the backtrace %s main\n", n, laps,
                total, (long)n * laps, reached_main ? "reached" : "did NOT reach");
    return total == (long)n * laps && reached_main ? 0 : 1;
}
