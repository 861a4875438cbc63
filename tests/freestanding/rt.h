/* SPDX-License-Identifier: MIT */
/*
 * tests/freestanding/rt.h - the little runtime smoke.c needs, two ways.
 *
 * FS_NOLIBC=1 (the freestanding build): no libc at all.  The program is
 * linked with -nostdlib -static, so this header supplies what the kernel's
 * ELF loader expects and what a kernel embedding libaltstack would supply:
 *
 *   _start        entry point; clears the frame pointer (and lr) so
 *                 backtraces end there, calls fs_main, exits with its value
 *   fs_write      write(2) on fd 1, as a raw system call
 *   fs_exit       exit_group(2)
 *   memcpy, memset, memmove, memcmp
 *                 the only libc functions a freestanding libaltstack (or
 *                 the compiler, for struct copies) may call: see hooks.txt
 *
 * Otherwise (hosted): libc's write, and main() returns fs_main().
 * The same smoke.c runs both ways, in the style of Linux's tools/nolibc.
 *
 *                     x86_64              aarch64
 *   syscall           syscall             svc #0
 *   number in         rax                 x8
 *   arguments         rdi rsi rdx         x0 x1 x2
 *   write, exit_group 1, 231              64, 94
 *   clobbered         rcx r11             none
 */
#ifndef ALTSTACK_TESTS_FREESTANDING_RT_H
#define ALTSTACK_TESTS_FREESTANDING_RT_H

#include <stddef.h>

static int fs_main(void);

#if defined(FS_NOLIBC) && FS_NOLIBC

#if defined(__x86_64__)
static long fs_syscall3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}
# define FS_SYS_WRITE      1
# define FS_SYS_EXIT_GROUP 231

/* Entered with rsp -> argc, 16-byte aligned; the ABI wants it aligned
 * again at the call, so the call pushes onto an aligned rsp. */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start, %function\n"
        "_start:\n"
        "    .cfi_startproc\n"
        "    .cfi_undefined %rip\n"
        "    xorl    %ebp, %ebp\n"
        "    andq    $-16, %rsp\n"
        "    call    fs_start\n"
        "    hlt\n"
        "    .cfi_endproc\n"
        ".size _start, . - _start\n");
#elif defined(__aarch64__)
static long fs_syscall3(long n, long a, long b, long c)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
# define FS_SYS_WRITE      64
# define FS_SYS_EXIT_GROUP 94

/* `bti c` keeps the entry point valid in a BTI-guarded page whatever
 * branch type the loader's jump leaves behind. */
__asm__(".text\n"
        ".globl _start\n"
        ".type _start, %function\n"
        "_start:\n"
        "    .cfi_startproc\n"
        "    .cfi_undefined x30\n"
        "    bti     c\n"
        "    mov     x29, xzr\n"
        "    mov     x30, xzr\n"
        "    bl      fs_start\n"
        "    brk     #0\n"
        "    .cfi_endproc\n"
        ".size _start, . - _start\n");
#else
# error "unsupported architecture"
#endif

static void fs_exit(int code)
{
    for (;;)
        fs_syscall3(FS_SYS_EXIT_GROUP, code, 0, 0);
}

static void fs_write(const char *s, size_t n)
{
    while (n) {
        long r = fs_syscall3(FS_SYS_WRITE, 1, (long)s, (long)n);
        if (r <= 0)
            return;
        s += r;
        n -= (size_t)r;
    }
}

__attribute__((used, noreturn)) void fs_start(void);
void fs_start(void)
{
    fs_exit(fs_main());
    __builtin_unreachable();
}

/* Byte loops, kept as loops: -fno-builtin (and -fno-tree-loop-distribute-
 * patterns, set by meson) stop the compiler turning them back into calls
 * to themselves. */
void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    if (p < q)
        while (n--)
            *p++ = *q++;
    else
        while (n--)
            p[n] = q[n];
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p - *q;
    return 0;
}

#else /* hosted */

#include <unistd.h>

static void fs_write(const char *s, size_t n)
{
    while (n) {
        ssize_t r = write(1, s, n);
        if (r <= 0)
            return;
        s += r;
        n -= (size_t)r;
    }
}

int main(void) { return fs_main(); }

#endif
#endif
