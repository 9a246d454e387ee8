#!/usr/bin/env python3
"""Write a file's bytes as a C array of chars ending in a NUL, so that a
program carries the file (iobound-server its page) with nothing to find
at run time: embed.py NAME INPUT OUTPUT."""
import sys


def main():
    name, source, output = sys.argv[1:4]
    with open(source, "rb") as f:
        data = f.read()
    if b"\0" in data:
        sys.exit(f"embed.py: {source} holds a NUL byte")
    lines = [
        "/* Made by examples/embed.py from %s: edit that instead. */"
        % source.rsplit("/", 1)[-1],
        "const char %s[] = {" % name,
    ]
    for k in range(0, len(data), 16):
        # A byte past 127 (UTF-8) does not fit a signed char unconverted.
        lines.append("  " + ", ".join(
            str(b) if b < 128 else "(char)%d" % b for b in data[k:k + 16]) + ",")
    lines.append("  0};")
    with open(output, "w") as f:
        f.write("\n".join(lines) + "\n")


main()
