/* SPDX-License-Identifier: MIT */
/*
 * altstack/activation.h - complete CPU state records ("activations").
 *
 * An activation is the CPU state of an execution that was stopped, kept in
 * an as_act record so that a scheduler can resume it later, exactly, on any
 * thread.  A record is filled in one of three ways, and remembers which
 * (as_act_kind):
 *
 *   AS_ACT_CALL   as_act_capture(a): a function call, so the ABI already
 *                 made every caller-saved register dead.  The record holds
 *                 what survives a call: the callee-saved registers, SP, PC
 *                 and the FP control words (x86_64 MXCSR and x87 CW;
 *                 aarch64 FPCR).  No XSAVE: capture costs a few ns.
 *   AS_ACT_FULL   as_act_from_ucontext(a, uc) in a signal handler, or a
 *                 kernel's interrupt entry: every general-purpose register,
 *                 the flags, SP, PC and the whole FP/SIMD state (x86_64: the
 *                 XSAVE components the OS enabled, as the kernel stored them
 *                 in the signal frame, so no XSAVE of our own; aarch64:
 *                 q0-q31, FPSR, FPCR, and in pstate NZCV plus DIT, SSBS
 *                 and TCO where the CPU has them).  as_act_capture_full(a) makes one
 *                 at a call, with XSAVEC (XSAVE, FXSAVE where missing).
 *   AS_ACT_FRESH  as_act_init(a, stack, fn, arg): resuming it calls fn(arg)
 *                 on the stack, with the ABI's default FP control state.
 *
 * as_act_resume(a) restores what the record holds and jumps into it:
 *
 *   kind   x86_64                         aarch64
 *   CALL   callee-saved + rsp, MXCSR/FCW,  x19-x29, sp, d8-d15, FPCR;
 *          rax = 1; jmp (a few ns)         x0 = 1; ret x16 (x16/x17 are
 *                                          dead at a call: exact)
 *   FRESH  as CALL, into a trampoline      as CALL, into a trampoline
 *          that calls fn(arg)              that calls fn(arg)
 *   FULL   what XRSTOR with the record's  hosted: rt_sigreturn of a frame
 *          mask loads (plain vector loads built on our stack (exact: the
 *          where the mask is x87..AVX or  kernel loads pc, sp and every
 *          x87..AVX-512, else XRSTOR;     register at once);
 *          FXRSTOR without XSAVE), every  freestanding: staged below the
 *          GPR and RFLAGS, no system      target sp, exact but for x16,
 *          call, never writing the        which ends up = pc (a kernel
 *          128-byte red zone below the    wanting x16 returns with eret)
 *          resumed rsp
 *
 * User mode (a kernel's user-level scheduler, fed by upcalls).  A kernel
 * fills FULL records from its exception frames into a pool in user
 * memory, and a freestanding copy of the library linked into the user
 * program (its symbols renamed, so that the two copies coexist) resumes
 * them with as_act_resume, releasing each into the pool as above.  On
 * aarch64 EL0 that is the staged FULL path of the table: exact but for
 * x16 = pc, and the AS_ACT_STAGE bytes below the target sp must be
 * writable by the scheduler (a domain that closes the target's stack
 * forbids it); a task that needs x16 too is resumed by the kernel (eret).
 * On x86_64 ring 3 it is the FULL path too, exact with no iretq: the
 * staged words sit below the target's red zone, which is never written,
 * and `popfq` at CPL 3 leaves IF and IOPL as they are (1 and 0 for any
 * user task, so nothing is lost).
 * Two rules follow from the copies being separate:
 *   - as_act_rollforward and as_act_resume_busy know their own copy's
 *     resume only.  A kernel whose tick lands in the user copy's
 *     as_act_resume must not capture it as a task: the simple rule is to
 *     upcall only for ticks that land in task code and to return straight
 *     into the scheduler otherwise (upcalls deferred while it runs).  A
 *     kernel that builds both copies from the same object files may
 *     instead translate: pc - user as_act_resume + its own as_act_resume
 *     is the same instruction, so as_act_resume_busy of the translated pc
 *     says whether to defer, and as_act_rollforward of a record whose rip
 *     (pc) was translated finishes the tail (translate it back if it
 *     returns 0; examples/kernel/x86_64/user.c and aarch64/el0.c do this,
 *     and the aarch64 one drives a hardware breakpoint through every
 *     instruction of the user copy's FULL tail to show it).
 *   - EL0 cannot read the ID registers that as_act_pool_init and
 *     as_act_fpu_size read (they trap unless the kernel emulates them):
 *     the kernel initialises shared pools with its own copy, and the user
 *     copy restores NZCV but not DIT, SSBS or TCO, exact on CPUs without
 *     them.
 *
 * Pools.  An as_act_pool hands out records lock-free, and async-signal-safely:
 * a signal handler may allocate while the interrupted code, or other threads,
 * allocate or release from the same pool.  Resuming a record that came from
 * a pool returns it to the pool after the last read of it and before the
 * jump: an upcall that resumes the record it was given leaks nothing.
 *
 *     static as_act recs[64];                 // or any 64-byte aligned array
 *     static as_act_pool pool;
 *     as_act_pool_init(&pool, recs, 64);
 *
 *     as_act *a = as_act_alloc(&pool);
 *     if (as_act_capture(a) == 0) {
 *         ... hand `a` to a scheduler, run something else ...
 *         as_act_resume(a);                   // never returns
 *     }
 *     // here again, capture returned 1; `a` is back in the pool
 *
 * Who may call what, concurrently:
 *
 *   function                 same record          same pool, other record
 *   as_act_capture/init/     one caller at a      any thread, any signal
 *   from_ucontext/resume     time (it is data)    handler, at once
 *   as_act_alloc/release     -                    any thread, any signal
 *                                                 handler, at once
 *   as_act_pool_init         -                    nobody else may use the pool
 *   as_act_pc/sp/kind        not during a fill    anything
 *
 * A record must not be resumed twice, resumed after it went back to its
 * pool, or resumed while it lies in the stack area the resumed code does not
 * own (below its SP); none of this can be detected and all of it is
 * undefined.  The signal mask is per OS thread and not part of a record,
 * except that on aarch64 the rt_sigreturn of a hosted FULL record sets the
 * mask its signal frame had.
 *
 * Protection keys (x86_64, where the OS enabled them: CPUID OSPKE).  PKRU
 * is part of the context a record holds, kept in a->pkru with
 * AS_ACT_F_PKRU in a->flags, never in the XSAVE image (an XRSTOR naming
 * PKRU from a header without it would set PKRU to 0, opening every key):
 *
 *   fill                    PKRU in the record
 *   as_act_capture(_full)   the live PKRU (one RDPKRU)
 *   as_act_from_ucontext    the frame's: the interrupted code's rights, not
 *                           the handler's
 *   as_act_init             none: the resumed code runs with the PKRU live
 *                           at its resume
 *   a kernel's entry code   its choice: set AS_ACT_F_PKRU and pkru, or
 *                           clear the flag to keep the live PKRU
 *
 * as_act_resume writes the record's PKRU (WRPKRU, skipped when it equals
 * the live one) before the jump, so an upcall that resumes a preempted
 * context restores exactly that context's rights; as_act_to_ucontext puts
 * it into the frame, which sigreturn restores.  Without protection keys
 * (or on aarch64) flags is 0 and nothing of this costs more than a test.
 * A signal handler starts with the kernel's default PKRU (key 0 open, keys
 * 1-15 access-disabled), whatever domain the thread was in; to touch its
 * domain's stacks it enters that domain again (as_domain_enter), and
 * whatever it did to PKRU ends when it returns (sigreturn loads the
 * frame's) or resumes a record (the record's).
 *
 * Mode: everything here exists in both modes except the ucontext interop.
 * A freestanding kernel fills an AS_ACT_FULL record in its interrupt entry
 * (every field above the pool fields, kind = AS_ACT_FULL; on x86_64 `fpu`
 * is an XSAVE image, standard or compacted, whose header XRSTOR accepts)
 * and then calls as_act_rollforward; it sets a->flags (AS_ACT_F_PKRU and
 * a->pkru, or 0).  What a record holds (the XSAVE mask, whether PKRU is
 * carried; aarch64: DIT, SSBS, TCO) is read from CPUID or the ID registers
 * at start-up in hosted builds, and in freestanding ones by the first
 * as_act_pool_init, as_act_fpu_size, as_act_fpu_mask or
 * as_act_capture_full; until then FULL records resume with FXRSTOR and no
 * record carries PKRU.
 */
