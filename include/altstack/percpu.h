/* SPDX-License-Identifier: MIT */
/*
 * altstack/percpu.h - a per-CPU (per-thread, hosted) base pointer and an
 * auxiliary stack to switch to.
 */
#ifndef ALTSTACK_PERCPU_H
#define ALTSTACK_PERCPU_H

#include "config.h"
#include "stack.h"

AS_BEGIN_DECLS

AS_API void  as_percpu_set(void *base);
AS_API void *as_percpu_get(void);
AS_API void  as_auxstack_set(const as_stack *s);
AS_API void *as_call_on_aux(void *(*fn)(void *), void *arg);

AS_END_DECLS

#endif
