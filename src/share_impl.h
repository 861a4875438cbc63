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

/*
 * A back-end.  The core (src/share.c) calls only these; a back-end
 * registers itself with as__domain_register from the one function each
 * build mode provides, as__domain_backends_init (hosted:
 * src/hosted/share_mprotect.c; freestanding: src/share.c, none but the
 * hook).  Nothing else links the core to a back-end.
 */
struct as__ops {
    const char *name;
    bool (*usable)(void);                   /* NULL: always               */
    /* Can this back-end protect [lo, hi)?  0, -EINVAL or -EFAULT.  NULL:
     * anything. */
    int  (*check)(const void *lo, const void *hi);
    void (*attach)(as_domain *d);           /* d was just registered       */
    int  (*detach)(as_domain *d);           /* d is about to be unregistered */
    /* Enter rights set r as domain d's (d may be NULL); `keep` is the
     * managed stack the caller runs on (NULL if none), kept read-write. */
    int  (*apply)(as_domain *d, as_domain *keep, const struct as__rights *r);
    int  (*leave)(void);
    as_domain **(*cur)(void);               /* the current domain's slot   */
    /* as_switch_domain; NULL: the core's two-step switch. */
    as_transfer (*sw)(as_ctx to, as_domain *d, void *data);
    /* A rights table or the registry changed (lock held); NULL: nothing. */
    void (*changed)(void);
};

/* The page-table engine of the "mprotect" and "hook" back-ends, in
 * src/share.c: one set of rights for the address space, changed through the
 * back-end's region callback (`flush`, given at registration). */
AS_HIDDEN void        as__page_attach(as_domain *d);
AS_HIDDEN int         as__page_detach(as_domain *d);
AS_HIDDEN int         as__page_apply(as_domain *d, as_domain *keep, const struct as__rights *r);
AS_HIDDEN int         as__page_leave(void);
AS_HIDDEN as_domain **as__page_cur(void);
#define AS__PAGE_OPS(nm, chk, att) {                                        \
    .name = nm, .check = chk, .attach = att,                              \
    .detach = as__page_detach, .apply = as__page_apply,                   \
    .leave = as__page_leave, .cur = as__page_cur }

/* The registry lock, for back-end code that runs outside a library call
 * (a thread-exit destructor, fork). */
AS_HIDDEN void       as__domain_lock(void);
AS_HIDDEN void       as__domain_unlock(void);
AS_HIDDEN void       as__domain_lock_reset(void);   /* a fork child */

/* Registry access for back-ends (lock held). */
AS_HIDDEN as_domain *as__registry_first(void);
AS_HIDDEN void       as__open_add(as_domain *d);  /* d->cur is not none */
AS_HIDDEN void       as__open_del(as_domain *d);
AS_HIDDEN as_domain *as__open_first(void);

static inline size_t as__domain_len(const as_domain *d)
{
    return (size_t)((char *)d->hi - (char *)d->lo);
}

/* Registration (from as__domain_backends_init): back-ends in order of
 * preference; `prefer` names the one to use by default if usable (NULL:
 * the first usable); `relax` is what a waiter for the registry lock does
 * (NULL: a pause instruction). */
AS_HIDDEN void as__domain_register(const struct as__ops *ops, as_domain_hook_fn flush);
AS_HIDDEN void as__domain_prefer(const char *prefer, void (*relax)(void));
AS_HIDDEN void as__domain_backends_init(void);

/* Core services for back-ends. */
AS_HIDDEN void as__rights_of(as_domain *d, as_domain *keep, struct as__rights *r);
/* The same without caching anything in d (for a signal handler running
 * while another thread holds the lock). */
AS_HIDDEN void as__rights_peek(const as_domain *d, struct as__rights *r);
AS_HIDDEN as_domain *as__domain_at(const void *p);   /* stack holding p */
AS_HIDDEN as_transfer as__switch_two_step(as_ctx to, as_domain *d, void *data);

#if AS_HOSTED
AS_HIDDEN int  as__page_aligned(const void *lo, const void *hi);
AS_HIDDEN int  as__mapped_check(const void *lo, const void *hi);
AS_HIDDEN int  as__page_check(const void *lo, const void *hi);   /* both */
/* src/hosted/share_pkeys.c */
extern AS_HIDDEN const struct as__ops as__ops_pkeys;
#endif

#endif
