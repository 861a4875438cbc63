/* SPDX-License-Identifier: MIT */
/*
 * src/hosted/ucontext.c - activation records from and to the ucontext_t an
 * SA_SIGINFO handler receives (Linux signal frames).
 *
 * x86_64: uc_mcontext.gregs holds the GPRs, rip, rsp and eflags;
 * uc_mcontext.fpregs points at the FXSAVE image, which the kernel extends
 * into a standard-format XSAVE area when bytes 464..511 (sw_reserved)
 * start with FP_XSTATE_MAGIC1; that block also says how big the area is
 * (xstate_size) and which components the kernel put in it (xfeatures).
 * The area is copied as is: the kernel already did the XSAVE.
 *
 * aarch64: uc_mcontext holds x0-x30, sp, pc, pstate and, in __reserved, a
 * chain of records {magic, size} ending in a zero one; fpsimd_context
 * (q0-q31, FPSR, FPCR) is always the first.  A FULL record is resumed by
 * as__act_sigreturn: it builds a frame of its own (the record's registers,
 * an fpsimd_context, the end marker) and calls rt_sigreturn on it.
 */
#include "hosted.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <ucontext.h>

#if AS_ARCH_X86_64

AS_HIDDEN void as__act_cpu_init(void);
AS_HIDDEN extern uint64_t as__act_xmask;
AS_HIDDEN extern uint8_t as__act_pku;

#define XSTATE_MAGIC1    0x46505853u
#define FX_SIZE          512        /* legacy FXSAVE region                 */
#define SW_BYTES         464        /* offset of the software-reserved block */
#define XHDR             512        /* XSAVE header: xstate_bv, xcomp_bv, 0s */
#define XHDR_SIZE         64

#define XFEATURE_PKRU    9

struct fpx_sw {                     /* the kernel's struct _fpx_sw_bytes    */
    uint32_t magic1, extended_size;
    uint64_t xfeatures;
    uint32_t xstate_size;
};

/* The XSAVE size the kernel used for this frame, or 0 for FXSAVE only. */
static uint32_t frame_xsize(const unsigned char *fx)
{
    struct fpx_sw sw;
    memcpy(&sw, fx + SW_BYTES, sizeof sw);
    if (sw.magic1 != XSTATE_MAGIC1 || sw.xstate_size < XHDR + XHDR_SIZE)
        return 0;
    return sw.xstate_size;
}

static uint64_t frame_xfeatures(const unsigned char *fx)
{
    struct fpx_sw sw;
    memcpy(&sw, fx + SW_BYTES, sizeof sw);
    return sw.xfeatures;
}

static uint64_t get_bv(const unsigned char *f)
{
    uint64_t bv;
    memcpy(&bv, f + XHDR, 8);
    return bv;
}

static void put_bv(unsigned char *f, uint64_t bv) { memcpy(f + XHDR, &bv, 8); }

static uint32_t fx_mxcsr_mask(const unsigned char *fx)
{
    uint32_t m;
    memcpy(&m, fx + 28, 4);
    return m ? m : 0xffbf;          /* 0 means the architectural default */
}

/*
 * A record filled by as_act_capture_full with XSAVEC is in the compacted
 * format; signal frames use the standard one (and hold PKRU, which
 * records keep apart, in a->pkru).  Components 2.. of a
 * compacted area follow each other in bit order, each at the next 64-byte
 * boundary if CPUID.(0xD,i):ECX[1] says so; in the standard format each
 * sits at CPUID.(0xD,i):EBX.  Sizes and offsets are read once.
 */
static struct { uint32_t size, off, align; } xcomp[64];
static int xcomp_done;

