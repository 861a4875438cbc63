/* SPDX-License-Identifier: MIT */
/*
 * tests/test_api.c - every public function with every class of bad
 * argument: NULL, zero, SIZE_MAX, misaligned, inverted, too small,
 * unmapped, uninitialised.
 *
 * One row per (function, argument class).  A row runs in a process of its
 * own (each parameter of the Criterion test below is a separate worker,
 * with a timeout, so a crash or a hang fails that row alone), makes the
 * call, asserts the result its header documents, and then checks that the
 * object is still fully usable: a stack still runs code, a pool still hands
 * out each record exactly once, a lock can still be taken.
 *
 * ADDING A PUBLIC FUNCTION?  Add its rows here.  The test `api.every_
 * public_function_has_rows` reads the headers in include/altstack/ and fails for any
 * AS_API function that no row names, so a function without rows is caught
 * by CI, not only by review.
 *
 * Rows marked `needs` depend on a contract another part of the library
 * implements (see the flags); rows marked DEBUG run only against a library
 * built with AS_DEBUG (meson buildtype=debug), where hot paths that are
 * "undefined" for NULL trap through AS_ASSERT instead of running on.
 */
#include <altstack.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* The table                                                                 */

enum { F_DEBUG = 1 };                   /* needs a library built with AS_DEBUG */

struct row {
    const char *hdr;                    /* "stack.h" ...                       */
    const char *fn;                     /* the public function the row calls   */
    const char *cls;                    /* the argument class                  */
    const char *expect;                 /* the documented answer               */
    void      (*run)(void);
    int         flags;
};

#define MAX_ROWS 256
static struct row rows[MAX_ROWS];
static size_t n_rows;

/* ROW(id, header, function, class, expectation) { body }: define a row
 * and add it to the table before main runs. */
#define ROW_F(id, h, f, c, e, fl)                                            \
    static void row_##id(void);                                              \
    __attribute__((constructor)) static void reg_##id(void)                  \
    {                                                                        \
        if (n_rows < MAX_ROWS)                                               \
            rows[n_rows++] = (struct row){ h, f, c, e, row_##id, fl };       \
    }                                                                        \
    static void row_##id(void)
#define ROW(id, h, f, c, e) ROW_F(id, h, f, c, e, 0)

/* ------------------------------------------------------------------------ */
/* Helpers: is the object still usable?                                     */

static unsigned char buf[64 << 10] __attribute__((aligned(64)));

/* A canary over the whole buffer: bad calls must not write into it. */
static void canary_set(void) { memset(buf, 0xa5, sizeof buf); }
static void canary_check(const char *what)
{
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != 0xa5)
            cr_assert_fail("%s wrote buf[%zu] = %#x", what, i, buf[i]);
}

static int fn_ran;
static const as_stack *fn_on;

static void *fn_count(void *arg)
{
    fn_ran++;
    if (fn_on) {
        uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
        cr_assert(sp >= (uintptr_t)fn_on->lo && sp < (uintptr_t)fn_on->hi,
                  "fn does not run on the stack");
    }
    return (char *)arg + 1;
}

static as_transfer ctx_entry(as_transfer t)
{
    t = as_switch(t.ctx, (char *)t.data + 1);
    return (as_transfer){ t.ctx, (char *)t.data + 1 };
}

/* A stack runs a context to the end and a call. */
static void stack_works(const as_stack *s)
{
    as_ctx c = as_ctx_make(s, ctx_entry);
    cr_assert(c, "as_ctx_make refused a usable stack");
    as_transfer t = as_switch(c, buf);
    cr_assert(t.ctx && t.data == buf + 1);
    t = as_switch(t.ctx, buf + 5);
    cr_assert(!t.ctx && t.data == buf + 6);
    fn_ran = 0;
    fn_on = s;
    cr_assert(as_call_on(s, fn_count, buf) == buf + 1 && fn_ran == 1);
    fn_on = NULL;
    volatile unsigned char *lo = s->lo, *hi = (unsigned char *)s->hi - 1;
    *lo = 1;
    *hi = 2;
    cr_assert(*lo == 1 && *hi == 2);
}

