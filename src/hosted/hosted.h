/* SPDX-License-Identifier: MIT */
/* src/hosted/hosted.h - what the hosted-only files share. */
#ifndef ALTSTACK_SRC_HOSTED_H
#define ALTSTACK_SRC_HOSTED_H

#include "../internal.h"

AS_HIDDEN size_t as__page_size(void);
/* Validate an as_stack_alloc size and round it to whole pages. */
AS_HIDDEN int    as__stack_size_check(size_t size, size_t *usable);
/* Fill s for a mapping whose first page is the guard page. */
AS_HIDDEN void   as__stack_set(as_stack *s, void *map, size_t map_size);

/* as_stack_free of the mapping at map: drop what share_stack.c keeps for it
 * (the fallback's memfd descriptor), if anything. */
AS_HIDDEN void   as__share_stack_forget(const void *map);

/* Valgrind stack registration (src/hosted/tools.c); no-ops unless the
 * library is built with -Dvalgrind=true. */
AS_HIDDEN void   as__valgrind_register(const as_stack *s);
AS_HIDDEN void   as__valgrind_deregister(const as_stack *s);

#endif
