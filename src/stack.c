/* SPDX-License-Identifier: MIT */
/*
 * src/stack.c - stacks the caller owns (both modes).  Mapped stacks with a
 * guard page are hosted-only and live in src/hosted/stack.c.
 */
#include "internal.h"

int as_stack_init(as_stack *s, void *mem, size_t size)
{
    if (!s || !mem)
        return -AS_EINVAL;
    uintptr_t b = (uintptr_t)mem;
    if (size > UINTPTR_MAX - b)          /* the region would wrap */
        return -AS_EINVAL;
    uintptr_t lo = as__align_up(b, 16);
    uintptr_t hi = as__align_down(b + size, 16);
    if (hi < lo || hi - lo < AS_STACK_MIN)
        return -AS_EINVAL;
    s->lo = (void *)lo;
    s->hi = (void *)hi;
    s->map = NULL;
    s->map_size = 0;
    return 0;
}

#if AS_FREESTANDING
/* A kernel owns its memory map: it adopts stacks with as_stack_init. */
int as_stack_alloc(as_stack *s, size_t size)
{
    (void)size;
    if (s)
        *s = (as_stack){0};
    return -AS_ENOSYS;
}

void as_stack_free(as_stack *s)
{
    if (s)
        *s = (as_stack){0};
}
#endif