/* A pool of n hands out n distinct records, then NULL, and takes them back. */
static void pool_works(as_act_pool *p, as_act *recs, size_t n)
{
    cr_assert_eq(as_act_pool_free(p), n);
    as_act **got = calloc(n, sizeof *got);
    for (size_t i = 0; i < n; i++) {
        got[i] = as_act_alloc(p);
        cr_assert(got[i] && got[i] >= recs && got[i] < recs + n, "alloc %zu gave %p", i,
                  (void *)got[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_neq(got[i], got[j], "record %td handed out twice", got[i] - recs);
    }
    cr_assert_null(as_act_alloc(p), "a pool of %zu gave more", n);
    cr_assert_eq(as_act_pool_free(p), 0);
    for (size_t i = 0; i < n; i++)
        as_act_release(got[i]);
    cr_assert_eq(as_act_pool_free(p), n);
    free(got);
}

static void *dl_cs(void *p) { return (char *)p + 2; }

/* A combining lock is free, can be taken both ways, and nobody waits. */
static void dlock_works(as_dlock *l)
{
    cr_assert_eq(l->word, 0, "lock word %#lx", (unsigned long)l->word);
    as_dlock_lock(l);
    cr_assert_eq(l->word, 1);
    as_dlock_unlock(l);
    cr_assert_eq(l->word, 0);
    cr_assert(as_dlock_call(l, dl_cs, buf) == buf + 2);
    cr_assert_eq(l->word, 0);
}

/* A stack lying in memory that is not mapped. */
static as_stack unmapped_stack(size_t size)
{
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    munmap(m, size);
    return (as_stack){ m, (char *)m + size, NULL, 0 };
}

/* Run f in a child and return how it ended: the signal, or 0 for exit 0. */
static int in_child(void (*f)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        f();
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st) ? -1 : 0;
}

static void assert_traps(void (*f)(void), const char *what)
{
    int sig = in_child(f);
    cr_assert(sig == SIGILL || sig == SIGTRAP, "%s: child ended with %d, not a trap", what, sig);
}

/* The doc comment right above `name`'s declaration in include/altstack/
 * `hdr` contains `word` (a hot path that cannot check must say so). */
static void assert_doc_says(const char *hdr, const char *name, const char *word)
{
    char path[4096], pat[160];
    snprintf(path, sizeof path, "%s/%s", API_HEADERS, hdr);
    snprintf(pat, sizeof pat, " %s(", name);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot read %s", path);
    static char text[1 << 17];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    char *decl = NULL;
    for (char *p = strstr(text, pat); p; p = strstr(p + 1, pat)) {
        char *bol = p;
        while (bol > text && bol[-1] != '\n')
            bol--;
        if (strstr(bol, "AS_API") && strstr(bol, "AS_API") < p) {
            decl = bol;
            break;
        }
    }
    cr_assert(decl, "%s: no declaration of %s", hdr, name);
    *decl = 0;                              /* the text before it */
    char *end = strrchr(text, '/');         /* the comment's closing slash */
    while (end && !(end > text && end[-1] == '*'))
        end = end > text ? (*end = 0, strrchr(text, '/')) : NULL;
    cr_assert(end, "%s: no comment above %s", hdr, name);
    *end = 0;
    char *start = strstr(text, "/*"), *q;
    while (start && (q = strstr(start + 2, "/*")))
        start = q;
    cr_assert(start && strstr(start, word), "%s: the comment on %s does not say \"%s\"", hdr,
              name, word);
}

/* ------------------------------------------------------------------------ */
/* stack.h                                                                   */

static as_stack junk_stack(void)
{
    as_stack s;
    memset(&s, 0x5a, sizeof s);
    return s;
}

static void assert_zeroed(const as_stack *s)
{
    cr_assert(!s->lo && !s->hi && !s->map && !s->map_size, "*s not zeroed on error");
}

ROW(alloc_null, "stack.h", "as_stack_alloc", "NULL s", "-EINVAL")
{
    cr_assert_eq(as_stack_alloc(NULL, 4096), -EINVAL);
}
ROW(alloc_zero, "stack.h", "as_stack_alloc", "size 0", "-EINVAL, *s zeroed")
{
    as_stack s = junk_stack();
    cr_assert_eq(as_stack_alloc(&s, 0), -EINVAL);
    assert_zeroed(&s);
}
ROW(alloc_max, "stack.h", "as_stack_alloc", "size SIZE_MAX", "-EINVAL, *s zeroed")
{
    as_stack s = junk_stack();
    cr_assert_eq(as_stack_alloc(&s, SIZE_MAX), -EINVAL);
    assert_zeroed(&s);
}
ROW(alloc_huge, "stack.h", "as_stack_alloc", "size 2^46 + 1", "-EINVAL")
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, ((size_t)1 << 46) + 1), -EINVAL);
    assert_zeroed(&s);
}
ROW(alloc_small, "stack.h", "as_stack_alloc", "too small (1 byte)", "0, rounded up to a page")
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 1), 0);
    cr_assert(as_stack_size(&s) >= AS_STACK_MIN && as_stack_size(&s) % 4096 == 0);
    stack_works(&s);
    as_stack_free(&s);
}
ROW(init_null_s, "stack.h", "as_stack_init", "NULL s", "-EINVAL")
{
    cr_assert_eq(as_stack_init(NULL, buf, 4096), -EINVAL);
}
ROW(init_null_mem, "stack.h", "as_stack_init", "NULL mem", "-EINVAL, *s unchanged")
{
    as_stack s = junk_stack(), j = junk_stack();
    cr_assert_eq(as_stack_init(&s, NULL, 4096), -EINVAL);
    cr_assert(!memcmp(&s, &j, sizeof s));
}
ROW(init_zero, "stack.h", "as_stack_init", "size 0", "-EINVAL")
{
    as_stack s;
    cr_assert_eq(as_stack_init(&s, buf, 0), -EINVAL);
}
ROW(init_max, "stack.h", "as_stack_init", "size SIZE_MAX (wraps)", "-EINVAL")
{
    as_stack s;
    cr_assert_eq(as_stack_init(&s, buf, SIZE_MAX), -EINVAL);
}
ROW(init_wrap, "stack.h", "as_stack_init", "region past the top of memory", "-EINVAL")
{
    as_stack s;
    cr_assert_eq(as_stack_init(&s, (void *)(UINTPTR_MAX - 1000), 4096), -EINVAL);
}
ROW(init_small, "stack.h", "as_stack_init", "too small (AS_STACK_MIN - 1)", "-EINVAL")
{
    as_stack s;
    cr_assert_eq(as_stack_init(&s, buf, AS_STACK_MIN - 1), -EINVAL);
}
ROW(init_small_aligned, "stack.h", "as_stack_init", "AS_STACK_MIN bytes, misaligned",
    "-EINVAL (fewer remain after alignment)")
{
    as_stack s;
    cr_assert_eq(as_stack_init(&s, buf + 1, AS_STACK_MIN), -EINVAL);
}
ROW(init_misaligned, "stack.h", "as_stack_init", "misaligned mem and size", "0, aligned inward")
{
    as_stack s;
    cr_assert_eq(as_stack_init(&s, buf + 3, 8192 + 5), 0);
    cr_assert(s.lo == buf + 16 && s.hi == buf + 8192 && !s.map);
    stack_works(&s);
}
ROW(free_null, "stack.h", "as_stack_free", "NULL", "no-op")
{
    as_stack_free(NULL);
}
ROW(free_zeroed, "stack.h", "as_stack_free", "zeroed as_stack", "no-op")
{
    as_stack s = {0};
    as_stack_free(&s);
    assert_zeroed(&s);
}
ROW(free_adopted, "stack.h", "as_stack_free", "adopted memory", "s zeroed, memory left alone")
{
    as_stack s;
    cr_assert_eq(as_stack_init(&s, buf, sizeof buf), 0);
    as_stack_free(&s);
    assert_zeroed(&s);
    buf[0] = 1;
    buf[sizeof buf - 1] = 2;
    cr_assert(buf[0] == 1 && buf[sizeof buf - 1] == 2);
}
ROW(free_twice, "stack.h", "as_stack_free", "freed twice", "second is a no-op")
{
    as_stack s, t;
    cr_assert_eq(as_stack_alloc(&s, 8192), 0);
    as_stack_free(&s);
    as_stack_free(&s);
    cr_assert_eq(as_stack_alloc(&t, 8192), 0);
    stack_works(&t);
    as_stack_free(&t);
}
ROW(size_null, "stack.h", "as_stack_size", "NULL", "0")
{
    cr_assert_eq(as_stack_size(NULL), 0);
}

/* ------------------------------------------------------------------------ */
/* switch.h                                                                  */

/* The bad stacks as_ctx_make rejects, over buf. */
static as_stack bad_stack(int k)
{
    unsigned char *m = buf + 4096;
    switch (k) {
    case 0: return (as_stack){0};                                 /* zeroed   */
    case 1: return (as_stack){ m + 2048, m, NULL, 0 };            /* inverted */
    case 2: return (as_stack){ m, m + 64, NULL, 0 };              /* 64 bytes */
    case 3: return (as_stack){ NULL, m + 2048, NULL, 0 };         /* lo NULL  */
    default: return (as_stack){ m, NULL, NULL, 0 };               /* hi NULL  */
    }
}

static void ctx_make_rejects(int k)
{
    as_stack s = bad_stack(k);
    canary_set();
    cr_assert_null(as_ctx_make(&s, ctx_entry), "as_ctx_make accepted bad stack %d", k);
    canary_check("as_ctx_make");
}

ROW(ctx_null, "switch.h", "as_ctx_make", "NULL s", "NULL")
{
    cr_assert_null(as_ctx_make(NULL, ctx_entry));
}
ROW(ctx_null_fn, "switch.h", "as_ctx_make", "NULL fn", "NULL")
{
    as_stack s;
    as_stack_init(&s, buf, 8192);
    canary_set();
    cr_assert_null(as_ctx_make(&s, NULL));
    canary_check("as_ctx_make(NULL fn)");
}
ROW(ctx_zeroed, "switch.h", "as_ctx_make", "zeroed stack", "NULL") { ctx_make_rejects(0); }
ROW(ctx_inverted, "switch.h", "as_ctx_make", "inverted (hi < lo)", "NULL, nothing written") { ctx_make_rejects(1); }
ROW(ctx_tiny, "switch.h", "as_ctx_make", "too small (64 bytes)", "NULL, nothing written") { ctx_make_rejects(2); }
ROW(ctx_lo_null, "switch.h", "as_ctx_make", "lo NULL", "NULL") { ctx_make_rejects(3); }
ROW(ctx_hi_null, "switch.h", "as_ctx_make", "hi NULL", "NULL") { ctx_make_rejects(4); }
ROW(ctx_misaligned, "switch.h", "as_ctx_make", "misaligned hi", "a context that runs")
{
    as_stack s = { buf + 8, buf + 16384 + 7, NULL, 0 };
    stack_works(&s);
}
ROW(switch_null, "switch.h", "as_switch", "NULL / spent context",
    "undefined, and switch.h says so in so many words")
{
    /* A hot path with no C part: nothing to call, but the header must say
     * "undefined" where as_switch is documented. */
    assert_doc_says("switch.h", "as_switch", "undefined");
}

static void call_on_rejects(int k)
{
    as_stack s = bad_stack(k);
    canary_set();
    fn_ran = 0;
    fn_on = NULL;
    void *r = as_call_on(&s, fn_count, buf);
    cr_assert(r == NULL && fn_ran == 0, "as_call_on ran fn on bad stack %d (returned %p)", k, r);
    canary_check("as_call_on");
}

