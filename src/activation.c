/* SPDX-License-Identifier: MIT */
/*
 * src/activation.c - activation records: pools, fresh records, accessors,
 * the FP area's size, and the roll-forward of interrupted resumes.
 * capture and resume are assembly (src/arch/<arch>/activation.S); the
 * record and the staging layout are in src/arch/<arch>/layout.h.
 *
 * Pool invariant.  head = tag:32 | slot:32, slot 1-based, 0 = empty; each
 * free record's `next` is the slot below it.  A pop (as_act_alloc) CASes
 * head from (t, s) to (t + 1, records[s-1].next); a push (as_act_release,
 * and as_act_resume's release in assembly) CASes (t, s) to (t, mine) after
 * writing next = s.  Every pop changes the tag, so a pop that read `next`
 * of a record which was then popped and pushed again (ABA) fails its CAS.
 * Records are never unmapped while the pool lives, so reading a stale
 * `next` is harmless.  Both operations are a bounded number of plain loads
 * and one CAS per attempt: lock-free and async-signal-safe.
 *
 * Records [fresh, n) have never been handed out: as_act_pool_init touches
 * none of them (so any n up to 2^32-1 costs nothing), and as_act_alloc,
 * when the free list is empty, takes records[fresh] by CASing fresh up by
 * one and fills in its pool fields then.
 *
 * A record's `self` says whether it is out of the pool: == the record
 * while someone holds it (from as_act_alloc until its release), NULL
 * while it lies on the free list.  A release first CASes self from the
 * record to NULL and pushes only if that succeeded, so releasing a record
 * twice pushes it once (as_act_resume's release clears self before its
 * push in the same way; one record is resumed by one caller at a time).
 */
#include "internal.h"

_Static_assert(sizeof(as_act) == AS_ACT_SIZE, "as_act size");
_Static_assert(_Alignof(as_act) == 64, "as_act alignment");
_Static_assert(AS_ACT_KIND_CALL == AS_ACT_CALL && AS_ACT_KIND_FULL == AS_ACT_FULL &&
               AS_ACT_KIND_FRESH == AS_ACT_FRESH, "kinds");
_Static_assert(offsetof(as_act, pool) == AS_ACT_POOL, "layout");
_Static_assert(offsetof(as_act, self) == AS_ACT_SELF, "layout");
_Static_assert(offsetof(as_act, next) == AS_ACT_NEXT, "layout");
_Static_assert(offsetof(as_act, slot) == AS_ACT_SLOT, "layout");
_Static_assert(offsetof(as_act, kind) == AS_ACT_KIND, "layout");
_Static_assert(offsetof(as_act_pool, head) == AS_ACT_POOL_HEAD, "layout");

#define SLOT_MASK 0xffffffffull

/* Labels inside as_act_resume (activation.S). */
AS_HIDDEN extern const char as__act_resume_end[];

static int in(uintptr_t pc, const char *lo, const char *hi)
{
    return pc >= (uintptr_t)lo && pc < (uintptr_t)hi;
}

