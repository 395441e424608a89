"""fbin_roundtrip.py FLOWC FBIN_DUMP OUTDIR PATH...: for each policy and for
mlx5 and generic, builds the .fbin and the JSON listing and checks that
fbin-dump (the runtime's reader) reports the same target, symbols, rules,
queues, bindings and attr bytes."""
import json, os, subprocess, sys

flowc, dump, outdir, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
files = []
for p in paths:
    files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".flow")) if os.path.isdir(p) else [p]
problems = builds = 0

def fail(msg):
    global problems
    problems += 1
    print("FAIL", msg)

for f in files:
    for target in ("mlx5", "generic"):
        builds += 1
        fbin = os.path.join(outdir, f"{os.path.basename(f)}.{target}.fbin")
        b = subprocess.run([flowc, "build", "--target", target, "-o", fbin, f], capture_output=True)
        j = subprocess.run([flowc, "build", "--target", target, "--emit=json", f], capture_output=True)
        d = subprocess.run([dump, fbin], capture_output=True)
        if b.returncode or j.returncode or d.returncode:
            fail(f"{f} {target}: exit {b.returncode}/{j.returncode}/{d.returncode} {d.stderr.decode()}")
            continue
        listing = json.loads(j.stdout)
        lines = d.stdout.decode().splitlines()
        header = lines[0]
        if f'target "{target}"' not in header:
            fail(f"{f} {target}: header {header}")
        for kind in ("queue", "counter", "handle"):
            got = [l.split(" ", 2)[2] for l in lines if l.startswith(kind + " ")]
            if got != listing[kind + "s"]:
                fail(f"{f} {target}: {kind}s {got} != {listing[kind + 's']}")
        rules = [l for l in lines if l.startswith("rule ")]
        byte_lines = [l.strip()[len("bytes "):] for l in lines if l.startswith("  bytes")]
        if len(rules) != len(listing["rules"]) or len(byte_lines) != len(rules):
            fail(f"{f} {target}: {len(rules)} rules read, {len(listing['rules'])} listed")
            continue
        for i, (line, want) in enumerate(zip(rules, listing["rules"])):
            fields = line.split()
            queue = fields[fields.index("queue") + 1]
            if byte_lines[i] != want["bytes"]:
                fail(f"{f} {target}: rule {i} bytes differ")
            if queue != (want["queue"] or "none"):
                fail(f"{f} {target}: rule {i} queue {queue} != {want['queue']}")
            if int(fields[fields.index("priority") + 1]) != want["priority"]:
                fail(f"{f} {target}: rule {i} priority differs")
            src = want["source"]
            name, where = line.split(" source ", 1)[1].rsplit(" ", 1)
            if where != f"{src['file']}:{src['line']}:{src['column']}" or name != src["rule"]:
                fail(f"{f} {target}: rule {i} source {name} {where} != {src}")
        bindings = [l.split()[-1] for l in lines if l.startswith("  binding")]
        symbols = [s["symbol"] for r in listing["rules"] for s in r["specs"] if "symbol" in s]
        if bindings != symbols:
            fail(f"{f} {target}: bindings {bindings} != {symbols}")
print(f"fbin_roundtrip: {builds} builds, {problems} problems")
sys.exit(1 if problems else 0)
