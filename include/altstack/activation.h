/* SPDX-License-Identifier: MIT */
/* altstack/activation.h - complete CPU state records. */
#ifndef ALTSTACK_ACTIVATION_H
#define ALTSTACK_ACTIVATION_H

#include "config.h"
#include "stack.h"

AS_BEGIN_DECLS

typedef struct as_act as_act;
typedef struct as_act_pool as_act_pool;

__attribute__((returns_twice)) AS_API int as_act_capture(as_act *a);
AS_API AS_NORETURN void as_act_resume(as_act *a);
AS_API void      as_act_init(as_act *a, const as_stack *s, void (*fn)(void *), void *arg);
AS_API uintptr_t as_act_pc(const as_act *a);
AS_API uintptr_t as_act_sp(const as_act *a);

AS_API int     as_act_pool_init(as_act_pool *p, as_act *records, size_t n);
AS_API as_act *as_act_alloc(as_act_pool *p);
AS_API void    as_act_release(as_act *a);

#if AS_HOSTED
AS_API void as_act_from_ucontext(as_act *a, const void *ucontext);
AS_API void as_act_to_ucontext(const as_act *a, void *ucontext);
#endif

AS_END_DECLS

#endif
