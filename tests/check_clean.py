#!/usr/bin/env python3
"""Runs `flowc check` on every .flow file under the given folders and fails
unless each one exits 0 with no output at all."""
import pathlib
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: check_clean.py FLOWC DIR...", file=sys.stderr)
        return 2
    flowc, roots = sys.argv[1], sys.argv[2:]
    files = sorted(p for r in roots for p in pathlib.Path(r).rglob("*.flow"))
    if not files:
        print("check_clean: no .flow files under", roots)
        return 1
    bad = 0
    for f in files:
        r = subprocess.run([flowc, "check", str(f)], capture_output=True, text=True)
        if r.returncode != 0 or r.stdout or r.stderr:
            bad += 1
            print(f"{f}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    print(f"check_clean: {len(files) - bad} of {len(files)} files clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