#if AS_ARCH_X86_64
_Static_assert(offsetof(as_act, r15) == AS_ACT_R15, "layout");
_Static_assert(offsetof(as_act, r14) == AS_ACT_R14, "layout");
_Static_assert(offsetof(as_act, r13) == AS_ACT_R13, "layout");
_Static_assert(offsetof(as_act, r12) == AS_ACT_R12, "layout");
_Static_assert(offsetof(as_act, rbp) == AS_ACT_RBP, "layout");
_Static_assert(offsetof(as_act, rbx) == AS_ACT_RBX, "layout");
_Static_assert(offsetof(as_act, r11) == AS_ACT_R11, "layout");
_Static_assert(offsetof(as_act, r10) == AS_ACT_R10, "layout");
_Static_assert(offsetof(as_act, r9) == AS_ACT_R9, "layout");
_Static_assert(offsetof(as_act, r8) == AS_ACT_R8, "layout");
_Static_assert(offsetof(as_act, rax) == AS_ACT_RAX, "layout");
_Static_assert(offsetof(as_act, rcx) == AS_ACT_RCX, "layout");
_Static_assert(offsetof(as_act, rdx) == AS_ACT_RDX, "layout");
_Static_assert(offsetof(as_act, rsi) == AS_ACT_RSI, "layout");
_Static_assert(offsetof(as_act, rdi) == AS_ACT_RDI, "layout");
_Static_assert(offsetof(as_act, rflags) == AS_ACT_RFLAGS, "layout");
_Static_assert(offsetof(as_act, rip) == AS_ACT_RIP, "layout");
_Static_assert(offsetof(as_act, rsp) == AS_ACT_RSP, "layout");
_Static_assert(offsetof(as_act, mxcsr) == AS_ACT_MXCSR, "layout");
_Static_assert(offsetof(as_act, fcw) == AS_ACT_FCW, "layout");
_Static_assert(offsetof(as_act, pkru) == AS_ACT_PKRU, "layout");
_Static_assert(offsetof(as_act, flags) == AS_ACT_FLAGS, "layout");
_Static_assert(AS_ACT_F_PKRU == AS_ACT_F_PKRU_BIT, "layout");
_Static_assert(offsetof(as_act, fpu) == AS_ACT_FPU, "layout");
_Static_assert(AS_ACT_STAGE == AS_ACT_RIP + 8, "staging = r15 .. rip");

AS_HIDDEN void as__act_start(void);
AS_HIDDEN extern const char as__act_cwin[], as__act_ctail[], as__act_ctail_end[];
AS_HIDDEN extern const char as__act_fwin[], as__act_ftail[], as__act_ftail_load[],
    as__act_ftail_popf[], as__act_ftail_ret[], as__act_ftail_end[];

/*
 * What a record holds, computed once from CPUID and XCR0; racing first
 * calls compute the same values, so plain relaxed stores suffice
 * (async-signal-safe):
 *   as__act_xmask   the XSAVE components a record holds and as_act_resume
 *                   restores (0: FXSAVE/FXRSTOR): every component XCR0
 *                   enables except PKRU (kept in a->pkru, never restored by
 *                   XRSTOR: from a zeroed header that would set PKRU to 0),
 *                   components the OS may disable until first use (XFD,
 *                   CPUID.(0xD,i):ECX[4]: AMX tile config and data; an
 *                   XRSTOR naming them while disarmed faults) and any whose
 *                   standard-format area ends past AS_ACT_FPU_SIZE.  What a
 *                   record does not hold, a resume leaves as it is.
 *   as__act_pku     1 where the OS enabled protection keys (CPUID.7:ECX[4]
 *                   OSPKE): records then carry PKRU.
 *   as__act_xdirect how as_act_resume may load a record's vector state
 *                   without XRSTOR (activation.S, "Direct loads"): 2 where
 *                   the mask is exactly x87|SSE|AVX|opmask|ZMM_Hi256|
 *                   Hi16_ZMM (AVX-512F and BW present), 1 where it is
 *                   x87|SSE|AVX, 0 otherwise (XRSTOR); both need XGETBV(1).
 *   as__act_xoff    where components 2, 5, 6, 7 lie in a record's area:
 *                   [0..3] standard format (CPUID.(0xD,i):EBX), [4..7]
 *                   compacted with XCOMP_BV = as__act_xcomp (bit 63 | mask).
 *   act_fpu_size    the XSAVE size XCR0 asks for (CPUID.(0xD,0):EBX).
 * The CPUID and XGETBV reads go through as__act_cpuid_hook when a test
 * sets it (as__act_cpu_reinit recomputes): that is how the suites make
 * the library believe in a larger XSAVE area than the CPU has.
 */
