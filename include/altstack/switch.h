/* SPDX-License-Identifier: MIT */
/*
 * altstack/switch.h - run code on another stack; switch between contexts.
 *
 * A context (as_ctx) is a suspended execution: in practice the stack pointer
 * at which its callee-saved registers were pushed.  There are two ways in:
 *
 *   as_ctx_make(stack, fn)  a fresh context that will run fn on `stack`
 *                           the first time something switches to it;
 *   as_switch(to, data)     suspends the caller (making a new context of it),
 *                           resumes `to`, and hands `to` the pair
 *                           {ctx: the caller's new context, data}.
 *
 * Contexts are one-shot: once resumed, an as_ctx value is spent, and the
 * resumed side is handed a new one for whoever switched to it.
 *
 *     static as_transfer gen(as_transfer t)
 *     {
 *         for (intptr_t i = 0; i < 3; i++)
 *             t = as_switch(t.ctx, (void *)i);     // yield i to the caller
 *         return (as_transfer){ t.ctx, NULL };     // finish: caller resumes
 *     }
 *
 *     as_stack s; as_stack_alloc(&s, 64 << 10);
 *     as_transfer t = { as_ctx_make(&s, gen), NULL };
 *     for (;;) {
 *         t = as_switch(t.ctx, NULL);
 *         if (!t.ctx) break;                       // gen returned
 *         printf("%ld\n", (long)(intptr_t)t.data); // 0, 1, 2
 *     }
 *     as_stack_free(&s);
 *
 * What a switch preserves is exactly what the ABI says survives a call:
 *   x86_64   rbx rbp r12-r15 rsp, the MXCSR control bits, the x87 control word
 *   aarch64  x19-x29 lr sp d8-d15, FPCR
 * (in fast mode, below, minus the FP control registers).
 *
 * Two modes, chosen per call, which mix safely:
 *
 *   exact  (as_switch, as_switch_ontop): FP control state (MXCSR + x87
 *          control word; FPCR) belongs to the context.  The suspending
 *          side's frame records it; resuming that frame restores it.
 *   fast   (as_switch_fast, as_switch_ontop_fast): FP control state
 *          belongs to the thread, as in libco, minicoro or corosensei.  The
 *          suspending side's frame records none (so this switch reads and
 *          writes no FP control register), and resuming it leaves the
 *          thread's FP control as it is.
 *
 * Whichever mode the resumer uses, a frame is restored exactly as it was
 * suspended: a frame that recorded FP control gets it back, one that did
 * not gets the thread's current state.  A fresh context (as_ctx_make)
 * counts as having recorded the defaults (x86_64 MXCSR 0x1f80, FCW 0x37f;
 * aarch64 FPCR 0: round to nearest, no traps), in both modes.
 *
 * What a context that changes its rounding mode (fesetround) sees:
 *   - it suspends with as_switch: when resumed, it has its own mode again,
 *     whatever ran meanwhile; whoever it switched to has its own mode (or,
 *     if that frame was suspended fast, the mode this context had set);
 *   - it suspends with as_switch_fast: when resumed, it has the thread's
 *     mode at that moment: the last one anybody set (or an exact frame
 *     restored) since; and whoever it switched to runs under its mode,
 *     unless that one's frame was suspended exactly.
 * So one thread whose contexts all switch fast shares one FP environment,
 * like plain functions do; a context that wants its own switches exactly.
 *
 * x86_64: how an exact switch restores FP control is chosen once for the
 * CPU (as_switch_init): compare-and-reload-if-different where ldmxcsr is
 * slow (Intel), unconditional reload where reading MXCSR back is (AMD).
 * Either way the result is the same; only the cost differs.
 *
 * Unwinding.  The assembly carries CFI valid at every instruction, so
 * debuggers and unwinders (libunwind, gdb, perf) see through switches:
 *   - inside fn of as_call_on, the backtrace continues into as_call_on's
 *     caller on the original stack;
 *   - inside a context made by as_ctx_make, the backtrace continues into the
 *     frames of the code that first switched to it, for as long as that code
 *     stays suspended where it switched from; otherwise it ends cleanly
 *     after the entry trampoline, in a frame named as__context_start whose
 *     return address is undefined (as a thread's first frame is).
 *
 * Thread safety.  A context may be resumed by any thread, but by one at a
 * time and only once per suspension.  Resuming a spent or finished context,
 * or one whose stack was freed, is undefined and cannot be detected.
 *
 * Sanitizers.  In builds with AddressSanitizer (-Db_sanitize=address) the
 * switch tells ASan about every stack change; with -Dvalgrind=true stacks
 * are registered with Valgrind.  Otherwise neither costs anything.
 */
