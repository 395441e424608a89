#!/usr/bin/env python3
"""Writes a compiled policy (.fbin, docs/format.md) of N disjoint mlx5 rules
directly, for the install benchmark: `flowc build` would give the same kind
of file, but its priority assignment is still quadratic (issue 4), so 100k
rules take minutes to compile. Rule i: IPv4 dst 10.x.y.z (i), UDP dst 4791,
steer to queue q(i % 4); every 10th rule also counts into counter c(i % 8).

    python3 bench/gen_fbin.py 100000 -o bench/out/install_100k.fbin
"""
import argparse
import struct
import zlib

ETH, IPV4, UDP, COUNT = 0x20, 0x30, 0x41, 0x1003


def ipv4_spec(dst):
    return struct.pack("<IH2x", IPV4, 24) + struct.pack(">II", 0, dst) + struct.pack(
        ">II", 0, 0xFFFFFFFF)


def udp_spec(port):
    return struct.pack("<IH", UDP, 16) + struct.pack(">HHHH", 0, port, 0, 0xFFFF) + b"\0\0"


def count_spec():
    return struct.pack("<IH2xQ", COUNT, 16, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rules", type=int)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    strings = bytearray(b"\0")
    refs = {}

    def ref(s):
        if s not in refs:
            refs[s] = len(strings)
            strings.extend(s.encode() + b"\0")
        return refs[s]

    queues = [ref("q%d" % i) for i in range(4)]
    counters = [ref("c%d" % i) for i in range(8)]
    compiler, target, caps = ref("gen_fbin.py"), ref("mlx5"), ref("")
    source = ref("bench/gen_fbin.py")

    attrs, entries, bindings = bytearray(), [], []
    for i in range(args.rules):
        specs = [ipv4_spec(0x0A000000 | i), udp_spec(4791)]
        binding = None
        if i % 10 == 0:
            binding = len(specs)
            specs.append(count_spec())
        body = b"".join(specs)
        size = 20 + len(body)
        attr = struct.pack("<IIHHBB2xI", 0, 0, size, 0, len(specs), 1, 0) + body
        entries.append((len(attrs), size, i % 4, len(bindings), 1 if binding is not None else 0,
                        ref("r%d" % i) if i < 1000 else 0, source, i + 1))
        if binding is not None:
            bindings.append((binding, 1, (i // 10) % 8))
        attrs.extend(attr)

    offset = 88
    tables = []
    blobs = []
    for data, count in ((b"".join(struct.pack("<I", q) for q in queues), 4),
                        (b"".join(struct.pack("<I", c) for c in counters), 8),
                        (b"", 0),
                        (None, len(entries)),
                        (b"".join(struct.pack("<III", *b) for b in bindings), len(bindings))):
        tables.append([offset, count])
        if data is None:
            rules_at = offset
            data = bytes(40 * len(entries))
        blobs.append(data)
        offset += len(data)
    attrs_at = offset
    rule_table = b"".join(
        struct.pack("<IIIIIIIIII", attrs_at + a, s, q, fb, bc, name, src, line, 1, 0)
        for a, s, q, fb, bc, name, src, line in entries)
    blobs[3] = rule_table
    offset += len(attrs)
    strings_at = offset
    size = strings_at + len(strings)
    header = bytearray(b"FLOWBIN\0" + struct.pack("<HHIIIIIIIII", 1, 0, 1, size, 0, strings_at,
                                                   len(strings), compiler, target, caps, 0))
    for off, count in tables:
        header.extend(struct.pack("<II", off, count))
    data = bytearray(header + b"".join(blobs) + attrs + strings)
    assert len(data) == size and rules_at == tables[3][0]
    struct.pack_into("<I", data, 20, zlib.crc32(bytes(data)) & 0xFFFFFFFF)
    with open(args.output, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