ROW(call_null, "switch.h", "as_call_on", "NULL s", "NULL, fn not called")
{
    fn_ran = 0;
    cr_assert(as_call_on(NULL, fn_count, buf) == NULL && fn_ran == 0);
}
ROW(call_null_fn, "switch.h", "as_call_on", "NULL fn", "NULL")
{
    as_stack s;
    as_stack_init(&s, buf, 8192);
    cr_assert_null(as_call_on(&s, NULL, buf));
}
ROW(call_zeroed, "switch.h", "as_call_on", "zeroed stack",
    "NULL, fn not called (needs the switch change)") { call_on_rejects(0); }
ROW(call_inverted, "switch.h", "as_call_on", "inverted (hi < lo)",
    "NULL, fn not called, nothing written (needs the switch change)") { call_on_rejects(1); }
ROW(call_tiny, "switch.h", "as_call_on", "too small (64 bytes)",
    "NULL, fn not called, nothing written (needs the switch change)") { call_on_rejects(2); }
ROW(call_lo_null, "switch.h", "as_call_on", "lo NULL", "NULL (needs the switch change)") { call_on_rejects(3); }
ROW(call_min_misaligned, "switch.h", "as_call_on", "AS_STACK_MIN + 15 bytes, hi misaligned",
    "NULL: fewer than AS_STACK_MIN after aligning hi (needs the switch change)")
{
    unsigned char *m = buf + 4096 + 8;
    as_stack s = { m, m + AS_STACK_MIN + 7, NULL, 0 };  /* hi aligns down to m + MIN - 8 */
    canary_set();
    fn_ran = 0;
    cr_assert(as_call_on(&s, fn_count, buf) == NULL && fn_ran == 0);
    canary_check("as_call_on");
}
ROW(call_misaligned, "switch.h", "as_call_on", "misaligned hi, large enough", "runs fn there")
{
    as_stack s = { buf + 8, buf + 8192 + 9, NULL, 0 };
    fn_ran = 0;
    fn_on = &s;
    cr_assert(as_call_on(&s, fn_count, buf) == buf + 1 && fn_ran == 1);
}

/* Fast mode and the exact-mode strategy (switch.h defines AS_FP_AUTO with
 * them). */
#ifdef AS_FP_AUTO
static as_transfer ontop_fn(as_transfer t)
{
    return (as_transfer){ t.ctx, (char *)t.data + 10 };
}

/* A fresh context running ctx_entry on the first 16 KiB of buf. */
static as_ctx buf_ctx(void)
{
    as_stack s;
    as_stack_init(&s, buf, 16384);
    return as_ctx_make(&s, ctx_entry);
}

ROW(switch_fast_null, "switch.h", "as_switch_fast", "NULL / spent context",
    "undefined, and switch.h says so; a live one works")
{
    assert_doc_says("switch.h", "as_switch_fast", "undefined");
    as_transfer t = as_switch_fast(buf_ctx(), buf);
    cr_assert(t.ctx && t.data == buf + 1);
    t = as_switch_fast(t.ctx, buf + 5);
    cr_assert(!t.ctx && t.data == buf + 6);
}
ROW(switch_ontop_null, "switch.h", "as_switch_ontop", "NULL to or fn (also as_switch_ontop_fast)",
    "undefined, and switch.h says so; a live one works")
{
    assert_doc_says("switch.h", "as_switch_ontop", "undefined");
    as_transfer t = as_switch(buf_ctx(), buf);      /* suspended in ctx_entry */
    t = as_switch_ontop(t.ctx, buf + 20, ontop_fn); /* its switch returns buf + 30 */
    cr_assert(!t.ctx && t.data == buf + 31, "ontop: %p", t.data);
    t = as_switch(buf_ctx(), buf);
    t = as_switch_ontop_fast(t.ctx, buf + 20, ontop_fn);
    cr_assert(!t.ctx && t.data == buf + 31, "ontop_fast: %p", t.data);
}
ROW(switch_strategy_bad, "switch.h", "as_switch_set_fp_strategy",
    "unknown strategy (-1, 3, INT_MAX) (also as_switch_fp_strategy, as_switch_init)",
    "-EINVAL, the binding unchanged, switches still work")
{
    cr_assert_eq(as_switch_init(), 0);
    int was = as_switch_fp_strategy();
    cr_assert(was == AS_FP_COMPARE || was == AS_FP_RELOAD);
    cr_assert_eq(as_switch_set_fp_strategy(-1), -EINVAL);
    cr_assert_eq(as_switch_set_fp_strategy(3), -EINVAL);
    cr_assert_eq(as_switch_set_fp_strategy(0x7fffffff), -EINVAL);
#if AS_ARCH_AARCH64
    cr_assert_eq(as_switch_set_fp_strategy(AS_FP_RELOAD), -EINVAL);
#endif
    cr_assert_eq(as_switch_fp_strategy(), was);
    as_stack s;
    as_stack_init(&s, buf, 16384);
    stack_works(&s);
}
#endif

/* ------------------------------------------------------------------------ */
/* activation.h                                                              */

#define NR 8
static as_act recs[NR + 1] __attribute__((aligned(64)));
static as_act_pool pool;

static void pool_init8(void)
{
    cr_assert_eq(as_act_pool_init(&pool, recs, NR), 0);
}

ROW(pool_null, "activation.h", "as_act_pool_init", "NULL p", "-EINVAL")
{
    cr_assert_eq(as_act_pool_init(NULL, recs, NR), -EINVAL);
}
ROW(pool_null_recs, "activation.h", "as_act_pool_init", "NULL records", "-EINVAL, p intact")
{
    pool_init8();
    cr_assert_eq(as_act_pool_init(&pool, NULL, NR), -EINVAL);
    pool_works(&pool, recs, NR);
}
ROW(pool_zero, "activation.h", "as_act_pool_init", "n = 0", "-EINVAL, p intact")
{
    pool_init8();
    cr_assert_eq(as_act_pool_init(&pool, recs, 0), -EINVAL);
    pool_works(&pool, recs, NR);
}
ROW(pool_misaligned, "activation.h", "as_act_pool_init", "records misaligned", "-EINVAL")
{
    as_act_pool p;
    cr_assert_eq(as_act_pool_init(&p, (as_act *)(void *)((char *)recs + 8), NR), -EINVAL);
}
ROW(pool_2_32, "activation.h", "as_act_pool_init", "n = 2^32", "-EINVAL")
{
    as_act_pool p;
    cr_assert_eq(as_act_pool_init(&p, recs, (size_t)1 << 32), -EINVAL);
}
ROW(pool_max, "activation.h", "as_act_pool_init", "n = SIZE_MAX (wraps)", "-EINVAL")
{
    as_act_pool p;
    cr_assert_eq(as_act_pool_init(&p, recs, SIZE_MAX), -EINVAL);
}
ROW(pool_2_32_1, "activation.h", "as_act_pool_init", "n = 2^32 - 1 (the largest allowed)",
    "0, and the pool works")
{
    /* n records would be 16 TiB.  The pool touches only the records it
     * hands out (as_act_pool_init touches none), so the test maps just the
     * two it uses: a 16 TiB reservation would be cheap on Linux, but under
     * qemu-user it costs gigabytes of page tracking. */
    size_t n = ((size_t)1 << 32) - 1;
    size_t len = 2 * sizeof(as_act);
    as_act *r = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(r != MAP_FAILED);
    as_act_pool p;
    cr_assert_eq(as_act_pool_init(&p, r, n), 0);
    cr_assert_eq(as_act_pool_free(&p), n);
    as_act *a = as_act_alloc(&p), *b = as_act_alloc(&p);
    cr_assert(a == &r[0] && b == &r[1], "alloc gave %p, %p", (void *)a, (void *)b);
    cr_assert_eq(as_act_pool_free(&p), n - 2);
    as_act_release(a);
    as_act_release(a);
    as_act_release(b);
    cr_assert_eq(as_act_pool_free(&p), n);
    cr_assert(as_act_alloc(&p) == b && as_act_alloc(&p) == a, "the free list lost a record");
    munmap(r, len);
}
ROW(alloc_null_pool, "activation.h", "as_act_alloc", "NULL pool", "NULL")
{
    cr_assert_null(as_act_alloc(NULL));
}
ROW(alloc_zeroed_pool, "activation.h", "as_act_alloc", "zeroed (uninitialised) pool", "NULL")
{
    as_act_pool p;
    memset(&p, 0, sizeof p);
    cr_assert_null(as_act_alloc(&p));
    cr_assert_eq(as_act_pool_free(&p), 0);
}
ROW(release_null, "activation.h", "as_act_release", "NULL", "no-op")
{
    pool_init8();
    as_act_release(NULL);
    pool_works(&pool, recs, NR);
}
ROW(release_loose, "activation.h", "as_act_release", "a record from no pool", "no-op")
{
    pool_init8();
    memset(&recs[NR], 0, sizeof recs[NR]);
    as_act_release(&recs[NR]);
    pool_works(&pool, recs, NR);
}
ROW(release_twice, "activation.h", "as_act_release", "the same record twice",
    "second is a no-op, pool intact")
{
    pool_init8();
    as_act *a = as_act_alloc(&pool);
    cr_assert(a);
    as_act_release(a);
    as_act_release(a);
    pool_works(&pool, recs, NR);
}
ROW(release_never_out, "activation.h", "as_act_release", "a record the pool never handed out",
    "no-op")
{
    pool_init8();
    as_act_release(&recs[3]);
    pool_works(&pool, recs, NR);
}
ROW(release_after_resume, "activation.h", "as_act_release", "a record its resume gave back",
    "no-op, pool intact")
{
    pool_init8();
    as_act *a = as_act_alloc(&pool);
    volatile int back = 0;
    if (as_act_capture(a) == 0) {
        back = 1;
        as_act_resume(a);
    }
    cr_assert(back);
    cr_assert_eq(as_act_pool_free(&pool), NR);
    as_act_release(a);
    pool_works(&pool, recs, NR);
}
ROW(pool_free_null, "activation.h", "as_act_pool_free", "NULL", "0")
{
    cr_assert_eq(as_act_pool_free(NULL), 0);
}

