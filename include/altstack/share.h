/* SPDX-License-Identifier: MIT */
/* altstack/share.h - stack isolation domains and shareable stacks. */
#ifndef ALTSTACK_SHARE_H
#define ALTSTACK_SHARE_H

#include "config.h"
#include "stack.h"
#include "switch.h"

AS_BEGIN_DECLS

#define AS_PROT_NONE  0
#define AS_PROT_READ  1
#define AS_PROT_WRITE 2

typedef struct as_domain as_domain;

AS_API int  as_domain_init(as_domain *d, as_stack *own);
AS_API int  as_domain_grant(as_domain *d, const as_stack *other, int prot);
AS_API int  as_domain_revoke(as_domain *d, const as_stack *other);
AS_API int  as_domain_enter(as_domain *d);
AS_API as_transfer as_switch_domain(as_ctx to, as_domain *to_domain, void *data);
AS_API const char *as_domain_backend(void);

#if AS_HOSTED
AS_API int  as_stack_alloc_shareable(as_stack *s, size_t size);
AS_API int  as_stack_alias(const as_stack *s, int prot, void **alias);
AS_API int  as_stack_unalias(const as_stack *s, void *alias);
#endif

AS_END_DECLS

#endif
