/* SPDX-License-Identifier: MIT */
/*
 * src/internal.h - what the library's C files share and users never see.
 */
#ifndef ALTSTACK_SRC_INTERNAL_H
#define ALTSTACK_SRC_INTERNAL_H

#include "altstack.h"
#include "arch/layout.h"

#define AS_HIDDEN __attribute__((visibility("hidden")))

#ifndef AS_ASSERT
# ifdef AS_DEBUG
#  define AS_ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)
# else
#  define AS_ASSERT(c) ((void)0)
# endif
#endif

#define AS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define AS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Hosted builds: the AS_E* values must be the real errno numbers. */
#if AS_HOSTED
# include <errno.h>
_Static_assert(AS_EINVAL == EINVAL && AS_ENOMEM == ENOMEM && AS_ENOSYS == ENOSYS &&
               AS_EBUSY == EBUSY && AS_EAGAIN == EAGAIN && AS_ERANGE == ERANGE &&
               AS_ENOTSUP == ENOTSUP && AS_EPERM == EPERM && AS_EFAULT == EFAULT &&
               AS_EEXIST == EEXIST && AS_ENOSPC == ENOSPC,
               "AS_E* must equal the errno values");
#endif

/* Overwrite n bytes of the library's own code (src/switch.c's binding of
 * the exact-mode strategy): hosted, src/hosted/text.c (mprotect); freestanding,
 * a plain copy (the kernel binds while its text is writable).  0 or -errno. */
AS_HIDDEN int as__text_write(void *dst, const void *src, size_t n);

/* A fresh context on a stack ending at top (aligned to 16, at least
 * AS_TOP_SIZE + AS_SW_SIZE bytes above the stack's bottom); no checks:
 * as_ctx_make (src/switch.c) and its ASan wrapper check first. */
AS_HIDDEN as_ctx as__ctx_build(uintptr_t top, as_entry fn);

static inline uintptr_t as__align_down(uintptr_t x, uintptr_t a) { return x & ~(a - 1); }
static inline uintptr_t as__align_up(uintptr_t x, uintptr_t a) { return (x + a - 1) & ~(a - 1); }

/* The top (hi aligned down to 16) of a stack the switch can use, or 0:
 * s, lo and hi set, and at least AS_STACK_MIN bytes from lo to the top.
 * as_call_on's assembly makes the same checks. */
static inline uintptr_t as__stack_top(const as_stack *s)
{
    if (!s || !s->lo || !s->hi)
        return 0;
    uintptr_t top = as__align_down((uintptr_t)s->hi, 16);
    if (top < (uintptr_t)s->lo || top - (uintptr_t)s->lo < AS_STACK_MIN)
        return 0;
    return top;
}

#endif