#ifndef ALTSTACK_ACTIVATION_H
#define ALTSTACK_ACTIVATION_H

#include "config.h"
#include "stack.h"

AS_BEGIN_DECLS

typedef struct as_act as_act;
typedef struct as_act_pool as_act_pool;

/* How a record was filled (as_act_kind). */
#define AS_ACT_NONE  0      /* never filled                                */
#define AS_ACT_CALL  1      /* by as_act_capture                           */
#define AS_ACT_FULL  2      /* from a signal frame or an interrupt entry   */
#define AS_ACT_FRESH 3      /* by as_act_init                              */

#if AS_ARCH_X86_64
/* Size of a record, and of its FP area: the legacy FXSAVE region, the
 * XSAVE header and every user component up to and including AVX-512
 * (2688 bytes in standard format) fit.  What a FULL record holds, exactly:
 * the XSAVE components as_act_fpu_mask() names, which are those XCR0
 * enables minus PKRU (held in `pkru` instead), minus the components the OS
 * may disable until first use (XFD: AMX tile config and data) and minus
 * any whose standard-format area would end past AS_ACT_FPU_SIZE.  A resume
 * restores those (as XRSTOR with that mask does: the ones the image's
 * XSTATE_BV marks, the initial state for the rest; where the mask is
 * x87|SSE|AVX, or that plus AVX-512's three, and XGETBV(1) exists, with
 * plain loads instead, to the same registers) and leaves the others as
 * they are live; as_act_to_ucontext leaves them as the frame has them.
 * as_act_fpu_check() says whether anything is left out. */