AS_HIDDEN uint64_t as__act_xmask;
AS_HIDDEN uint8_t as__act_xsavec;
AS_HIDDEN uint8_t as__act_pku;
AS_HIDDEN uint8_t as__act_xdirect;
AS_HIDDEN uint32_t as__act_xoff[8];
AS_HIDDEN uint64_t as__act_xcomp;
AS_HIDDEN void (*as__act_cpuid_hook)(uint32_t leaf, uint32_t sub, uint32_t r[4]);
static size_t act_fpu_size;
static uint64_t act_xcr0_user;
static int act_cpu_done;

#define XFEATURE_PKRU (1ull << 9)
#define XMASK_AVX     0x07ull           /* x87 | SSE | AVX                */
#define XMASK_AVX512  0xe7ull           /* ... | opmask | ZMM_Hi256 | Hi16_ZMM */
#define XGETBV_LEAF   0xffffffffu       /* the hook's name for XGETBV(0)  */

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    void (*hook)(uint32_t, uint32_t, uint32_t *) =
        __atomic_load_n(&as__act_cpuid_hook, __ATOMIC_RELAXED);
    if (hook) {
        hook(leaf, sub, r);
        return;
    }
    if (leaf == XGETBV_LEAF)
        __asm__ volatile("xgetbv" : "=a"(r[0]), "=d"(r[3]) : "c"(0));
    else
        __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                         : "a"(leaf), "c"(sub));
}

/*
 * The direct-load level for mask (see as__act_xdirect) and the offsets it
 * reads, or 0.  Components 2, 5, 6, 7 must have their architectural sizes
 * (256, 64, 512, 1024 bytes: the asm's strides); the compacted offsets
 * follow from them in bit order, 64-byte aligned where CPUID asks.
 */
static uint8_t xdirect_level(uint64_t mask, uint32_t max_leaf, uint32_t off[8])
{
    static const uint32_t comp[4] = { 2, 5, 6, 7 }, size[4] = { 256, 64, 512, 1024 };
    uint32_t r[4];
    if (mask != XMASK_AVX && mask != XMASK_AVX512)
        return 0;
    cpuid(0xd, 1, r);
    if (!(r[0] & (1u << 2)))                    /* XGETBV(1): XINUSE */
        return 0;
    cpuid(1, 0, r);
    if (!(r[2] & (1u << 28)))                   /* AVX */
        return 0;
    uint8_t level = 1;
    if (mask == XMASK_AVX512) {
        if (max_leaf < 7)
            return 0;
        cpuid(7, 0, r);
        if (!(r[1] & (1u << 16)) || !(r[1] & (1u << 30)))  /* AVX512F, AVX512BW */
            return 0;
        level = 2;
    }
    uint32_t at = 576;                          /* legacy region + header */
    for (unsigned k = 0; k < 4; k++) {
        if (!(mask >> comp[k] & 1))
            continue;
        cpuid(0xd, comp[k], r);
        if (r[0] != size[k])
            return 0;
        if (r[2] & 2)
            at = (at + 63) & ~63u;
        off[k] = r[1];
        off[4 + k] = at;
        at += r[0];
    }
    return level;
}