static void xcomp_init(void)
{
    if (__atomic_load_n(&xcomp_done, __ATOMIC_ACQUIRE))
        return;
    as__act_cpu_init();
    for (unsigned i = 2; i < 64; i++) {
        if (!((as__act_xmask | 1ull << XFEATURE_PKRU) >> i & 1))
            continue;
        uint32_t a, b, c, d;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(i));
        xcomp[i].size = a;
        xcomp[i].off = b;
        xcomp[i].align = c >> 1 & 1;
    }
    __atomic_store_n(&xcomp_done, 1, __ATOMIC_RELEASE);
}

/*
 * PKRU in a signal frame: the kernel saves the interrupted thread's PKRU
 * as component 9 of the frame's standard-format area and restores it from
 * there on sigreturn - to its initial value, 0 (every key open), if the
 * header's XSTATE_BV leaves bit 9 clear.  NULL if this frame has no room
 * for it.
 */
static unsigned char *frame_pkru(const unsigned char *fx)
{
    uint32_t xsize = fx ? frame_xsize(fx) : 0;
    if (!xsize || !(frame_xfeatures(fx) >> XFEATURE_PKRU & 1))
        return NULL;
    xcomp_init();
    if (!xcomp[XFEATURE_PKRU].size || xcomp[XFEATURE_PKRU].off + 4 > xsize)
        return NULL;
    return (unsigned char *)fx + xcomp[XFEATURE_PKRU].off;
}

void as_act_from_ucontext(as_act *a, const void *ucontext)
{
    AS_ASSERT(a && ucontext);
    const ucontext_t *uc = ucontext;
    const greg_t *g = uc->uc_mcontext.gregs;
    as__act_cpu_init();
    a->r15 = g[REG_R15]; a->r14 = g[REG_R14]; a->r13 = g[REG_R13];
    a->r12 = g[REG_R12]; a->rbp = g[REG_RBP]; a->rbx = g[REG_RBX];
    a->r11 = g[REG_R11]; a->r10 = g[REG_R10]; a->r9 = g[REG_R9];
    a->r8 = g[REG_R8];   a->rax = g[REG_RAX]; a->rcx = g[REG_RCX];
    a->rdx = g[REG_RDX]; a->rsi = g[REG_RSI]; a->rdi = g[REG_RDI];
    a->rflags = g[REG_EFL]; a->rip = g[REG_RIP]; a->rsp = g[REG_RSP];

    unsigned char *f = a->fpu;
    const unsigned char *fx = (const unsigned char *)uc->uc_mcontext.fpregs;
    uint64_t xmask = as__act_xmask;
    if (!fx) {
        /* No FP state in the frame: resume with the initial state. */
        memset(f, 0, FX_SIZE + XHDR_SIZE);
        uint32_t mx = AS_MXCSR_DEFAULT;
        uint16_t cw = AS_FCW_DEFAULT;
        memcpy(f + 24, &mx, 4);
        memcpy(f, &cw, 2);
    } else {
        uint32_t xsize = xmask ? frame_xsize(fx) : 0;
        if (xsize) {
            memcpy(f, fx, xsize < AS_ACT_FPU_SIZE ? xsize : AS_ACT_FPU_SIZE);
        } else {
            memcpy(f, fx, FX_SIZE);
            if (xmask) {                /* legacy frame on an XSAVE CPU */
                memset(f + XHDR, 0, XHDR_SIZE);
                f[XHDR] = 3;            /* x87 | SSE */
            }
        }
        if (xmask) {
            /* Sanitize the header so XRSTOR cannot fault: only components
             * the OS enabled and the record holds, standard format, the
             * reserved bytes zero. */
            uint64_t bv;
            memcpy(&bv, f + XHDR, 8);
            bv &= xmask | 3;
            memset(f + XHDR, 0, XHDR_SIZE);
            memcpy(f + XHDR, &bv, 8);
        }
        uint32_t mx;
        memcpy(&mx, f + 24, 4);
        mx &= fx_mxcsr_mask(fx);        /* a reserved bit would #GP */
        memcpy(f + 24, &mx, 4);
    }
    memcpy(&a->mxcsr, f + 24, 4);
    memcpy(&a->fcw, f, 2);
    /* The interrupted code's PKRU, from the frame (0 if its header says
     * initial), never the handler's own. */
    a->flags = 0;
    const unsigned char *pk = as__act_pku ? frame_pkru(fx) : NULL;
    if (pk) {
        a->pkru = 0;
        if (get_bv(fx) >> XFEATURE_PKRU & 1)
            memcpy(&a->pkru, pk, 4);
        a->flags = AS_ACT_F_PKRU;
    }
    a->kind = AS_ACT_FULL;
    as_act_rollforward(a);
}