# define AS_ACT_SIZE      4096
# define AS_ACT_FPU_SIZE  3904
struct __attribute__((aligned(64))) as_act {
    /* 0..128: the order the full resume pops them in */
    uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
    uint64_t rax, rcx, rdx, rsi, rdi;
    uint64_t rflags, rip, rsp;
    uint32_t mxcsr;                 /* CALL/FRESH; FULL keeps it in fpu too */
    uint16_t fcw;                   /* x87 control word, likewise           */
    uint16_t kind;                  /* AS_ACT_*                             */
    /* pool membership: owned by the pool, kept by every fill */
    as_act_pool *pool;
    const as_act *self;             /* == this record while it is handed out,
                                       NULL while it is free in its pool   */
    uint32_t next, slot;            /* free-list link, 1-based index        */
    uint32_t pkru;                  /* the rights, if flags & AS_ACT_F_PKRU */
    uint32_t flags;                 /* AS_ACT_F_*, written by every fill    */
    uint64_t reserved;
    /* XSAVE area, standard or compacted format, holding the components
     * as_act_fpu_mask() names (FXSAVE if the CPU has no XSAVE) */
    unsigned char fpu[AS_ACT_FPU_SIZE] __attribute__((aligned(64)));
};

/* flags: the record holds PKRU (x86_64 with protection keys enabled);
 * without it a resume leaves the live PKRU as it is. */
#define AS_ACT_F_PKRU 1
#else
# define AS_ACT_SIZE      1024
# define AS_ACT_FPU_SIZE  512
struct __attribute__((aligned(64))) as_act {
    uint64_t x[31];                 /* x0..x30                              */
    uint64_t sp, pc;
    uint64_t pstate;                /* SPSR layout: NZCV 31..28, TCO 25,
                                       DIT 24, SSBS 12 (FULL)               */
    uint32_t fpsr, fpcr;
    uint16_t kind, pad16;
    uint32_t pad32;
    as_act_pool *pool;              /* pool membership, as on x86_64        */
    const as_act *self;
    uint32_t next, slot;
    uint64_t sigmask;               /* FULL, hosted: the mask rt_sigreturn
                                       restores (from the signal frame);
                                       all ones: keep the current one      */
    /* q0..q31 (FULL); a CALL record keeps d8-d15 in the low halves of
     * v[8..15] */
    unsigned char v[32][16] __attribute__((aligned(64)));
    uint64_t spare[24];
};
#endif

/* A pool: a lock-free stack of records, ABA-safe through a version tag in
 * the head word.  Initialize with as_act_pool_init; the fields are private. */