AS_HIDDEN void as__act_cpu_init(void)
{
    if (__atomic_load_n(&act_cpu_done, __ATOMIC_ACQUIRE))
        return;
    uint32_t r[4];
    uint64_t mask = 0, user = 0;
    size_t size = 512;                          /* FXSAVE */
    uint8_t pku = 0, direct = 0;
    uint32_t off[8] = { 0 };
    cpuid(0, 0, r);
    uint32_t max_leaf = r[0];
    cpuid(1, 0, r);
    if ((r[2] & (1u << 26)) && (r[2] & (1u << 27))) {   /* XSAVE, OSXSAVE */
        cpuid(XGETBV_LEAF, 0, r);
        uint64_t xcr0 = (uint64_t)r[3] << 32 | r[0];
        cpuid(0xd, 0, r);
        size = r[1];
        user = xcr0;
        mask = xcr0 & ~XFEATURE_PKRU;
        cpuid(0xd, 1, r);
        __atomic_store_n(&as__act_xsavec, (uint8_t)(r[0] >> 1 & 1), __ATOMIC_RELAXED);
        for (unsigned i = 2; i < 64; i++) {
            if (!(mask >> i & 1))
                continue;
            cpuid(0xd, i, r);
            if ((r[2] & (1u << 4)) || (uint64_t)r[1] + r[0] > AS_ACT_FPU_SIZE)
                mask &= ~(1ull << i);
        }
        direct = xdirect_level(mask, max_leaf, off);
    }
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        pku = (r[2] >> 4) & 1;                  /* OSPKE */
    }
    __atomic_store_n(&as__act_pku, pku, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < 8; k++)
        __atomic_store_n(&as__act_xoff[k], off[k], __ATOMIC_RELAXED);
    __atomic_store_n(&as__act_xcomp, mask | 1ull << 63, __ATOMIC_RELAXED);
    __atomic_store_n(&as__act_xdirect, direct, __ATOMIC_RELAXED);
    __atomic_store_n(&as__act_xmask, mask, __ATOMIC_RELAXED);
    __atomic_store_n(&act_xcr0_user, user, __ATOMIC_RELAXED);
    __atomic_store_n(&act_fpu_size, size, __ATOMIC_RELAXED);
    __atomic_store_n(&act_cpu_done, 1, __ATOMIC_RELEASE);
}

#if AS_HOSTED
/* Hosted programs know what a record holds before their first capture
 * (a CALL capture only reads as__act_pku; it never computes it). */
__attribute__((constructor)) static void act_cpu_startup(void) { as__act_cpu_init(); }
#endif

/* Forget what as__act_cpu_init found and look again (tests, with or
 * without as__act_cpuid_hook; not concurrent with any activation use). */
AS_HIDDEN void as__act_cpu_reinit(void)
{
    __atomic_store_n(&act_cpu_done, 0, __ATOMIC_RELEASE);
    as__act_cpu_init();
}

size_t as_act_fpu_size(void)
{
    as__act_cpu_init();
    return act_fpu_size;
}

uint64_t as_act_fpu_mask(void)
{
    as__act_cpu_init();
    return as__act_xmask ? as__act_xmask : 3;
}

int as_act_fpu_check(void)
{
    as__act_cpu_init();
    uint64_t want = act_xcr0_user & ~XFEATURE_PKRU;
    return (as__act_xmask | 3) == (want | 3) ? 0 : -AS_ENOSPC;
}

/* A FRESH record: the CALL resume jumps to as__act_start with rbx = fn,
 * r12 = arg, rbp = 0 at the top of the stack. */
static void fresh_fill(as_act *a, uintptr_t top, void (*fn)(void *), void *arg)
{
    a->rip = (uintptr_t)as__act_start;
    a->rsp = top;
    a->rbx = (uintptr_t)fn;
    a->r12 = (uintptr_t)arg;
    a->rbp = a->r13 = a->r14 = a->r15 = 0;
    a->mxcsr = AS_MXCSR_DEFAULT;
    a->fcw = AS_FCW_DEFAULT;
    a->flags = 0;                       /* the live PKRU: no rights of its own */
}

#define ACT_PC(a) ((a)->rip)
#define ACT_SP(a) ((a)->rsp)

/*
 * Roll an interrupted resume forward (see activation.S, "The resume
 * window").  The CALL tail keeps rbx, rsp, rip in r9, r10, r11 and never
 * changes them.  The FULL tail reads the staged words at S; its loads are
 * idempotent, so until rsp moves past them every register can be read
 * from S whichever loads already ran.  At the jnz after the release CAS,
 * ZF set means the CAS succeeded: the record is gone, continue as a tail.
 */