/* The record's components (compacted image f) into the frame's
 * standard-format area fx of xsize bytes. */
static void expand_compacted(unsigned char *fx, const unsigned char *f, uint32_t xsize)
{
    xcomp_init();
    uint64_t bv = get_bv(f), comp;
    memcpy(&comp, f + XHDR + 8, 8);
    uint32_t at = XHDR + XHDR_SIZE;
    for (unsigned i = 2; i < 63; i++) {
        if (!(comp >> i & 1))
            continue;
        if (xcomp[i].align)
            at = (at + 63) & ~63u;
        if ((bv >> i & 1) && xcomp[i].off + xcomp[i].size <= xsize &&
            at + xcomp[i].size <= AS_ACT_FPU_SIZE)
            memcpy(fx + xcomp[i].off, f + at, xcomp[i].size);
        at += xcomp[i].size;
    }
}

/* The record's components (standard image f) into the frame. */
static void copy_standard(unsigned char *fx, const unsigned char *f, uint32_t xsize)
{
    xcomp_init();
    uint64_t bv = get_bv(f);
    for (unsigned i = 2; i < 63; i++)
        if ((as__act_xmask & bv) >> i & 1 && xcomp[i].off + xcomp[i].size <= xsize &&
            xcomp[i].off + xcomp[i].size <= AS_ACT_FPU_SIZE)
            memcpy(fx + xcomp[i].off, f + xcomp[i].off, xcomp[i].size);
}

/* Give the frame the record's PKRU, if it holds one; else leave the
 * frame's (the interrupted code's) alone. */
static void put_pkru(unsigned char *fx, const as_act *a)
{
    unsigned char *pk = (a->flags & AS_ACT_F_PKRU) ? frame_pkru(fx) : NULL;
    if (!pk)
        return;
    memcpy(pk, &a->pkru, 4);
    put_bv(fx, get_bv(fx) | 1ull << XFEATURE_PKRU);
}

void as_act_to_ucontext(const as_act *a, void *ucontext)
{
    AS_ASSERT(a && ucontext);
    ucontext_t *uc = ucontext;
    greg_t *g = uc->uc_mcontext.gregs;
    unsigned char *fx = (unsigned char *)uc->uc_mcontext.fpregs;
    g[REG_R15] = a->r15; g[REG_R14] = a->r14; g[REG_R13] = a->r13;
    g[REG_R12] = a->r12; g[REG_RBP] = a->rbp; g[REG_RBX] = a->rbx;
    g[REG_RIP] = a->rip; g[REG_RSP] = a->rsp;
    if (a->kind != AS_ACT_FULL) {
        /* What a resume would do: callee-saved state, rax = 1, the FP
         * control words, PKRU if held; the rest of the frame is left as
         * it was. */
        g[REG_RAX] = 1;
        if (fx) {
            uint32_t mx;
            memcpy(&mx, fx + 24, 4);
            mx = (mx & ~(uint32_t)AS_MXCSR_CTRL) | (a->mxcsr & AS_MXCSR_CTRL);
            memcpy(fx + 24, &mx, 4);
            memcpy(fx, &a->fcw, 2);
            put_pkru(fx, a);
        }
        return;
    }
    g[REG_R11] = a->r11; g[REG_R10] = a->r10; g[REG_R9] = a->r9;
    g[REG_R8] = a->r8;   g[REG_RAX] = a->rax; g[REG_RCX] = a->rcx;
    g[REG_RDX] = a->rdx; g[REG_RSI] = a->rsi; g[REG_RDI] = a->rdi;
    g[REG_EFL] = a->rflags;
    if (!fx)
        return;
    /* Keep the frame's own sw_reserved block (the kernel reads it back)
     * and copy no more than the area it made.  Components the record does
     * not hold (PKRU, AMX tiles, what did not fit) keep the frame's state
     * and their bits of its XSTATE_BV; PKRU then comes from a->pkru. */
    const unsigned char *f = a->fpu;
    uint32_t xsize = frame_xsize(fx);
    memcpy(fx, f, SW_BYTES);
    if (!xsize || !as__act_xmask)
        return;
    uint64_t held = as__act_xmask | 3, fbv = get_bv(fx), rbv = get_bv(f);
    uint64_t comp;
    memcpy(&comp, f + XHDR + 8, 8);
    if (comp >> 63)
        expand_compacted(fx, f, xsize);
    else
        copy_standard(fx, f, xsize);
    put_bv(fx, (fbv & ~held) | (rbv & held));
    put_pkru(fx, a);
}

