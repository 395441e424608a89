#!/usr/bin/env python3
"""Fails unless every function declared in the runtime's public C headers
(runtime/include/flowrt/*.h, and runtime/sim/*.h where the simulator's headers
used to live) has a man page docs/man/<name>.3.md with the sections NAME,
SYNOPSIS, DESCRIPTION, RETURN VALUE, ERRORS and EXAMPLE (optionally SEE ALSO),
in that order, whose SYNOPSIS declares that function with the header's
prototype; that no page documents a function the headers no longer declare;
and that docs/man/README.md lists exactly the documented functions.

Usage: check_man_pages.py REPO_ROOT   (python3, standard library only)"""
import pathlib
import re
import sys

# The public C headers: found by location, so that a header added or moved there needs
# its pages too. C++ headers (.hpp) are not C API and are not covered.
HEADER_GLOBS = ["runtime/include/flowrt/*.h", "runtime/sim/*.h"]
MAN_DIR = "docs/man"
REQUIRED = ["NAME", "SYNOPSIS", "DESCRIPTION", "RETURN VALUE", "ERRORS", "EXAMPLE"]
OPTIONAL_LAST = ["SEE ALSO"]

# A top-level declaration of a function: type words and '*'s, then the name and '('.
# Anything else before the first '(' (an '=', a '(' of a function pointer type, a
# 'typedef') makes it something other than a function declaration.
FUNCTION_DECL = re.compile(r"^(?:[A-Za-z_]\w*[\s*]+)+?([A-Za-z_]\w*)\s*\(")


