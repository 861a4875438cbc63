/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/x86_64/usys.h - the system call ABI between the example
 * kernel and its ring-3 program (x86_64/uprog.c), included by both.
 *
 * SYSCALL with rax = number, rdi, rsi, rdx = arguments; the result comes
 * back in rax.  The kernel keeps rbx, rbp, rsp and r12-r15 (as a C call
 * does) and clobbers every other register.
 */
#ifndef USYS_H
#define USYS_H

#define USYS_EXIT      1     /* (code): back to the kernel's user_run     */
#define USYS_PROBE     2     /* (i, slow): where does the handler run?    */
#define USYS_UPCALL    3     /* (entry, &desc, 0): upcalls on; (0): off   */
#define USYS_PROT      4     /* (regions, n): the domain hook's PTE edits */

/* USYS_PROBE's answer, a bit set: each bit is one thing that was wrong. */
#define PROBE_NOT_AUX     1  /* the handler's frame is off the aux stack  */
#define PROBE_CALLER_SP   2  /* the caller's rsp is not the user's stack  */
#define PROBE_KERNEL_GS   4  /* %gs:0 in the handler is not this CPU      */
#define PROBE_NO_TICK     8  /* slow: no timer tick landed in the handler */
#define PROBE_OK       0x100 /* set in every answer, so 0 means "no call" */

/* USYS_UPCALL's descriptor, in user memory. */
struct usys_upcall {
    unsigned long entry;             /* void entry(as_act *) on ...        */
    unsigned long stack_lo, stack_hi; /* ... this stack, from its top       */
    void *pool;                      /* as_act_pool the records come from */
};

#define USER_NCPU       2
#define USER_SYS_STACK  1024  /* each CPU's ring-3 stack for user_syscall */
#define USER_SYS_CALLS  2000  /* calls per CPU; every 64th waits for a tick */

#ifndef __ASSEMBLER__
/* A user GS record: ring-3 code reads its own address at %gs:0. */
struct ugs {
    struct ugs *self;
    unsigned long cpu;
};

/* What user_syscall's task saw, per CPU. */
struct sys_result {
    unsigned long calls, slow, bad_bits, gs_bad;
};

/* user_preempt: three tasks, upcalls until the scheduler has had this
 * many, records from a pool of USER_NREC in user memory. */
#define USER_NTASK     3
#define USER_NREC      8
#define USER_UPCALLS   300
#define USER_SCHED_STACK 8192  /* the scheduler's stack, upcalls start at its top */

struct pre_result {
    unsigned long upcalls;             /* the scheduler's own count        */
    unsigned long slices[USER_NTASK];  /* records of task i it was given   */
    unsigned long moved[USER_NTASK];   /* ... whose counter had moved on   */
    unsigned long progress[USER_NTASK], bad[USER_NTASK];
    unsigned long strays;              /* records of no task               */
    unsigned long free_wrong;          /* upcalls where the pool's free
                                          count was not USER_NREC - 3      */
    unsigned long free_end;            /* after releasing every record     */
};

/* isolation: the probes, in the order uprog.c runs them; a bit of
 * iso_result.wrong is one that faulted when it should not, or did not
 * when it should. */
enum {
    ISO_OWN_WRITE,          /* A's context writes A                  no fault */
    ISO_RO_READ,            /* ... reads B, granted read-only        no fault */
    ISO_RO_WRITE,           /* ... writes B                          fault    */
    ISO_UNGRANTED_READ,     /* ... reads C, not granted              fault    */
    ISO_UNGRANTED_WRITE,    /* ... writes C                          fault    */
    ISO_OTHER_READ,         /* B's context reads A                   fault    */
    ISO_REVOKED_BEFORE,     /* A reads B after revoking, same entry  no fault */
    ISO_REVOKED_AFTER,      /* ... after the next entry of A         fault    */
    ISO_OUTSIDE_READ,       /* outside every domain, A               fault    */
    ISO_NPROBES
};
#define ISO_FAULTS_WANT 6
#define USER_ISO_STACK  4096   /* the unmanaged stack isolation starts on */

struct iso_result {
    long err;                          /* first error of the domain calls */
    unsigned long wrong;               /* bit i: probe i went wrong       */
    unsigned long faults;              /* probes that faulted             */
    unsigned long hook_calls;
};

/* The ring-3 side of a system call. */
static inline long usys(long nr, long a0, long a1, long a2)
{
    register long r __asm__("rax") = nr;
    __asm__ volatile("syscall"
                     : "+r"(r), "+D"(a0), "+S"(a1), "+d"(a2)
                     :
                     : "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
    return r;
}
#endif

#endif
