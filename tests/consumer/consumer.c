/* SPDX-License-Identifier: MIT */
/* tests/consumer/consumer.c - links libaltstack the way a user does. */
#include <altstack.h>
#include <stdio.h>

static void *twice(void *p) { return (void *)((uintptr_t)p * 2); }

int main(void)
{
    as_stack s;
    if (as_stack_alloc(&s, 1 << 16) != 0)
        return 1;
    void *r = as_call_on(&s, twice, (void *)21);
    as_stack_free(&s);
    printf("consumer: %s %lu\n", AS_VERSION_STRING, (unsigned long)(uintptr_t)r);
    return r == (void *)42 ? 0 : 1;
}
