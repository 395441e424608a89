#!/usr/bin/env python3
"""Fails unless every diagnostic code in compiler/diag/kinds.def has a golden
test under tests/lit/diag/ that checks its "[FLnnnn]" output, and a section
"## FLnnnn name" in docs/diagnostics.md (style.md rule 6)."""
import pathlib
import re
import sys


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    kinds = (root / "compiler/diag/kinds.def").read_text()
    codes = [(f"FL{int(code):04d}", name)
             for code, name in re.findall(r'^DIAG\(\w+,\s*(\d+),\s*\w+,\s*"([\w-]+)"', kinds, re.M)]
    if not codes:
        print("check_registry: no DIAG entries found in kinds.def")
        return 1
    tests = {}
    for path in sorted((root / "tests/lit/diag").glob("*")):
        if path.is_file():
            checked = set(re.findall(r"(?:CHECK|[A-Z0-9_]+)(?:-NEXT|-SAME)?:.*\[(FL\d{4})\]", path.read_text()))
            for code in checked:
                tests.setdefault(code, []).append(path.name)
    docs_path = root / "docs/diagnostics.md"
    docs = docs_path.read_text() if docs_path.exists() else ""
    headings = set(re.findall(r"^## (FL\d{4}) ([\w-]+)\s*$", docs, re.M))
    problems = []
    for code, name in codes:
        if code not in tests:
            problems.append(f"{code} {name}: no golden test in tests/lit/diag/ checks '[{code}]'")
        if (code, name) not in headings:
            problems.append(f"{code} {name}: no '## {code} {name}' section in docs/diagnostics.md")
    for p in problems:
        print("check_registry:", p)
    print(f"check_registry: {len(codes)} codes, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
