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
 */
#include "hosted.h"
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#if AS_ARCH_X86_64

AS_HIDDEN void as__act_cpu_init(void);
AS_HIDDEN extern uint64_t as__act_xmask;

#define XSTATE_MAGIC1    0x46505853u
#define FX_SIZE          512        /* legacy FXSAVE region                 */
#define SW_BYTES         464        /* offset of the software-reserved block */
#define XHDR             512        /* XSAVE header: xstate_bv, xcomp_bv, 0s */
#define XHDR_SIZE         64

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

static uint32_t fx_mxcsr_mask(const unsigned char *fx)
{
    uint32_t m;
    memcpy(&m, fx + 28, 4);
    return m ? m : 0xffbf;          /* 0 means the architectural default */
}

void as_act_from_ucontext(as_act *a, const void *ucontext)
{
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
    a->kind = AS_ACT_FULL;
    as_act_rollforward(a);
}

void as_act_to_ucontext(const as_act *a, void *ucontext)
{
    ucontext_t *uc = ucontext;
    greg_t *g = uc->uc_mcontext.gregs;
    unsigned char *fx = (unsigned char *)uc->uc_mcontext.fpregs;
    g[REG_R15] = a->r15; g[REG_R14] = a->r14; g[REG_R13] = a->r13;
    g[REG_R12] = a->r12; g[REG_RBP] = a->rbp; g[REG_RBX] = a->rbx;
    g[REG_RIP] = a->rip; g[REG_RSP] = a->rsp;
    if (a->kind != AS_ACT_FULL) {
        /* What a resume would do: callee-saved state, rax = 1, the FP
         * control words; the rest of the frame is left as it was. */
        g[REG_RAX] = 1;
        if (fx) {
            uint32_t mx;
            memcpy(&mx, fx + 24, 4);
            mx = (mx & ~(uint32_t)AS_MXCSR_CTRL) | (a->mxcsr & AS_MXCSR_CTRL);
            memcpy(fx + 24, &mx, 4);
            memcpy(fx, &a->fcw, 2);
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
     * and copy no more than the area it made. */
    const unsigned char *f = a->fpu;
    uint32_t xsize = frame_xsize(fx);
    memcpy(fx, f, SW_BYTES);
    if (xsize && as__act_xmask) {
        uint32_t n = xsize < AS_ACT_FPU_SIZE ? xsize : AS_ACT_FPU_SIZE;
        memcpy(fx + FX_SIZE, f + FX_SIZE, n - FX_SIZE);
    }
}

#endif /* AS_ARCH_X86_64 */
