/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/x86_64/uprog.c - the ring-3 program of the example
 * kernel.  It is linked, with a copy of the library's objects of its own,
 * into one relocatable object whose every symbol gets the prefix u_
 * (objcopy --prefix-symbols) and whose sections land in the user pages
 * (x86_64/user.ld, kernel.ld): a user-mode library in the same image, as
 * a process would have it.  The kernel names these symbols u_*.
 * Built with the red zone (ring 3 has one; the kernel does not).
 */
#include <altstack.h>
#include "usys.h"

/* What the library's freestanding objects may call. */
void *memcpy(void *d, const void *s, unsigned long n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memset(void *d, int c, unsigned long n)
{
    unsigned char *dp = d;
    while (n--)
        *dp++ = (unsigned char)c;
    return d;
}

static inline void *gs_self(void)
{
    void *p;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(p));
    return p;
}

/* --- user_syscall --------------------------------------------------------------- */

struct ugs ugs[USER_NCPU];
char sys_stack[USER_NCPU][USER_SYS_STACK] __attribute__((aligned(16)));
struct sys_result sysres[USER_NCPU];

void syscall_task(void *arg)
{
    unsigned long cpu = (unsigned long)arg;
    struct sys_result *r = &sysres[cpu];
    for (unsigned long i = 0; i < USER_SYS_CALLS; i++) {
        long slow = i % 64 == 0;
        long v = usys(USYS_PROBE, (long)i, slow, 0);
        r->calls++;
        r->slow += (unsigned long)slow;
        r->bad_bits |= (v & PROBE_OK) ? (unsigned long)(v & ~PROBE_OK) : 0x200ul;
        if (gs_self() != &ugs[cpu])
            r->gs_bad++;
        for (volatile int k = 0; k < 2000; k++)
            ;                           /* time in ring 3, for ticks there */
    }
    usys(USYS_EXIT, r->bad_bits || r->gs_bad, 0, 0);
}