int as_act_rollforward(as_act *a)
{
    AS_ASSERT(a);
    uintptr_t pc = a->rip;
    const uint64_t ZF = 1u << 6;
    if (pc == (uintptr_t)as__act_cwin && (a->rflags & ZF))
        pc = (uintptr_t)as__act_ctail;
    if (pc == (uintptr_t)as__act_fwin && (a->rflags & ZF))
        pc = (uintptr_t)as__act_ftail;

    if (in(pc, as__act_ctail, as__act_ctail_end)) {
        a->rbx = a->r9;
        a->rsp = a->r10;
        a->rip = a->r11;
        a->rax = 1;
        return 1;
    }
    if (!in(pc, as__act_ftail, as__act_ftail_end))
        return 0;
    const uint64_t *st;
    if (pc < (uintptr_t)as__act_ftail_popf) {
        st = (const uint64_t *)(pc < (uintptr_t)as__act_ftail_load ? a->rsi : a->rsp);
        __builtin_memcpy(a, st, AS_ACT_RFLAGS);           /* r15 .. rdi */
        st += AS_ACT_RFLAGS / 8;
    } else {
        st = (const uint64_t *)a->rsp;                    /* at popfq or ret */
    }
    if (pc < (uintptr_t)as__act_ftail_ret)
        a->rflags = *st++;
    a->rip = *st++;
    a->rsp = (uintptr_t)st + AS_ACT_REDZONE;
    return 1;
}

#else /* AS_ARCH_AARCH64 */

_Static_assert(offsetof(as_act, x[0]) == AS_ACT_X0, "layout");
_Static_assert(offsetof(as_act, x[16]) == AS_ACT_X16, "layout");
_Static_assert(offsetof(as_act, x[19]) == AS_ACT_X19, "layout");
_Static_assert(offsetof(as_act, x[29]) == AS_ACT_X29, "layout");
_Static_assert(offsetof(as_act, x[30]) == AS_ACT_X30, "layout");
_Static_assert(offsetof(as_act, sp) == AS_ACT_SP, "layout");
_Static_assert(offsetof(as_act, pc) == AS_ACT_PC, "layout");
_Static_assert(offsetof(as_act, pstate) == AS_ACT_PSTATE, "layout");
_Static_assert(offsetof(as_act, fpsr) == AS_ACT_FPSR, "layout");
_Static_assert(offsetof(as_act, fpcr) == AS_ACT_FPCR, "layout");
_Static_assert(offsetof(as_act, sigmask) == AS_ACT_SIGMASK, "layout");
_Static_assert(offsetof(as_act, v) == AS_ACT_V, "layout");
_Static_assert(AS_ACT_STAGE == AS_ACT_PSTATE + 8, "staging = x0 .. pstate");

AS_HIDDEN void as__act_start(void);
AS_HIDDEN extern const char as__act_cwin[], as__act_ctail[], as__act_ctail_end[];
AS_HIDDEN extern const char as__act_fwin[], as__act_ftail[], as__act_ftail_load[],
    as__act_ftail_ret[], as__act_ftail_end[];

/*
 * The PSTATE bits beyond NZCV this CPU has (AS_PSTATE_DIT, _SSBS, _TCO,
 * in their SPSR positions): capture_full reads and the staged resume
 * writes exactly these, since an MRS/MSR of a missing one is undefined.
 * Hosted builds set it at start-up (src/hosted/ucontext.c, from the
 * hwcaps); freestanding ones on the first as_act_pool_init or
 * as_act_fpu_size, from the ID registers EL1 can read.
 */
AS_HIDDEN uint32_t as__act_pstate_ext;

AS_HIDDEN uint32_t as__act_pstate_from_id(uint64_t pfr0, uint64_t pfr1)
{
    uint32_t bits = 0;
    if (pfr0 >> 48 & 0xf)
        bits |= AS_PSTATE_DIT;          /* ID_AA64PFR0_EL1.DIT  */
    if (pfr1 >> 4 & 0xf)
        bits |= AS_PSTATE_SSBS;         /* ID_AA64PFR1_EL1.SSBS */
    if (pfr1 >> 8 & 0xf)
        bits |= AS_PSTATE_TCO;          /* ID_AA64PFR1_EL1.MTE  */
    return bits;
}