struct as_act_pool {
    uint64_t head;                  /* tag:32 | slot:32 of the first free   */
    as_act  *records;
    size_t   n;
    size_t   fresh;                 /* records handed out at least once     */
};

/*
 * as_act_capture - capture the caller's state into `a` (an AS_ACT_CALL
 * record).  Returns 0 now, and 1 each time `a` is resumed.  Like setjmp,
 * locals the caller changes between the two returns must be volatile.
 * The pool fields of `a` are kept.  `a` NULL is undefined (a hot path:
 * nothing is checked).  Mode: both.  Async-signal-safe.
 */
__attribute__((returns_twice)) AS_API int as_act_capture(as_act *a);

/*
 * as_act_capture_full - like as_act_capture, but make an AS_ACT_FULL
 * record: every register as it is at the call (the return-value register
 * is recorded as 1), the flags, and the FP/SIMD state (x86_64 XSAVEC, or
 * XSAVE, or FXSAVE, with the components the OS enabled minus PKRU; aarch64
 * q0-q31, FPSR, FPCR, and NZCV, DIT, SSBS, TCO where present).  For code that must keep vector registers a call
 * would not (a kernel's entry path, a debugger).  Returns 0, then 1 when
 * resumed.  aarch64 hosted: the resume keeps the signal mask current then.
 * `a` NULL is undefined.  Mode: both.  Async-signal-safe.
 */
__attribute__((returns_twice)) AS_API int as_act_capture_full(as_act *a);

/*
 * as_act_resume - resume the execution recorded in `a`; never returns.
 * What is restored depends on as_act_kind(a) (the table above).  No system
 * call on x86_64; on aarch64 a FULL record in a hosted build goes through
 * rt_sigreturn, everything else through x16/x17.  Never writes into the
 * 128-byte red zone below the resumed SP (x86_64).  If `a` came from a
 * pool it is back in the pool by the time the resumed code runs.
 * `a` must hold a filled record (the hot path checks nothing): `a` NULL,
 * or a record never filled, is undefined.
 * Mode: both.  Async-signal-safe (a handler may leave through it).
 */
AS_API AS_NORETURN void as_act_resume(as_act *a);

/*
 * as_act_init - make `a` an AS_ACT_FRESH record that, when resumed, calls
 * fn(arg) at the top of stack s with a 16-byte aligned SP, a zero frame
 * pointer (backtraces end there) and the ABI's default FP control state
 * (x86_64 MXCSR 0x1f80, FCW 0x37f; aarch64 FPCR 0).  fn must not return:
 * if it does, the thread traps.  If a, s or fn is NULL or s is smaller than
 * AS_STACK_MIN, `a` is left unfilled (AS_ACT_NONE) and as_act_kind says so.
 * Mode: both.  Async-signal-safe.
 */
AS_API void      as_act_init(as_act *a, const as_stack *s, void (*fn)(void *), void *arg);

/* as_act_pc / as_act_sp - where the recorded execution will continue, and
 * its stack pointer.  0 for a NULL or unfilled record.
 * Mode: both.  Async-signal-safe. */
AS_API uintptr_t as_act_pc(const as_act *a);
AS_API uintptr_t as_act_sp(const as_act *a);

/* as_act_kind - AS_ACT_NONE, _CALL, _FULL or _FRESH (NONE for NULL). */
AS_API int       as_act_kind(const as_act *a);

/*
 * as_act_pool_init - make the n records at `records` a pool, all free.
 * Touches no record (each is set up when it is first handed out), so it
 * costs the same for any n, and memory nobody allocates from stays
 * untouched.  Returns 0; -EINVAL if p or records is NULL, n is 0 or above
 * 2^32-1, the n records would wrap the address space, or records is not
 * 64-byte aligned.  (On CPUs whose XSAVE area is larger than a record's
 * FP area, AMX, records hold what as_act_fpu_mask() says and pools work
 * all the same.)  Not concurrent with any other use of p; initialising a
 * pool again while records of it are still held is undefined.
 * Mode: both.  Async-signal-safe.
 */
AS_API int     as_act_pool_init(as_act_pool *p, as_act *records, size_t n);

/* as_act_alloc - take a free record, or NULL when none is left (or p is
 * NULL or was never initialised: all zero).  The record's contents other than its pool fields are whatever
 * its last use left.  Lock-free, async-signal-safe.  Mode: both. */
