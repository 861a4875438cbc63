/* SPDX-License-Identifier: MIT */
/*
 * fuzz/fuzz.h - what the fuzz targets share: reading the input as a
 * program, and failing loudly with the step that diverged.
 *
 * Each target interprets its input as a sequence of operations, runs them
 * against the library and against a plain C model of what should happen,
 * and compares after every step.  A divergence prints the step number, the
 * operation and both sides, then aborts, so libFuzzer (or AFL++) keeps the
 * input; replaying it (`./fuzz-<target> crash-file`) prints the same line.
 */
#ifndef ALTSTACK_FUZZ_H
#define ALTSTACK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The program being run and where in it we are. */
struct fuzz_prog {
    const uint8_t *p;
    size_t         len, pc;
    unsigned long  step;        /* operations executed so far            */
    const char    *op;          /* name of the operation being executed  */
};

/* Next input byte; 0 once the input is exhausted (fuzz_done says so). */
static inline uint8_t fuzz_byte(struct fuzz_prog *g)
{
    return g->pc < g->len ? g->p[g->pc++] : 0;
}

static inline int fuzz_done(const struct fuzz_prog *g, unsigned long max_steps)
{
    return g->pc >= g->len || g->step >= max_steps;
}

#define FUZZ_CHECK(g, cond, ...)                                             \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "divergence at step %lu (%s): %s: ",             \
                    (g)->step, (g)->op ? (g)->op : "-", #cond);              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            abort();                                                         \
        }                                                                    \
    } while (0)

#endif
