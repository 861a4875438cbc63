/* SPDX-License-Identifier: MIT */
/*
 * examples/kernel/common/lib.c - a serial printf that CPUs share (the
 * libc functions the compiler may call are in mem.c).
 */
#include "kernel.h"

static void put_num(unsigned long v, unsigned base, int width)
{
    char buf[24];
    int i = 0;
    do {
        buf[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i < width)
        buf[i++] = '0';
    while (i)
        arch_putc(buf[--i]);
}

/* %s %c %d %u %x %lu %ld %lx %p %%, with an optional zero-pad width. */
static void vprint(const char *f, va_list ap)
{
    for (; *f; f++) {
        if (*f != '%') {
            if (*f == '\n')
                arch_putc('\r');
            arch_putc(*f);
            continue;
        }
        int width = 0;
        bool lng = false;
        f++;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        if (*f == 'l') {
            lng = true;
            f++;
        }
        switch (*f) {
        case 's':
            for (const char *s = va_arg(ap, const char *); *s; s++)
                arch_putc(*s);
            break;
        case 'c':
            arch_putc((char)va_arg(ap, int));
            break;
        case 'd': {
            long v = lng ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) {
                arch_putc('-');
                v = -v;
            }
            put_num((unsigned long)v, 10, width);
            break;
        }
        case 'u':
            put_num(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, width);
            break;
        case 'x':
            put_num(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, width);
            break;
        case 'p':
            arch_putc('0');
            arch_putc('x');
            put_num((uintptr_t)va_arg(ap, void *), 16, 0);
            break;
        case '%':
            arch_putc('%');
            break;
        default:
            arch_putc('%');
            arch_putc(*f);
        }
    }
}

/* Both CPUs print; the lock keeps lines whole.  Interrupts are off while
 * it is held, so a tick cannot switch away from a holder on this CPU. */
static atomic_flag print_lock = ATOMIC_FLAG_INIT;

void kprintf(const char *fmt, ...)
{
    unsigned long flags = arch_irq_save();
    while (atomic_flag_test_and_set_explicit(&print_lock, memory_order_acquire))
        arch_relax();
    va_list ap;
    va_start(ap, fmt);
    vprint(fmt, ap);
    va_end(ap);
    atomic_flag_clear_explicit(&print_lock, memory_order_release);
    arch_irq_restore(flags);
}