AS_API as_act *as_act_alloc(as_act_pool *p);

/* as_act_release - give a record back to its pool.  A record that is not
 * from a pool (or NULL) is ignored, and so is one that is already back in
 * its pool (released, or resumed, before): releasing a record twice is a
 * no-op that leaves the pool as it was.  Lock-free, async-signal-safe.
 * Mode: both. */
AS_API void    as_act_release(as_act *a);

/* as_act_pool_free - how many records are free right now (a snapshot that
 * concurrent use may change at once; exact when the pool is quiet).
 * Mode: both.  Async-signal-safe. */
AS_API size_t  as_act_pool_free(const as_act_pool *p);

/*
 * as_act_fpu_size - bytes this CPU's whole FP/SIMD state takes in XSAVE
 * standard format (x86_64: CPUID.(0xD,0):EBX for the components XCR0
 * enables, which may exceed AS_ACT_FPU_SIZE; aarch64: 512 for q0-q31).
 * as_act_fpu_mask - the XSAVE components a FULL record holds (x86_64:
 * see AS_ACT_SIZE above; 3, x87 and SSE, on an FXSAVE-only CPU; aarch64:
 * 3, the FPSIMD registers).  as_act_fpu_check - 0 if records hold every
 * FP/SIMD component the OS enabled (PKRU apart, which they hold in
 * `pkru`), -ENOSPC if some are left out (AMX tiles): resuming a record
 * then leaves those as they are live.
 * Mode: both.  Async-signal-safe.
 */
AS_API size_t   as_act_fpu_size(void);
AS_API uint64_t as_act_fpu_mask(void);
AS_API int      as_act_fpu_check(void);

/*
 * as_act_rollforward - if `a` (just filled with the registers of an
 * interrupted execution) was stopped inside as_act_resume after it had
 * given its record back to the pool, rewrite `a` into the state the resume
 * was about to reach: the resumed code at its resume point.  Signal and
 * interrupt handlers that capture state must call it (as_act_from_ucontext
 * does) so that no record ever shows a PC inside the library's resume
 * tail, and no released record is ever read again.  Returns 1 if it
 * rewrote `a`, 0 if not; `a` NULL is undefined (it runs in every
 * capturing handler, unchecked).  as_act_resume_busy(pc) - 1 if pc lies in the part
 * of as_act_resume that still reads its record (the record is in use:
 * don't capture, defer), else 0.
 * Mode: both.  Async-signal-safe.
 */
AS_API int     as_act_rollforward(as_act *a);
AS_API int     as_act_resume_busy(uintptr_t pc);

#if AS_HOSTED
/*
 * as_act_from_ucontext - fill `a` as an AS_ACT_FULL record from the third
 * argument of an SA_SIGINFO handler: every register and the FP/SIMD state
 * the kernel saved in the signal frame (x86_64 gregs + XSAVE area, header
 * sanitized so that XRSTOR accepts it; aarch64 sigcontext + fpsimd_context),
 * then as_act_rollforward.  On x86_64 with protection keys the record
 * keeps the frame's PKRU (the interrupted code's).  `a` or `ucontext` NULL
 * is undefined (a handler's hot path: nothing is checked).
 * Mode: hosted.  Async-signal-safe.
 */
AS_API void as_act_from_ucontext(as_act *a, const void *ucontext);

/*
 * as_act_to_ucontext - write the state `a` holds into a signal frame's
 * ucontext, so that returning from the handler resumes `a` (sigreturn).
 * FULL records restore everything; CALL and FRESH records what they hold
 * (x86_64 rax = 1 / aarch64 x0 = 1, as a resume would).  The FP/SIMD
 * state goes into the frame's own FP area, up to the size the kernel made;
 * components the record does not hold keep the frame's state.  PKRU
 * (x86_64): a record that holds it writes it into the frame, which
 * sigreturn restores; one that does not leaves the frame's.  `a` or
 * `ucontext` NULL is undefined.  Mode: hosted.  Async-signal-safe.
 */
AS_API void as_act_to_ucontext(const as_act *a, void *ucontext);
#endif

AS_END_DECLS

#endif /* ALTSTACK_ACTIVATION_H */