static void act_cpu_init(void)
{
#if !AS_HOSTED
    uint64_t pfr0, pfr1;
    __asm__ volatile("mrs %0, id_aa64pfr0_el1\n\tmrs %1, id_aa64pfr1_el1"
                     : "=r"(pfr0), "=r"(pfr1));
    __atomic_store_n(&as__act_pstate_ext, as__act_pstate_from_id(pfr0, pfr1),
                     __ATOMIC_RELAXED);
#endif
}

size_t as_act_fpu_size(void)
{
    act_cpu_init();
    return AS_ACT_FPU_SIZE;
}

uint64_t as_act_fpu_mask(void) { return 3; }      /* FPSIMD: q0-q31, FPSR, FPCR */
int as_act_fpu_check(void) { return 0; }

/* A FRESH record: the CALL resume returns (ret x16) to as__act_start with
 * x19 = fn, x20 = arg, x29 = 0 at the top of the stack. */
static void fresh_fill(as_act *a, uintptr_t top, void (*fn)(void *), void *arg)
{
    a->pc = (uintptr_t)as__act_start;
    a->sp = top;
    for (int i = 19; i <= 29; i++)
        a->x[i] = 0;
    a->x[19] = (uintptr_t)fn;
    a->x[20] = (uintptr_t)arg;
    for (int i = 8; i <= 15; i++)
        __builtin_memset(a->v[i], 0, 16);
    a->fpcr = AS_FPCR_DEFAULT;
}

#define ACT_PC(a) ((a)->pc)
#define ACT_SP(a) ((a)->sp)

/*
 * Roll an interrupted resume forward (activation.S, the labels).  The CALL
 * tail keeps pc and sp in x16 and x17.  The staged FULL tail reads
 * the staged words at S = x8, then S = sp; its loads are idempotent.  At
 * the cbnz after STLXR, w7 == 0 means the store succeeded: released.
 */
int as_act_rollforward(as_act *a)
{
    AS_ASSERT(a);
    uintptr_t pc = a->pc;
    if (pc == (uintptr_t)as__act_cwin && (uint32_t)a->x[7] == 0)
        pc = (uintptr_t)as__act_ctail;
    if (in(pc, as__act_ctail, as__act_ctail_end)) {
        a->sp = a->x[17];
        a->pc = a->x[16];
        a->x[30] = a->x[16];
        a->x[0] = 1;
        return 1;
    }
    if (pc == (uintptr_t)as__act_fwin && (uint32_t)a->x[7] == 0)
        pc = (uintptr_t)as__act_ftail;
    if (!in(pc, as__act_ftail, as__act_ftail_end))
        return 0;
    if (pc < (uintptr_t)as__act_ftail_ret) {
        const uint64_t *st = (const uint64_t *)(pc < (uintptr_t)as__act_ftail_load ? a->x[8] : a->sp);
        __builtin_memcpy(a->x, st, 31 * 8);
        a->pc = st[AS_ACT_PC / 8];
        a->pstate = (a->pstate & 0x0fffffffu) | (st[AS_ACT_PSTATE / 8] & 0xf0000000u);
        a->sp = (uintptr_t)st + AS_ACT_STAGE;
    } else {
        a->pc = a->x[16];
    }
    a->x[16] = a->pc;
    return 1;
}

#endif /* AS_ARCH_X86_64 */

/* ---- both architectures ---- */

void as_act_init(as_act *a, const as_stack *s, void (*fn)(void *), void *arg)
{
    if (!a)
        return;
    a->kind = AS_ACT_NONE;
    uintptr_t top = as__stack_top(s);
    if (!fn || !top)
        return;
    fresh_fill(a, top, fn, arg);
    a->kind = AS_ACT_FRESH;
}

