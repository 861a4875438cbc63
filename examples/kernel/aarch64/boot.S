/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/aarch64/boot.S - EL1 entry, MMU, vectors.
 *
 * qemu-system-aarch64 -M virt -kernel starts the boot CPU at _start at EL1
 * with the MMU off; the second CPU starts at secondary_entry when the boot
 * CPU asks PSCI (CPU_ON), with x0 = the context value it passed: here, the
 * top of the CPU's boot stack.
 *
 * Memory map: an identity map of the low 4 GiB in 1 GiB blocks.
 *   0x00000000-0x3fffffff  Device-nGnRnE (GIC, PL011 UART), execute-never
 *   0x40000000-0x7fffffff  Normal write-back, inner shareable (RAM)
 *
 * Vectors: entry.S.
 */

    .section .text.boot, "ax"
    .globl  _start
_start:
    ldr     x0, =__bss_start           /* zero .bss, stacks included */
    ldr     x1, =__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:  ldr     x0, =boot_stack_top
    mov     sp, x0
    bl      setup_el1
    bl      arch_boot_bsp
    b       halt

    .globl  secondary_entry
secondary_entry:
    mov     sp, x0
    bl      setup_el1
    bl      arch_boot_ap
halt:
    wfi
    b       halt

/* FP/SIMD access (the library's switch saves FPCR and d8-d15), vectors,
 * and the MMU with caches.  Clobbers x0, x1. */
setup_el1:
    mov     x0, #(3 << 20)             /* CPACR_EL1.FPEN: no traps */
    msr     cpacr_el1, x0
    ldr     x0, =vectors
    msr     vbar_el1, x0
    ldr     x0, =0xff00                /* attr0 device nGnRnE, attr1 normal WB */
    msr     mair_el1, x0
    /* T0SZ 32 (4 GiB, walks start at level 1), inner/outer WB WA, inner
     * shareable, 4 KiB granule, TTBR1 walks disabled, 32-bit PA. */
    ldr     x0, =(32 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23))
    msr     tcr_el1, x0
    ldr     x0, =l1_table
    msr     ttbr0_el1, x0
    tlbi    vmalle1
    dsb     ish
    isb
    mrs     x0, sctlr_el1
    mov     x1, #((1 << 0) | (1 << 2) | (1 << 12))  /* M, C, I */
    orr     x0, x0, x1
    bic     x0, x0, #(1 << 1)                       /* A: no alignment faults */
    msr     sctlr_el1, x0
    isb
    ret

/* --- data ----------------------------------------------------------------------- */
    .data
    .balign 4096
l1_table:
    .quad   0x00000000 | (3 << 53) | (1 << 10) | (0 << 2) | 1   /* device, XN  */
    .quad   0x40000000 | (1 << 10) | (3 << 8) | (1 << 2) | 1    /* normal RAM  */
    .quad   0
    .quad   0

    .bss
    .balign 16
boot_stack:
    .skip   16384
boot_stack_top:

    .section .note.GNU-stack, "", %progbits
