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
 * Floating-point control state is per context: a context that changes the
 * rounding mode keeps it, and the one it switches to keeps its own.
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
 * fn is NULL or the stack is smaller than AS_STACK_MIN.
 * Mode: both.  Async-signal-safe (writes only to s's memory).
 */
AS_API as_ctx as_ctx_make(const as_stack *s, as_entry fn);

/*
 * as_switch - suspend the caller, resume `to`, give it {caller, data}.
 *
 * Returns, when something later switches back to the caller, the transfer
 * that switch handed over: ctx is the context to switch to in order to
 * resume whoever resumed us, or NULL if that was a finishing context.
 * `to` must be a live context (not NULL): the hot path does no checking.
 * Mode: both.  Async-signal-safe as far as the switch itself goes.
 */
AS_API as_transfer as_switch(as_ctx to, void *data);

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
 * as_call_on - call fn(arg) on stack s and return its result, back on the
 * caller's stack.  Calls nest: fn may call as_call_on with another stack.
 * Running fn on a stack something else is already using is undefined.
 * If s or fn is NULL, fn is not called and NULL is returned.
 * Mode: both.  Async-signal-safe (a signal handler may use it to run on a
 * stack of its own).
 */
AS_API void *as_call_on(const as_stack *s, void *(*fn)(void *), void *arg);

AS_END_DECLS

#endif /* ALTSTACK_SWITCH_H */
