/* SPDX-License-Identifier: MIT */
/*
 * examples/generator.c - a generator written with as_ctx_make/as_switch.
 *
 * fib() runs on its own guard-paged stack and yields Fibonacci numbers to
 * its caller one at a time; the caller decides when to stop and tells the
 * generator so through the data word.  When fib returns, the caller is
 * resumed with ctx == NULL and frees the stack.
 */
#include <altstack.h>
#include <stdio.h>

static as_transfer fib(as_transfer t)
{
    unsigned long a = 0, b = 1;
    while (t.data == NULL) {               /* NULL: "give me the next one" */
        t = as_switch(t.ctx, &a);          /* yield a pointer to our local */
        unsigned long n = a + b;
        a = b;
        b = n;
    }
    return (as_transfer){ t.ctx, NULL };   /* asked to stop: finish */
}

int main(void)
{
    as_stack s;
    if (as_stack_alloc(&s, 64 * 1024) != 0)
        return 1;
    as_transfer t = { as_ctx_make(&s, fib), NULL };
    printf("fibonacci:");
    for (int i = 0; i < 15; i++) {
        t = as_switch(t.ctx, NULL);
        printf(" %lu", *(unsigned long *)t.data);
    }
    t = as_switch(t.ctx, (void *)1);       /* stop */
    printf("\ngenerator finished: %s\n", t.ctx == NULL ? "yes" : "no");
    as_stack_free(&s);
    return t.ctx == NULL ? 0 : 1;
}