def strip_comments(text):
    """Removes // and /* */ comments, keeping string literals and line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_preprocessor(text):
    """Removes preprocessor lines (with their continuations) and the C++-only
    blocks (#ifdef __cplusplus ... #endif), which hold the extern "C" braces."""
    out = []
    skipping = []  # one entry per open #if: True when it is a C++-only block
    continued = False
    for line in text.split("\n"):
        stripped = line.strip()
        if continued:
            continued = stripped.endswith("\\")
            continue
        if stripped.startswith("#"):
            continued = stripped.endswith("\\")
            directive = re.match(r"#\s*(\w+)\s*(.*)", stripped)
            if directive:
                word, rest = directive.group(1), directive.group(2).strip()
                if word in ("if", "ifdef", "ifndef"):
                    skipping.append(word == "ifdef" and rest == "__cplusplus")
                elif word == "endif" and skipping:
                    skipping.pop()
            continue
        if not any(skipping):
            out.append(line)
    return "\n".join(out)


def top_level_statements(text):
    """Splits C declarations into top-level statements (text up to each ';' at
    brace depth 0); the bodies of structs and enums are left out."""
    statements, current, depth = [], [], 0
    for c in text:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            if c == ";":
                statements.append(" ".join("".join(current).split()))
                current = []
            else:
                current.append(c)
    return statements


def declared_functions(c_text):
    """Returns {name: normalized prototype} for the functions declared in C text."""
    functions = {}
    for statement in top_level_statements(strip_preprocessor(strip_comments(c_text))):
        if statement.startswith(("typedef ", "extern \"C\"")):
            continue
        match = FUNCTION_DECL.match(statement)
        if match:
            functions[match.group(1)] = normalize(statement)
    return functions


def normalize(prototype):
    """Whitespace-insensitive form of a prototype: one space between words only."""
    text = " ".join(prototype.split())
    return re.sub(r"\s*([(),*\[\]])\s*", r"\1", text)


def sections(markdown):
    """The level-1 headings of a page, outside fenced code blocks, with their bodies."""
    found, fenced, name, body = [], False, None, []
    for line in markdown.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            if name is not None:
                found.append((name, "\n".join(body)))
            name, body = line[2:].strip(), []
            continue
        if name is not None:
            body.append(line)
    if name is not None:
        found.append((name, "\n".join(body)))
    return found


def check_page(path, name, prototype):
    problems = []
    text = path.read_text()
    where = f"{path.relative_to(path.parents[2])}"
    header = re.match(r"---\n(.*?)\n---\n", text, re.S)
    if not header:
        problems.append(f"{where}: no '---' header block at the top")
    else:
        fields = dict(re.findall(r"^(\w+):\s*(.*?)\s*$", header.group(1), re.M))
        if fields.get("title") != name.upper():
            problems.append(f"{where}: header title is '{fields.get('title')}', "
                            f"expected '{name.upper()}'")
        if fields.get("section") != "3":
            problems.append(f"{where}: header section is '{fields.get('section')}', expected '3'")
    found = sections(text)
    titles = [title for title, _ in found]
    missing = [s for s in REQUIRED if s not in titles]
    if missing:
        problems.append(f"{where}: missing section(s) {', '.join('# ' + s for s in missing)}")
    else:
        allowed = [REQUIRED, REQUIRED + OPTIONAL_LAST]
        if titles not in allowed:
            problems.append(f"{where}: sections are {titles}; expected {REQUIRED} "
                            f"optionally followed by {OPTIONAL_LAST}")
    body = dict(found)
    if "NAME" in body and not re.search(r"^" + re.escape(name) + r" - \S", body["NAME"], re.M):
        problems.append(f"{where}: # NAME does not start with '{name} - <summary>'")
    if "SYNOPSIS" in body:
        block = re.search(r"```c\n(.*?)```", body["SYNOPSIS"], re.S)
        if not block:
            problems.append(f"{where}: # SYNOPSIS has no ```c block")
        else:
            declared = declared_functions(block.group(1))
            if "#include" not in block.group(1):
                problems.append(f"{where}: # SYNOPSIS has no #include")
            if list(declared) != [name]:
                problems.append(f"{where}: # SYNOPSIS declares {sorted(declared) or 'no function'},"
                                f" expected exactly '{name}'")
            elif declared[name] != prototype:
                problems.append(f"{where}: # SYNOPSIS prototype\n    {declared[name]}\n"
                                f"  differs from the header's\n    {prototype}")
    for section in ("DESCRIPTION", "RETURN VALUE", "ERRORS"):
        if section in body and not body[section].strip():
            problems.append(f"{where}: # {section} is empty")
    if "EXAMPLE" in body and not re.search(r"```c\n.*?\b" + re.escape(name) + r"\s*\(.*?```",
                                           body["EXAMPLE"], re.S):
        problems.append(f"{where}: # EXAMPLE has no ```c block that calls {name}()")
    return problems


def public_headers(root):
    """The runtime's public C headers, in a stable order."""
    return [path for pattern in HEADER_GLOBS for path in sorted(root.glob(pattern))]


def main():
    if len(sys.argv) != 2:
        print("usage: check_man_pages.py REPO_ROOT")
        return 2
    root = pathlib.Path(sys.argv[1])
    functions = {}
    problems = []
    headers = public_headers(root)
    if not headers:
        problems.append(f"no public headers found ({', '.join(HEADER_GLOBS)})")
    for path in headers:
        header = path.relative_to(root).as_posix()
        declared = declared_functions(path.read_text())
        if not declared:
            problems.append(f"{header}: no function declarations found (parser out of date?)")
        for name, prototype in declared.items():
            if name in functions:
                problems.append(f"{header}: '{name}' is declared in two headers")
            functions[name] = prototype
    man = root / MAN_DIR
    pages = {p.name[:-len(".3.md")]: p for p in sorted(man.glob("*.3.md"))}
    for name in sorted(functions):
        if name not in pages:
            problems.append(f"{MAN_DIR}/{name}.3.md: missing (the function is declared in the "
                            "runtime headers)")
        else:
            problems.extend(check_page(pages[name], name, functions[name]))
    for name in sorted(set(pages) - set(functions)):
        problems.append(f"{MAN_DIR}/{name}.3.md: documents '{name}', which no runtime header "
                        "declares any more")
    index = man / "README.md"
    if not index.exists():
        problems.append(f"{MAN_DIR}/README.md: missing (the index of the pages)")
    else:
        listed = re.findall(r"^\|\s*\[(\w+)\]\(\1\.3\.md\)\s*\|", index.read_text(), re.M)
        for name in sorted(set(functions) - set(listed)):
            problems.append(f"{MAN_DIR}/README.md: no row for '{name}'")
        for name in sorted(set(listed) - set(functions)):
            problems.append(f"{MAN_DIR}/README.md: row for '{name}', which no header declares")
    if problems:
        print(f"check_man_pages: {len(problems)} problem(s):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"check_man_pages: {len(functions)} functions in {len(headers)} headers, "
          f"each with a complete page in {MAN_DIR}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