static void fresh_never(void *arg) { (void)arg; abort(); }

static void act_init_rejects(int k)
{
    as_stack s = bad_stack(k);
    as_act *a = &recs[NR];
    a->kind = AS_ACT_CALL;
    canary_set();
    as_act_init(a, &s, fresh_never, NULL);
    cr_assert_eq(as_act_kind(a), AS_ACT_NONE);
    cr_assert(as_act_pc(a) == 0 && as_act_sp(a) == 0);
    canary_check("as_act_init");
}

ROW(act_init_null, "activation.h", "as_act_init", "NULL a", "no-op")
{
    as_stack s;
    as_stack_init(&s, buf, 8192);
    as_act_init(NULL, &s, fresh_never, NULL);
}
ROW(act_init_null_s, "activation.h", "as_act_init", "NULL s", "left AS_ACT_NONE")
{
    as_act *a = &recs[NR];
    as_act_init(a, NULL, fresh_never, NULL);
    cr_assert_eq(as_act_kind(a), AS_ACT_NONE);
}
ROW(act_init_null_fn, "activation.h", "as_act_init", "NULL fn", "left AS_ACT_NONE")
{
    as_stack s;
    as_stack_init(&s, buf, 8192);
    as_act_init(&recs[NR], &s, NULL, NULL);
    cr_assert_eq(as_act_kind(&recs[NR]), AS_ACT_NONE);
}
ROW(act_init_zeroed, "activation.h", "as_act_init", "zeroed stack", "AS_ACT_NONE") { act_init_rejects(0); }
ROW(act_init_inverted, "activation.h", "as_act_init", "inverted stack", "AS_ACT_NONE") { act_init_rejects(1); }
ROW(act_init_tiny, "activation.h", "as_act_init", "too small (64 bytes)", "AS_ACT_NONE") { act_init_rejects(2); }
ROW(act_accessors_null, "activation.h", "as_act_kind", "NULL (also as_act_pc, as_act_sp)",
    "AS_ACT_NONE, 0, 0")
{
    cr_assert(as_act_kind(NULL) == AS_ACT_NONE && as_act_pc(NULL) == 0 && as_act_sp(NULL) == 0);
}
ROW(act_pc_unfilled, "activation.h", "as_act_pc", "unfilled record (also as_act_sp)", "0")
{
    as_act *a = &recs[NR];
    memset(a, 0, sizeof *a);
    cr_assert(as_act_pc(a) == 0 && as_act_sp(a) == 0);
}
ROW(act_busy_junk, "activation.h", "as_act_resume_busy", "pc 0 and a data address", "0")
{
    cr_assert(as_act_resume_busy(0) == 0 && as_act_resume_busy((uintptr_t)buf) == 0 &&
              as_act_resume_busy(UINTPTR_MAX) == 0);
}
ROW(act_fpu, "activation.h", "as_act_fpu_size", "no arguments (also as_act_fpu_check)",
    "a size; 0 or -ENOSPC")
{
    cr_assert(as_act_fpu_size() >= 512);
    int c = as_act_fpu_check();
    cr_assert(c == 0 || c == -ENOSPC);
    cr_assert_eq(c == 0, as_act_fpu_size() <= AS_ACT_FPU_SIZE);
}
/* as_act_fpu_mask comes with the activations change: weak, so that the
 * row says so where it is missing instead of failing to link. */
extern uint64_t as_act_fpu_mask(void) __attribute__((weak));

ROW(act_fpu_mask, "activation.h", "as_act_fpu_mask", "no arguments",
    "at least x87 and SSE (aarch64: FPSIMD), 3")
{
    if (!as_act_fpu_mask)
        cr_skip_test("as_act_fpu_mask is not in this library (the activations change)");
    cr_assert_eq(as_act_fpu_mask() & 3, 3);
}
ROW(act_capture_null, "activation.h", "as_act_capture",
    "NULL (also as_act_capture_full, as_act_resume)",
    "undefined: hot paths with no C part; activation.h says so (needs the activations change)")
{
    assert_doc_says("activation.h", "as_act_capture", "undefined");
    assert_doc_says("activation.h", "as_act_capture_full", "undefined");
    assert_doc_says("activation.h", "as_act_resume", "undefined");
}
ROW(dl_lock_doc, "dlock.h", "as_dlock_lock", "NULL, uninitialised (also as_dlock_unlock)",
    "undefined, and dlock.h says so")
{
    assert_doc_says("dlock.h", "as_dlock_lock", "undefined");
}

/* TRAP_ROW(id, header, function, call): `call` with NULL is undefined and
 * a debug build traps on it through AS_ASSERT. */
