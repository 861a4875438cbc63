/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/common/mem.c - the four libc functions a freestanding
 * object may call (GCC emits them for struct copies and initialisation
 * even with -ffreestanding).  Linked into the kernel and, as a copy of its
 * own, into each user program (x86_64/uprog.c, aarch64/user.c).  Built
 * with -fno-tree-loop-distribute-patterns, so these loops are not turned
 * back into calls to themselves.
 */
#include "mem.h"

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp <= sp || dp >= sp + n)
        return memcpy(d, s, n);
    while (n--)
        dp[n] = sp[n];
    return d;
}

void *memset(void *d, int c, size_t n)
{
    unsigned char *dp = d;
    while (n--)
        *dp++ = (unsigned char)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
