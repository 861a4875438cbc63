/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/share_mprotect.c - the "mprotect" back-end (the page-table
 * engine of src/share.c with mprotect(2) as its region callback), and the
 * hosted build's back-end set: as__domain_backends_init registers "pkeys"
 * and "mprotect" with the core, in that order of preference, and passes on
 * AS_DOMAIN_BACKEND.
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

/* Is every page of [lo, hi) mapped?  mincore says ENOMEM where one is not;
 * it reads the page tables only, touching no page. */
int as__mapped_check(const void *lo, const void *hi)
{
    size_t page = as__page_size();
    unsigned char vec[256];
    for (uintptr_t p = (uintptr_t)lo; p < (uintptr_t)hi; p += sizeof vec * page) {
        size_t len = (uintptr_t)hi - p;
        if (len > sizeof vec * page)
            len = sizeof vec * page;
        if (mincore((void *)p, len, vec) != 0)
            return errno == ENOMEM ? -AS_EFAULT : -errno;
    }
    return 0;
}

/* Page-aligned at both ends, and mapped. */
int as__page_check(const void *lo, const void *hi)
{
    int err = as__page_aligned(lo, hi);
    return err ? err : as__mapped_check(lo, hi);
}

static void relax(void)
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
    AS__PAGE_OPS("mprotect", as__page_check, mprotect_attach);

/* The hosted back-end set.  "pkeys" is preferred where usable; an
 * AS_DOMAIN_BACKEND naming what cannot be had here falls back to the
 * first usable one. */
void as__domain_backends_init(void)
{
    as__domain_register(&as__ops_pkeys, NULL);
    as__domain_register(&ops_mprotect, mprotect_flush);
    const char *env = getenv("AS_DOMAIN_BACKEND");
    as__domain_prefer(env && *env ? env : NULL, relax);
}
