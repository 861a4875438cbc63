/* SPDX-License-Identifier: MIT */
/*
 * altstack/config.h - version, architecture and mode detection.
 *
 * Every other public header includes this one first.  It decides three
 * things, all at compile time:
 *
 *   AS_ARCH_X86_64 / AS_ARCH_AARCH64   exactly one is 1; other targets #error.
 *   AS_HOSTED / AS_FREESTANDING        exactly one is 1.  The default follows
 *                                      __STDC_HOSTED__, so a kernel built with
 *                                      -ffreestanding gets the freestanding
 *                                      declarations without asking; define
 *                                      AS_FREESTANDING=1 to force it.
 *   AS_API                             visibility of every public function.
 *
 * Errors.  Functions that can fail return 0 or a negative errno value.  So
 * that freestanding code (which has no <errno.h>) can test for them, the
 * values the library returns are also spelled AS_E*; they are the Linux
 * numbers, and hosted builds check that they agree with <errno.h>.
 *
 * This header, like every public one, needs only the compiler's freestanding
 * headers and compiles as C11 and as C++.
 */
#ifndef ALTSTACK_CONFIG_H
#define ALTSTACK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define AS_VERSION_MAJOR 0
#define AS_VERSION_MINOR 1
#define AS_VERSION_PATCH 0
#define AS_VERSION_STRING "0.1.0"

#if defined(__x86_64__)
# define AS_ARCH_X86_64  1
# define AS_ARCH_AARCH64 0
# define AS_ARCH_NAME "x86_64"
#elif defined(__aarch64__)
# define AS_ARCH_X86_64  0
# define AS_ARCH_AARCH64 1
# define AS_ARCH_NAME "aarch64"
#else
# error "libaltstack supports x86_64 and aarch64 only"
#endif

#if defined(AS_FREESTANDING) && AS_FREESTANDING
# undef AS_HOSTED
# define AS_HOSTED 0
#elif defined(AS_HOSTED) && AS_HOSTED
# undef AS_FREESTANDING
# define AS_FREESTANDING 0
#elif defined(__STDC_HOSTED__) && __STDC_HOSTED__ == 0
# undef AS_HOSTED
# undef AS_FREESTANDING
# define AS_HOSTED 0
# define AS_FREESTANDING 1
#else
# undef AS_HOSTED
# undef AS_FREESTANDING
# define AS_HOSTED 1
# define AS_FREESTANDING 0
#endif

#define AS_API __attribute__((visibility("default")))

#ifdef __cplusplus
# define AS_NORETURN [[noreturn]]
# define AS_BEGIN_DECLS extern "C" {
# define AS_END_DECLS }
#else
# define AS_NORETURN _Noreturn
# define AS_BEGIN_DECLS
# define AS_END_DECLS
#endif

/* Error values (negated when returned), equal to Linux's errno numbers. */
#define AS_EPERM      1
#define AS_EAGAIN    11
#define AS_ENOMEM    12
#define AS_EFAULT    14
#define AS_EBUSY     16
#define AS_EEXIST    17
#define AS_EINVAL    22
#define AS_ENOSPC    28
#define AS_ERANGE    34
#define AS_ENOSYS    38
#define AS_ENOTSUP   95

/* Size of a cache line and of the false-sharing unit the library pads to
 * (adjacent-line prefetch makes 128 the unit on current x86 and arm cores). */
#define AS_CACHELINE 64
#define AS_PADLINE   128

#endif /* ALTSTACK_CONFIG_H */
