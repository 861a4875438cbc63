/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/percpu.c - the per-thread base pointer and aux stack of hosted
 * builds.
 *
 * The base lives in a thread-local, so as_percpu_get costs one TLS load on
 * both architectures.  On x86_64 as_percpu_set also writes the thread's GS
 * base, for code that addresses the base as %gs:off: `wrgsbase` where the
 * kernel enabled FSGSBASE (AT_HWCAP2 bit 1; Linux 5.9+), else the
 * arch_prctl(ARCH_SET_GS) system call.  The C libraries leave GS alone on
 * x86_64, and Linux keeps each thread's GS base across context switches
 * and signal delivery.
 */
#include "hosted.h"
#include "../percpu_internal.h"

#include <sys/auxv.h>
#if AS_ARCH_X86_64
# include <asm/prctl.h>
# include <sys/syscall.h>
# include <unistd.h>
#endif

static _Thread_local void *as__base;
static _Thread_local struct as__aux as__aux;

struct as__aux *as__aux_slot(void)
{
    return &as__aux;
}

#if AS_ARCH_X86_64
#ifndef HWCAP2_FSGSBASE
# define HWCAP2_FSGSBASE (1 << 1)
#endif

/* 0: not yet known, 1: wrgsbase, 2: arch_prctl.  Racing first calls all
 * compute the same answer. */
static int as__gs_method;

static int as__gs_method_get(void)
{
    int m = __atomic_load_n(&as__gs_method, __ATOMIC_RELAXED);
    if (AS_UNLIKELY(!m)) {
        m = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) ? 1 : 2;
        __atomic_store_n(&as__gs_method, m, __ATOMIC_RELAXED);
    }
    return m;
}

const char *as_percpu_gs_method(void)
{
    return as__gs_method_get() == 1 ? "wrgsbase" : "arch_prctl";
}
#endif

void as_percpu_set(void *base)
{
#if AS_ARCH_X86_64
    /* wrgsbase faults (#GP) on a non-canonical address; such a base goes
     * to the kernel instead, which may take it (5-level paging) or refuse
     * it, and a refused base changes nothing. */
    uintptr_t b = (uintptr_t)base;
    bool canonical = (uintptr_t)((intptr_t)(b << 16) >> 16) == b;
    if (canonical && as__gs_method_get() == 1)
        __asm__ volatile("wrgsbase %0" : : "r"(base) : "memory");
    else if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)b) != 0)
        return;
#endif
    as__base = base;
}

void *as_percpu_get(void)
{
    return as__base;
}