#ifndef ALTSTACK_SWITCH_H
#define ALTSTACK_SWITCH_H

#include "config.h"
#include "stack.h"

AS_BEGIN_DECLS

typedef struct as_ctx_s *as_ctx;              /* a suspended context: its saved stack pointer */
typedef struct as_transfer { as_ctx ctx; void *data; } as_transfer;
typedef as_transfer (*as_entry)(as_transfer t);

/*
 * as_ctx_make - prepare a context that runs fn on stack s.
 *
 * Nothing runs until the first as_switch to the result; fn then receives
 * that switch's transfer.  When fn returns a transfer r, the library
 * switches to r.ctx with r.data, and the resumed side receives ctx == NULL:
 * the finished context's stack may then be freed.  Returning a transfer
 * whose ctx is NULL is undefined (there would be nowhere to go).
 *
 * The library uses a few dozen bytes at the top of s.  Returns NULL if s or
 * fn is NULL or the stack is smaller than AS_STACK_MIN (the same bound in
 * AddressSanitizer builds).
 * Mode: both.  Async-signal-safe (writes only to s's memory).
 */
AS_API as_ctx as_ctx_make(const as_stack *s, as_entry fn);

/*
 * as_switch - suspend the caller, resume `to`, give it {caller, data}.
 *
 * Returns, when something later switches back to the caller, the transfer
 * that switch handed over: ctx is the context to switch to in order to
 * resume whoever resumed us, or NULL if that was a finishing context.
 * `to` must be a live context: switching to NULL, or to a spent or
 * finished context, is undefined (the hot path does no checking; NULL
 * faults at the first load).
 * Mode: both.  Async-signal-safe as far as the switch itself goes.
 */
AS_API as_transfer as_switch(as_ctx to, void *data);

/*
 * as_switch_fast - as_switch in fast mode: the caller's frame records no
 * FP control state, and the thread's FP control stays as it is unless
 * `to` recorded its own (see "Two modes" above).  Everything else,
 * including "undefined" for a dead or NULL `to`, is as for as_switch.
 * Mode: both.  Async-signal-safe as far as the switch itself goes.
 */
AS_API as_transfer as_switch_fast(as_ctx to, void *data);

/*
 * as_switch_ontop - resume `to`, but first run fn on to's stack.
 *
 * Suspends the caller exactly as as_switch does, switches to to's stack,
 * restores to's callee-saved registers and FP control state, and calls
 * fn({caller, data}) there, as though to's suspended switch had called
 * fn.  What fn returns is what to's suspended switch returns (or, if `to`
 * is a fresh context from as_ctx_make, the transfer its entry receives).
 * This is Boost.Context's ontop_fcontext: fn may, for instance, record or
 * free the caller, or throw.
 *
 *   - fn runs on to's stack with to's callee-saved registers, so it must
 *     preserve them like any function; it may itself switch away, and
 *     resumes there; whatever it returns, when it returns, resumes to.
 *   - Unwinding: fn's caller is as_switch_ontop, whose caller is the code
 *     that called to's suspended switch.  A backtrace in fn shows that,
 *     and a C++ exception leaving fn propagates into that code, as if to's
 *     as_switch had thrown it (to's switch is then never returned from;
 *     the caller stays suspended as usual).
 *   - The resumed side sees fn's result.ctx as the context to go back to:
 *     return t.ctx (or another live context, or NULL to say "finished")
 *     from fn accordingly.
 *
 * `to` and fn must not be NULL and `to` must be live, as for as_switch:
 * the hot path does no checking; anything else is undefined.
 * Mode: both.  Async-signal-safe as far as the switch itself goes.
 */
