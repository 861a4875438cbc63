/* SPDX-License-Identifier: MIT */
/*
 * src/switch.c - building fresh contexts, and binding the exact-mode
 * strategy of the switch (x86_64).  The switch itself is assembly:
 * src/arch/<arch>/switch.S; the layouts are in src/arch/<arch>/layout.h.
 */
#include "internal.h"
#include "arch/frame.h"

/* A fresh context whose stack ends at top (16-byte aligned, with room). */
as_ctx as__ctx_build(uintptr_t top, as_entry fn)
{
    uint64_t *hdr = (uint64_t *)(top - AS_TOP_SIZE);
    as__top_init(hdr);          /* link, cookie and the end-of-chain frame */
    struct as_sw_frame *f = (struct as_sw_frame *)((uintptr_t)hdr - AS_SW_SIZE);
    as__frame_init(f, fn);
    return (as_ctx)f;
}

/* Under AddressSanitizer src/hosted/asan.c provides as_ctx_make around
 * as__ctx_build instead. */
#if !(defined(AS_ASAN) && AS_ASAN)
as_ctx as_ctx_make(const as_stack *s, as_entry fn)
{
    uintptr_t top = as__stack_top(s);
    if (!fn || !top)
        return NULL;
    return as__ctx_build(top, fn);
}
#endif

/*
 * Binding the exact-mode strategy (x86_64; see src/arch/x86_64/switch.S).
 * Each site as assembled is the compare strategy; the reload strategy is
 * the site's row's alternative bytes (its table's .Lfp_reload for the
 * switches', as__act_fp_reload for as_act_resume's), copied over the site
 * and padded with NOPs.  The compare bytes are kept on the first patch, so
 * the binding can go back.  as__text_write makes the text writable (hosted:
 * mprotect, src/hosted/text.c) or is a plain copy (freestanding: the
 * kernel calls as_switch_init while its text is still writable).
 */
#if AS_ARCH_X86_64
/* Rows: site start, site end, alternative start, alternative end; a row
 * of zeros ends a table.  switch.S has the switch's and as_act_resume's;
 * libaltstack-fcontext's direct jump_fcontext / ontop_fcontext have
 * theirs (weak: absent unless linked). */
typedef unsigned char *const as_fp_site[4];
AS_HIDDEN extern as_fp_site as__fp_sites[];
extern as_fp_site fc__fp_sites[] __attribute__((weak));  /* GOT: may be 0 */
extern as_fp_site as__pkru_fp_sites[] __attribute__((weak));

#define AS_FP_SITE_MAX 64
#define AS_FP_NSITES   8
static unsigned char fp_compare[AS_FP_NSITES][AS_FP_SITE_MAX];
static int fp_bound = AS_FP_COMPARE;

/* Every site, in one list; -1 if the tables hold more than AS_FP_NSITES
 * (switch.S, share.S and fcontext.S hold 7), so that no site is left
 * unbound. */
static int fp_sites(const unsigned char *const *out[AS_FP_NSITES])
{
    as_fp_site *tables[3] = { as__fp_sites, as__pkru_fp_sites, fc__fp_sites };
    int n = 0;
    for (int t = 0; t < 3; t++)
        for (as_fp_site *r = tables[t]; r && (*r)[0]; r++) {
            if (n == AS_FP_NSITES)
                return -1;
            out[n++] = (const unsigned char *const *)*r;
        }
    return n;
}

/* The recommended long NOPs (Intel SDM, NOP; AMD's optimisation guide
 * lists the same), 1 to 9 bytes: the fewest instructions, so that the
 * padding costs a decode slot or two (the switch's site needs one). */
static void nop_fill(unsigned char *p, size_t n)
{
    static const unsigned char nops[9][9] = {
        { 0x90 },
        { 0x66, 0x90 },
        { 0x0f, 0x1f, 0x00 },
        { 0x0f, 0x1f, 0x40, 0x00 },
        { 0x0f, 0x1f, 0x44, 0x00, 0x00 },
        { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
        { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
        { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
        { 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
    };
    while (n) {
        size_t k = n < 9 ? n : 9;
        for (size_t i = 0; i < k; i++)
            p[i] = nops[k - 1][i];
        p += k;
        n -= k;
    }
}

static int cpu_is_amd(void)
{
    uint32_t a = 0, b, c, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
    /* "AuthenticAMD", "HygonGenuine" (Zen): ebx "Auth" / "Hygo" */
    return b == 0x68747541u || b == 0x6f677948u;
}

int as_switch_set_fp_strategy(int strategy)
{
    if (strategy == AS_FP_AUTO)
        strategy = cpu_is_amd() ? AS_FP_RELOAD : AS_FP_COMPARE;
    if (strategy != AS_FP_COMPARE && strategy != AS_FP_RELOAD)
        return -AS_EINVAL;
    if (strategy == fp_bound)
        return 0;
    const unsigned char *const *sites[AS_FP_NSITES];
    int n = fp_sites(sites);
    if (n < 0)
        return -AS_ENOTSUP;                     /* cannot happen: see above */
    for (int i = 0; i < n; i++) {
        unsigned char *site = (unsigned char *)sites[i][0];
        size_t len = (size_t)(sites[i][1] - site);
        const unsigned char *reload = sites[i][2];
        size_t alt = (size_t)(sites[i][3] - reload);
        if (len > AS_FP_SITE_MAX || len < alt)
            return -AS_ENOTSUP;                 /* cannot happen: switch.S */
        unsigned char code[AS_FP_SITE_MAX];
        if (strategy == AS_FP_RELOAD) {
            for (size_t k = 0; k < len; k++)
                fp_compare[i][k] = site[k];
            for (size_t k = 0; k < alt; k++)
                code[k] = reload[k];
            nop_fill(code + alt, len - alt);
        } else {
            for (size_t k = 0; k < len; k++)
                code[k] = fp_compare[i][k];
        }
        int r = as__text_write(site, code, len);
        if (r != 0) {
            /* Put back the sites already written: all or nothing. */
            for (int j = 0; j < i && strategy == AS_FP_RELOAD; j++)
                as__text_write((unsigned char *)sites[j][0], fp_compare[j],
                               (size_t)(sites[j][1] - sites[j][0]));
            return r;
        }
    }
    fp_bound = strategy;
    return 0;
}
#else
int as_switch_set_fp_strategy(int strategy)
{
    /* aarch64: one strategy (write FPCR only when it differs). */
    return strategy == AS_FP_AUTO || strategy == AS_FP_COMPARE ? 0 : -AS_EINVAL;
}
static const int fp_bound = AS_FP_COMPARE;
#endif

int as_switch_fp_strategy(void)
{
    return fp_bound;
}

int as_switch_init(void)
{
    return as_switch_set_fp_strategy(AS_FP_AUTO);
}

#if AS_FREESTANDING
int as__text_write(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
    return 0;
}
#endif
