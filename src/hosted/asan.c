/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/asan.c - the switch primitives as AddressSanitizer needs them.
 *
 * ASan keeps, per thread, the bounds of the stack it believes is running and
 * a "fake stack" (heap frames for use-after-return detection).  Moving the
 * stack pointer behind its back breaks both, so every change of stack is
 * bracketed:
 *
 *   __sanitizer_start_switch_fiber(&save, bottom, size)   just before: the
 *        target's bounds; our fake stack goes into `save` (NULL: we leave
 *        this stack for good and ASan frees its fake stack);
 *   __sanitizer_finish_switch_fiber(save, &bottom, &size) just after, on the
 *        new stack: restores the fake stack saved when it was left, and
 *        tells us the bounds of the stack we came from.
 *
 * The first call needs the target's bounds, which a bare as_ctx (a saved
 * stack pointer) does not have.  So with AS_ASAN the assembly entry points
 * are as__raw_switch / as__raw_call_on ... (src/arch/asm.h's AS_SYM) and
 * as__ctx_build (src/switch.c) and the public ones below wrap them; an as_ctx is
 * then a pointer to a record on the suspended side's stack:
 *
 *     struct as_asan_rec    raw     the raw context (saved stack pointer)
 *                           bottom  lowest address of the stack it runs on
 *                           size    its size
 *                           fn      fresh context: the user's entry
 *                           to      while switching: the target's record
 *                           data    while switching: the data word
 *
 *   - A suspended as_switch call holds its record as a local, `self`, and
 *     passes &self as the raw switch's data word.  The resumed side fills
 *     in self.raw (the raw transfer's ctx) and self.bottom/size (which
 *     finish_switch_fiber reports as the stack we came from), and returns
 *     {&self, self.data}.  That works for any stack, the thread's own
 *     included, without knowing it in advance.
 *   - A fresh context's record sits in the top AS_ASAN_TOP bytes of its
 *     stack; the raw context, made just below it, runs asan_entry, which
 *     finds the record through the switcher's `to` and calls rec->fn.
 *   - A finishing context passes raw ctx NULL, with the target's own record
 *     as the data word (its data field set to the data), and NULL as the
 *     fake-stack save: nothing will come back to this stack.
 *   - as_call_on brackets the raw call the same way; the function that runs
 *     on the other stack reports the caller's bounds into a record on the
 *     caller's stack and leaves its stack for good when fn returns.
 *
 * The functions here are not instrumented themselves (AS_NO_ASAN): between
 * start_switch_fiber and finish_switch_fiber the thread has no fake stack,
 * and an instrumented frame with addressable locals (`self`, the bounds
 * finish_switch_fiber writes) would make ASan create a fresh one there,
 * which finish_switch_fiber then drops; and start_switch_fiber(NULL, ...)
 * frees the fake stack that such a frame of the caller would still be in.
 * Left uninstrumented, their locals are plain stack words, and the records
 * really live on the suspended side's stack as described above.
 *
 * New contexts start on stacks whose shadow may still carry poison from
 * frames that never returned (a context abandoned mid-run, a reused
 * stack), so as_ctx_make clears the shadow of the whole stack first.
 *
 * Without AS_ASAN (meson defines it for -Db_sanitize=address) this file is
 * empty and the assembly provides the public names directly.
 */
#include "hosted.h"
#include "../arch/layout.h"

#if defined(AS_ASAN) && AS_ASAN

#if defined(__has_feature)
# if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#  define __SANITIZE_ADDRESS__ 1
# endif
#endif
#if !defined(__SANITIZE_ADDRESS__)
# error "AS_ASAN is set but this file is not compiled with -fsanitize=address"
#endif

#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

AS_HIDDEN as_transfer as__raw_switch(as_ctx to, void *data);
AS_HIDDEN as_transfer as__raw_switch_ontop(as_ctx to, void *data, as_entry fn);
AS_HIDDEN as_transfer as__raw_switch_fast(as_ctx to, void *data);
AS_HIDDEN as_transfer as__raw_switch_ontop_fast(as_ctx to, void *data, as_entry fn);
AS_HIDDEN void *as__raw_call_on(const as_stack *s, void *(*fn)(void *), void *arg);

#define AS_NO_ASAN __attribute__((no_sanitize_address))

struct as_asan_rec {
    as_ctx               raw;
    const void          *bottom;
    size_t               size;
    as_entry             fn;
    struct as_asan_rec  *to;
    void                *data;
    void                *fake;      /* our fake stack while suspended     */
    as_entry             ontop;     /* while switching: as_switch_ontop's fn */
    as_transfer          result;    /* fn's result, once it has run here  */
    int                  arrived;   /* 1: ontop already did our arrival   */
};

/* Room for the fresh context's record at the top of its stack: AS_ASAN_TOP
 * (src/arch/<arch>/layout.h, where AS_STACK_MIN is checked against it). */
_Static_assert(sizeof(struct as_asan_rec) <= AS_ASAN_TOP, "record too big");

/* On the resumed side, right after a raw switch returned `raw`: finish the
 * switch ASan was told about and turn the raw transfer into the user's.
 * `me` is the resumed side's record (its suspended `self`, or a fresh
 * context's top record). */
AS_NO_ASAN
static as_transfer finish(struct as_asan_rec *me, as_transfer raw)
{
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(me->fake, &bottom, &size);
    if (!raw.ctx)                               /* the switcher finished */
        return (as_transfer){ NULL, me->data };
    struct as_asan_rec *from = raw.data;        /* the switcher's `self` */
    from->raw = raw.ctx;
    from->bottom = bottom;
    from->size = size;
    return (as_transfer){ (as_ctx)from, from->data };
}

/* The same, unless an as_switch_ontop's fn already did it (ontop_fn): then
 * the transfer is the one fn returned. */
AS_NO_ASAN
static as_transfer arrive(struct as_asan_rec *me, as_transfer raw)
{
    if (me->arrived) {
        me->arrived = 0;
        return me->result;
    }
    return finish(me, raw);
}

/* as_switch and as_switch_fast: the same bracketing around either. */
AS_NO_ASAN
static inline __attribute__((always_inline)) as_transfer
wrap_switch(as_ctx to, void *data, as_transfer (*raw_switch)(as_ctx, void *))
{
    struct as_asan_rec *target = (struct as_asan_rec *)to;
    struct as_asan_rec self = { .to = target, .data = data };
    __sanitizer_start_switch_fiber(&self.fake, target->bottom, target->size);
    as_transfer raw = raw_switch(target->raw, &self);
    return arrive(&self, raw);
}

AS_NO_ASAN
as_transfer as_switch(as_ctx to, void *data)
{
    return wrap_switch(to, data, as__raw_switch);
}

AS_NO_ASAN
as_transfer as_switch_fast(as_ctx to, void *data)
{
    return wrap_switch(to, data, as__raw_switch_fast);
}

/* The raw ontop function: runs on the target's stack in place of its
 * suspended raw switch.  It completes the switch for ASan first (so the
 * user's fn runs with ASan knowing the stack), calls fn, and leaves fn's
 * result in the target's record, where arrive() picks it up.  raw ctx
 * NULL with the target's record as data is what a fresh target's
 * asan_entry expects. */
AS_NO_ASAN
static as_transfer ontop_fn(as_transfer raw)
{
    struct as_asan_rec *from = raw.data;        /* the switcher's `self` */
    struct as_asan_rec *me = from->to;
    as_entry fn = from->ontop;
    as_transfer r = fn(finish(me, raw));
    me->result = r;
    me->arrived = 1;
    return (as_transfer){ NULL, me };
}

AS_NO_ASAN
static inline __attribute__((always_inline)) as_transfer
wrap_ontop(as_ctx to, void *data, as_entry fn,
           as_transfer (*raw_ontop)(as_ctx, void *, as_entry))
{
    struct as_asan_rec *target = (struct as_asan_rec *)to;
    struct as_asan_rec self = { .to = target, .data = data, .ontop = fn };
    __sanitizer_start_switch_fiber(&self.fake, target->bottom, target->size);
    as_transfer raw = raw_ontop(target->raw, &self, ontop_fn);
    return arrive(&self, raw);
}

AS_NO_ASAN
as_transfer as_switch_ontop(as_ctx to, void *data, as_entry fn)
{
    return wrap_ontop(to, data, fn, as__raw_switch_ontop);
}

AS_NO_ASAN
as_transfer as_switch_ontop_fast(as_ctx to, void *data, as_entry fn)
{
    return wrap_ontop(to, data, fn, as__raw_switch_ontop_fast);
}

/* The raw entry of every context made under ASan. */
AS_NO_ASAN
static as_transfer asan_entry(as_transfer raw)
{
    struct as_asan_rec *me = raw.ctx ? ((struct as_asan_rec *)raw.data)->to
                                     : (struct as_asan_rec *)raw.data;
    as_entry fn = me->fn;
    as_transfer r = fn(arrive(me, raw));
    struct as_asan_rec *next = (struct as_asan_rec *)r.ctx;
    next->data = r.data;
    __sanitizer_start_switch_fiber(NULL, next->bottom, next->size);
    return (as_transfer){ next->raw, next };
}

AS_NO_ASAN
as_ctx as_ctx_make(const as_stack *s, as_entry fn)
{
    uintptr_t top = as__stack_top(s);       /* the same stacks as without ASan */
    if (!fn || !top)
        return NULL;
    as_ctx raw = as__ctx_build(top - AS_ASAN_TOP, asan_entry);
    __asan_unpoison_memory_region(s->lo, top - (uintptr_t)s->lo);
    struct as_asan_rec *rec = (struct as_asan_rec *)(top - AS_ASAN_TOP);
    *rec = (struct as_asan_rec){
        .raw = raw,
        .bottom = s->lo,
        .size = top - (uintptr_t)s->lo,
        .fn = fn,
    };
    return (as_ctx)rec;
}

struct as_asan_call {
    void        *(*fn)(void *);
    void        *arg;
    const void  *bottom;                        /* the caller's stack */
    size_t       size;
};

AS_NO_ASAN
static void *asan_call(void *p)
{
    struct as_asan_call *c = p;
    __sanitizer_finish_switch_fiber(NULL, &c->bottom, &c->size);
    void *r = c->fn(c->arg);
    __sanitizer_start_switch_fiber(NULL, c->bottom, c->size);
    return r;
}

AS_NO_ASAN
void *as_call_on(const as_stack *s, void *(*fn)(void *), void *arg)
{
    uintptr_t top = as__stack_top(s);
    if (!fn || !top)
        return NULL;                    /* the raw call would refuse too */
    struct as_asan_call c = { .fn = fn, .arg = arg };
    void *fake;
    __sanitizer_start_switch_fiber(&fake, s->lo, top - (uintptr_t)s->lo);
    void *r = as__raw_call_on(s, asan_call, &c);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
    return r;
}

#endif /* AS_ASAN */
