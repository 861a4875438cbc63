/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/text.c - writing the library's own code, once, at start-up:
 * binding the switch's exact-mode strategy (src/switch.c) and the
 * constructor that does it before main.
 *
 * The pages are made writable (and kept executable: the code doing the
 * writing may share them) for the copy and put back to read+execute.
 * mprotect covers the whole loaded segment that holds them, not just the
 * pages written: a mapping split in the middle of a segment no longer
 * matches the program headers, and unwinders that look symbols up through
 * /proc/self/maps (libunwind's unw_get_proc_name) then find no name for
 * any address in the piece.
 * Where the system forbids writable code (SELinux execmod, PaX), mprotect
 * fails, nothing is written, and the switch keeps the strategy it was
 * assembled with, which is correct everywhere, only slower on some CPUs.
 */
#include "hosted.h"
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct seg { uintptr_t addr, lo, hi; };

/* The PT_LOAD segment of the object mapped at s->addr, page-aligned. */
static int find_segment(struct dl_phdr_info *info, size_t size, void *p)
{
    (void)size;
    struct seg *s = p;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || s->addr < lo || s->addr >= lo + ph->p_memsz)
            continue;
        s->lo = lo;
        s->hi = lo + ph->p_memsz;
        return 1;
    }
    return 0;
}

int as__text_write(void *dst, const void *src, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct seg seg = { (uintptr_t)dst, (uintptr_t)dst, (uintptr_t)dst + n };
    dl_iterate_phdr(find_segment, &seg);
    if (seg.lo > (uintptr_t)dst || seg.hi < (uintptr_t)dst + n)
        seg.lo = (uintptr_t)dst, seg.hi = (uintptr_t)dst + n;
    uintptr_t lo = as__align_down(seg.lo, page);
    uintptr_t hi = as__align_up(seg.hi, page);
    if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC) != 0)
        return -errno;
    memcpy(dst, src, n);
    __builtin___clear_cache((char *)dst, (char *)dst + n);
    mprotect((void *)lo, hi - lo, PROT_READ | PROT_EXEC);
    return 0;
}

/* Before main and before any thread: nothing can be inside the switch. */
__attribute__((constructor))
static void switch_bind(void)
{
    (void)as_switch_init();
}
