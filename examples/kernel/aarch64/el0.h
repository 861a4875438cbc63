/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/aarch64/el0.h - what the EL0 side (user.c, user.S) and
 * the kernel side (el0.c) of the aarch64 kernel share: the system call
 * numbers and the records both read.
 *
 * The EL0 side is linked into one object whose every symbol carries the
 * prefix u_ (objcopy --prefix-symbols), so the kernel names its symbols
 * u_<name>, and a call from user code into the kernel cannot link.
 *
 * System calls: svc #0 with the number in x8, arguments in x0-x4, the
 * result in x0; every other register comes back as it was (eret).
 */
#ifndef EL0_H
#define EL0_H

#define USYS_EXIT     0x100   /* x0 = result: back to the kernel that entered EL0 */
#define USYS_PROBE    0x101   /* x0 + x1; the handler records where it ran          */
#define USYS_TICK     0x102   /* the handler opens interrupts until a tick lands     */
#define USYS_UPCALLS  0x103   /* x0 entry, [x3, x1) its stack, x2 pool: upcalls on  */
#define USYS_PROTECT  0x104   /* x0 regions, x1 n: the domain hook (share.h)          */
#define KSYS_USER     0x1ff   /* from EL1: x0 pc, x1 sp, x2 arg: run EL0 to USYS_EXIT */

#define USYS_CALLS    1000    /* user_syscall: USYS_PROBE calls per CPU              */
#define USYS_TICKS    16      /* user_syscall: then USYS_TICK calls per CPU          */
#define UPRE_TASKS    3       /* user_preempt: CPU-bound tasks                       */
#define UPRE_RECORDS  8       /* records in the user pool                            */
#define UPRE_UPCALLS  200     /* upcalls to watch                                    */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* user_preempt: one task's state as the scheduler sees it. */
struct upre_task {
    uint64_t count;           /* the task's loop counter (x22), stored each round */
    uint64_t base;            /* x0; register r holds base + r                    */
    uint64_t bad;             /* the task saw a register change: its number + 1   */
    uint64_t slices;          /* upcalls that found it further on                 */
    uint64_t seen;            /* its counter at the last such upcall              */
};

/* user_preempt: what the scheduler reports. */
struct upre_stat {
    uint64_t upcalls;         /* upcalls taken on timer ticks                     */
    uint64_t bp_upcalls;      /* upcalls on the kernel's breakpoints (el0.c)      */
    uint64_t bad_record;      /* a record that did not hold the task's registers  */
    uint64_t stray;           /* a record whose sp is no task's                   */
};

/* user_syscall: one CPU's run. */
struct usys_run {
    uint64_t calls;           /* system calls made                                */
    uint64_t bad_regs;        /* a register other than x0 came back changed (n+1) */
    uint64_t bad_result;      /* a wrong result                                   */
    uint64_t ticks;           /* timer ticks taken inside USYS_TICK               */
};

/* isolation: what each probe found (1 = faulted, 0 = went through). */
struct uiso {
    uint64_t own_rw;          /* A writes its own stack                           */
    uint64_t ro_read;         /* A reads B, granted read-only                     */
    uint64_t ro_write;        /* A writes B, granted read-only                    */
    uint64_t none_read;       /* A reads C, not granted                           */
    uint64_t none_write;      /* A writes C, not granted                          */
    uint64_t revoked_read;    /* A reads B after the revoke and a new entry       */
    uint64_t out_read;        /* the scheduler, outside every domain, reads A     */
    int64_t  err;             /* the first library error (negative errno), or 0   */
    uint64_t done;
};
#endif

#endif
