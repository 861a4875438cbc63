/* SPDX-License-Identifier: MIT */
/*
 * src/internal.h - what the library's C files share and users never see.
 */
#ifndef ALTSTACK_SRC_INTERNAL_H
#define ALTSTACK_SRC_INTERNAL_H

#include "altstack.h"
#include "arch/layout.h"

#define AS_HIDDEN __attribute__((visibility("hidden")))

/*
 * AS_ASSERT(c) - the one assertion the library has, for what a hot path
 * cannot afford to check (a NULL lock, record or ucontext).  Off unless
 * AS_DEBUG is defined (meson buildtype=debug defines it); then a false c
 * executes a trap instruction (SIGILL/SIGTRAP: no libc needed, so it works
 * freestanding).  A build may define its own AS_ASSERT (e.g. a kernel's
 * BUG_ON) with -D or before this header.
 */
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

static inline uintptr_t as__align_down(uintptr_t x, uintptr_t a) { return x & ~(a - 1); }
static inline uintptr_t as__align_up(uintptr_t x, uintptr_t a) { return (x + a - 1) & ~(a - 1); }

#endif