#endif /* AS_ARCH_X86_64 */

#if AS_ARCH_AARCH64

#define FPSIMD_REC_MAGIC 0x46508001u

/*
 * Which PSTATE bits beyond NZCV capture_full and the staged resume
 * handle (src/activation.c): from the ID registers where the kernel
 * emulates them at EL0 (HWCAP_CPUID), else from the hwcaps.
 */
AS_HIDDEN extern uint32_t as__act_pstate_ext;
AS_HIDDEN uint32_t as__act_pstate_from_id(uint64_t pfr0, uint64_t pfr1);

__attribute__((constructor))
static void act_pstate_detect(void)
{
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    uint32_t bits = 0;
    if (hw & (1ul << 11)) {                         /* HWCAP_CPUID */
        uint64_t pfr0, pfr1;
        __asm__ volatile("mrs %0, id_aa64pfr0_el1\n\tmrs %1, id_aa64pfr1_el1"
                         : "=r"(pfr0), "=r"(pfr1));
        bits = as__act_pstate_from_id(pfr0, pfr1);
    } else {
        if (hw & (1ul << 24))                       /* HWCAP_DIT   */
            bits |= AS_PSTATE_DIT;
        if (hw & (1ul << 28))                       /* HWCAP_SSBS  */
            bits |= AS_PSTATE_SSBS;
        if (hw2 & (1ul << 18))                      /* HWCAP2_MTE  */
            bits |= AS_PSTATE_TCO;
    }
    __atomic_store_n(&as__act_pstate_ext, bits, __ATOMIC_RELAXED);
}

struct ctx_head { uint32_t magic, size; };
struct fpsimd_rec {
    struct ctx_head head;
    uint32_t fpsr, fpcr;
    unsigned char v[32][16];
};

static struct fpsimd_rec *find_fpsimd(const mcontext_t *mc)
{
    unsigned char *p = (unsigned char *)mc->__reserved;
    unsigned char *end = p + sizeof mc->__reserved;
    while (p + sizeof(struct ctx_head) <= end) {
        struct ctx_head h;
        memcpy(&h, p, sizeof h);
        if (h.magic == 0 || h.size < sizeof h)
            return NULL;
        if (h.magic == FPSIMD_REC_MAGIC)
            return (struct fpsimd_rec *)p;
        p += h.size;
    }
    return NULL;
}

/* After the fpsimd record, end the chain: SVE/SME records would make the
 * kernel restore from them instead, and the record does not hold them. */
static void end_after(struct fpsimd_rec *f)
{
    struct ctx_head *end = (struct ctx_head *)(f + 1);
    end->magic = 0;
    end->size = 0;
}

