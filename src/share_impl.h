/* SPDX-License-Identifier: MIT */
/*
 * src/share_impl.h - what src/share.c (domain bookkeeping, both modes) and
 * the hosted back-ends in src/hosted/share_*.c share.
 *
 * Every back-end sees the same thing: a *rights set*, the managed stacks a
 * thread or address space may touch after an entry, each with its rights.
 * Every managed stack not in the set must end up with no rights.  All
 * back-end functions run with the registry lock held.
 */
#ifndef ALTSTACK_SRC_SHARE_IMPL_H
#define ALTSTACK_SRC_SHARE_IMPL_H

#include "internal.h"

#define AS__DOMAIN_MAGIC 0x41534431u        /* "ASD1": an initialized domain */

/* Own stack + every grant + the switcher's stack kept during a switch. */
#define AS__RIGHTS_MAX (AS_DOMAIN_GRANTS + 2)

struct as__rights {
    unsigned   n;
    as_domain *d[AS__RIGHTS_MAX];           /* distinct managed stacks     */
    int        prot[AS__RIGHTS_MAX];        /* AS_PROT_READ or AS_PROT_RW  */
};

struct as__ops {
    const char *name;
    /* Can this back-end protect [lo, hi)?  0 or -EINVAL.  NULL: anything. */
    int  (*check)(const void *lo, const void *hi);
    void (*attach)(as_domain *d);           /* d was just registered       */
    int  (*detach)(as_domain *d);           /* d is about to be unregistered */
    int  (*apply)(const struct as__rights *r);
    int  (*leave)(void);
    as_domain **(*cur)(void);               /* the current domain's slot   */
};

/* The page-table engine of the "mprotect" and "hook" back-ends, in
 * src/share.c: one set of rights for the address space, changed through the
 * back-end's region callback. */
AS_HIDDEN void        as__page_attach(as_domain *d);
AS_HIDDEN int         as__page_detach(as_domain *d);
AS_HIDDEN int         as__page_apply(const struct as__rights *r);
AS_HIDDEN int         as__page_leave(void);
AS_HIDDEN as_domain **as__page_cur(void);
#define AS__PAGE_OPS(nm, chk, att) {                                        \
    .name = nm, .check = chk, .attach = att,                              \
    .detach = as__page_detach, .apply = as__page_apply,                   \
    .leave = as__page_leave, .cur = as__page_cur }

/* The registry lock, for back-end code that runs outside a library call
 * (a thread-exit destructor). */
AS_HIDDEN void       as__domain_lock(void);
AS_HIDDEN void       as__domain_unlock(void);

/* Registry access for back-ends (lock held). */
AS_HIDDEN as_domain *as__registry_first(void);
AS_HIDDEN void       as__open_add(as_domain *d);  /* d->cur is not none */
AS_HIDDEN void       as__open_del(as_domain *d);
AS_HIDDEN as_domain *as__open_first(void);

static inline size_t as__domain_len(const as_domain *d)
{
    return (size_t)((char *)d->hi - (char *)d->lo);
}

#if AS_HOSTED
/* src/hosted/share_mprotect.c: choose the hosted back-end by name (NULL:
 * the default, AS_DOMAIN_BACKEND first).  0, -EINVAL or -ENOTSUP. */
AS_HIDDEN int  as__domain_pick(const char *name, const struct as__ops **ops,
                               as_domain_hook_fn *flush);
AS_HIDDEN int  as__page_aligned(const void *lo, const void *hi);
AS_HIDDEN void as__domain_yield(void);

/* src/hosted/share_pkeys.c */
extern AS_HIDDEN const struct as__ops as__ops_pkeys;
AS_HIDDEN bool as__pkeys_usable(void);
#endif

#endif
