/* SPDX-License-Identifier: MIT */
/* altstack/preempt.h - hosted: timer-signal upcalls delivering activations. */
#ifndef ALTSTACK_PREEMPT_H
#define ALTSTACK_PREEMPT_H

#include "config.h"
#include "stack.h"
#include "activation.h"

AS_BEGIN_DECLS

#if AS_HOSTED
typedef void (*as_upcall)(as_act *interrupted, void *arg);
typedef struct as_preempt_cfg {
    unsigned     interval_us;   /* timer period                               */
    as_upcall    upcall;
    void        *arg;
    as_act_pool *pool;          /* where interrupted states are captured       */
    const as_stack *upcall_stack;
} as_preempt_cfg;

AS_API int  as_preempt_start(const as_preempt_cfg *cfg);
AS_API int  as_preempt_stop(void);
AS_API void as_preempt_disable(void);
AS_API void as_preempt_enable(void);
#endif

AS_END_DECLS

#endif