#define TRAP_ROW(id, h, f, call)                                             \
    static void call_##id(void) { call; }                                    \
    ROW_F(id, h, f, "NULL", "undefined; a debug build traps (AS_ASSERT)", F_DEBUG) \
    {                                                                        \
        assert_traps(call_##id, #call);                                      \
    }

TRAP_ROW(rollforward_null, "activation.h", "as_act_rollforward", as_act_rollforward(NULL))
TRAP_ROW(from_uc_null, "activation.h", "as_act_from_ucontext", as_act_from_ucontext(NULL, NULL))
TRAP_ROW(to_uc_null, "activation.h", "as_act_to_ucontext", as_act_to_ucontext(NULL, NULL))

/* ------------------------------------------------------------------------ */
/* dlock.h                                                                   */

static as_dlock lk = AS_DLOCK_INITIALIZER;

ROW(dl_init_null, "dlock.h", "as_dlock_init", "NULL l", "no-op")
{
    as_dlock_init(NULL, NULL);
    dlock_works(&lk);
}
ROW(dl_init_junk_server, "dlock.h", "as_dlock_init", "uninitialised server", "l left as it was")
{
    as_dserver junk;
    memset(&junk, 0x5a, sizeof junk);
    as_dlock copy = lk;
    as_dlock_init(&lk, &junk);
    cr_assert(!memcmp(&copy, &lk, sizeof lk));
    dlock_works(&lk);
}
ROW(dl_call_null, "dlock.h", "as_dlock_call", "NULL l", "NULL, cs not called")
{
    cr_assert_null(as_dlock_call(NULL, dl_cs, buf));
}
ROW(dl_call_null_cs, "dlock.h", "as_dlock_call", "NULL cs", "NULL, lock untouched")
{
    cr_assert_null(as_dlock_call(&lk, NULL, buf));
    dlock_works(&lk);
}

static void *dl_contender(void *p)
{
    as_dlock *l = p;
    for (int i = 0; i < 1000; i++)
        as_dlock_call(l, dl_cs, buf);
    return NULL;
}

ROW(dl_unlock_free, "dlock.h", "as_dlock_unlock", "a lock nobody holds",
    "no-op: the lock stays free and usable")
{
    as_dlock l = AS_DLOCK_INITIALIZER;
    as_dlock_unlock(&l);
    dlock_works(&l);
    /* and under contention */
    pthread_t t;
    pthread_create(&t, NULL, dl_contender, &l);
    dl_contender(&l);
    pthread_join(t, NULL);
    dlock_works(&l);
}
ROW(dl_unlock_twice, "dlock.h", "as_dlock_unlock", "twice after one lock",
    "second is a no-op")
{
    as_dlock l = AS_DLOCK_INITIALIZER;
    as_dlock_lock(&l);
    as_dlock_unlock(&l);
    as_dlock_unlock(&l);
    dlock_works(&l);
}

static void *serve(void *p)
{
    as_dserver_run(p);
    return NULL;
}

ROW(dl_unlock_server_free, "dlock.h", "as_dlock_unlock", "a server-mode lock nobody holds",
    "no-op; the server still serves it")
{
    as_dserver s;
    as_dlock l;
    cr_assert_eq(as_dserver_init(&s), 0);
    as_dlock_init(&l, &s);
    as_dlock_unlock(&l);
    cr_assert(l.word == 0 && !l.back);
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);
    cr_assert(as_dlock_call(&l, dl_cs, buf) == buf + 2);
    as_dlock_lock(&l);
    as_dlock_unlock(&l);
    as_dserver_stop(&s);
    pthread_join(t, NULL);
}
ROW(dserver_init_null, "dlock.h", "as_dserver_init", "NULL", "-EINVAL")
{
    cr_assert_eq(as_dserver_init(NULL), -EINVAL);
}
ROW(dserver_run_null, "dlock.h", "as_dserver_run", "NULL and uninitialised",
    "returns at once")
{
    as_dserver s;
    memset(&s, 0x5a, sizeof s);
    as_dserver_run(NULL);
    as_dserver_run(&s);
}
ROW(dserver_stop_null, "dlock.h", "as_dserver_stop", "NULL; a server not running",
    "no-op; the next run returns at once")
{
    as_dserver s;
    as_dserver_stop(NULL);
    cr_assert_eq(as_dserver_init(&s), 0);
    as_dserver_stop(&s);
    as_dserver_stop(&s);
    as_dserver_run(&s);                     /* returns: the row would time out */
}
ROW(dl_misc, "dlock.h", "as_dlock_slots_in_use",
    "no arguments (also as_dlock_tls_is_clients, as_dlock_thread_init twice)",
    "a count; a bool; 0 twice")
{
    cr_assert_eq(as_dlock_thread_init(), 0);
    cr_assert_eq(as_dlock_thread_init(), 0);
    cr_assert(as_dlock_slots_in_use() >= 1 && as_dlock_slots_in_use() <= AS_DLOCK_MAX_SLOTS);
    bool c = as_dlock_tls_is_clients();
    cr_assert(c == true || c == false);
}

TRAP_ROW(dl_lock_null, "dlock.h", "as_dlock_lock", as_dlock_lock(NULL))
TRAP_ROW(dl_unlock_null, "dlock.h", "as_dlock_unlock", as_dlock_unlock(NULL))

/*
 * Bounded waiting with more waiters than one scan serves (AS_DLOCK_BATCH):
 * NW threads publish while the main thread holds the lock; every critical
 * section is slow, so a served waiter is back with a new request long
 * before the batch ends.  Each waiter must have its first critical section
 * run within the bound dlock.h states, 2 * (S - 1) sections from the
 * start, S being the slots in use.  A scan that always starts at slot 0
 * serves the low slots again and again instead.
 */
#define NW 72
#define LOGMAX 1024
static as_dlock fair = AS_DLOCK_INITIALIZER;
static int fair_log[LOGMAX];
static unsigned fair_n;
static int fair_stop, fair_ready;

static void *fair_cs(void *p)
{
    unsigned n = __atomic_load_n(&fair_n, __ATOMIC_RELAXED);
    if (n < LOGMAX)
        fair_log[n] = (int)(intptr_t)p;
    __atomic_store_n(&fair_n, n + 1, __ATOMIC_RELEASE);
    usleep(100);
    return NULL;
}

static void *fair_waiter(void *p)
{
    if (as_dlock_thread_init() != 0)
        abort();                        /* no slot: the row fails */
    __atomic_fetch_add(&fair_ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&fair_stop, __ATOMIC_ACQUIRE))
        as_dlock_call(&fair, fair_cs, p);
    return NULL;
}

ROW(dl_bounded_wait, "dlock.h", "as_dlock_call", "72 waiters (> AS_DLOCK_BATCH)",
    "each served within 2 * (slots - 1) critical sections")
{
    pthread_t t[NW];
    as_dlock_lock(&fair);
    for (int i = 0; i < NW; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, fair_waiter, (void *)(intptr_t)i), 0);
        while (__atomic_load_n(&fair_ready, __ATOMIC_ACQUIRE) <= i)
            usleep(100);
    }
    /* Wait until all of them are waiting (counted in the lock word). */
    for (int i = 0; __atomic_load_n(&fair.word, __ATOMIC_ACQUIRE) >> 1 != NW; i++) {
        cr_assert(i < 20000, "only %lu waiters after 20 s",
                  (unsigned long)(fair.word >> 1));
        usleep(1000);
    }
    usleep(20000);                      /* announced -> published: a few instructions */
    unsigned slots = as_dlock_slots_in_use();
    as_dlock_unlock(&fair);
    while (__atomic_load_n(&fair_n, __ATOMIC_ACQUIRE) < 4 * NW)
        usleep(1000);
    __atomic_store_n(&fair_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < NW; i++)
        pthread_join(t[i], NULL);
    unsigned bound = 2 * (slots - 1), n = fair_n < LOGMAX ? fair_n : LOGMAX;
    for (int id = 0; id < NW; id++) {
        unsigned first = 0;
        while (first < n && fair_log[first] != id)
            first++;
        cr_expect(first < bound, "waiter %d first served at section %u (bound %u, %u slots)",
                  id, first, bound, slots);
    }
}

/* ------------------------------------------------------------------------ */
/* percpu.h                                                                  */

ROW(percpu_null, "percpu.h", "as_percpu_set", "NULL (also as_percpu_get)", "clears it")
{
    int x;
    as_percpu_set(&x);
    cr_assert_eq(as_percpu_get(), &x);
    as_percpu_set(NULL);
    cr_assert_null(as_percpu_get());
}
ROW(percpu_noncanonical, "percpu.h", "as_percpu_set", "non-canonical pointer",
    "x86_64: refused, base unchanged; aarch64: taken (any pointer)")
{
    int x;
    void *bad = (void *)(uintptr_t)0x8000000000000000ull;
    as_percpu_set(&x);
    as_percpu_set(bad);
#if AS_ARCH_X86_64
    cr_assert_eq(as_percpu_get(), &x, "a base GS cannot hold was taken");
#else
    cr_assert_eq(as_percpu_get(), bad);
#endif
    as_percpu_set(&x);
    cr_assert_eq(as_percpu_get(), &x);
}
ROW(percpu_kernel_half, "percpu.h", "as_percpu_set", "a kernel-half address",
    "no fault; taken or refused as the header says")
{
    int x;
    void *k = (void *)(uintptr_t)0xffff800000000000ull;
    as_percpu_set(&x);
    as_percpu_set(k);
    void *now = as_percpu_get();
    cr_assert(now == &x || now == k);
    as_percpu_set(NULL);
}
#if AS_HOSTED && AS_ARCH_X86_64
ROW(percpu_gs_method, "percpu.h", "as_percpu_gs_method", "no arguments", "one of two names")
{
    const char *m = as_percpu_gs_method();
    cr_assert(!strcmp(m, "wrgsbase") || !strcmp(m, "arch_prctl"));
}
#endif

