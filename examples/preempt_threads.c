/* SPDX-License-Identifier: MIT */
/*
 * examples/preempt_threads.c - preemptive green threads in one OS thread.
 *
 * Four green threads run CPU-bound loops that never yield.  A timer signal
 * (as_preempt_start), every SLICE_US of the thread's CPU time, interrupts
 * whichever runs; the upcall files its state (a pooled activation) and
 * resumes the next thread, round-robin.  Each thread counts its loop
 * turns; at the end the program prints how the CPU was shared.
 * (examples/green_threads.c is the M:N version: many OS threads, one
 * shared run queue, blocking calls and a delegation lock.)
 */
#include <altstack.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { NTHREADS = 4, RUN_MS = 1000, SLICE_US = 2000 };

static as_act *run_queue[NTHREADS + 1];     /* [0] = main, then the threads */
static int current;
static volatile uint64_t turns[NTHREADS];
static volatile uint64_t switches;

static void upcall(as_act *interrupted, void *arg)
{
    (void)arg;
    run_queue[current] = interrupted;        /* file the preempted thread  */
    current = (current + 1) % (NTHREADS + 1);
    switches++;
    as_act_resume(run_queue[current]);       /* run the next; no return    */
}

static void worker(void *arg)
{
    volatile uint64_t *count = arg;
    double x = 1.0;
    for (;;) {                              /* never yields */
        for (int i = 0; i < 1000; i++)
            x = x * 1.0000001 + 1e-9;
        (*count)++;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void)
{
    static as_act records[32];              /* interrupted states */
    static as_act fresh[NTHREADS];          /* first runs          */
    as_act_pool pool;
    as_stack stacks[NTHREADS], upcall_stack;
    if (as_act_pool_init(&pool, records, 32) != 0 ||
        as_stack_alloc(&upcall_stack, 256 << 10) != 0)
        return 1;
    for (int i = 0; i < NTHREADS; i++) {
        if (as_stack_alloc(&stacks[i], 64 << 10) != 0)
            return 1;
        as_act_init(&fresh[i], &stacks[i], worker, (void *)&turns[i]);
        run_queue[i + 1] = &fresh[i];
    }

    as_preempt_cfg cfg = { .interval_us = SLICE_US, .upcall = upcall,
                           .pool = &pool, .upcall_stack = &upcall_stack };
    int err = as_preempt_start(&cfg);
    if (err) {
        fprintf(stderr, "as_preempt_start: %d\n", err);
        return 1;
    }
    /* main is green thread 0 too: it waits (busily) for the run to end. */
    double end = now_ms() + RUN_MS;
    while (now_ms() < end)
        ;
    as_preempt_disable();                   /* keep the CPU from here on */
    as_preempt_stop();

    uint64_t total = 0;
    for (int i = 0; i < NTHREADS; i++)
        total += turns[i];
    printf("%d green threads, %d us slices of CPU time, %lu preemptions in %d ms\n",
           NTHREADS, SLICE_US, (unsigned long)switches, RUN_MS);
    for (int i = 0; i < NTHREADS; i++)
        printf("  thread %d: %9lu turns  %5.1f%%\n", i, (unsigned long)turns[i],
               total ? 100.0 * turns[i] / total : 0.0);
    for (int i = 1; i <= NTHREADS; i++)
        as_act_release(run_queue[i]);       /* the parked threads' records */
    printf("records free again: %zu of 32\n", as_act_pool_free(&pool));
    int ok = 1;
    for (int i = 0; i < NTHREADS; i++)
        ok &= turns[i] > 0;
    return ok ? 0 : 1;
}
