/* SPDX-License-Identifier: MIT */
/* tests/fp_strategy.h - run a check under each exact-mode strategy
 * (switch.h: as_switch_set_fp_strategy), for the suites whose switches
 * carry patch sites: test_switch, test_share.  Include after Criterion. */
#ifndef ALTSTACK_TESTS_FP_STRATEGY_H
#define ALTSTACK_TESTS_FP_STRATEGY_H

/* check() once under each exact-mode strategy this architecture has
 * (x86_64: compare and reload, each a different patch of the switch's
 * code; aarch64: compare only), then the strategy bound for this CPU
 * again. */
static inline void each_fp_strategy(void (*check)(void))
{
    static const int strategies[] = { AS_FP_COMPARE, AS_FP_RELOAD };
    int n = 0;
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++) {
        if (as_switch_set_fp_strategy(strategies[i]) != 0)
            continue;
        n++;
        cr_log_info("strategy %d", strategies[i]);
        check();
    }
    cr_assert_eq(as_switch_init(), 0);
#if defined(__x86_64__)
    cr_assert_eq(n, 2, "x86_64 has both strategies");
#else
    cr_assert_eq(n, 1);
#endif
}

#endif
