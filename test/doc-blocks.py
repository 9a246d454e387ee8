#!/usr/bin/env python3
"""Every C block of README.md and docs/*.md compiles against the headers
of this tree, so that what the docs show is what the library declares.

A block is compiled as a fragment: its definitions (functions, types,
static data: lines from column 0 to their end) at file scope, the rest as
the body of a function, after iobound's headers and the C library's. An
HTML comment on the line before a block says more:

  <!-- c: given iob_batch *batch; uv_loop_t *loop; -->
      what the fragment takes from the surrounding program, declared
      before it at file scope;
  <!-- c: excerpt of examples/batch-server.c -->
      a simplified excerpt of the named file, which must exist, not
      compiled on its own (it uses that file's types);
  <!-- c: illustration -->
      not C to compile (a sketch with "..." in it).

doc-blocks.py SOURCE_ROOT. Exit 77 without a C compiler."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HEADERS = """#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <iobound.h>
#include <iobound/http.h>
#include <iobound/pg.h>
"""

FLAGS = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror",
         "-Wno-unused-parameter", "-Wno-unused-variable",
         "-Wno-unused-function", "-Wno-unused-but-set-variable",
         "-Wno-unused-const-variable", "-Wno-misleading-indentation", "-c",
         "-o", os.devnull]

DEFINITION = re.compile(
    r"^(static|typedef|struct|enum|union|#|extern|const\s+\w+\s+\w+\s*\[|"
    r"[A-Za-z_][\w \*]*\b\w+\([^;]*$)")


def blocks(path):
    """(line, note, code) for each ```c block of a Markdown file."""
    lines = path.read_text().split("\n")
    k = 0
    while k < len(lines):
        fence = lines[k].strip()
        if re.match(r"^(```|~~~)\s*[cC]\b", fence) and fence != "```c":
            sys.exit(f"doc-blocks.py: {path}:{k + 1}: a C block opened with "
                     f"'{fence}': write ```c, which this test reads")
        if fence == "```c":
            note = ""
            if k > 0:
                m = re.match(r"^<!-- c: (.*) -->$", lines[k - 1].strip())
                note = m.group(1) if m else ""
            end = k + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            # a block in a list item is indented with it
            yield k + 1, note, textwrap.dedent("\n".join(lines[k + 1:end]))
            k = end
        k += 1


def split(code):
    """The block's file-scope definitions, and its statements."""
    top, body = [], []
    lines = code.split("\n")
    k = 0
    while k < len(lines):
        line = lines[k]
        if DEFINITION.match(line) and not line.startswith(" "):
            # to its end: a ';' at depth 0, or a '}' in column 0
            item, depth = [], 0
            while k < len(lines):
                item.append(lines[k])
                depth += lines[k].count("{") - lines[k].count("}")
                text = re.sub(r"/\*.*?\*/\s*$", "", lines[k]).rstrip()
                k += 1
                if depth == 0 and (text.endswith(";") or text.endswith("}")
                                   or text.startswith("#")):
                    break
            top.extend(item)
        else:
            body.append(line)
            k += 1
    return "\n".join(top), "\n".join(body)


KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof"}


def check_excerpt(where, code, quoted, source):
    """Every function an excerpt defines is defined in its file, and every
    one it calls is called there too. @return the failures."""
    text = re.sub(r"/\*.*?\*/", " ", quoted.read_text(), flags=re.S)
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    failures = 0
    defined = re.findall(r"^(?:static\s+)?[\w \*]+?\b(\w+)\([^;]*\{",
                         code, flags=re.M)
    for name in defined:
        if not re.search(rf"^(?:static\s+)?[\w \*]+?\b{name}\([^;]*$",
                         text, flags=re.M):
            print(f"FAIL: {where}: {name}() is not defined in "
                  f"{quoted.relative_to(source)}")
            failures += 1
    for name in set(re.findall(r"\b(\w+)\s*\(", code)) - KEYWORDS - \
            set(defined):
        if not re.search(rf"\b{name}\s*\(", text):
            print(f"FAIL: {where}: {name}() is not called in "
                  f"{quoted.relative_to(source)}")
            failures += 1
    return failures


def compile_block(cc, source, given, code):
    top, body = split(code)
    unit = HEADERS + "\n" + given.replace("; ", ";\n") + "\n" + top + "\n"
    if not re.search(r"^int main\(", code, flags=re.M) and body.strip():
        unit += "int doc_block(void);\nint doc_block(void) {\n" + body + \
            "\n  return 0;\n}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as f:
        f.write(unit)
        name = f.name
    try:
        out = subprocess.run([cc, "-I", str(source / "include")] + FLAGS +
                             [name], capture_output=True, text=True)
    finally:
        os.unlink(name)
    return out.returncode == 0, out.stderr, unit


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: doc-blocks.py SOURCE_ROOT")
    source = Path(sys.argv[1])
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("SKIP: no C compiler")
        return 77
    docs = [source / "README.md"] + sorted((source / "docs").glob("*.md"))
    counts = {"compiled": 0, "excerpt": 0, "illustration": 0}
    failed = 0
    for doc in docs:
        for line, note, code in blocks(doc):
            where = f"{doc.relative_to(source)}:{line}"
            if note.startswith("excerpt of "):
                quoted = source / note[len("excerpt of "):].strip()
                if not quoted.is_file():
                    print(f"FAIL: {where}: an excerpt of {quoted}, "
                          "which is not there")
                    failed += 1
                else:  # what it shows is that file's
                    failed += check_excerpt(where, code, quoted, source)
                counts["excerpt"] += 1
                continue
            if note == "illustration":
                counts["illustration"] += 1
                continue
            given = note[len("given "):] if note.startswith("given ") else ""
            if note and not given:
                print(f"FAIL: {where}: a note that says '{note}'")
                failed += 1
                continue
            ok, errors, unit = compile_block(cc, source, given, code)
            if ok:
                counts["compiled"] += 1
                continue
            failed += 1
            first = "\n".join(l for l in errors.split("\n")
                              if "error" in l)[:1500]
            print(f"FAIL: {where}: the block does not compile:\n{first}\n")
    print(", ".join(f"{n} {k}" for k, n in counts.items()) +
          f", {failed} failed")
    return 1 if failed else 0


sys.exit(main())
