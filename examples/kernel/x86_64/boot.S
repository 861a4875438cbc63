/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/x86_64/boot.S - from the multiboot loader to C.
 *
 * qemu-system-x86_64 -kernel loads the flat image at 1 MiB (the header's
 * a.out-kludge addresses) and jumps to _start in 32-bit protected mode.
 * We identity-map the first 4 GiB with 2 MiB pages (the local APIC lives
 * at 0xfee00000), enable PAE, long mode and SYSCALL, and enter C.
 *
 * Application processors start in real mode at ap_tramp, copied to
 * AP_TRAMP (0x8000) by arch_start_cpu: 16-bit -> 32-bit (the same GDT)
 * -> enter_long, which is shared with the boot CPU.
 *
 * GDT:  0x08 code64   0x10 data   0x18 code32   0x20 TSS cpu0   0x30 TSS cpu1
 *       0x40 user data (DPL 3)   0x48 user code64 (DPL 3)
 * (SYSCALL takes CS = STAR[47:32] = 0x08 and SS = that + 8 = 0x10; SYSRET
 * to 64-bit mode takes SS = STAR[63:48] + 8 = 0x40 and CS = that + 16 =
 * 0x48, both with RPL 3, so STAR[63:48] = 0x38.)
 */
#define AP_TRAMP   0x8000
#define AP(sym)    ((sym) - ap_tramp + AP_TRAMP)

#define MB_MAGIC   0x1badb002
#define MB_FLAGS   0x00010000          /* the address fields are valid */

    .section .multiboot, "a"
    .p2align 2
mb_header:
    .long   MB_MAGIC
    .long   MB_FLAGS
    .long   -(MB_MAGIC + MB_FLAGS)
    .long   mb_header                  /* header_addr   */
    .long   mb_header                  /* load_addr: the image starts here */
    .long   _edata                     /* load_end_addr */
    .long   _end                       /* bss_end_addr  */
    .long   _start                     /* entry_addr    */

    .text
    .code32
    .globl  _start
_start:
    cli
    cld
    movl    $__bss_start, %edi         /* zero .bss (page tables, stacks) */
    movl    $_end, %ecx
    subl    %edi, %ecx
    xorl    %eax, %eax
    rep stosb
    movl    $boot_stack_top, %esp

    /* PML4[0] -> PDPT; PDPT[0..3] -> PD[0..3]; PD[i] = i * 2 MiB, PS|RW|P,
     * and cache-disabled (PCD|PWT) from 3 GiB up, where the APIC is. */
    movl    $pdpt + 3, pml4
    movl    $pd + 3, %eax
    xorl    %ecx, %ecx
1:  movl    %eax, pdpt(,%ecx,8)
    addl    $4096, %eax
    incl    %ecx
    cmpl    $4, %ecx
    jb      1b
    xorl    %ecx, %ecx
2:  movl    %ecx, %eax
    shll    $21, %eax
    orl     $0x83, %eax
    cmpl    $1536, %ecx
    jb      3f
    orl     $0x18, %eax
3:  movl    %eax, pd(,%ecx,8)
    incl    %ecx
    cmpl    $2048, %ecx
    jb      2b

    lgdt    gdtr
    movl    $long_bsp, %edi
    /* fall through */

/*
 * enter_long - protected mode with paging off -> 64-bit mode.
 *   on entry: edi = the 64-bit code to run (below 4 GiB).
 */
enter_long:
    movl    %cr4, %eax
    orl     $((1 << 5) | (1 << 9) | (1 << 10)), %eax  /* PAE, OSFXSR, OSXMMEXCPT */
    movl    %eax, %cr4
    movl    $pml4, %eax
    movl    %eax, %cr3
    movl    $0xc0000080, %ecx          /* EFER */
    rdmsr
    orl     $((1 << 8) | (1 << 0)), %eax               /* LME, SCE */
    wrmsr
    movl    %cr0, %eax
    andl    $~(1 << 2), %eax                           /* EM off: SSE control regs work */
    orl     $((1 << 31) | (1 << 5) | (1 << 1) | 1), %eax  /* PG, NE, MP, PE */
    movl    %eax, %cr0
    pushl   $0x08
    pushl   %edi
    lret                               /* into the 64-bit code segment */

    .code64
long_bsp:
    call    load_segments
    leaq    boot_stack_top(%rip), %rsp
    lgdt    gdtr(%rip)                 /* now with its 64-bit base */
    call    arch_boot_bsp
    jmp     halt

long_ap:
    call    load_segments
    movq    ap_boot_rsp(%rip), %rsp
    call    arch_boot_ap
halt:
    cli
    hlt
    jmp     halt

/* Data segments flat; FS and GS selectors null (loading GS later would
 * clear the base that as_percpu_set writes, so it happens first). */
load_segments:
    movw    $0x10, %ax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    xorl    %eax, %eax
    movw    %ax, %fs
    movw    %ax, %gs
    ret

    .code32
ap_pm32:
    movw    $0x10, %ax
    movw    %ax, %ds
    movw    %ax, %es
    movw    %ax, %ss
    movl    $(AP_TRAMP + 4096), %esp   /* enter_long's lret needs a stack */
    movl    $long_ap, %edi
    jmp     enter_long

/* --- the real-mode trampoline, copied to AP_TRAMP --------------------------- */
    .code16
    .globl  ap_tramp, ap_tramp_end
ap_tramp:
    cli
    cld
    xorw    %ax, %ax
    movw    %ax, %ds
    lgdtl   AP(ap_gdtr)
    movl    %cr0, %eax
    orl     $1, %eax
    movl    %eax, %cr0
    ljmpl   $0x18, $ap_pm32
    .p2align 2
ap_gdtr:
    .word   gdt_end - gdt - 1
    .long   gdt
ap_tramp_end:
    .code64

    .data
    .p2align 4
    .globl  gdt
gdt:
    .quad   0
    .quad   0x00af9a000000ffff         /* 0x08 code64 */
    .quad   0x00cf92000000ffff         /* 0x10 data   */
    .quad   0x00cf9a000000ffff         /* 0x18 code32 */
    .quad   0, 0                       /* 0x20 TSS cpu0, filled by arch.c */
    .quad   0, 0                       /* 0x30 TSS cpu1 */
    .quad   0x00cff2000000ffff         /* 0x40 user data   */
    .quad   0x00affa000000ffff         /* 0x48 user code64 */
gdt_end:
    .p2align 4
gdtr:
    .word   gdt_end - gdt - 1
    .quad   gdt

    .globl  ap_boot_rsp
ap_boot_rsp:
    .quad   0

    .bss
    .p2align 12
    .globl  pml4, pdpt, pd
pml4:   .skip 4096
pdpt:   .skip 4096
pd:     .skip 4 * 4096
    .p2align 4
boot_stack:
    .skip   16384
boot_stack_top:

    .section .note.GNU-stack, "", %progbits
