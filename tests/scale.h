/* SPDX-License-Identifier: MIT */
/*
 * tests/scale.h - loop counts for slow machines.  Under emulation (qemu-user
 * for the aarch64 cross runs, the full-system guests of scripts/test-cpus)
 * the suites' long loops would take minutes; there the environment divides
 * them:
 *
 *   AS_TEST_SCALE          divisor of long loop counts (each suite says
 *                          which loops, and its default: 1 natively)
 *   AS_TEST_PREEMPT_MANY   test_preempt's count of preemptions in
 *                          no_leak_after_many_preemptions
 *
 * A count is divided, never zeroed: every test still runs its loop.
 */
#ifndef ALTSTACK_TESTS_SCALE_H
#define ALTSTACK_TESTS_SCALE_H

#include <stdlib.h>

/* The positive integer in environment variable `name`, or dflt. */
static inline long test_env_count(const char *name, long dflt)
{
    const char *e = getenv(name);
    long v = e ? atol(e) : 0;
    return v > 0 ? v : dflt;
}

/* AS_TEST_SCALE, or dflt when it is unset. */
static inline long test_scale(long dflt)
{
    return test_env_count("AS_TEST_SCALE", dflt);
}

/* n divided by AS_TEST_SCALE (default dflt), at least 1. */
static inline long test_scaled(long n, long dflt)
{
    long r = n / test_scale(dflt);
    return r > 0 ? r : 1;
}

#endif
