#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/check_exports.py CC-COMMAND... -- INCLUDE_DIR LIBRARY.so [NM]
   tests/check_exports.py --exactly SYM,SYM,... LIBRARY.so [NM]

libaltstack.so exports exactly the public API: the functions the public
headers declare with AS_API (found by preprocessing <altstack.h> as a
hosted C11 program with the given compiler), each in version ALTSTACK_0,
and nothing else.  With --exactly: the library exports exactly those
symbols, unversioned (libaltstack-fcontext.so: Boost's three, and none of
the libaltstack copy inside it).  Prints what is missing or extra; exits 1
if anything is.
"""
import re, subprocess, sys

args = sys.argv[1:]
if args[0] == "--exactly":
    declared, want_version = set(args[1].split(",")), ""
    lib, rest = args[2], args[3:]
else:
    sep = args.index("--")
    cc, (incdir, lib, *rest) = args[:sep], args[sep + 1:]
    want_version = "ALTSTACK_0"
    src = subprocess.run(cc + ["-E", "-P", "-std=c11", "-I", incdir, "-xc", "-"],
                         input="#include <altstack.h>\n", capture_output=True, text=True,
                         check=True).stdout
    declared = set()
    # AS_API expands to this attribute; the declared name is the first
    # as_* identifier followed by "(" after it.
    for m in re.finditer(r'__attribute__\(\(visibility\("default"\)\)\)([^;{]*)', src):
        n = re.search(r'\b(as_[A-Za-z0-9_]+)\s*\(', m.group(1))
        if n:
            declared.add(n.group(1))
nm = rest[0] if rest else "nm"

out = subprocess.run([nm, "-D", "--defined-only", "--with-symbol-versions", lib],
                     capture_output=True, text=True, check=True).stdout
exported, unversioned = set(), []
for line in out.splitlines():
    parts = line.split()
    if len(parts) < 3 or parts[1] in ("A",):
        continue
    name, _, ver = parts[2].partition("@")
    ver = ver.lstrip("@")
    exported.add(name)
    if ver != want_version:
        unversioned.append(parts[2])

missing, extra = sorted(declared - exported), sorted(exported - declared)
for n in missing:
    print(f"declared but not exported: {n}")
for n in extra:
    print(f"exported but not declared: {n}")
for n in unversioned:
    print(f"version is not {want_version or '(none)'}: {n}")
print(f"{len(declared)} public functions, {len(exported)} exported symbols")
sys.exit(1 if missing or extra or unversioned else 0)
