// SPDX-License-Identifier: MIT
// tests/test_switch_cxx.cc - C++ exceptions through as_switch_ontop: an
// exception leaving fn propagates into the code that called the target's
// suspended switch, running destructors on the target's stack on the way.
#include <criterion/criterion.h>
#include <stdexcept>
#include <altstack.h>

namespace {

as_ctx g_back;                  // the caller fn was handed
int g_dtors, g_caught;

struct counted { ~counted() { g_dtors++; } };

as_transfer thrower(as_transfer t)
{
    g_back = t.ctx;
    throw std::runtime_error(static_cast<const char *>(t.data));
}

as_transfer __attribute__((noinline)) wait_inside(as_transfer t)
{
    counted c;                  // destroyed by the unwinding
    return as_switch(t.ctx, (void *)1);
}

as_transfer catcher(as_transfer t)
{
    for (;;) {
        try {
            counted c;
            t = wait_inside(t);
            if (!t.data)
                return {t.ctx, nullptr};
            t.data = (void *)((uintptr_t)t.data + 1);
        } catch (const std::runtime_error &e) {
            g_caught++;
            // Back to the side that threw, through the context fn saw.
            t = {g_back, (void *)(uintptr_t)(1000 + e.what()[0])};
            t = as_switch(t.ctx, t.data);
        }
    }
}

} // namespace

Test(switch_cxx, exception_from_ontop_fn_reaches_the_target)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 64 << 10), 0);
    as_transfer t = as_switch(as_ctx_make(&s, catcher), nullptr);
    cr_assert_eq((uintptr_t)t.data, 1);
    for (int i = 1; i <= 50; i++) {
        t = as_switch_ontop(t.ctx, (void *)"A", thrower);
        cr_assert_eq(g_caught, i, "the target caught it");
        cr_assert_eq(g_dtors, 2 * i, "both destructors on the target's stack ran");
        cr_assert_eq((uintptr_t)t.data, 1000 + 'A');
        cr_assert_not_null(t.ctx);
        // The target is still usable: plain switches go on.
        t = as_switch(t.ctx, (void *)5);
        cr_assert_eq((uintptr_t)t.data, 1, "the target resumed its loop");
    }
    t = as_switch(t.ctx, nullptr);
    cr_assert_null(t.ctx);
    as_stack_free(&s);
}