static void aux_rejects(int k)
{
    as_stack good, s = bad_stack(k);
    as_stack_init(&good, buf + 16384, 16384);
    as_auxstack_set(&good);
    canary_set();
    as_auxstack_set(&s);                    /* clears it */
    fn_ran = 0;
    cr_assert(as_call_on_aux(fn_count, buf) == NULL && fn_ran == 0);
    cr_assert(!as_on_auxstack());
    canary_check("as_auxstack_set");
}

ROW(aux_null, "percpu.h", "as_auxstack_set", "NULL", "clears it")
{
    as_stack good;
    as_stack_init(&good, buf, 16384);
    as_auxstack_set(&good);
    fn_on = &good;
    cr_assert(as_call_on_aux(fn_count, buf) == buf + 1);
    fn_on = NULL;
    as_auxstack_set(NULL);
    fn_ran = 0;
    cr_assert(as_call_on_aux(fn_count, buf) == NULL && fn_ran == 0);
}
ROW(aux_zeroed, "percpu.h", "as_auxstack_set", "zeroed stack", "clears it") { aux_rejects(0); }
ROW(aux_inverted, "percpu.h", "as_auxstack_set", "inverted stack", "clears it") { aux_rejects(1); }
ROW(aux_tiny, "percpu.h", "as_auxstack_set", "too small (64 bytes)", "clears it") { aux_rejects(2); }
ROW(aux_call_null, "percpu.h", "as_call_on_aux", "NULL fn; no aux stack set (also as_on_auxstack)",
    "NULL, nothing called; false")
{
    as_stack good;
    fn_ran = 0;
    cr_assert(as_call_on_aux(fn_count, buf) == NULL && fn_ran == 0);
    cr_assert(!as_on_auxstack());
    as_stack_init(&good, buf, 16384);
    as_auxstack_set(&good);
    cr_assert_null(as_call_on_aux(NULL, buf));
    as_auxstack_set(NULL);
}

/* ------------------------------------------------------------------------ */
/* preempt.h                                                                 */

static as_act prec[4] __attribute__((aligned(64)));
static as_act_pool ppool;
static as_stack pstack;

static void upcall(as_act *a, void *arg) { (void)arg; as_act_resume(a); }

static as_preempt_cfg good_cfg(void)
{
    cr_assert_eq(as_act_pool_init(&ppool, prec, 4), 0);
    if (!pstack.map)
        cr_assert_eq(as_stack_alloc(&pstack, 256 << 10), 0);
    return (as_preempt_cfg){ 1000000, upcall, NULL, &ppool, &pstack };
}

/* After a refused start, a good one still works. */
static void preempt_works(void)
{
    as_preempt_cfg cfg = good_cfg();
    cr_assert_eq(as_preempt_start(&cfg), 0);
    cr_assert_eq(as_preempt_start(&cfg), -EBUSY);
    cr_assert_eq(as_preempt_stop(), 0);
    cr_assert_eq(as_preempt_stop(), -EINVAL);
}

static void preempt_refuses(as_preempt_cfg cfg, int err)
{
    cr_assert_eq(as_preempt_start(&cfg), err);
    cr_assert_eq(as_preempt_stop(), -EINVAL, "a refused start left preemption running");
    preempt_works();
}

