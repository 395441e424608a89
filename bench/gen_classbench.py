#!/usr/bin/env python3
"""Generates a ClassBench-shaped Flow policy: one-line 5-tuple rules with
source/destination prefixes, TCP/UDP port ranges and exact ports, in the
proportions of ClassBench's ACL seed files (mostly long prefixes, a few
wildcards; ports mostly wildcard, exact or the well-known ranges).

usage: gen_classbench.py RULES [--seed N] [-o OUT.flow]
"""
import argparse
import random
import sys

PORT_RANGES = [(0, 1023), (1024, 65535), (49152, 65535), (6000, 6063), (135, 139)]
WELL_KNOWN = [22, 25, 53, 80, 110, 123, 143, 443, 993, 1521, 3306, 4791, 5432, 8080]


def prefix(r: random.Random) -> str:
    """An IPv4 prefix, length drawn like ClassBench ACL sets."""
    roll = r.random()
    if roll < 0.05:
        return ""  # wildcard: the field is left out
    length = 32 if roll < 0.45 else r.choice([8, 16, 20, 22, 23, 24, 24, 24, 26, 27, 28, 29, 30])
    addr = r.getrandbits(32) & ((0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF)
    text = ".".join(str((addr >> s) & 0xFF) for s in (24, 16, 8, 0))
    return text if length == 32 else f"{text}/{length}"


def port(r: random.Random, dst: bool) -> str:
    roll = r.random()
    if roll < (0.35 if dst else 0.75):
        return ""
    if roll < (0.75 if dst else 0.85):
        return str(r.choice(WELL_KNOWN) if dst else r.randrange(1, 65536))
    lo, hi = r.choice(PORT_RANGES)
    return f"{lo}..{hi}"


def rule(r: random.Random, i: int, queues: int) -> str:
    ip = []
    src, dst = prefix(r), prefix(r)
    while not src and not dst:
        # ClassBench's sets keep the match-everything rule for the end; one
        # early would shadow every rule after it.
        src, dst = prefix(r), prefix(r)
    if src:
        ip.append(f"src {src}")
    if dst:
        ip.append(f"dst {dst}")
    items = [f"ipv4 {' '.join(ip)}" if ip else "ipv4"]
    proto = r.choice(["tcp", "tcp", "udp", "udp", ""])
    if proto:
        fields = []
        sp, dp = port(r, False), port(r, True)
        if sp:
            fields.append(f"src {sp}")
        if dp:
            fields.append(f"dst {dp}")
        items.append(" ".join([proto] + fields))
    action = "drop" if r.random() < 0.3 else f"steer q{r.randrange(queues)}"
    return f"    rule r{i}: {', '.join(items)} -> {action};"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rules", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()
    r = random.Random(args.seed)
    queues = 16
    lines = [f"// ClassBench-shaped policy: {args.rules} rules, seed {args.seed}.",
             "target mlx5;",
             "queue " + ", ".join(f"q{i}" for i in range(queues)) + ";",
             "ingress port 1 {"]
    lines += [rule(r, i, queues) for i in range(args.rules)]
    lines += ["    default -> steer q0;", "}", ""]
    text = "\n".join(lines)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
