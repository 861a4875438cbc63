/* SPDX-License-Identifier: MIT */
/*
 * altstack/percpu.h - a per-CPU (per-thread, hosted) base pointer and an
 * auxiliary stack to switch to.
 *
 * Kernels keep a pointer to "this CPU's data" in a register the hardware
 * sets aside for it, and switch to a stack of their own when they enter
 * from code whose stack they do not trust to be large (or present).  This
 * header gives both, the way Unikraft does:
 *
 *                 base register          aux stack lives in
 *   x86_64        GS_BASE (%gs:)         the per-CPU record (%gs:8)
 *   aarch64       TPIDR_EL1              the per-CPU record; the exception
 *                                        stacks' middle is kept in SP_EL0
 *                                        while EL1 runs, their trap top in
 *                                        SP_EL1 while EL0 runs (entry.h)
 *   hosted        x86_64: GS_BASE too    a thread-local
 *                 aarch64: a thread-local
 *
 *     static as_percpu cpu0;                     // freestanding: the record
 *     static char aux0[16384];
 *     as_stack s;
 *
 *     as_percpu_set(&cpu0);                      // once per CPU, at bring-up
 *     as_stack_init(&s, aux0, sizeof aux0);
 *     as_auxstack_set(&s);
 *     void *r = as_call_on_aux(fn, arg);         // fn(arg) on aux0
 *
 * Freestanding mode.  The base must point at an as_percpu record, which a
 * kernel usually puts first in its own per-CPU structure (any fields may
 * follow it).  as_percpu_set stores the record's own address in `self`
 * and writes the base register(s); as_auxstack_set writes the aux stack's
 * bounds into the record, where the entry macros of
 * <altstack/arch/x86_64/entry.h> and <altstack/arch/aarch64/entry.h> find
 * them with one %gs:- or TPIDR_EL1-relative load.
 *
 * Hosted mode.  The base is any pointer; it is the calling thread's own
 * and starts as NULL in every new thread.  On x86_64 it is also written to
 * the thread's GS base, so code may address it as %gs:off: with `wrgsbase`
 * when the kernel enables it (AT_HWCAP2 bit 1, HWCAP2_FSGSBASE), otherwise
 * with arch_prctl(ARCH_SET_GS).  glibc and musl leave GS to applications
 * on x86_64.  The aux stack is a thread-local.
 *
 * Nesting.  as_call_on_aux called while already running on the aux stack,
 * or while an earlier as_call_on_aux of the same thread (CPU) has not
 * returned (from fn itself, or from a signal handler or interrupt that
 * arrived during fn, even one running on a stack of its own), calls fn
 * right where it is instead of starting again at the top, which would
 * overwrite the frames below.  The kernel entry paths cannot check this
 * cheaply, and start at the top unconditionally:
 *   x86_64   code on the aux stack (a syscall handler, as_call_on_aux's
 *            fn) must not execute SYSCALL, exactly as in Linux;
 *   aarch64  as_call_on_aux's fn (SPSel = 1 on the trap half) must not
 *            take a synchronous exception (svc, a fault); an exception
 *            handler (SPSel = 0) may: its exceptions enter through the
 *            `nested` path, below its own frame.
 *
 * Thread safety: every function acts on the calling thread (hosted) or CPU
 * (freestanding) only.
 *
 * The record's offsets are plain numbers below so that assembly can use
 * them: this header may be included from .S files.
 */
#ifndef ALTSTACK_PERCPU_H
#define ALTSTACK_PERCPU_H

/*
 * Freestanding per-CPU record (as_percpu), byte offsets:
 *
 *   +------------------+ base + 64
 *   | reserved (0)     |  +40..+63   room for the library's future slots
 *   | scratch          |  +32        x86_64 syscall entry parks the caller's
 *   |                  |             rsp here for two instructions
 *   | aux_depth        |  +24        as_call_on_aux calls running on it
 *   | aux_lo           |  +16        lowest address of the aux stack
 *   | aux_top          |  + 8        its top, 16-byte aligned; 0: none
 *   | self             |  + 0        == base, so %gs:0 / [TPIDR_EL1] reads it
 *   +------------------+ base
 */
#define AS_PERCPU_SELF     0
#define AS_PERCPU_AUX_TOP  8
#define AS_PERCPU_AUX_LO  16
#define AS_PERCPU_DEPTH   24
#define AS_PERCPU_SCRATCH 32
#define AS_PERCPU_SIZE    64

#ifndef __ASSEMBLER__

#include <stdbool.h>
#include "config.h"
#include "stack.h"

AS_BEGIN_DECLS

/* The freestanding per-CPU record; see the diagram above.  Kernels embed it
 * at the start of their per-CPU structure and leave its fields to the
 * library.  64-byte aligned so no two CPUs' records share a cache line. */
typedef struct as_percpu {
    struct as_percpu *self;
    void             *aux_top;
    void             *aux_lo;
    uintptr_t         aux_depth;
    uintptr_t         scratch;
    uintptr_t         reserved[3];
} __attribute__((aligned(64))) as_percpu;

