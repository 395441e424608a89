#!/usr/bin/env python3
"""Writes a small Ethernet capture (classic pcap, microsecond timestamps) for
the flowc trace tests: one frame per line of the frames below.

usage: write_pcap.py OUT.pcap [--linktype N]"""
import struct
import sys


def eth(dst, src, ethertype, payload, vlan=None):
    head = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", ""))
    if vlan is not None:
        head += struct.pack(">HH", 0x8100, vlan)
    return head + struct.pack(">H", ethertype) + payload


def ipv4(src, dst, proto, payload, tos=0):
    a = bytes(int(x) for x in src.split("."))
    b = bytes(int(x) for x in dst.split("."))
    return struct.pack(">BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), 0, 0, 64, proto, 0, a,
                       b) + payload


def udp(sport, dport, payload=b""):
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport):
    return struct.pack(">HHIIBBHHH", sport, dport, 0, 0, 0x50, 2, 1024, 0, 0)


HOST = "02:00:00:00:00:01"
PEER = "02:00:00:00:00:02"
FRAMES = [
    # RoCEv2 to the storage server of examples/quickstart.flow.
    eth(HOST, PEER, 0x0800, ipv4("192.0.2.1", "192.0.2.20", 17, udp(49152, 4791))),
    # ARP, broadcast.
    eth("ff:ff:ff:ff:ff:ff", PEER, 0x0806, bytes(28)),
    # VXLAN VNI 5001 to the VTEP of examples/vxlan_tenants.flow, tenant A inside.
    eth(HOST, PEER, 0x0800,
        ipv4("192.0.2.99", "192.0.2.10", 17,
             udp(50000, 4789, struct.pack(">II", 0x08000000, 5001 << 8) +
                 eth("02:aa:00:00:00:01", "02:aa:00:00:00:02", 0x0800,
                     ipv4("10.1.2.3", "10.1.0.1", 6, tcp(40000, 80)))))),
    # A VLAN-tagged TCP frame (VLAN 200, priority 3).
    eth(HOST, PEER, 0x0800, ipv4("10.20.1.5", "10.20.0.11", 6, tcp(40000, 443)),
        vlan=(3 << 13) | 200),
    # MPLS over Ethernet, a stack of two entries (label 100, then label 200
    # at the bottom), IPv4 inside.
    eth(HOST, PEER, 0x8847,
        struct.pack(">II", 100 << 12 | 64, 200 << 12 | 1 << 8 | 64) +
        ipv4("10.9.0.1", "10.9.0.2", 17, udp(1000, 2000))),
]


def main():
    out = sys.argv[1]
    linktype = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--linktype" else 1
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, frame in enumerate(FRAMES):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)))
            f.write(frame)


if __name__ == "__main__":
    main()
