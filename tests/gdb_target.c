/* SPDX-License-Identifier: MIT */
/* tests/gdb_target.c - the program tests/gdb_bt.sh drives under gdb. */
#include <altstack.h>

#define NOINLINE __attribute__((noinline, noclone, used))
volatile int sink;

NOINLINE void *gdb_in_call_on(void *p) { sink++; return p; }
NOINLINE void gdb_in_entry(int round) { sink += round; }

NOINLINE as_transfer gdb_entry(as_transfer t)
{
    gdb_in_entry(1);
    t = as_switch(t.ctx, NULL);
    gdb_in_entry(2);
    return (as_transfer){ t.ctx, NULL };
}

NOINLINE void gdb_caller(as_stack *s) { as_call_on(s, gdb_in_call_on, s); sink++; }
NOINLINE as_transfer gdb_switcher(as_ctx c) { as_transfer t = as_switch(c, NULL); sink++; return t; }
NOINLINE as_transfer gdb_other_switcher(as_ctx c, int x)
{
    volatile char pad[256];
    pad[0] = (char)x;
    as_transfer t = as_switch(c, (void *)(long)pad[0]);
    sink++;
    return t;
}

NOINLINE void gdb_in_ontop(void) { sink++; }
NOINLINE as_transfer gdb_ontop_fn(as_transfer t) { gdb_in_ontop(); return t; }
NOINLINE as_transfer gdb_peer_waits(as_transfer t) { t = as_switch(t.ctx, NULL); sink++; return t; }
NOINLINE as_transfer gdb_ontop_peer(as_transfer t)
{
    t = gdb_peer_waits(t);
    return (as_transfer){ t.ctx, NULL };
}

int main(void)
{
    as_stack s, aux;
    if (as_stack_alloc(&s, 64 << 10) || as_stack_alloc(&aux, 64 << 10))
        return 1;
    gdb_caller(&aux);
    as_transfer t = gdb_switcher(as_ctx_make(&s, gdb_entry));
    t = gdb_other_switcher(t.ctx, 3);
    as_transfer u = as_switch(as_ctx_make(&s, gdb_ontop_peer), NULL);
    u = as_switch_ontop(u.ctx, NULL, gdb_ontop_fn);
    if (u.ctx)
        return 1;
    as_stack_free(&s);
    as_stack_free(&aux);
    return t.ctx != 0;
}