void as_act_from_ucontext(as_act *a, const void *ucontext)
{
    AS_ASSERT(a && ucontext);
    const ucontext_t *uc = ucontext;
    const mcontext_t *mc = &uc->uc_mcontext;
    memcpy(a->x, mc->regs, sizeof a->x);
    a->sp = mc->sp;
    a->pc = mc->pc;
    a->pstate = mc->pstate;
    const struct fpsimd_rec *f = find_fpsimd(mc);
    if (f) {
        a->fpsr = f->fpsr;
        a->fpcr = f->fpcr;
        memcpy(a->v, f->v, sizeof a->v);
    } else {
        a->fpsr = a->fpcr = 0;
        memset(a->v, 0, sizeof a->v);
    }
    memcpy(&a->sigmask, &uc->uc_sigmask, sizeof a->sigmask);
    a->kind = AS_ACT_FULL;
    as_act_rollforward(a);
}

void as_act_to_ucontext(const as_act *a, void *ucontext)
{
    AS_ASSERT(a && ucontext);
    ucontext_t *uc = ucontext;
    mcontext_t *mc = &uc->uc_mcontext;
    struct fpsimd_rec *f = find_fpsimd(mc);
    mc->sp = a->sp;
    mc->pc = a->pc;
    if (a->kind != AS_ACT_FULL) {
        /* What a resume would do: callee-saved state, x0 = 1, lr = pc. */
        memcpy(&mc->regs[19], &a->x[19], 11 * 8);
        mc->regs[30] = a->pc;
        mc->regs[0] = 1;
        if (f) {
            f->fpcr = a->fpcr;
            for (int i = 8; i <= 15; i++)
                memcpy(f->v[i], a->v[i], 8);
            end_after(f);
        }
        return;
    }
    memcpy(mc->regs, a->x, sizeof a->x);
    mc->pstate = a->pstate;
    if (f) {
        f->fpsr = a->fpsr;
        f->fpcr = a->fpcr;
        memcpy(f->v, a->v, sizeof f->v);
        end_after(f);
    }
}

/*
 * The hosted resume of a FULL record (as_act_resume branches here): build
 * { siginfo, ucontext } on our stack, give the record back to its pool
 * (every read of it is done), and rt_sigreturn.  uc_stack must repeat the
 * thread's current sigaltstack, which sigreturn re-installs.
 */
AS_HIDDEN AS_NORETURN void as__act_sigreturn(as_act *a);
void as__act_sigreturn(as_act *a)
{
    struct {
        siginfo_t info;
        ucontext_t uc;
    } frame __attribute__((aligned(16)));
    memset(&frame.uc, 0, offsetof(ucontext_t, uc_mcontext) + offsetof(mcontext_t, __reserved));
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0) {
        ss.ss_flags &= ~SS_ONSTACK;
        frame.uc.uc_stack = ss;
    } else {
        frame.uc.uc_stack.ss_flags = SS_DISABLE;
    }
    if (a->sigmask == ~(uint64_t)0)     /* as_act_capture_full: keep ours */
        pthread_sigmask(SIG_BLOCK, NULL, &frame.uc.uc_sigmask);
    else
        memcpy(&frame.uc.uc_sigmask, &a->sigmask, sizeof a->sigmask);
    struct fpsimd_rec *f = (struct fpsimd_rec *)frame.uc.uc_mcontext.__reserved;
    f->head.magic = FPSIMD_REC_MAGIC;
    f->head.size = sizeof *f;
    end_after(f);
    as_act_to_ucontext(a, &frame.uc);
    as_act_release(a);
    __asm__ volatile("mov sp, %0\n\t"
                     "mov x8, #139\n\t"          /* __NR_rt_sigreturn */
                     "svc #0"
                     : : "r"(&frame) : "memory");
    __builtin_unreachable();
}

#endif /* AS_ARCH_AARCH64 */