/*
 * as_percpu_set - make `base` the calling CPU's (thread's) base pointer.
 *
 * Freestanding x86_64: base must be an as_percpu record; sets base->self
 * and writes both GS_BASE and KERNEL_GS_BASE (wrmsr, so CPL 0), so that a
 * swapgs in either direction leaves GS on this CPU's record until the
 * kernel loads a user GS into one of them.  Freestanding aarch64: base must
 * be an as_percpu record; sets base->self and writes TPIDR_EL1.
 * Hosted: any pointer, the thread's own; on x86_64 also the thread's GS
 * base (wrgsbase, or arch_prctl(ARCH_SET_GS) where FSGSBASE is off).
 * Passing NULL clears it.  Hosted x86_64: a base that GS cannot hold is
 * refused and nothing changes (as_percpu_get keeps returning the previous
 * base): a non-canonical address, which goes to arch_prctl and is taken
 * only where the kernel allows it (5-level paging), and, where FSGSBASE is
 * off, an address in the kernel's half.  No error is returned: compare
 * as_percpu_get() with base to see whether it was taken.
 * Async-signal-safe.
 */
AS_API void  as_percpu_set(void *base);

/*
 * as_percpu_get - the calling CPU's (thread's) base pointer.
 *
 * Hosted: NULL until the thread sets one.  Freestanding: reads the base
 * register, which nothing initialises for the kernel; before the CPU's
 * first as_percpu_set the result (and that of every other function here)
 * is undefined, so set it first thing at CPU bring-up.
 *
 * Freestanding x86_64 reads %gs:0 (the record's `self`): valid wherever
 * GS_BASE holds the per-CPU base, which in a kernel that never loads a user
 * GS is everywhere (as_percpu_set writes both GS MSRs) and otherwise between
 * the kernel's own swapgs pairs.  Freestanding aarch64 reads TPIDR_EL1.
 * Hosted: the value last set by this thread.
 * Async-signal-safe, no checking, a handful of cycles.
 */
AS_API void *as_percpu_get(void);

/*
 * as_auxstack_set - make s the calling thread's (CPU's) auxiliary stack.
 *
 * Only s->lo and s->hi are used; they are copied, so *s may go away, but
 * the memory must stay.  The top is s->hi aligned down to 16 bytes.  NULL,
 * or a stack with fewer than AS_STACK_MIN usable bytes, clears it.
 * Freestanding: writes aux_lo/aux_top of the record set with as_percpu_set
 * (call that first; with no record this does nothing).  On aarch64 the
 * kernel's trap half of the exception stacks is the natural aux stack:
 * as_el1_stacks_set below sets both.
 * Hosted: a thread-local, NULL in every new thread.
 * Async-signal-safe.  Replacing the aux stack while something runs on it is
 * undefined.
 */
AS_API void  as_auxstack_set(const as_stack *s);

/*
 * as_call_on_aux - call fn(arg) on the auxiliary stack, return its result.
 *
 * If the caller already runs on the aux stack, fn is called right there
 * (see "Nesting" above).  If no aux stack is set, or fn is NULL, fn is not
 * called and NULL is returned.  Unwinding through it works as through
 * as_call_on.  Both modes.  Async-signal-safe.
 */
AS_API void *as_call_on_aux(void *(*fn)(void *), void *arg);

/*
 * as_on_auxstack - true if the caller's stack pointer lies inside the
 * calling thread's (CPU's) auxiliary stack.  Both modes.
 * Async-signal-safe.
 */
AS_API bool  as_on_auxstack(void);

#if AS_HOSTED && AS_ARCH_X86_64
/*
 * as_percpu_gs_method - how as_percpu_set writes GS on this machine:
 * "wrgsbase" (FSGSBASE enabled by the kernel) or "arch_prctl".
 * Hosted x86_64 only.  Async-signal-safe.
 */
AS_API const char *as_percpu_gs_method(void);
#endif

#if AS_FREESTANDING && AS_ARCH_AARCH64
/*
 * as_el1_stacks_set - give the calling CPU its exception stacks.
 *
 * buf is a double-size buffer of 2 * half bytes: the lower half is the IRQ
 * stack, the upper half the trap stack (synchronous exceptions, svc) and
 * the aux stack.  Writes SP_EL0 = buf + half, the middle, which the
 * exception entry of <altstack/arch/aarch64/entry.h> reaches with
 * `msr spsel, #0` before touching any register, and calls as_auxstack_set
 * on the upper half.  `half` must equal the AS_EL1_STACK_HALF the vectors
 * were assembled with (a multiple of 4096).  Needs as_percpu_set first.
 * Returns 0, or -AS_EINVAL if buf is NULL or misaligned (16 bytes) or half
 * is not a non-zero multiple of 4096.  Freestanding aarch64 only.
 * Must be called with SPSel = 1 (the EL1h stack selected), as EL1 code
 * normally runs.  A kernel with EL0 tasks enters them through
 * AS_EL0_EXIT, which leaves SP_EL1 at the trap top for their exceptions;
 * nothing else needs setting up.
 */
AS_API int as_el1_stacks_set(void *buf, size_t half);
#endif

AS_END_DECLS

#endif /* !__ASSEMBLER__ */

#endif /* ALTSTACK_PERCPU_H */
