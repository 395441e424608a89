"""build_twice.py FLOWC OUTDIR PATH...: builds each policy (or each .flow in a
directory) twice for mlx5 and generic and fails unless the .fbin files are
identical and non-empty."""
import os, subprocess, sys

flowc, outdir, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
files = []
for p in paths:
    if os.path.isdir(p):
        files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".flow"))
    else:
        files.append(p)
bad = 0
for f in files:
    for target in ("mlx5", "generic"):
        outs = []
        for n in (1, 2):
            out = os.path.join(outdir, f"{os.path.basename(f)}.{target}.{n}.fbin")
            r = subprocess.run([flowc, "build", "--target", target, "-o", out, f], capture_output=True)
            if r.returncode != 0:
                print(f"FAIL {f} {target}: exit {r.returncode}\n{r.stderr.decode()}")
                bad += 1
                break
            outs.append(open(out, "rb").read())
        if len(outs) == 2 and (outs[0] != outs[1] or not outs[0]):
            print(f"FAIL {f} {target}: the two builds differ")
            bad += 1
print(f"build_twice: {len(files)} policies, {bad} problems")
sys.exit(1 if bad else 0)
