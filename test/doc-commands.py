#!/usr/bin/env python3
"""Every command README.md, CONTRIBUTING.md and docs/*.md show says
whether a test runs it, so that it either works or is plainly a sketch.
Commands are the lines of a ```sh block, and the "$ " lines of a session
shown in another block (with what they printed after them). The line
before each such block is one of:

  <!-- sh: run -->
      this test runs each of its commands (a line, with its backslash
      continuations) in a directory of its own, with the build tree's
      programs first on PATH and "./run compare" read as the
      iobound-compare it runs: each must exit 0 within a minute;
  <!-- sh: illustration: WHY -->
      not run here, and why (it installs, needs root or a server of the
      reader's, runs for minutes, or shows a session's output).

doc-commands.py SOURCE_ROOT BUILD_ROOT."""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def commands_of(body, session):
    """The commands of a block's lines: every line of a shell block; the
    "$ " lines of a session (none: it shows no command). Lines ending in
    a backslash go on."""
    commands, k = [], 0
    while k < len(body):
        line = body[k]
        k += 1
        if session and not line.startswith("$ "):
            continue
        command = line[2:] if session else line
        while command.endswith("\\") and k < len(body):
            command = command[:-1] + " " + body[k]
            k += 1
        if command.strip():
            commands.append(command)
    return commands


def blocks(path):
    """(line, note, commands) for each block of a Markdown file that
    shows commands."""
    lines = path.read_text().split("\n")
    k = 0
    while k < len(lines):
        fence = lines[k].strip()
        if fence.startswith("```") or fence.startswith("~~~"):
            m = re.match(r"^<!-- sh: (.*) -->$", lines[k - 1].strip()) \
                if k > 0 else None
            end = k + 1
            while end < len(lines) and lines[end].strip() != fence[:3]:
                end += 1
            body = [l.strip() for l in lines[k + 1:end]]
            commands = commands_of(body, fence != "```sh")
            if fence == "```sh" or commands:
                yield k + 1, m.group(1) if m else None, commands
            k = end
        k += 1


def run(command, build, http):
    """Run one command: None if it worked or was skipped, else why not."""
    command = re.sub(r"^\./run compare\b", "iobound-compare", command)
    if command.startswith("./run"):
        return "a ./run command other than compare cannot run in a test"
    if not http and "--work http" in command:
        print(f"  skipped (built without libcurl): {command}")
        return None
    env = dict(os.environ)
    env["PATH"] = f"{build / 'examples'}:{env['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            out = subprocess.run(["bash", "-c", command], cwd=tmp, env=env,
                                 capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "still running after 60 s"
    if out.returncode != 0:
        return f"exit {out.returncode}: {out.stderr.strip()[-600:]}"
    print(f"  ran: {command}")
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: doc-commands.py SOURCE_ROOT BUILD_ROOT")
    source, build = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    if not (build / "examples" / "iobound-compare").exists():
        print("SKIP: no iobound-compare in the build tree")
        return 77
    http = (build / "lib" / "libiobound-http.so").exists()
    docs = [source / "README.md", source / "CONTRIBUTING.md"] + \
        sorted((source / "docs").glob("*.md"))
    ran = shown = failed = 0
    for doc in docs:
        for line, note, commands in blocks(doc):
            where = f"{doc.relative_to(source)}:{line}"
            if note == "run":
                for command in commands:
                    why = run(command, build, http)
                    if why is not None:
                        print(f"FAIL: {where}: {command}\n  {why}")
                        failed += 1
                ran += 1
            elif note is not None and re.match(r"^illustration: \S", note):
                shown += 1
            else:
                print(f"FAIL: {where}: a shell block without <!-- sh: run "
                      "--> or <!-- sh: illustration: WHY --> before it")
                failed += 1
    print(f"{ran} blocks run, {shown} illustrations, {failed} failed")
    return 1 if failed else 0


sys.exit(main())