AS_API as_transfer as_switch_ontop(as_ctx to, void *data, as_transfer (*fn)(as_transfer t));

/*
 * as_switch_ontop_fast - as_switch_ontop in fast mode: the caller's frame
 * records no FP control; fn and `to` run under the thread's FP control
 * unless `to`'s frame recorded its own, which is then restored before fn.
 * Mode: both.  Async-signal-safe as far as the switch itself goes.
 */
AS_API as_transfer as_switch_ontop_fast(as_ctx to, void *data, as_transfer (*fn)(as_transfer t));

/*
 * Exact-mode strategy (x86_64; aarch64 has one).
 *
 *   AS_FP_COMPARE  reload MXCSR / the x87 control word only when the
 *                  target's differ from the live ones (Intel: ldmxcsr is
 *                  the slow part);
 *   AS_FP_RELOAD   reload MXCSR unconditionally (AMD: reading back the
 *                  just-stored MXCSR for the comparison is the slow part);
 *                  the switch still compares the x87 control word, which
 *                  is cheap to read back; as_act_resume, which has no
 *                  live value stored, loads both;
 *   AS_FP_AUTO     whichever suits this CPU (CPUID vendor: AMD and Hygon
 *                  get RELOAD, everything else COMPARE).
 *
 * The strategy is bound by rewriting a few bytes of the switch's code (no
 * indirect call or extra branch on the hot path), of as_act_resume's
 * for CALL and FRESH records, which restore MXCSR and the x87 control
 * word the same way, of the protection-key domain switch's
 * (as_switch_domain, share.h; hosted) and of libaltstack-fcontext's
 * jump_fcontext / ontop_fcontext where that library is linked.  Hosted
 * builds bind
 * AS_FP_AUTO in a constructor, before main; where the system forbids
 * writable code the switch keeps AS_FP_COMPARE, which is always correct.
 * Freestanding builds start with AS_FP_COMPARE: the kernel calls
 * as_switch_init() once at boot, before other CPUs run and while the
 * library's text is still writable (or not at all).
 *
 * as_switch_init: bind AS_FP_AUTO.  0, or as below.
 * as_switch_set_fp_strategy: rebind (tests, benchmarks).  0, -EINVAL for
 *   an unknown strategy (aarch64: anything but AUTO or COMPARE), or
 *   -errno if the code could not be made writable (hosted: mprotect),
 *   the binding then unchanged.  No other thread may be inside a switch
 *   (as_switch_domain and jump_fcontext included) or an as_act_resume
 *   meanwhile (nor a signal handler that resumes a
 *   record): the code is being rewritten.  Not async-signal-safe.
 * as_switch_fp_strategy: the strategy bound now (AS_FP_COMPARE or
 *   AS_FP_RELOAD).  Async-signal-safe.
 * Mode: both.
 */
#define AS_FP_AUTO    0
#define AS_FP_COMPARE 1
#define AS_FP_RELOAD  2
AS_API int as_switch_init(void);
AS_API int as_switch_set_fp_strategy(int strategy);
AS_API int as_switch_fp_strategy(void);

/*
 * as_call_on - call fn(arg) on stack s and return its result, back on the
 * caller's stack.  Calls nest: fn may call as_call_on with another stack.
 * Running fn on a stack something else is already using is undefined.
 * Errors: returns NULL without calling fn if s or fn is NULL, s->lo or
 * s->hi is NULL, s->hi < s->lo, or fewer than AS_STACK_MIN bytes lie
 * between s->lo and s->hi aligned down to 16 (the stacks as_ctx_make
 * rejects).  A NULL result is otherwise fn's own.
 * Mode: both.  Async-signal-safe (a signal handler may use it to run on a
 * stack of its own).
 */
AS_API void *as_call_on(const as_stack *s, void *(*fn)(void *), void *arg);

AS_END_DECLS

#endif /* ALTSTACK_SWITCH_H */
