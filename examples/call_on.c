/* SPDX-License-Identifier: MIT */
/*
 * examples/call_on.c - run a deep recursion on a big auxiliary stack.
 *
 * The main thread's stack limit does not matter: as_call_on runs the
 * function on a 64 MiB guard-paged stack and returns its result on the
 * caller's stack, like Unikraft's auxiliary-stack switch.
 */
#include <altstack.h>
#include <stdio.h>

static unsigned long depth_sum(unsigned long n)
{
    volatile char frame[256];              /* make every level cost stack */
    frame[0] = (char)n;
    return n == 0 ? 0 : n + depth_sum(n - 1) + (unsigned long)(frame[0] - (char)n);
}

static void *run(void *arg)
{
    unsigned long n = *(unsigned long *)arg;
    static unsigned long result;
    result = depth_sum(n);
    return &result;
}

int main(void)
{
    as_stack big;
    if (as_stack_alloc(&big, 64ul << 20) != 0)
        return 1;
    unsigned long n = 100000;              /* ~30 MiB of frames */
    unsigned long r = *(unsigned long *)as_call_on(&big, run, &n);
    printf("sum of 1..%lu computed 100000 frames deep on an aux stack: %lu (%s)\n",
           n, r, r == n * (n + 1) / 2 ? "correct" : "WRONG");
    as_stack_free(&big);
    return r == n * (n + 1) / 2 ? 0 : 1;
}
