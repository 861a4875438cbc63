/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/stack.c - guard-paged stacks from mmap.
 *
 *   map          map + page                               map + map_size
 *   | PROT_NONE  | PROT_READ|PROT_WRITE                              |
 *                ^ lo                                               ^ hi
 */
#include "../internal.h"
#include "hosted.h"

#include <sys/mman.h>
#include <unistd.h>

size_t as__page_size(void)
{
    static size_t page;
    size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&page, p, __ATOMIC_RELAXED);
    }
    return p;
}

int as__stack_size_check(size_t size, size_t *usable)
{
    size_t page = as__page_size();
    /* Refuse sizes whose rounding (or the guard page) would overflow, and
     * anything larger than half the address space. */
    if (size == 0 || size > ((size_t)1 << 46))
        return -AS_EINVAL;
    *usable = as__align_up(size < AS_STACK_MIN ? AS_STACK_MIN : size, page);
    return 0;
}

void as__stack_set(as_stack *s, void *map, size_t map_size)
{
    size_t page = as__page_size();
    s->map = map;
    s->map_size = map_size;
    s->lo = (char *)map + page;
    s->hi = (char *)map + map_size;
    as__valgrind_register(s);
}

int as_stack_alloc(as_stack *s, size_t size)
{
    size_t usable;
    if (!s)
        return -AS_EINVAL;
    *s = (as_stack){0};
    int r = as__stack_size_check(size, &usable);
    if (r)
        return r;
    size_t page = as__page_size();
    size_t total = usable + page;
    /* Map everything inaccessible, then open the usable part: the guard
     * page never exists as writable memory, not even for an instant. */
    void *m = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -AS_ENOMEM;
    if (mprotect((char *)m + page, usable, PROT_READ | PROT_WRITE) != 0) {
        munmap(m, total);
        return -AS_ENOMEM;
    }
    as__stack_set(s, m, total);
    return 0;
}

void as_stack_free(as_stack *s)
{
    if (!s)
        return;
    if (s->map) {
        as__valgrind_deregister(s);
        as__share_stack_forget(s->map);
        munmap(s->map, s->map_size);
    }
    *s = (as_stack){0};
}
