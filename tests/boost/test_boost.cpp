// SPDX-License-Identifier: MIT
//
// tests/boost/test_boost.cpp - unmodified Boost.Context and Boost.Fiber code
// running on libaltstack-fcontext.
//
// The same source is built three ways (tests/boost/meson.build): linked with
// libaltstack-fcontext.so before -lboost_context, linked with the static
// libraries, and linked with Boost alone but run with LD_PRELOAD of
// libaltstack-fcontext.so.  FC_EXPECT (environment) names the object that
// must provide jump_fcontext; every way, Boost's own assembly must not be
// what runs (test "which.jump_fcontext"), and a backtrace inside a fiber
// must reach the code that resumed it, which Boost's assembly (no CFI)
// cannot give.
//
// FC_HEADER_ONLY (the aarch64 cross build, which has Boost's headers but no
// arm64 Boost libraries): only the header-only parts, boost::context::fiber
// and callcc, every fiber on malloc_stack below (Boost's own allocators need
// stack_traits from libboost_context); no Boost.Fiber.
// Boost first: Criterion's macros (Test, ...) would clash with identifiers
// in Boost's headers.
#include <boost/context/continuation.hpp>
#include <boost/context/fiber.hpp>
#if !FC_HEADER_ONLY
# include <boost/context/fixedsize_stack.hpp>
# include <boost/context/protected_fixedsize_stack.hpp>
# include <boost/fiber/all.hpp>
#endif

#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <libunwind.h>
#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace ctx = boost::context;
using ctx::detail::transfer_t;

#define NOINLINE __attribute__((noinline))

// A stack allocator of Boost.Context's shape that needs nothing from
// libboost_context, and counts its live stacks.
struct malloc_stack {
    static int live;
    std::size_t size = 64 * 1024;
    ctx::stack_context allocate()
    {
        void *p = std::malloc(size);
        if (!p)
            throw std::bad_alloc();
        live++;
        ctx::stack_context sc;
        sc.size = size;
        sc.sp = static_cast<char *>(p) + size;
        return sc;
    }
    void deallocate(ctx::stack_context &sc) noexcept
    {
        live--;
        std::free(static_cast<char *>(sc.sp) - sc.size);
    }
};
int malloc_stack::live;
#define STK std::allocator_arg, malloc_stack{}

// ---- which jump_fcontext runs ---------------------------------------------

// The file name of the object that holds addr; "program" for the test
// program itself (whose name Criterion's workers change).
static std::string object_of(const void *addr)
{
    Dl_info info, self;
    if (!dladdr(addr, &info) || !info.dli_fname)
        return "?";
    if (dladdr(reinterpret_cast<const void *>(&object_of), &self) && self.dli_fbase == info.dli_fbase)
        return "program";
    return info.dli_fname;
}

#if !FC_HEADER_ONLY
static int find_boost_context(struct dl_phdr_info *info, size_t, void *found)
{
    if (info->dlpi_name && std::strstr(info->dlpi_name, "libboost_context"))
        *static_cast<bool *>(found) = true;
    return 0;
}
#endif

Test(which, jump_fcontext)
{
    const char *expect = std::getenv("FC_EXPECT");
    cr_assert(expect, "FC_EXPECT must name the object that should provide the fcontext symbols");
    const void *syms[] = {
        reinterpret_cast<const void *>(&ctx::detail::jump_fcontext),
        reinterpret_cast<const void *>(&ctx::detail::make_fcontext),
        reinterpret_cast<const void *>(&ctx::detail::ontop_fcontext),
    };
    for (const void *s : syms) {
        std::string where = object_of(s);
        cr_log_info("fcontext symbol at %p in %s", s, where.c_str());
        cr_expect(where.find("boost_context") == std::string::npos,
                  "an fcontext symbol resolves into Boost: %s", where.c_str());
        cr_expect(where.find(expect) != std::string::npos,
                  "an fcontext symbol resolves into %s, not %s", where.c_str(), expect);
    }
#if !FC_HEADER_ONLY
    // The dynamic builds do load Boost's library (the symbols are there
    // to be taken); ours wins because it comes first.
    if (std::getenv("FC_BOOST_LOADED")) {
        bool found = false;
        dl_iterate_phdr(find_boost_context, &found);
        cr_expect(found, "libboost_context is not loaded: the check proves nothing");
    }
#endif
}

