// SPDX-License-Identifier: MIT
// tests/boost/gdb_fiber.cpp - a plain Boost program for tests/boost/gdb_boost.sh:
// main -> gdb_resumer resumes a boost::context::fiber, whose body calls
// gdb_in_fiber; then main -> gdb_joiner joins a Boost.Fiber fiber whose
// body calls gdb_in_fibers.  gdb stops in both and takes `bt`.
#include <boost/context/fiber.hpp>
#include <boost/fiber/all.hpp>
#include <cstdio>

namespace ctx = boost::context;
extern "C" {
__attribute__((noinline)) void gdb_in_fiber(int *n) { __asm__ volatile("" ::"r"(n) : "memory"); ++*n; }
__attribute__((noinline)) void gdb_in_fibers(int *n) { __asm__ volatile("" ::"r"(n) : "memory"); ++*n; }
__attribute__((noinline)) void gdb_resumer(ctx::fiber &f) { f = std::move(f).resume(); }
__attribute__((noinline)) void gdb_joiner(boost::fibers::fiber &f) { f.join(); __asm__ volatile("" ::: "memory"); }
}

int main()
{
    int n = 0;
    ctx::fiber f{[&n](ctx::fiber &&m) {
        gdb_in_fiber(&n);
        return std::move(m);
    }};
    gdb_resumer(f);
    boost::fibers::fiber bf([&n] { gdb_in_fibers(&n); });
    gdb_joiner(bf);
    std::printf("gdb_fiber: %d\n", n);
    return n == 2 ? 0 : 1;
}
