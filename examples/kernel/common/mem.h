/* SPDX-License-Identifier: MIT */
/* examples/kernel/common/mem.h - the libc functions of mem.c. */
#ifndef EXAMPLES_KERNEL_COMMON_MEM_H
#define EXAMPLES_KERNEL_COMMON_MEM_H
#include <stddef.h>
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
#endif
