/* SPDX-License-Identifier: MIT */
/*
 * tests/boost/cfi_fcontext.c - the program cfi-step-fcontext single-steps
 * (tests/freestanding/cfi_step.py): every path through jump_fcontext,
 * ontop_fcontext and make_fcontext that Boost.Context's fiber takes, a few
 * times each.  Linked statically, so that gdb knows the switch from the
 * first instruction on.  Exit status 0 if every transfer came through.
 */
#include <fenv.h>
#include <stdint.h>
#include <stdlib.h>

typedef void *fcontext_t;
typedef struct { fcontext_t fctx; void *data; } transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));
transfer_t ontop_fcontext(fcontext_t const to, void *vp, transfer_t (*fn)(transfer_t));

#define STACK (64 * 1024)

/* Its own rounding mode: every switch to and from it loads MXCSR and the
 * x87 control word (the switches' out-of-line paths). */
static void echo_fn(transfer_t t)
{
    fesetround(FE_UPWARD);
    for (;;)
        t = jump_fcontext(t.fctx, (void *)((intptr_t)t.data + 1));
}

static transfer_t plus_ten(transfer_t t)
{
    return (transfer_t){ t.fctx, (void *)((intptr_t)t.data + 10) };
}

/* Boost's fiber_exit: free the finishing stack, resume with no context. */
static char *exit_mem;
static transfer_t exit_fn(transfer_t t)
{
    free(exit_mem);
    exit_mem = NULL;
    return (transfer_t){ NULL, t.data };
}

static void finishing_fn(transfer_t t)
{
    t = jump_fcontext(t.fctx, (void *)1);
    ontop_fcontext(t.fctx, (void *)2, exit_fn);
    abort();
}

int main(void)
{
    int bad = 0;
    char *mem = aligned_alloc(16, STACK);
    if (!mem)
        return 2;
    fcontext_t c = make_fcontext(mem + STACK, STACK, echo_fn);
    transfer_t t = { c, NULL };
    for (intptr_t i = 0; i < 3; i++) {
        t = jump_fcontext(t.fctx, (void *)i);
        bad |= (intptr_t)t.data != i + 1;
    }
    t = ontop_fcontext(t.fctx, (void *)5, plus_ten);   /* echo_fn gets 15 */
    bad |= (intptr_t)t.data != 16;
    for (int round = 0; round < 2; round++) {
        exit_mem = aligned_alloc(16, STACK);
        if (!exit_mem)
            return 2;
        t = jump_fcontext(make_fcontext(exit_mem + STACK, STACK, finishing_fn), NULL);
        bad |= (intptr_t)t.data != 1;
        t = jump_fcontext(t.fctx, NULL);
        bad |= t.fctx != NULL || (intptr_t)t.data != 2 || exit_mem != NULL;
    }
    free(mem);
    return bad;
}
