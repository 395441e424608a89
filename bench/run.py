#!/usr/bin/env python3
"""Benchmarks `flowc check` and `flowc build` on ClassBench-shaped policies of
1k, 10k and 100k rules: wall time (best of N runs) and peak RSS, plus flowc's
own per-phase times; for build also the rules in, after expansion and out,
the rules left out (unreached, redundant), and the priority levels used
against the bound. A reference run in the same invocation, of a policy with
a single rule, gives the fixed start-up cost, so results can be compared as
ratios across machines.

usage: bench/run.py [--flowc PATH] [--sizes 1000,10000,100000] [--repeat 3]
                    [--build-targets generic,mlx5] [--no-build]
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


STATS_RULES = re.compile(r"stats: (\d+) source rule\(s\), (\d+) after expansion, (\d+) hardware "
                         r"rule\(s\) for \S+ \((\d+) left out")
STATS_REDUNDANT = re.compile(r"(\d+) left out: later rules do the same")
STATS_LEVELS = re.compile(r"stats: (\d+) priority level\(s\) used of (\d+); .* needs (\d+) "
                          r"\(([^;)]*)")
BUILD_PHASES = ["load+parse", "sema", "expand+legalize+optimize", "emit", "verify"]


def bench_build(args, policies, target):
    """`flowc build --stats` of each policy for `target`; prints one table."""
    rows = []
    for n, policy in policies:
        best = None
        for _ in range(args.repeat if n == 1 else max(1, args.build_repeat)):
            secs, rss, err, code = run_once([
                args.flowc, "build", "--stats", f"--target={target}", "--optimize-limit=0",
                "-o", os.devnull, str(policy)])
            if best is None or secs < best[0]:
                best = (secs, rss, err, code)
        secs, rss, err, code = best
        rules = STATS_RULES.search(err)
        redundant = STATS_REDUNDANT.search(err)
        levels = STATS_LEVELS.search(err)
        phases = dict(re.findall(r"phase (\S+)\s+([\d.]+) ms", err))
        errors = sorted(set(re.findall(r"error: .*\[(FL\d+)\]$", err, re.M)))
        if "proved equivalent" in err:
            proof = "proved"
        elif code != 0:
            proof = "error " + ",".join(errors) if errors else f"exit {code}"
        else:
            proof = "unproved"
        rows.append((n, secs, rss, rules, redundant.group(1) if redundant else "0", levels,
                     phases, proof))
    ref = rows[0]
    print()
    print(f"flowc build --target={target} --optimize-limit=0, best of {args.build_repeat}; "
          f"reference = 1-rule policy ({ref[1] * 1000:.1f} ms, {ref[2]:.1f} MiB)")
    print(f"{'rules':>8} {'expanded':>9} {'hw':>7} {'unreached':>9} {'redundant':>9} "
          f"{'levels':>7} {'bound':>6} "
          f"{'budget':>7} {'wall s':>8} {'x ref':>7} {'RSS MiB':>8} "
          + " ".join(f"{p + ' ms':>{max(9, len(p) + 3)}}" for p in BUILD_PHASES) + "  proof")
    for n, secs, rss, rules, redundant, levels, phases, proof in rows[1:]:
        r = rules.groups() if rules else ("?", "?", "?", "?")
        lv = levels.groups() if levels else ("?", "?", "?", "?")
        print(f"{n:>8} {r[1]:>9} {r[2]:>7} {r[3]:>9} {redundant:>9} {lv[0]:>7} {lv[2]:>6} "
              f"{lv[1]:>7} "
              f"{secs:>8.3f} {secs / ref[1]:>7.1f} {rss:>8.1f} "
              + " ".join(f"{float(phases.get(p, 0)):>{max(9, len(p) + 3)}.1f}"
                         for p in BUILD_PHASES) + f"  {proof}")
    print("levels: priority levels used; bound: the longest chain of rules that compete for a "
          "packet with different outcomes (exact); budget: the target's levels")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flowc", default=str(HERE.parent / "build/compiler/driver/flowc"))
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "out"))
    ap.add_argument("--build-targets", default="generic,mlx5",
                    help="targets for the flowc build tables (comma-separated)")
    ap.add_argument("--build-repeat", type=int, default=1,
                    help="runs per size for flowc build (best of; default 1)")
    ap.add_argument("--no-build", action="store_true", help="measure flowc check only")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]

    rows = []
    policies = []
    for n in [1] + sizes:
        # v2: the generator no longer draws a match-everything rule early.
        policy = out / f"classbench_v2_{n}.flow"
        policies.append((n, policy))
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
    print("analysis: the FL9001/9003/9004 model, skipped above --analysis-limit (200000 rules "
          "after expansion)")
    if not args.no_build:
        for target in args.build_targets.split(","):
            bench_build(args, policies, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
