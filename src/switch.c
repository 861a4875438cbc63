/* SPDX-License-Identifier: MIT */
/*
 * src/switch.c - building fresh contexts.  The switch itself is assembly:
 * src/arch/<arch>/switch.S; the layouts are in src/arch/<arch>/layout.h.
 */
#include "internal.h"
#include "arch/frame.h"

#if defined(AS_ASAN) && AS_ASAN
/* Under AddressSanitizer src/hosted/asan.c provides as_ctx_make around this. */
AS_HIDDEN as_ctx as__raw_ctx_make(const as_stack *s, as_entry fn);
# define as_ctx_make as__raw_ctx_make
#endif

as_ctx as_ctx_make(const as_stack *s, as_entry fn)
{
    if (!s || !fn || !s->hi || !s->lo)
        return NULL;
    uintptr_t top = as__align_down((uintptr_t)s->hi, 16);
    if (top < (uintptr_t)s->lo || top - (uintptr_t)s->lo < AS_STACK_MIN)
        return NULL;
    uint64_t *hdr = (uint64_t *)(top - AS_TOP_SIZE);
    as__top_init(hdr);          /* link, cookie and the end-of-chain frame */
    struct as_sw_frame *f = (struct as_sw_frame *)((uintptr_t)hdr - AS_SW_SIZE);
    as__frame_init(f, fn);
    return (as_ctx)f;
}
