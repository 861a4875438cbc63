#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The library's IBT claim checked against its code (x86_64).

usage: check_ibt.py OBJDUMP READELF LIBRARY.a

Every object whose GNU property note says IBT
(GNU_PROPERTY_X86_FEATURE_1_AND with the IBT bit) promises that an
indirect jump or call lands only on an endbr64, or is marked notrack.
This disassembles the archive and checks, per object claiming IBT:

  - every exported function starts with endbr64 (users may call any of
    them through a pointer; hidden ones are the library's own business,
    and those it reaches indirectly, like as__trampoline + 4, are checked
    by the rule below);
  - in the assembly objects (*.S.o), every indirect jmp is notrack: the
    library's jumps go to return sites and resumed PCs, never landing
    pads (a switch's `jmp *%r8`, an activation's `jmp *%r11`); indirect
    calls there go through function pointers the caller supplies (entry
    functions, fn of as_call_on / as_switch_ontop), which land on the
    callee's endbr64, and so may stay tracked;
  - in the C objects the compiler (-fcf-protection=branch) decides: its
    tracked indirect jumps are sibling calls through function pointers
    and its jump tables are notrack, so nothing is required there beyond
    the note itself.

It also fails if no object claims IBT at all while some do not claim it
(a claim the linker would silently drop), and prints what it checked.
"""
import re
import subprocess
import sys


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def members(readelf, lib):
    """{object name: claims IBT} from readelf -n."""
    out = run(readelf, '-n', '-W', lib)
    claims, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^File: .*\((.*)\)$", line)
        if m:
            cur = m.group(1)
            claims.setdefault(cur, False)
        elif cur and 'x86 feature' in line and 'IBT' in line:
            claims[cur] = True
    return claims


def disassemble(objdump, lib):
    """{object: [(function, is_global, [(addr, insn text)])]}"""
    out = run(objdump, '-d', '-w', '--no-show-raw-insn', lib)
    syms = run(objdump, '-t', '-w', lib)
    glob, cur = {}, None
    for line in syms.splitlines():
        m = re.match(r'^(\S+):\s+file format', line)
        if m:
            cur = m.group(1)
            glob[cur] = set()
            continue
        f = line.split()
        if (cur and len(f) >= 6 and f[1] == 'g' and 'F' in f[2:4] and '.text' in line
                and '.hidden' not in line):
            glob[cur].add(f[-1])
    objs, cur, fn = {}, None, None
    for line in out.splitlines():
        m = re.match(r'^(\S+):\s+file format', line)
        if m:
            cur = m.group(1)
            objs[cur] = []
            continue
        m = re.match(r'^[0-9a-f]+ <([^>]+)>:$', line)
        if m and cur:
            fn = (m.group(1), m.group(1) in glob.get(cur, ()), [])
            objs[cur].append(fn)
            continue
        m = re.match(r'^\s+([0-9a-f]+):\s+(.*)$', line)
        if m and fn:
            fn[2].append((int(m.group(1), 16), m.group(2).strip()))
    return objs


def main(argv):
    objdump, readelf, lib = argv[1:4]
    claims = members(readelf, lib)
    objs = disassemble(objdump, lib)
    bad, checked_fn, checked_br = [], 0, 0
    for obj, fns in objs.items():
        if not claims.get(obj):
            continue
        asm = obj.endswith('.S.o')
        for name, is_global, insns in fns:
            if not insns:
                continue
            if is_global:
                checked_fn += 1
                if insns[0][1] != 'endbr64':
                    bad.append('%s: %s: exported function starts with "%s", not endbr64'
                               % (obj, name, insns[0][1]))
            for addr, text in insns:
                if not re.search(r'\b(jmp|call)q?\s+\*', text):
                    continue
                checked_br += 1
                if asm and re.match(r'^(jmpq?)\s+\*', text):
                    bad.append('%s: %s+%#x: tracked "%s" in assembly (needs notrack, or '
                               'a landing pad at every target)' % (obj, name, addr, text))
    claimed = [o for o, c in claims.items() if c]
    unclaimed = [o for o, c in claims.items() if not c]
    if not claimed:
        bad.append('no object claims IBT')
    for o in unclaimed:
        bad.append('%s does not claim IBT: the library as a whole then does not' % o)
    for b in bad:
        print('check_ibt: BAD ' + b)
    print('check_ibt: %s: %d objects claim IBT, %d exported functions and %d indirect '
          'branches checked, %d problems'
          % ('PASS' if not bad else 'FAIL', len(claimed), checked_fn, checked_br, len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
