/* SPDX-License-Identifier: MIT */
/* altstack/dlock.h - delegation locks. */
#ifndef ALTSTACK_DLOCK_H
#define ALTSTACK_DLOCK_H

#include <stdbool.h>
#include "config.h"

AS_BEGIN_DECLS

typedef struct as_dlock   as_dlock;
typedef struct as_dserver as_dserver;

AS_API void  as_dlock_init(as_dlock *l, as_dserver *server);
AS_API void *as_dlock_call(as_dlock *l, void *(*cs)(void *), void *arg);
AS_API void  as_dlock_lock(as_dlock *l);
AS_API void  as_dlock_unlock(as_dlock *l);
AS_API bool  as_dlock_tls_is_clients(void);

AS_API int   as_dserver_init(as_dserver *s);
AS_API void  as_dserver_run(as_dserver *s);
AS_API void  as_dserver_stop(as_dserver *s);

AS_END_DECLS

#endif