uintptr_t as_act_pc(const as_act *a) { return a && a->kind ? ACT_PC(a) : 0; }
uintptr_t as_act_sp(const as_act *a) { return a && a->kind ? ACT_SP(a) : 0; }

int as_act_resume_busy(uintptr_t pc)
{
    return in(pc, (const char *)as_act_resume, as__act_resume_end) &&
           !in(pc, as__act_ctail, as__act_ctail_end) &&
           !in(pc, as__act_ftail, as__act_ftail_end);
}

int as_act_kind(const as_act *a) { return a ? a->kind : AS_ACT_NONE; }

int as_act_pool_init(as_act_pool *p, as_act *records, size_t n)
{
    if (!p || !records || n == 0 || n > SLOT_MASK || ((uintptr_t)records & 63) ||
        n > (UINTPTR_MAX - (uintptr_t)records) / sizeof(as_act))
        return -AS_EINVAL;
    (void)as_act_fpu_size();            /* what a record holds, now */
    p->records = records;
    p->n = n;
    __atomic_store_n(&p->fresh, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->head, 0, __ATOMIC_RELEASE);
    return 0;
}

/* A record handed out for the first time: its pool fields, then out. */
static as_act *pool_fresh(as_act_pool *p)
{
    size_t f = __atomic_load_n(&p->fresh, __ATOMIC_RELAXED);
    do {
        if (f >= p->n)
            return NULL;
    } while (!__atomic_compare_exchange_n(&p->fresh, &f, f + 1, 1,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    as_act *r = &p->records[f];
    r->pool = p;
    r->slot = (uint32_t)(f + 1);
    r->next = 0;
    r->kind = AS_ACT_NONE;
    __atomic_store_n(&r->self, r, __ATOMIC_RELEASE);
    return r;
}

as_act *as_act_alloc(as_act_pool *p)
{
    if (!p || !p->records)
        return NULL;
    uint64_t old = __atomic_load_n(&p->head, __ATOMIC_ACQUIRE);
    for (;;) {
        uint32_t s = (uint32_t)(old & SLOT_MASK);
        if (!s)
            return pool_fresh(p);
        as_act *r = &p->records[s - 1];
        uint64_t nx = __atomic_load_n(&r->next, __ATOMIC_RELAXED);
        uint64_t new_head = (((old >> 32) + 1) << 32) | nx;
        if (__atomic_compare_exchange_n(&p->head, &old, new_head, 1,
                                        __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&r->self, r, __ATOMIC_RELAXED);    /* out */
            return r;
        }
    }
}

void as_act_release(as_act *a)
{
    if (!a || !a->pool)
        return;
    /* Out -> in; a record already in its pool (or not from one) stays. */
    const as_act *me = a;
    if (!__atomic_compare_exchange_n(&a->self, &me, NULL, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    as_act_pool *p = a->pool;
    uint64_t old = __atomic_load_n(&p->head, __ATOMIC_RELAXED);
    uint64_t new_head;
    do {
        __atomic_store_n(&a->next, (uint32_t)(old & SLOT_MASK), __ATOMIC_RELAXED);
        new_head = (old & ~SLOT_MASK) | a->slot;
    } while (!__atomic_compare_exchange_n(&p->head, &old, new_head, 1,
                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

size_t as_act_pool_free(const as_act_pool *p)
{
    if (!p || !p->records)
        return 0;
    size_t fresh = __atomic_load_n(&p->fresh, __ATOMIC_RELAXED);
    size_t count = 0, listed = fresh < p->n ? fresh : p->n;
    uint32_t s = (uint32_t)(__atomic_load_n(&p->head, __ATOMIC_ACQUIRE) & SLOT_MASK);
    while (s && s <= listed && count < listed) {
        count++;
        s = __atomic_load_n(&p->records[s - 1].next, __ATOMIC_RELAXED);
    }
    return count + (p->n - listed);
}
