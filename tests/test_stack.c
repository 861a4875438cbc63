/* SPDX-License-Identifier: MIT */
/* tests/test_stack.c - as_stack_alloc / as_stack_init / as_stack_free. */
#include <criterion/criterion.h>
#include <altstack.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

Test(stack, alloc_rounds_to_pages_and_is_usable)
{
    as_stack s;
    long page = sysconf(_SC_PAGESIZE);
    cr_assert_eq(as_stack_alloc(&s, 1000), 0);
    cr_assert_not_null(s.map);
    cr_assert_eq(as_stack_size(&s) % (size_t)page, 0);
    cr_assert_geq(as_stack_size(&s), 1000);
    cr_assert_eq((uintptr_t)s.hi % 16, 0);
    cr_assert_eq((char *)s.lo - (char *)s.map, page, "one guard page below lo");
    cr_assert_eq((char *)s.map + s.map_size, (char *)s.hi);
    memset(s.lo, 0xa5, as_stack_size(&s));     /* the whole range is writable */
    as_stack_free(&s);
    cr_assert_null(s.map);
    cr_assert_null(s.lo);
}

Test(stack, bad_arguments)
{
    as_stack s;
    char buf[64];
    cr_assert_eq(as_stack_alloc(NULL, 4096), -EINVAL);
    cr_assert_eq(as_stack_alloc(&s, 0), -EINVAL);
    cr_assert_eq(as_stack_alloc(&s, SIZE_MAX), -EINVAL);
    cr_assert_eq(as_stack_alloc(&s, SIZE_MAX / 2), -EINVAL);
    cr_assert_eq(as_stack_init(NULL, buf, sizeof buf), -EINVAL);
    cr_assert_eq(as_stack_init(&s, NULL, 4096), -EINVAL);
    cr_assert_eq(as_stack_init(&s, buf, sizeof buf), -EINVAL, "smaller than AS_STACK_MIN");
    cr_assert_eq(as_stack_init(&s, (void *)(UINTPTR_MAX - 100), 4096), -EINVAL, "wraps");
    as_stack_free(NULL);                           /* no-op, no crash */
}

Test(stack, exhaustion_is_enomem)
{
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("ASan reserves terabytes of shadow: an address-space limit would break it");
#else
    /* Each test runs in its own worker process, so capping the address
     * space here affects nothing else. */
    struct rlimit rl = { 256u << 20, 256u << 20 };
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
    void *probe = mmap(NULL, 512u << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe != MAP_FAILED) {
        munmap(probe, 512u << 20);
        cr_skip_test("RLIMIT_AS is not enforced here (qemu-user ignores it)");
    }
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, (size_t)1 << 30), -ENOMEM);
    cr_assert_null(s.map, "*s is zeroed on error");
#endif
}

Test(stack, init_adopts_and_aligns)
{
    static char mem[4096 + 7];
    as_stack s;
    cr_assert_eq(as_stack_init(&s, mem + 3, 4096), 0);
    cr_assert_null(s.map);
    cr_assert_eq((uintptr_t)s.hi % 16, 0);
    cr_assert_eq((uintptr_t)s.lo % 16, 0);
    cr_assert_geq((uintptr_t)s.lo, (uintptr_t)(mem + 3));
    cr_assert_leq((uintptr_t)s.hi, (uintptr_t)(mem + 3 + 4096));
    cr_assert_gt((uintptr_t)s.hi + 16, (uintptr_t)(mem + 3 + 4096));
    as_stack_free(&s);                              /* leaves mem alone */
    mem[0] = 1;
}

/* Recurse without end; each frame keeps 512 bytes live, so no compiler
 * turns it into a loop. */
static volatile int depth;
static void *recurse(void *p)
{
    volatile char pad[512];
    pad[0] = (char)(uintptr_t)p;
    if (++depth > 0)
        recurse((void *)(uintptr_t)(pad[0] + 1));
    return (void *)(uintptr_t)pad[1];
}

/* Running off the end hits the guard page: SIGSEGV, not silent corruption. */
Test(stack, overflow_hits_guard_page, .signal = SIGSEGV)
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 16384), 0);
    /* The fault is delivered on the overflowed stack; an alternate signal
     * stack is not needed because the default action kills the worker. */
    as_call_on(&s, recurse, NULL);
}