// ---- boost::context::fiber --------------------------------------------------

Test(fiber, resume_round_trips)
{
    int n = 0;
    ctx::fiber f{STK, [&n](ctx::fiber &&m) {
        for (int i = 0; i < 5; i++) {
            n = n * 10 + i + 1;
            m = std::move(m).resume();
        }
        return std::move(m);
    }};
    for (int i = 0; i < 5; i++) {
        cr_assert(f, "fiber ended early at %d", i);
        f = std::move(f).resume();
    }
    cr_expect_eq(n, 12345);
    cr_assert(f);
    f = std::move(f).resume();       // the fiber returns: no fiber to go back to
    cr_expect(!f);
}

Test(fiber, resume_with_runs_on_top)
{
    int trace = 0;
    ctx::fiber f{STK, [&trace](ctx::fiber &&m) {
        trace = trace * 10 + 1;
        m = std::move(m).resume();
        trace = trace * 10 + 3;      // after the ontop function
        return std::move(m);
    }};
    f = std::move(f).resume();
    const void *main_sp = __builtin_frame_address(0);
    const void *fn_sp = nullptr;
    f = std::move(f).resume_with([&](ctx::fiber &&m) {
        fn_sp = __builtin_frame_address(0);
        trace = trace * 10 + 2;
        return std::move(m);
    });
    cr_expect(!f);
    cr_expect_eq(trace, 123);
    // The function ran on the fiber's stack, not on ours.
    cr_expect(fn_sp && (fn_sp > main_sp ? (const char *)fn_sp - (const char *)main_sp
                                        : (const char *)main_sp - (const char *)fn_sp) > 4096,
              "resume_with ran its function on the resumer's stack");
}

struct thrown : std::runtime_error {
    int v;
    explicit thrown(int v) : std::runtime_error("thrown"), v(v) {}
};

Test(fiber, exceptions_inside_and_across)
{
    int caught_inside = 0, caught_across = 0;
    ctx::fiber keep;                     // the resumer, as the ontop function saw it
    ctx::fiber f{STK, [&](ctx::fiber &&m) {
        try {
            throw thrown(1);
        } catch (const thrown &e) {
            caught_inside = e.v;
        }
        try {
            m = std::move(m).resume();   // resume_with's function throws here
        } catch (const thrown &e) {
            caught_across = e.v;
        }
        return std::move(keep);
    }};
    f = std::move(f).resume();
    cr_expect_eq(caught_inside, 1);
    f = std::move(f).resume_with([&](ctx::fiber &&m) -> ctx::fiber {
        keep = std::move(m);
        throw thrown(2);
    });
    cr_expect_eq(caught_across, 2);
    cr_expect(!f);
}

struct raii {
    int *flag;
    explicit raii(int *f) : flag(f) {}
    ~raii() { *flag += 1; }
};

#if !FC_HEADER_ONLY
Test(fiber, destroying_a_suspended_fiber_unwinds_it)
{
    int destroyed = 0, after = 0;
    {
        ctx::fiber f{std::allocator_arg, ctx::protected_fixedsize_stack(64 * 1024),
                     [&](ctx::fiber &&m) {
                         raii guard(&destroyed);
                         m = std::move(m).resume();
                         after = 1;              // never reached
                         return std::move(m);
                     }};
        f = std::move(f).resume();
        cr_expect_eq(destroyed, 0);
    }   // ~fiber: forced_unwind thrown on the fiber's stack, via ontop_fcontext
    cr_expect_eq(destroyed, 1);
    cr_expect_eq(after, 0);
}
#endif

Test(fiber, destroying_a_suspended_fiber_unwinds_it_malloc_stack)
{
    int destroyed = 0, after = 0;
    int live = malloc_stack::live;
    {
        ctx::fiber f{STK, [&](ctx::fiber &&m) {
                         raii guard(&destroyed);
                         m = std::move(m).resume();
                         after = 1;
                         return std::move(m);
                     }};
        f = std::move(f).resume();
        cr_expect_eq(malloc_stack::live, live + 1);
    }
    cr_expect_eq(destroyed, 1);
    cr_expect_eq(after, 0);
    cr_expect_eq(malloc_stack::live, live, "the unwound fiber's stack was not freed");
}

