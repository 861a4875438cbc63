#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CFI is valid at every instruction of the switch: a gdb check.

Runs the freestanding smoke program under gdb and single-steps through
as_switch, the entry trampoline, as_call_on, as_switch_ontop and their
fast-mode twins,
taking a backtrace at every instruction.  Each backtrace must end where
a chain ends, in _start (whose CFI leaves the return address undefined) or
in as__context_start (a context's end frame), without gdb reporting an
error on the way.  This is what a sampling profiler or a signal handler
arriving at that instruction would see.

usage: cfi_step.py GDB PROGRAM [QEMU]
  with QEMU, PROGRAM runs under `QEMU -g PORT` and gdb attaches to it.
  CFI_STEP_FUNCS="fn:limit[:entry],...", CFI_STEP_ENDS="fn,...": other
  functions to step (how often to follow each from its entry; ":entry":
  not from after its calls, which never return) and other ends of a
  chain, for other programs (tests/boost: the fcontext switches).
The same file is the script gdb runs (it imports gdb there).
"""
import os
import socket
import subprocess
import sys

ASM = ('as_switch', 'as__trampoline', 'as_call_on', 'as_switch_ontop', 'as_switch_fast',
       'as_switch_ontop_fast')
ENDS = ('_start', 'as__context_start')
# How often each breakpoint is followed before it is disabled: enough to
# see a fresh context started, suspended frames resumed both ways, an
# entry finishing, and nested as_call_on, without stepping all 1000
# rounds of ping-pong.
# The trampoline is only ever entered past its first instruction, from
# as_switch, and followed from there.
LIMIT = {'as_switch': 16, 'as_call_on': 6, 'as__trampoline': 0, 'as_switch_ontop': 2,
         'as_switch_fast': 2, 'as_switch_ontop_fast': 1, 'tail': 4}
NO_TAIL = ()
if os.environ.get('CFI_STEP_FUNCS'):
    LIMIT = {'tail': LIMIT['tail']}
    for item in os.environ['CFI_STEP_FUNCS'].split(','):
        fn, n, how = (item.split(':') + ['1', ''])[:3]
        LIMIT[fn] = int(n)
        NO_TAIL += (fn,) if how == 'entry' else ()
    ASM = tuple(k for k in LIMIT if k != 'tail')
if os.environ.get('CFI_STEP_ENDS'):
    ENDS = tuple(os.environ['CFI_STEP_ENDS'].split(','))
# Without debug info (a release build) gdb names assembly symbols from the
# symbol table and decodes "__" in them Ada-style, as ".": as__context_start
# shows as as.context_start.  Either spelling ends a chain.
ENDS += tuple(e.replace('__', '.') for e in ENDS if '__' in e)


def gdb_side():
    import gdb

    def run(cmd):
        return gdb.execute(cmd, to_string=True)

    def insns(fn):
        """[(address, text)] of fn's instructions, from its ELF size."""
        out = []
        for l in run('disassemble ' + fn).splitlines():
            l = l.replace('=>', '').strip()
            if l.startswith('0x'):
                addr, _, text = l.partition(':')
                out.append((int(addr.split()[0], 16), text))
        return out

    ranges, stops = [], {}
    for fn in ASM:
        code = insns(fn)
        ranges.append((code[0][0], code[-1][0] + 1))
        # Follow each function from its entry, and from every instruction
        # after a call (where it resumes once the callee returns).
        if LIMIT[fn]:
            stops[code[0][0]] = LIMIT[fn]
        for (addr, text), nxt in zip(code, code[1:]) if fn not in NO_TAIL else ():
            if text.split()[:1] in (['blr'], ['call'], ['callq']):
                stops[nxt[0]] = LIMIT['tail']

    def in_asm(pc):
        return any(lo <= pc < hi for lo, hi in ranges)

    def check():
        """The backtrace from here: (ok, description)."""
        names, f, why = [], gdb.newest_frame(), None
        try:
            while f is not None and len(names) < 64:
                names.append(f.name() or hex(f.pc()))
                why = f.unwind_stop_reason()
                f = f.older()
        except gdb.error as e:
            return False, '%s <- <error: %s>' % (' <- '.join(names), e)
        ok = names[-1] in ENDS and why == gdb.FRAME_UNWIND_OUTERMOST
        return ok, '%s (%s)' % (' <- '.join(names), gdb.frame_stop_reason_string(why))

    if gdb.selected_inferior().pid == 0:
        run('starti')
    run('set pagination off')
    run('set backtrace past-main on')
    bps = {addr: gdb.Breakpoint('*%#x' % addr, internal=True) for addr in stops}
    hits = dict.fromkeys(stops, 0)
    stepped = set()         # stops reached by stepping into them
    checked = bad = 0
    while any(bp.enabled for bp in bps.values()):
        try:
            run('continue')
        except gdb.error:
            break
        if not gdb.selected_inferior().threads():
            break
        pc = gdb.newest_frame().pc()
        if pc in hits:
            hits[pc] += 1
            if hits[pc] >= stops[pc]:
                bps[pc].enabled = False
        steps = 0
        while in_asm(gdb.newest_frame().pc()) and steps < 200:
            ok, what = check()
            checked += 1
            stepped.add(gdb.newest_frame().pc())
            if not ok:
                bad += 1
                print('cfi_step: BAD %#x: %s' % (gdb.newest_frame().pc(), what))
            run('stepi')
            steps += 1
    unhit = [hex(a) for a, n in hits.items() if n == 0 and a not in stepped]
    if unhit or checked < 100:
        print('cfi_step: FAIL: stepped too little (%d instructions; never reached %s)'
              % (checked, ', '.join(unhit) or '-'))
        bad += 1
    print('cfi_step: %s: %d instructions stepped from %d stops, %d with a broken backtrace'
          % ('PASS' if not bad else 'FAIL', checked, sum(hits.values()), bad))
    if gdb.selected_inferior().threads():
        run('kill')
    gdb.execute('quit %d' % (1 if bad else 0))


def driver(argv):
    gdb_bin, prog = argv[1], argv[2]
    qemu = argv[3] if len(argv) > 3 else None
    cmd = [gdb_bin, '-nx', '-q', '-batch', '-ex', 'set confirm off', '-ex', 'file ' + prog]
    child = None
    if qemu:
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        child = subprocess.Popen([qemu, '-g', str(port), prog], stdout=subprocess.DEVNULL)
        cmd += ['-ex', 'target remote 127.0.0.1:%d' % port]
    cmd += ['-x', os.path.abspath(__file__)]
    try:
        r = subprocess.run(cmd, timeout=300, capture_output=True, text=True)
    finally:
        if child:
            child.kill()
            child.wait()
    # gdb announces every stop; keep only the verdicts (all of it if
    # there is no verdict at all).
    lines = [l for l in r.stdout.splitlines() if l.startswith('cfi_step: ')]
    print('\n'.join(lines) if lines else r.stdout + r.stderr)
    return r.returncode if lines else 1


if __name__ == '__main__':
    try:
        import gdb  # noqa: F401  (inside gdb)
        gdb_side()
    except ImportError:
        sys.exit(driver(sys.argv))
