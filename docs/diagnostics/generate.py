#!/usr/bin/env python3
"""Builds docs/diagnostics.md from template.md by running flowc on every example.

Usage:
  generate.py --flowc PATH --output docs/diagnostics.md   # rewrite the reference
  generate.py --flowc PATH --check docs/diagnostics.md    # exit 1 if it is stale

The examples under examples/ are copied to a scratch directory first, so that
commands that write files (@@SHRUN) never touch the source tree. Directives,
each alone on a line of the template:

  @@FLOW dir/file.flow [lang]@@   the file, fenced
  @@CLEAN dir/file.flow@@         the file, fenced; it must check clean
  @@RUN dir :: ARGS@@             `flowc check ARGS` in dir: stderr+stdout, exit status
  @@RUNOUT dir :: ARGS@@          the same, stdout only, no exit status
  @@SHRUN dir :: SHELL :: ARGS@@  a shell command in dir, then @@RUN dir :: ARGS@@
  @@SARIF dir :: ARGS@@           `flowc check ARGS --format=sarif`: version and results
  @@BUILD dir :: ARGS@@           `flowc build ARGS` in dir: stderr+stdout, exit status
  @@BUILDCLEAN dir/file.flow :: ARGS@@
                                  the file, fenced; `flowc build ARGS file` must exit 0
                                  with nothing on stderr (stdout is not shown)

Give BUILD and BUILDCLEAN `--emit=text` (and `-o /dev/null` where only the
diagnostics matter), so that no .fbin file is written and the output stays
readable.
"""
import argparse
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
# Absolute paths of this checkout would differ on every machine.
PLACEHOLDER_ROOT = "/path/to/flowsteer"


class Generator:
    def __init__(self, flowc, scratch):
        self.flowc = flowc
        self.scratch = scratch
        self.errors = []

    @staticmethod
    def clean_text(data):
        return data.decode("utf-8", "replace").replace(SOURCE_ROOT, PLACEHOLDER_ROOT)

    def flowc_run(self, command, cwd, args):
        """Runs `flowc COMMAND ARGS` in cwd: (stdout, stderr, exit status)."""
        p = subprocess.run([self.flowc, command] + args, cwd=cwd, capture_output=True)
        return self.clean_text(p.stdout), self.clean_text(p.stderr), p.returncode

    def flowc_check(self, cwd, args, stdout_only=False):
        out, err, rc = self.flowc_run("check", cwd, args)
        return (out if stdout_only else err + out), rc

    def console(self, command, args, out, rc, shown=""):
        """A console fence: the command line, its output and `echo $?`."""
        text = shown + "$ flowc " + command + " " + args + "\n" + out
        if not text.endswith("\n"):
            text += "\n"
        return self.fence("console", text + "$ echo $?\n" + str(rc) + "\n")

    @staticmethod
    def fence(lang, body):
        if not body.endswith("\n"):
            body += "\n"
        return "```" + lang + "\n" + body + "```\n"

    def expand(self, line):
        m = re.fullmatch(r"@@(\w+) (.*)@@\n?", line)
        if not m:
            return line
        kind, rest = m.group(1), m.group(2)
        fields = [f.strip() for f in rest.split("::")]
        if kind in ("FLOW", "CLEAN"):
            parts = rest.split()
            path = os.path.join(self.scratch, parts[0])
            with open(path, encoding="utf-8") as f:
                body = f.read()
            if kind == "CLEAN":
                out, rc = self.flowc_check(os.path.dirname(path), [os.path.basename(path)])
                if rc != 0 or out:
                    self.errors.append(f"{parts[0]} is not clean (exit {rc}):\n{out}")
            return self.fence(parts[1] if len(parts) > 1 else "flow", body)
        if kind == "BUILDCLEAN":
            name = fields[0]
            path = os.path.join(self.scratch, name)
            with open(path, encoding="utf-8") as f:
                body = f.read()
            args = shlex.split(fields[1]) if len(fields) > 1 else []
            _, err, rc = self.flowc_run("build", os.path.dirname(path),
                                        args + [os.path.basename(path)])
            if rc != 0 or err:
                self.errors.append(f"{name} does not build cleanly with '{' '.join(args)}' "
                                   f"(exit {rc}):\n{err}")
            return self.fence("flow", body)
        cwd = os.path.join(self.scratch, fields[0])
        if kind == "BUILD":
            out, err, rc = self.flowc_run("build", cwd, shlex.split(fields[1]))
            return self.console("build", fields[1], err + out, rc)
        if kind in ("RUN", "RUNOUT", "SHRUN"):
            shown = ""
            if kind == "SHRUN":
                # The command makes the example; its directory may hold nothing
                # else, and git keeps no empty directories.
                os.makedirs(cwd, exist_ok=True)
                subprocess.run(fields[1], shell=True, executable="/bin/bash", cwd=cwd, check=True)
                shown = "$ " + fields[1] + "\n"
                args = fields[2]
            else:
                args = fields[1]
            out, rc = self.flowc_check(cwd, shlex.split(args), stdout_only=(kind == "RUNOUT"))
            if kind != "RUNOUT":
                return self.console("check", args, out, rc, shown)
            return self.fence("console", shown + "$ flowc check " + args + "\n" + out)
        if kind == "SARIF":
            args = fields[1]
            out, _ = self.flowc_check(cwd, shlex.split(args) + ["--format=sarif"], stdout_only=True)
            log = json.loads(out)
            shown = {"version": log["version"], "results": log["runs"][0]["results"]}
            return self.fence(
                "console",
                "$ flowc check " + args + " --format=sarif  # version and results\n"
                + json.dumps(shown, indent=2, ensure_ascii=False) + "\n")
        self.errors.append("unknown directive: " + line.strip())
        return line

    def run(self, template):
        out = "".join(self.expand(l) + ("\n" if l.startswith("@@") else "") for l in template)
        return re.sub(r"\n{3,}", "\n\n", out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flowc", required=True, help="the flowc binary to run")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--output", help="write the reference here")
    group.add_argument("--check", help="compare with this file; exit 1 if it differs")
    a = ap.parse_args()
    flowc = os.path.abspath(a.flowc)
    with open(os.path.join(HERE, "template.md"), encoding="utf-8") as f:
        template = f.read().splitlines(keepends=True)
    with tempfile.TemporaryDirectory(prefix="flowc-diag-doc-") as scratch:
        shutil.copytree(os.path.join(HERE, "examples"), scratch, dirs_exist_ok=True)
        gen = Generator(flowc, scratch)
        text = gen.run(template)
    if gen.errors:
        print("\n".join(gen.errors), file=sys.stderr)
        return 1
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(text)
        return 0
    with open(a.check, encoding="utf-8") as f:
        current = f.read()
    if current == text:
        return 0
    diff = difflib.unified_diff(current.splitlines(keepends=True), text.splitlines(keepends=True),
                                a.check, "generated")
    sys.stderr.writelines(list(diff)[:200])
    print(f"{a.check} is stale: run docs/diagnostics/generate.py --flowc build/compiler/driver/flowc "
          f"--output {a.check}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
