/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/share_mprotect.c - the "mprotect" back-end (the page-table
 * engine of src/share.c with mprotect(2) as its region callback), and the
 * choice of back-end in hosted builds.
 *
 * mprotect changes the rights of the whole process: fine for a fiber
 * scheduler on one thread, which is what this back-end is for.  Each call
 * touches only a managed stack's usable range [lo, hi), never its guard
 * page (which stays PROT_NONE) and never anything else.
 */
#include "../share_impl.h"
#include "hosted.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int mprot(int prot)
{
    return prot == AS_PROT_NONE ? PROT_NONE
         : prot == AS_PROT_READ ? PROT_READ : PROT_READ | PROT_WRITE;
}

/* The region callback: every region, then the first error. */
static int mprotect_flush(void *arg, const as_domain_region *r, size_t n)
{
    (void)arg;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)((char *)r[i].hi - (char *)r[i].lo);
        if (mprotect(r[i].lo, len, mprot(r[i].prot)) != 0 && !err)
            err = -errno;
    }
    return err;
}

int as__page_aligned(const void *lo, const void *hi)
{
    uintptr_t page = as__page_size();
    return ((uintptr_t)lo | (uintptr_t)hi) & (page - 1) ? -AS_EINVAL : 0;
}

void as__domain_yield(void)
{
    sched_yield();
}

/*
 * Closing a stack next to its PROT_NONE guard page lets the kernel merge
 * the two mappings, and opening it splits them again: per close+open pair
 * of a 64 KiB stack that doubles the cost (measured here: 7.0 us against
 * 3.5 us).  Mappings with different flags never merge, and the flag that
 * changes least is MADV_NOHUGEPAGE: a managed stack is not backed by
 * transparent huge pages (it stays so after as_domain_fini).
 */
static void mprotect_attach(as_domain *d)
{
    madvise(d->lo, as__domain_len(d), MADV_NOHUGEPAGE);
    as__page_attach(d);
}

static const struct as__ops ops_mprotect =
    AS__PAGE_OPS("mprotect", as__page_aligned, mprotect_attach);

int as__domain_pick(const char *name, const struct as__ops **ops, as_domain_hook_fn *flush)
{
    bool asked = name != NULL;
    if (!asked)
        name = getenv("AS_DOMAIN_BACKEND");
    if (!name || !*name)
        name = as__pkeys_usable() ? "pkeys" : "mprotect";
    if (strcmp(name, "pkeys") == 0 && as__pkeys_usable()) {
        *ops = &as__ops_pkeys;
        *flush = NULL;
        return 0;
    }
    if (asked && strcmp(name, "pkeys") == 0)
        return -AS_ENOTSUP;
    if (asked && strcmp(name, "mprotect") != 0)
        return -AS_EINVAL;
    /* "mprotect", or the environment asked for what cannot be had here. */
    *ops = &ops_mprotect;
    *flush = mprotect_flush;
    return 0;
}
