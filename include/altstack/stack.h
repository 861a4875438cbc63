/* SPDX-License-Identifier: MIT */
/*
 * altstack/stack.h - stacks: guard-paged mappings, or memory the caller owns.
 *
 * An as_stack is a plain description of a stack region.  Stacks grow down:
 * code running on it starts at `hi` and must never go below `lo`.
 *
 *     map                 lo                                  hi
 *     |<- guard (NONE) ->|<------------- usable -------------->|
 *     |<------------------------ map_size -------------------->|
 *
 * as_stack_alloc (hosted) maps the region and puts one PROT_NONE guard page
 * below `lo`, so running off the end raises SIGSEGV instead of silently
 * overwriting whatever lies below.  as_stack_init (both modes) adopts memory
 * the caller owns: no guard page, `map` stays NULL and as_stack_free leaves
 * the memory alone.
 *
 *     as_stack s;
 *     if (as_stack_alloc(&s, 64 * 1024) != 0) ...;
 *     ... as_ctx_make(&s, fn) / as_call_on(&s, fn, arg) ...
 *     as_stack_free(&s);
 *
 * Thread safety: the functions touch only the as_stack they are given.
 */
#ifndef ALTSTACK_STACK_H
#define ALTSTACK_STACK_H

#include "config.h"

AS_BEGIN_DECLS

typedef struct as_stack {
    void  *lo;          /* lowest usable address                          */
    void  *hi;          /* one past the highest usable address: the top   */
    void  *map;         /* whole mapping incl. guard page; NULL if adopted */
    size_t map_size;
} as_stack;

/* The smallest stack the library accepts, in usable bytes.  It holds the
 * library's own frames (a switch frame, the entry trampoline) with room for
 * a few calls; real code wants far more.  A fresh context takes 96 bytes
 * on x86_64 and 208 on aarch64, and 112 more under AddressSanitizer (its
 * record of the stack's bounds). */
#define AS_STACK_MIN 512

/*
 * as_stack_alloc - map a stack of at least `size` usable bytes with a
 * PROT_NONE guard page below it.  `size` is rounded up to whole pages.
 * Returns 0, -EINVAL (s is NULL, size is 0 or absurdly large), or -ENOMEM
 * (the mapping failed).  On error *s is zeroed.
 * Mode: hosted only (freestanding builds return -ENOSYS).
 * Not async-signal-safe in spirit (mmap is, but keep allocation out of handlers).
 */
AS_API int  as_stack_alloc(as_stack *s, size_t size);

/*
 * as_stack_init - adopt `size` bytes at `mem` as a stack.  `hi` is aligned
 * down to 16 bytes and `lo` up to 16 bytes.  Returns 0, or -EINVAL if s or
 * mem is NULL, the region wraps, or fewer than AS_STACK_MIN bytes remain
 * after alignment.  The memory stays the caller's.
 * Mode: both.  Async-signal-safe.
 */
AS_API int  as_stack_init(as_stack *s, void *mem, size_t size);

/*
 * as_stack_free - unmap what as_stack_alloc (or as_stack_alloc_shareable)
 * mapped and zero *s.  A no-op for adopted memory, for NULL and for a zeroed
 * as_stack.  Freeing a stack that a live context still runs on, or an
 * as_stack that neither function here filled (uninitialised memory: its
 * `map` would be unmapped), is undefined.
 * Mode: both (freestanding: only clears *s).
 */
AS_API void as_stack_free(as_stack *s);

/* as_stack_size - usable bytes (hi - lo); 0 for NULL.  Both modes. */
static inline size_t as_stack_size(const as_stack *s)
{
    return s ? (size_t)((char *)s->hi - (char *)s->lo) : 0;
}

AS_END_DECLS

#endif /* ALTSTACK_STACK_H */