ROW(pre_null, "preempt.h", "as_preempt_start", "NULL cfg", "-EINVAL")
{
    cr_assert_eq(as_preempt_start(NULL), -EINVAL);
    preempt_works();
}
ROW(pre_zeroed, "preempt.h", "as_preempt_start", "zeroed cfg", "-EINVAL")
{
    preempt_refuses((as_preempt_cfg){0}, -EINVAL);
}
/* A row whose cfg is a good one with one thing wrong: `change` edits c. */
#define PREEMPT_ROW(id, cls, err, ...)                                       \
    ROW(id, "preempt.h", "as_preempt_start", cls, "-" #err)                  \
    {                                                                        \
        static as_act_pool zp;                                               \
        static as_stack s;                                                   \
        as_preempt_cfg c = good_cfg();                                       \
        (void)zp, (void)s;                                                   \
        __VA_ARGS__;                                                         \
        preempt_refuses(c, -err);                                            \
    }

PREEMPT_ROW(pre_interval0, "interval_us 0", EINVAL, c.interval_us = 0)
PREEMPT_ROW(pre_upcall_null, "NULL upcall", EINVAL, c.upcall = NULL)
PREEMPT_ROW(pre_pool_null, "NULL pool", EINVAL, c.pool = NULL)
PREEMPT_ROW(pre_pool_zeroed, "zeroed (never initialised) pool", EINVAL,
            memset(&zp, 0, sizeof zp); c.pool = &zp)
PREEMPT_ROW(pre_stack_null, "NULL upcall_stack", EINVAL, c.upcall_stack = NULL)
PREEMPT_ROW(pre_stack_small, "upcall stack too small (16 KiB)", EINVAL,
            as_stack_init(&s, buf, 16 << 10); c.upcall_stack = &s)
PREEMPT_ROW(pre_stack_inverted, "inverted upcall stack", EINVAL,
            s = (as_stack){ pstack.hi, pstack.lo, NULL, 0 }; c.upcall_stack = &s)
PREEMPT_ROW(pre_stack_unmapped, "unmapped upcall stack", EFAULT,
            s = unmapped_stack(256 << 10); c.upcall_stack = &s)
ROW(pre_stop, "preempt.h", "as_preempt_stop", "not running", "-EINVAL")
{
    cr_assert_eq(as_preempt_stop(), -EINVAL);
}
ROW(pre_yield, "preempt.h", "as_preempt_yield", "not running", "-EINVAL")
{
    cr_assert_eq(as_preempt_yield(), -EINVAL);
}
ROW(pre_enable, "preempt.h", "as_preempt_enable", "without a disable (also as_preempt_disable)",
    "no-op; nesting still counts")
{
    as_preempt_enable();
    as_preempt_enable();
    as_preempt_disable();
    as_preempt_enable();
    preempt_works();
}
ROW(pre_misc, "preempt.h", "as_preempt_signal", "no arguments (also as_preempt_get_stats)",
    "a real-time signal; zero counters")
{
    int s = as_preempt_signal();
    cr_assert(s >= SIGRTMIN && s <= SIGRTMAX);
    as_preempt_stats st = as_preempt_get_stats();
    cr_assert(st.ticks == 0 && st.upcalls == 0);
}

/* ------------------------------------------------------------------------ */
/* share.h                                                                   */

static as_stack own, other;
static as_domain dom, dom2;

static void domain_setup(void)
{
    cr_assert_eq(as_stack_alloc(&own, 16 << 10), 0);
    cr_assert_eq(as_stack_alloc(&other, 16 << 10), 0);
    memset(&dom, 0, sizeof dom);
    memset(&dom2, 0, sizeof dom2);
}

/* d works: enter, touch the own stack, leave, fini. */
static void domain_works(as_domain *d, as_stack *s)
{
    cr_assert_eq(as_domain_enter(d), 0);
    ((volatile char *)s->lo)[0] = 1;
    cr_assert_eq(as_domain_current(), d);
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_eq(as_domain_fini(d), 0);
    cr_assert_null(as_domain_current());
}

ROW(dom_init_null, "share.h", "as_domain_init", "NULL d; NULL own", "-EINVAL")
{
    domain_setup();
    cr_assert_eq(as_domain_init(NULL, &own), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, NULL), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    domain_works(&dom, &own);
}
ROW(dom_init_zeroed, "share.h", "as_domain_init", "zeroed own stack", "-EINVAL")
{
    as_stack z = {0};
    domain_setup();
    cr_assert_eq(as_domain_init(&dom, &z), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    domain_works(&dom, &own);
}
ROW(dom_init_inverted, "share.h", "as_domain_init", "inverted own stack", "-EINVAL")
{
    domain_setup();
    as_stack inv = { own.hi, own.lo, NULL, 0 };
    cr_assert_eq(as_domain_init(&dom, &inv), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    domain_works(&dom, &own);
}
ROW(dom_init_twice, "share.h", "as_domain_init", "twice; another d on a managed stack",
    "-EBUSY")
{
    domain_setup();
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_eq(as_domain_init(&dom, &own), -EBUSY);
    cr_assert_eq(as_domain_init(&dom2, &own), -EBUSY);
    domain_works(&dom, &own);
}
ROW(dom_init_unmapped, "share.h", "as_domain_init", "page-aligned unmapped range",
    "an error, nothing managed (needs the isolation change)")
{
    domain_setup();
    as_stack u = unmapped_stack(64 << 10);
    cr_assert_lt(as_domain_init(&dom2, &u), 0, "as_domain_init accepted unmapped memory");
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    domain_works(&dom, &own);
}
ROW(dom_fini_bad, "share.h", "as_domain_fini", "NULL; uninitialised; twice", "-EINVAL")
{
    domain_setup();
    cr_assert_eq(as_domain_fini(NULL), -EINVAL);
    cr_assert_eq(as_domain_fini(&dom), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_eq(as_domain_fini(&dom), 0);
    cr_assert_eq(as_domain_fini(&dom), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    domain_works(&dom, &own);
}
ROW(dom_fini_current, "share.h", "as_domain_fini", "the current domain", "-EBUSY")
{
    domain_setup();
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_eq(as_domain_enter(&dom), 0);
    cr_assert_eq(as_domain_fini(&dom), -EBUSY);
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_eq(as_domain_fini(&dom), 0);
}
ROW(dom_grant_bad, "share.h", "as_domain_grant",
    "uninitialised d; NULL, empty, own stack; prot with other bits", "-EINVAL")
{
    as_stack z = {0};
    domain_setup();
    cr_assert_eq(as_domain_grant(NULL, &other, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_grant(&dom, &other, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_eq(as_domain_grant(&dom, NULL, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_grant(&dom, &z, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_grant(&dom, &own, AS_PROT_READ), -EINVAL);
    cr_assert_eq(as_domain_grant(&dom, &other, 4), -EINVAL);
    cr_assert_eq(as_domain_grant(&dom, &other, -1), -EINVAL);
    cr_assert_eq(as_domain_grant(&dom, &other, AS_PROT_READ), 0);
    domain_works(&dom, &own);
}
ROW(dom_grant_full, "share.h", "as_domain_grant", "one more than AS_DOMAIN_GRANTS", "-ENOSPC")
{
    static as_stack g[AS_DOMAIN_GRANTS + 1];
    domain_setup();
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    for (int i = 0; i <= AS_DOMAIN_GRANTS; i++) {
        cr_assert_eq(as_stack_alloc(&g[i], 4096), 0);
        cr_assert_eq(as_domain_grant(&dom, &g[i], AS_PROT_READ), i < AS_DOMAIN_GRANTS ? 0 : -ENOSPC);
    }
    domain_works(&dom, &own);
}
ROW(dom_revoke_bad, "share.h", "as_domain_revoke", "uninitialised d; NULL other; never granted",
    "-EINVAL, -EINVAL, 0")
{
    domain_setup();
    cr_assert_eq(as_domain_revoke(&dom, &other), -EINVAL);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_eq(as_domain_revoke(&dom, NULL), -EINVAL);
    cr_assert_eq(as_domain_revoke(&dom, &other), 0);
    domain_works(&dom, &own);
}
ROW(dom_enter_bad, "share.h", "as_domain_enter", "NULL; uninitialised", "-EINVAL")
{
    domain_setup();
    cr_assert_eq(as_domain_enter(NULL), -EINVAL);
    cr_assert_eq(as_domain_enter(&dom), -EINVAL);
    cr_assert_null(as_domain_current());
}
ROW(dom_leave_none, "share.h", "as_domain_leave", "outside every domain (also as_domain_current)",
    "0; NULL")
{
    cr_assert_eq(as_domain_leave(), 0);
    cr_assert_null(as_domain_current());
}
ROW(dom_ctx_bad, "share.h", "as_domain_ctx_make", "NULL d; uninitialised d; NULL fn", "NULL")
{
    domain_setup();
    cr_assert_null(as_domain_ctx_make(NULL, ctx_entry));
    cr_assert_null(as_domain_ctx_make(&dom, ctx_entry));
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_null(as_domain_ctx_make(&dom, NULL));
    domain_works(&dom, &own);
}
ROW(dom_switch_null, "share.h", "as_switch_domain", "to_domain NULL",
    "runs outside every domain; back in the caller's")
{
    as_stack s;
    cr_assert_eq(as_stack_alloc(&s, 64 << 10), 0);
    as_ctx c = as_ctx_make(&s, ctx_entry);
    as_transfer t = as_switch_domain(c, NULL, buf);
    cr_assert(t.ctx && t.data == buf + 1);
    t = as_switch_domain(t.ctx, NULL, buf + 5);
    cr_assert(!t.ctx && t.data == buf + 6);
    cr_assert_null(as_domain_current());
}
ROW(dom_backend, "share.h", "as_domain_backend", "no arguments (also as_domain_pkeys_supported)",
    "one of three names")
{
    const char *b = as_domain_backend();
    cr_assert(!strcmp(b, "pkeys") || !strcmp(b, "mprotect") || !strcmp(b, "hook"));
    if (!strcmp(b, "pkeys"))
        cr_assert(as_domain_pkeys_supported());
}
ROW(dom_set_backend_bad, "share.h", "as_domain_set_backend", "an unknown name; pkeys where missing; while managed",
    "-EINVAL; -ENOTSUP; -EBUSY")
{
    domain_setup();
    cr_assert_eq(as_domain_set_backend("nonsense"), -EINVAL);
    if (!as_domain_pkeys_supported())
        cr_assert_eq(as_domain_set_backend("pkeys"), -ENOTSUP);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_eq(as_domain_set_backend("mprotect"), -EBUSY);
    domain_works(&dom, &own);
    cr_assert_eq(as_domain_set_backend(NULL), 0);
}

static int hook_fn(void *arg, const as_domain_region *r, size_t n)
{
    (void)arg, (void)r, (void)n;
    return 0;
}

ROW(dom_set_hook, "share.h", "as_domain_set_hook", "NULL fn; while a stack is managed",
    "0 (uninstalls); -EBUSY")
{
    domain_setup();
    cr_assert_eq(as_domain_set_hook(NULL, NULL), 0);
    cr_assert_eq(as_domain_init(&dom, &own), 0);
    cr_assert_eq(as_domain_set_hook(hook_fn, NULL), -EBUSY);
    domain_works(&dom, &own);
}
ROW(share_alloc_bad, "share.h", "as_stack_alloc_shareable", "NULL s; size 0; SIZE_MAX",
    "-EINVAL, *s zeroed")
{
    as_stack s = junk_stack();
    cr_assert_eq(as_stack_alloc_shareable(NULL, 4096), -EINVAL);
    cr_assert_eq(as_stack_alloc_shareable(&s, 0), -EINVAL);
    assert_zeroed(&s);
    s = junk_stack();
    cr_assert_eq(as_stack_alloc_shareable(&s, SIZE_MAX), -EINVAL);
    assert_zeroed(&s);
    cr_assert_eq(as_stack_alloc_shareable(&s, 1), 0);
    stack_works(&s);
    as_stack_free(&s);
}
ROW(alias_bad, "share.h", "as_stack_alias",
    "NULL s; NULL out; a private, an adopted, a zeroed stack; prot 0, 4, -1", "-EINVAL")
{
    as_stack sh, ad, z = {0};
    void *a;
    cr_assert_eq(as_stack_alloc_shareable(&sh, 8192), 0);
    cr_assert_eq(as_stack_alloc(&own, 8192), 0);
    as_stack_init(&ad, buf, 8192);
    cr_assert_eq(as_stack_alias(NULL, AS_PROT_READ, &a), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, AS_PROT_READ, NULL), -EINVAL);
    cr_assert_eq(as_stack_alias(&own, AS_PROT_READ, &a), -EINVAL);
    cr_assert_eq(as_stack_alias(&ad, AS_PROT_READ, &a), -EINVAL);
    cr_assert_eq(as_stack_alias(&z, AS_PROT_READ, &a), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, AS_PROT_NONE, &a), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, 4, &a), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, -1, &a), -EINVAL);
    cr_assert_eq(as_stack_alias(&sh, AS_PROT_RW, &a), 0);
    ((volatile char *)sh.lo)[7] = 9;
    cr_assert_eq(((volatile char *)a)[7], 9);
    cr_assert_eq(as_stack_unalias(&sh, a), 0);
    stack_works(&sh);
}
ROW(unalias_lo, "share.h", "as_stack_unalias", "the stack's own lo (not an alias)",
    "-EINVAL, the stack stays mapped")
{
    as_stack sh;
    cr_assert_eq(as_stack_alloc_shareable(&sh, 16 << 10), 0);
    cr_assert_eq(as_stack_unalias(&sh, sh.lo), -EINVAL);
    stack_works(&sh);
    as_stack_free(&sh);
}
ROW(unalias_twice, "share.h", "as_stack_unalias", "an alias already unmapped", "-EINVAL")
{
    as_stack sh;
    void *a;
    cr_assert_eq(as_stack_alloc_shareable(&sh, 16 << 10), 0);
    cr_assert_eq(as_stack_alias(&sh, AS_PROT_READ, &a), 0);
    cr_assert_eq(as_stack_unalias(&sh, a), 0);
    cr_assert_eq(as_stack_unalias(&sh, a), -EINVAL);
    stack_works(&sh);
}
ROW(unalias_bad, "share.h", "as_stack_unalias",
    "NULL s; NULL, misaligned alias; another stack's alias (other size)",
    "-EINVAL, alias still mapped")
{
    as_stack sh, big;
    void *a, *b;
    cr_assert_eq(as_stack_alloc_shareable(&sh, 16 << 10), 0);
    cr_assert_eq(as_stack_alloc_shareable(&big, 64 << 10), 0);
    cr_assert_eq(as_stack_alias(&sh, AS_PROT_RW, &a), 0);
    cr_assert_eq(as_stack_alias(&big, AS_PROT_RW, &b), 0);
    cr_assert_eq(as_stack_unalias(NULL, a), -EINVAL);
    cr_assert_eq(as_stack_unalias(&sh, NULL), -EINVAL);
    cr_assert_eq(as_stack_unalias(&sh, (char *)a + 1), -EINVAL);
    cr_assert_eq(as_stack_unalias(&sh, b), -EINVAL);
    ((volatile char *)b)[65535] = 3;
    cr_assert_eq(((volatile char *)big.lo)[65535], 3);
    ((volatile char *)a)[0] = 4;
    cr_assert_eq(((volatile char *)sh.lo)[0], 4);
    cr_assert_eq(as_stack_unalias(&big, b), 0);
    cr_assert_eq(as_stack_unalias(&sh, a), 0);
}

/* ------------------------------------------------------------------------ */
/* The runner                                                                */

/* Workers may be new processes (Criterion re-executes the binary), where
 * addresses differ: the parameter is a row's index, and each process has
 * built the same table before main. */
static size_t row_index[MAX_ROWS];

ParameterizedTestParameters(api, row)
{
    for (size_t i = 0; i < n_rows; i++)
        row_index[i] = i;
    return cr_make_param_array(size_t, row_index, n_rows);
}

ParameterizedTest(size_t *i, api, row, .timeout = 30)
{
    cr_assert_lt(*i, n_rows);
    const struct row *r = &rows[*i];
    cr_log_info("row %zu: %s %s(%s): %s", *i, r->hdr, r->fn, r->cls, r->expect);
#ifndef AS_TEST_LIB_DEBUG
    if (r->flags & F_DEBUG)
        cr_skip_test("%s(%s): needs a library built with AS_DEBUG (buildtype=debug)", r->fn,
                     r->cls);
#endif
    r->run();
}

/* Public functions with no row here, and why. */
static const char *const elsewhere[] = {
    "as_hook_cpu_id",       /* provided by the kernel, not the library      */
    "as_el1_stacks_set",    /* freestanding aarch64: tests/freestanding     */
#if !(AS_HOSTED && AS_ARCH_X86_64)
    "as_percpu_gs_method",  /* hosted x86_64 only                           */
#endif
};

static bool has_rows(const char *name)
{
    for (size_t i = 0; i < n_rows; i++) {
        const char *f = rows[i].fn, *c = rows[i].cls;
        if (!strcmp(f, name))
            return true;
        /* "(also as_x, as_y)" in a row's class names more functions */
        const char *p = strstr(c, name);
        if (p && strstr(c, "also") && !(p[strlen(name)] == '_' ||
                                        (p[strlen(name)] >= 'a' && p[strlen(name)] <= 'z')))
            return true;
    }
    for (size_t i = 0; i < sizeof elsewhere / sizeof *elsewhere; i++)
        if (!strcmp(elsewhere[i], name))
            return true;
    return false;
}

Test(api, every_public_function_has_rows)
{
    static const char *const hdrs[] = { "stack.h", "switch.h", "activation.h", "preempt.h",
                                        "dlock.h", "percpu.h", "share.h", "config.h" };
    char path[4096], line[1024], decl[4096];
    unsigned missing = 0, functions = 0;
    for (size_t h = 0; h < sizeof hdrs / sizeof *hdrs; h++) {
        snprintf(path, sizeof path, "%s/%s", API_HEADERS, hdrs[h]);
        FILE *f = fopen(path, "r");
        cr_assert(f, "cannot read %s", path);
        while (fgets(line, sizeof line, f)) {
            char *p = strstr(line, "AS_API ");
            const char *q = line + strspn(line, " \t");
            if (!p || strstr(line, "#define") || *q == '*' || *q == '/')
                continue;                   /* not a declaration */
            /* The declaration up to its '(' (it may span lines). */
            snprintf(decl, sizeof decl, "%s", p);
            while (!strchr(decl, '(') && fgets(line, sizeof line, f))
                strncat(decl, line, sizeof decl - strlen(decl) - 1);
            char *paren = strchr(decl, '(');
            if (!paren)
                continue;
            char *e = paren;
            while (e > decl && e[-1] == ' ')
                e--;
            char *b = e;
            while (b > decl && (b[-1] == '_' || (b[-1] >= 'a' && b[-1] <= 'z') ||
                                (b[-1] >= '0' && b[-1] <= '9')))
                b--;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(e - b), b);
            functions++;
            if (!has_rows(name)) {
                cr_log_error("%s: %s has no rows in tests/test_api.c", hdrs[h], name);
                missing++;
            }
        }
        fclose(f);
    }
    cr_assert_gt(functions, 50, "found only %u public functions: header parse broken?", functions);
    cr_assert_eq(missing, 0, "%u public functions have no rows", missing);
}

Test(api, rows_per_header)
{
    static const char *const hdrs[] = { "stack.h", "switch.h", "activation.h", "preempt.h",
                                        "dlock.h", "percpu.h", "share.h" };
    size_t total = 0;
    for (size_t h = 0; h < sizeof hdrs / sizeof *hdrs; h++) {
        size_t n = 0;
        for (size_t i = 0; i < n_rows; i++)
            n += !strcmp(rows[i].hdr, hdrs[h]);
        cr_log_info("%-14s %zu rows", hdrs[h], n);
        cr_expect_gt(n, 0, "%s has no rows", hdrs[h]);
        total += n;
    }
    cr_assert_eq(total, n_rows, "a row names an unknown header");
    cr_assert_lt(n_rows, MAX_ROWS, "raise MAX_ROWS");
}
