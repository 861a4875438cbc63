/* SPDX-License-Identifier: MIT */
/*
 * tests/cpu_expect.h - what the CPU is supposed to have, for suites that
 * skip when a feature is missing.
 *
 * scripts/test-cpus boots each suite in an emulated guest whose CPU is
 * known, and exports its /proc/cpuinfo flag names in AS_TEST_CPU_HAS (and
 * what it lacks in AS_TEST_CPU_LACKS).  A test of a feature the guest HAS
 * must not skip: if the library cannot find the feature there, that is a
 * failure.  Natively neither variable is set and tests skip as usual.
 *
 *     if (!as_domain_pkeys_supported()) {
 *         cpu_expect_missing("pku", "protection keys");
 *         cr_skip_test("no protection keys here");
 *     }
 */
#ifndef ALTSTACK_TESTS_CPU_EXPECT_H
#define ALTSTACK_TESTS_CPU_EXPECT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Is `flag` in the space-separated list in environment variable `var`? */
static inline bool cpu_expect_listed(const char *var, const char *flag)
{
    const char *l = getenv(var);
    size_t n = strlen(flag);
    for (const char *p = l; p && *p;) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (w == n && strncmp(p, flag, n) == 0)
            return true;
        p += w;
    }
    return false;
}

/* The guest says the CPU has `flag`. */
static inline bool cpu_expect_has(const char *flag)
{
    return cpu_expect_listed("AS_TEST_CPU_HAS", flag);
}

/* The guest says the CPU lacks `flag`. */
static inline bool cpu_expect_lacks(const char *flag)
{
    return cpu_expect_listed("AS_TEST_CPU_LACKS", flag);
}

/* Call where a test is about to skip for want of `flag`: fails the test
 * instead when the guest says the CPU has it. */
#define cpu_expect_missing(flag, what)                                      \
    do {                                                                    \
        if (cpu_expect_has(flag))                                           \
            cr_assert_fail("the CPU has %s (AS_TEST_CPU_HAS) but the library " \
                           "does not find %s", flag, what);                 \
    } while (0)

#endif