Test(fiber, many_fibers_finish_and_free_their_stacks)
{
    std::vector<ctx::fiber> fs;
    int sum = 0;
    for (int i = 0; i < 200; i++)
        fs.emplace_back(STK, [i, &sum](ctx::fiber &&m) {
            sum += i;
            m = std::move(m).resume();
            sum += i;
            return std::move(m);
        });
    cr_expect_eq(malloc_stack::live, 200);
    for (auto &f : fs)
        f = std::move(f).resume();
    for (auto &f : fs)
        f = std::move(f).resume();
    for (auto &f : fs)
        cr_expect(!f);
    cr_expect_eq(sum, 2 * (199 * 200 / 2));
    cr_expect_eq(malloc_stack::live, 0);
}

// ---- boost::context::callcc ------------------------------------------------

Test(callcc, generator)
{
    int out = 0;
    ctx::continuation source = ctx::callcc(STK, [&out](ctx::continuation &&sink) {
        for (int i = 1; i <= 4; i++) {
            out = i * i;
            sink = sink.resume();
        }
        return std::move(sink);
    });
    std::vector<int> got;
    while (source) {
        got.push_back(out);
        source = source.resume();
    }
    cr_expect_eq(got.size(), 4u);
    cr_expect(got == std::vector<int>({1, 4, 9, 16}));
}

Test(callcc, resume_with)
{
    int x = 0;
    ctx::continuation c = ctx::callcc(STK, [&x](ctx::continuation &&m) {
        x += 1;
        m = m.resume();
        x += 100;
        return std::move(m);
    });
    c = c.resume_with([&x](ctx::continuation &&m) {
        x += 10;
        return std::move(m);
    });
    cr_expect_eq(x, 111);
    cr_expect(!c);
}

// ---- unwinding: a backtrace inside a fiber reaches its resumer ---------------

static std::vector<std::string> backtrace_names()
{
    std::vector<std::string> names;
    unw_context_t uc;
    unw_cursor_t c;
    unw_getcontext(&uc);
    unw_init_local(&c, &uc);
    int r;
    do {
        char name[256];
        unw_word_t off;
        if (unw_get_proc_name(&c, name, sizeof name, &off) != 0)
            std::strcpy(name, "?");
        names.emplace_back(name);
    } while (names.size() < 128 && (r = unw_step(&c)) > 0);
    return names;
}

static bool has(const std::vector<std::string> &v, const char *s)
{
    for (auto &n : v)
        if (n.find(s) != std::string::npos)
            return true;
    return false;
}

// Under AddressSanitizer an as_ctx is ASan's annotation record, not a
// frame, and libaltstack-fcontext leaves each stack's link as the
// trampoline set it (to make_fcontext's own first switch): backtraces end
// at the fiber.  The unwinding tests say so instead of failing.
#if defined(__SANITIZE_ADDRESS__)
# define SKIP_UNDER_ASAN() cr_skip_test("under ASan libaltstack-fcontext does not re-link stacks " \
                                        "(src/fcontext/fcontext.c)")
#else
# define SKIP_UNDER_ASAN() ((void)0)
#endif

static void dump(const std::vector<std::string> &v)
{
    for (size_t i = 0; i < v.size(); i++)
        cr_log_info("#%zu %s", i, v[i].c_str());
}

static std::vector<std::string> g_bt1, g_bt2;

extern "C" NOINLINE void fc_first_resumer(ctx::fiber &f) { f = std::move(f).resume(); }
extern "C" NOINLINE void fc_second_resumer(ctx::fiber &f) { f = std::move(f).resume(); }

Test(unwind, backtrace_in_fiber_reaches_resumer)
{
    SKIP_UNDER_ASAN();
    ctx::fiber f{STK, [](ctx::fiber &&m) {
        g_bt1 = backtrace_names();
        m = std::move(m).resume();
        g_bt2 = backtrace_names();       // resumed by someone else now
        return std::move(m);
    }};
    fc_first_resumer(f);
    fc_second_resumer(f);
    dump(g_bt1);
    cr_expect(has(g_bt1, "fc_first_resumer"), "first backtrace does not reach its resumer");
    cr_expect(!has(g_bt1, "fc_second_resumer"));
    dump(g_bt2);
    cr_expect(has(g_bt2, "fc_second_resumer"), "second backtrace does not reach its resumer");
    cr_expect(!has(g_bt2, "fc_first_resumer"));
}

