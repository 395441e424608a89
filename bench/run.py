#!/usr/bin/env python3
"""Benchmarks `flowc check` on ClassBench-shaped policies of 1k, 10k and 100k
rules: wall time (best of N runs) and peak RSS, plus flowc's own per-phase
times. A reference run in the same invocation, `flowc check` of a policy with
a single rule, gives the fixed start-up cost, so results can be compared as
ratios across machines.

usage: bench/run.py [--flowc PATH] [--sizes 1000,10000,100000] [--repeat 3]
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent


def run_once(cmd):
    """Runs cmd; returns (seconds, peak RSS in MiB, stderr, exit status)."""
    # stderr goes to a file: a pipe nobody reads until the end would stall a
    # run that prints more than a pipe holds.
    with tempfile.TemporaryFile() as errfile:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errfile)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        errfile.seek(0)
        err = errfile.read().decode()
    return elapsed, usage.ru_maxrss / 1024.0, err, os.waitstatus_to_exitcode(status)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flowc", default=str(HERE.parent / "build/compiler/driver/flowc"))
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "out"))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]

    rows = []
    for n in [1] + sizes:
        policy = out / f"classbench_{n}.flow"
        if not policy.exists():
            subprocess.run([sys.executable, str(HERE / "gen_classbench.py"), str(n), "-o", str(policy)],
                           check=True)
        best = None
        for _ in range(args.repeat):
            secs, rss, err, code = run_once([args.flowc, "check", "--time-phases", str(policy)])
            if code != 0:
                print(f"flowc check {policy} exited {code}:\n{err}", file=sys.stderr)
                return 1
            if best is None or secs < best[0]:
                best = (secs, rss, err)
        phases = dict(re.findall(r"phase (\S+)\s+([\d.]+) ms", best[2]))
        if "skipped (over --analysis-limit)" in best[2]:
            phases.pop("analysis", None)
        rows.append((n, policy.stat().st_size, best[0], best[1], phases))

    ref = rows[0]
    print(f"flowc check, best of {args.repeat}; reference = 1-rule policy "
          f"({ref[2] * 1000:.1f} ms, {ref[3]:.1f} MiB)")
    print(f"{'rules':>8} {'MiB in':>7} {'wall s':>8} {'x ref':>7} {'RSS MiB':>8} "
          f"{'parse ms':>9} {'sema ms':>8} {'target ms':>10} {'analysis ms':>12} {'us/rule':>8}")
    for n, size, secs, rss, phases in rows[1:]:
        analysis = phases.get("analysis")
        print(f"{n:>8} {size / 2**20:>7.2f} {secs:>8.3f} {secs / ref[2]:>7.1f} {rss:>8.1f} "
              f"{float(phases.get('load+parse', 0)):>9.1f} {float(phases.get('sema', 0)):>8.1f} "
              f"{float(phases.get('target', 0)):>10.1f} "
              f"{(f'{float(analysis):.1f}' if analysis else 'skipped'):>12} "
              f"{(secs - ref[2]) * 1e6 / n:>8.2f}")
    print("analysis: the FL9001/9003/9004 model, skipped above --analysis-limit (20000 rules "
          "after expansion)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
