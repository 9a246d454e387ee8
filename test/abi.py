#!/usr/bin/env python3
"""What iobound's shared libraries export is exactly what their headers
declare IOB_EXPORT, listed in their version scripts (lib/*.map), each
symbol under the map's version node.

abi.py SOURCE_ROOT BUILD_ROOT. A library that was not built (libcurl or
libpq missing) is skipped; exit 77 if nm is missing."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

LIBRARIES = [  # name, header
    ("iobound", "include/iobound.h"),
    ("iobound-http", "include/iobound/http.h"),
    ("iobound-pg", "include/iobound/pg.h"),
]


def declared(header):
    """The names a header declares IOB_EXPORT: a function's, before its
    '(', or a variable's, before its ';'."""
    text = re.sub(r"/\*.*?\*/", " ", header.read_text(), flags=re.S)
    text = re.sub(r"^\s*#.*$", "", text, flags=re.M)  # the macro's own
    names = set()
    for found in re.finditer(r"\bIOB_EXPORT\b([^;{]*)", text):
        decl = found.group(1)
        name = re.search(r"(\w+)\s*\(", decl) or \
            re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", decl)
        if name is None:
            sys.exit(f"abi.py: cannot read the declaration '{decl.strip()}'")
        names.add(name.group(1))
    return names


def mapped(path):
    """Each name the map lists, and the version node it is listed in."""
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
    names = {}
    for node in re.finditer(r"([\w.]+)\s*\{(.*?)\}\s*[\w.]*\s*;", text, flags=re.S):
        body = node.group(2)
        found = re.search(r"global:(.*?)(local:|$)", body, flags=re.S)
        for name in (found.group(1) if found else "").split(";"):
            if name.strip():
                names[name.strip()] = node.group(1)
    if not names:
        sys.exit(f"abi.py: {path} lists no symbol ('NODE {{ global: ...; }};')")
    return names


def exported(library):
    """What the shared library defines for others: name -> version."""
    out = subprocess.run(["nm", "-D", "--defined-only",
                          "--with-symbol-versions", str(library)],
                         capture_output=True, text=True, check=True).stdout
    symbols = {}
    for line in out.splitlines():
        fields = line.split()
        if fields[-2] == "A":
            continue  # a version node's own name
        base, _, version = fields[-1].partition("@")
        # "@@NODE" is the default version, what programs link to; "@NODE"
        # alone would be an old one that new programs cannot use
        symbols[base] = version[1:] if version.startswith("@") else \
            f"(not default) {version}"
    return symbols


def differ(what, a, b, a_name, b_name):
    only_a, only_b = sorted(a - b), sorted(b - a)
    if only_a or only_b:
        print(f"FAIL: {what}: {a_name} has {only_a or 'nothing else'}, "
              f"{b_name} has {only_b or 'nothing else'}")
        return True
    return False


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: abi.py SOURCE_ROOT BUILD_ROOT")
    source, build = Path(sys.argv[1]), Path(sys.argv[2])
    if shutil.which("nm") is None:
        print("SKIP: no nm (binutils)")
        return 77
    failed = checked = 0
    for name, header in LIBRARIES:
        library = build / "lib" / f"lib{name}.so"
        if not library.exists():
            print(f"{name}: not built, not checked")
            continue
        in_map = mapped(source / "lib" / f"{name}.map")
        in_header = declared(source / header)
        symbols = exported(library)
        failed += differ(f"lib{name}.so", in_header, set(in_map), header,
                         f"lib/{name}.map")
        failed += differ(f"lib{name}.so", set(in_map), set(symbols),
                         f"lib/{name}.map", "the library's exports")
        elsewhere = sorted(f"{s}@{v}" for s, v in symbols.items()
                           if s in in_map and v != in_map[s])
        if elsewhere:
            print(f"FAIL: lib{name}.so: not under their map's node: "
                  f"{elsewhere}")
            failed += 1
        checked += 1
        nodes = sorted(set(in_map.values()))
        print(f"{name}: {len(symbols)} symbols, the header's, under "
              f"{', '.join(nodes)}")
    if checked == 0:
        print("FAIL: no library was found to check")
        return 1
    return 1 if failed else 0


sys.exit(main())