// An exception thrown by an ontop function unwinds into the fiber past its
// suspended jump: the library must still know which stack runs, or the
// fiber's next resume would link the wrong stack.
static std::vector<std::string> g_bt4;
extern "C" NOINLINE void fc_after_throw_resumer(ctx::fiber &f) { f = std::move(f).resume(); }

Test(unwind, backtrace_after_an_exception_across_reaches_resumer)
{
    SKIP_UNDER_ASAN();
    ctx::fiber keep;
    ctx::fiber f{STK, [&](ctx::fiber &&m) {
        try {
            m = std::move(m).resume();
        } catch (const thrown &) {
        }
        m = std::move(keep).resume();    // back to the test, which was `keep`
        g_bt4 = backtrace_names();
        return std::move(m);
    }};
    f = std::move(f).resume();
    f = std::move(f).resume_with([&](ctx::fiber &&m) -> ctx::fiber {
        keep = std::move(m);
        throw thrown(3);
    });
    cr_assert(f);
    fc_after_throw_resumer(f);
    dump(g_bt4);
    cr_expect(has(g_bt4, "fc_after_throw_resumer"),
              "after an exception across, the backtrace does not reach the resumer");
    cr_expect(!f);
}

#if !FC_HEADER_ONLY
// Boost.Fiber: a fiber's backtrace goes through the scheduler into the
// code that made the scheduler run (here: join()).
static std::vector<std::string> g_bt3;
extern "C" NOINLINE void fc_joiner(boost::fibers::fiber &f)
{
    f.join();
    __asm__ volatile("" ::: "memory");      // not a tail call: keep this frame
}

Test(unwind, backtrace_in_boost_fiber_reaches_joiner)
{
    SKIP_UNDER_ASAN();
    boost::fibers::fiber f([] { g_bt3 = backtrace_names(); });
    fc_joiner(f);
    dump(g_bt3);
    cr_expect(has(g_bt3, "fc_joiner"), "a Boost.Fiber backtrace does not reach the joiner");
}

// ---- Boost.Fiber ------------------------------------------------------------

Test(fibers, channel_ring)
{
    namespace bf = boost::fibers;
    const int n = 64, rounds = 10;
    std::vector<std::unique_ptr<bf::buffered_channel<int>>> ch;
    for (int i = 0; i < n; i++)
        ch.emplace_back(new bf::buffered_channel<int>(2));
    std::vector<bf::fiber> fs;
    long total = 0;
    for (int i = 0; i < n; i++)
        fs.emplace_back([&, i] {
            for (int r = 0; r < rounds; r++) {
                int v = 0;
                if (i == 0 && r == 0)
                    v = 0;
                else
                    ch[i]->pop(v);
                total += 1;
                if (!(i == n - 1 && r == rounds - 1))
                    ch[(i + 1) % n]->push(v + 1);
            }
        });
    for (auto &f : fs)
        f.join();
    cr_expect_eq(total, (long)n * rounds);
}

Test(fibers, exception_through_future)
{
    namespace bf = boost::fibers;
    bf::packaged_task<int()> pt([]() -> int { throw thrown(7); });
    bf::future<int> fu = pt.get_future();
    bf::fiber(std::move(pt)).detach();
    int got = 0;
    try {
        fu.get();
    } catch (const thrown &e) {
        got = e.v;
    }
    cr_expect_eq(got, 7);
}

Test(fibers, yield_interleaves)
{
    namespace bf = boost::fibers;
    std::string s;
    bf::fiber a([&] { for (int i = 0; i < 3; i++) { s += 'a'; boost::this_fiber::yield(); } });
    bf::fiber b([&] { for (int i = 0; i < 3; i++) { s += 'b'; boost::this_fiber::yield(); } });
    a.join();
    b.join();
    cr_expect_eq(s, std::string("ababab"), "got %s", s.c_str());
}
#endif // !FC_HEADER_ONLY
