#!/usr/bin/env python3
"""Differential test of the analysis and flowc trace against libflowrt-sim.

Random policies and packets over Ethernet, IPv4, IPv6, TCP/UDP ports, ranges
and sets, with pass rules, and these headers:
  - ESP (`esp spi N`, IP protocol 50) over IPv4 and IPv6 (or the family left
    open);
  - VXLAN with an inner IPv4 or IPv6 frame (`inner { ipv6 ..., tcp ... }`);
  - GRE with an inner IPv4 packet, and with an inner IPv6 packet (GRE
    protocol 0x86dd, written or not), over IPv4 or IPv6;
  - MPLS over Ethernet, MPLS over UDP (`udp dst 6635, mpls label ...`, RFC
    7510) and MPLS over GRE (`gre protocol 0x8847, mpls label ...`): one label
    stack entry, then an inner IPv4 packet (matched with `inner { ipv4 ... }`).
The newer kinds (ESP, inner IPv6 under VXLAN and GRE, MPLS over UDP and GRE)
are about a sixth of the rules and packets; how many of each were built,
took a packet on the NIC, were sent and traced is printed, and too few fail
the test. For policies whose rules each steer to a queue of their own, flowc
check's FL9001 reports are compared with what the compiled rules do on the
simulated mlx5 NIC (an implementation written separately from the analysis):
many packets, drawn from the values the rules use and from their edges, are
classified, and a rule reported as shadowed must never be the one that takes
a packet. Also, every report's example packet must be taken by the rule the
report names, and FL9003's (partly-shadowed) example of a packet the rule
still takes must go to that rule. `flowc trace` runs on the first packets:
source and compiled must agree, and (queues unique to rules) the queues the
source side names must be those the NIC delivers to. Half the policies share two queues among
their rules; there, each FL9004 (redundant-rule) report is checked by
building the policy without the rule: every packet must go where it went. Policies flowc cannot build for mlx5 are skipped.
Each iteration also makes a policy of 20 to 80 rules over three queues and
builds it for 16 levels and for 8 (`--cap=-prio16`); where budget fitting
then adds copies or cuts rules, the NIC must deliver every packet as it does
with the 16-level build, and enough policies must need fitting.
Every build runs flowc's proof that the emitted rules equal the source. Each
policy is also built with one injected fault (--inject-fault): wherever the
faulty rules send a test packet elsewhere on the NIC the proof must refuse
the build, and its counterexample packets must go elsewhere on the NIC too.

usage: shadow_differential.py FLOWC FBIN_SIM_RUN [--policies N] [--seed S]
"""
import argparse
import ipaddress
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

PREFIXES = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.0/25", "10.1.2.128/25",
            "10.1.2.3", "10.1.3.0/24", "192.0.2.0/24", "192.0.2.1", "0.0.0.0/1"]
PORTS = ["22", "53", "80", "443", "0..1023", "1024..65535", "1000..2000", "{22, 80}",
         "{53, 443, 8000..8999}"]


PREFIXES6 = ["fd00::/16", "fd00:1::/32", "fd00:1::1", "fd00:2::/32", "::/1"]
VNIS = ["5001", "5002", "5000..5015", "{5001, 7000}"]
LABELS = ["2500", "1000..1999", "{16, 2500}"]
SPIS = ["0x1000", "4097", "0x1000..0x10ff", "{0x1000, 0x2000}", "0x2000/20", "7 mask 0xf"]
# The kinds of rules and packets beyond the first ones (ESP, inner IPv6 under
# VXLAN and GRE, MPLS over UDP and over GRE), counted apart.
NEW_KINDS = ("esp", "vxlan-ipv6", "gre-ipv6", "mpls-udp", "mpls-gre")


def ip_part(r, family):
    pool = PREFIXES if family == "ipv4" else PREFIXES6
    text = family
    if r.random() < 0.6:
        text += " src " + r.choice(pool)
    if r.random() < 0.7:
        text += " dst " + r.choice(pool)
    return text


def l4_part(r):
    proto = r.choice(["tcp", "udp"])
    return proto + (" dst " + r.choice(PORTS) if r.random() < 0.8 else "")


def mpls_part(r):
    """An MPLS label stack entry match, and sometimes the inner IPv4 packet
    behind it (with its TCP/UDP header)."""
    parts = ["mpls" + (" label " + r.choice(LABELS) if r.random() < 0.85 else "")]
    if r.random() < 0.5:
        inner = [ip_part(r, "ipv4")]
        if r.random() < 0.4:
            inner.append(l4_part(r))
        parts.append("inner { " + ", ".join(inner) + " }")
    return parts


def inner_part(r, family, l4_chance):
    """An inner IP header of `family`, with TCP/UDP ports `l4_chance` of the time."""
    inner = [ip_part(r, family)]
    if r.random() < l4_chance:
        inner.append(l4_part(r))
    return "inner { " + ", ".join(inner) + " }"


def random_rule(r, i, queues):
    """A rule over Ethernet, IPv4 or IPv6 with TCP/UDP ports and ranges, ESP
    over IPv4 or IPv6, VXLAN with an inner IPv4 or IPv6 packet, GRE with an
    inner IPv4 or IPv6 packet, MPLS over Ethernet, over UDP or over GRE; and
    which of the kinds of NEW_KINDS it is (or None)."""
    parts = []
    kind, new = r.random(), None
    if kind < 0.46:
        parts.append(ip_part(r, "ipv4"))
        if r.random() < 0.7:
            parts.append(l4_part(r))
    elif kind < 0.58:
        parts.append(ip_part(r, "ipv6"))
        if r.random() < 0.7:
            parts.append(l4_part(r))
    elif kind < 0.66:
        parts.append("vxlan" + (" vni " + r.choice(VNIS) if r.random() < 0.8 else ""))
        if r.random() < 0.7:
            inner = [ip_part(r, "ipv4")]
            if r.random() < 0.5:
                inner.append(l4_part(r))
            parts.append("inner { " + ", ".join(inner) + " }")
    elif kind < 0.72:
        parts.append("ipv4" + (" src " + r.choice(PREFIXES) if r.random() < 0.5 else ""))
        parts.append("gre")
        if r.random() < 0.7:
            parts.append("inner { " + ip_part(r, "ipv4") + " }")
    elif kind < 0.77:
        parts.append("mpls" + (" label " + r.choice(LABELS) if r.random() < 0.8 else ""))
    elif kind < 0.82:
        parts.append("eth type " + r.choice(["0x0800", "0x0806", "0x86dd"]))
    elif kind < 0.87:
        # ESP over IPv4 or IPv6, or with the family left open.
        new = "esp"
        family = r.choice(["ipv4", "ipv4", "ipv6", None])
        if family:
            parts.append(ip_part(r, family))
        parts.append("esp" + (" spi " + r.choice(SPIS) if r.random() < 0.85 else ""))
    elif kind < 0.9:
        new = "vxlan-ipv6"
        parts.append("vxlan" + (" vni " + r.choice(VNIS) if r.random() < 0.8 else ""))
        parts.append(inner_part(r, "ipv6", 0.5))
    elif kind < 0.93:
        # GRE protocol 0x86dd: written, or implied by nothing (the inner
        # IPv6 header alone); over IPv4 or IPv6.
        new = "gre-ipv6"
        if r.random() < 0.7:
            parts.append("ipv4" + (" src " + r.choice(PREFIXES) if r.random() < 0.5 else ""))
        else:
            parts.append("ipv6" + (" src " + r.choice(PREFIXES6) if r.random() < 0.5 else ""))
        with_protocol = r.random() < 0.5
        parts.append("gre protocol 0x86dd" if with_protocol else "gre")
        if not with_protocol or r.random() < 0.8:
            parts.append(inner_part(r, "ipv6", 0.4))
    elif kind < 0.965:
        # MPLS over UDP (RFC 7510): port 6635 written, or implied by mpls.
        new = "mpls-udp"
        # Half the time the IP family is left open (no ipv4/ipv6 header).
        if r.random() < 0.5:
            parts.append(ip_part(r, r.choice(["ipv4", "ipv4", "ipv6"])))
        port = " dst 6635" if r.random() < 0.8 else ""
        parts.append("udp" + (" src " + r.choice(PORTS) if r.random() < 0.2 else "") + port)
        parts.extend(mpls_part(r))
    else:
        # MPLS over GRE: protocol 0x8847 written, or implied by mpls.
        new = "mpls-gre"
        # Half the time the IP family is left open.
        if r.random() < 0.5:
            family = r.choice(["ipv4", "ipv4", "ipv6"])
            pool = PREFIXES if family == "ipv4" else PREFIXES6
            parts.append(family + (" src " + r.choice(pool) if r.random() < 0.5 else ""))
        protocol = r.random() < 0.7
        parts.append("gre protocol 0x8847" if protocol else "gre")
        parts.extend(mpls_part(r))
    passing = " pass" if r.random() < 0.1 else ""
    queue = i if queues is None else r.randrange(queues)
    return f"    rule r{i}{passing}: {', '.join(parts)} -> steer q{queue};\n", new


def random_policy(r, shared):
    """Rules steer to a queue of their own, or (shared) to one of two, so that
    later rules can repeat what earlier ones do (FL9004)."""
    n = r.randint(4, 10)
    queues = 2 if shared else None
    names = range(2) if shared else range(n)
    text = "target mlx5;\nqueue " + ", ".join(f"q{i}" for i in names) + ";\n"
    rules = [random_rule(r, i, queues) for i in range(n)]
    text += "ingress port 1 {\n" + "".join(t for t, _ in rules) + "}\n"
    return text, n, [kind for _, kind in rules]


def ip_values():
    values = set()
    for p in PREFIXES:
        net = ipaddress.ip_network(p)
        for v in (int(net.network_address), int(net.broadcast_address),
                  int(net.network_address) + 1, int(net.broadcast_address) - 1):
            values.add(v & 0xFFFFFFFF)
    return sorted(values | {0x08080808, 0x0A010204})


def port_values():
    values = {1, 21, 22, 23, 52, 53, 54, 79, 80, 81, 442, 443, 444, 999, 1000, 1500, 2000,
              2001, 1023, 1024, 7999, 8000, 8500, 8999, 9000, 65535}
    return sorted(values)


def ip6_values():
    values = set()
    for p in PREFIXES6:
        net = ipaddress.ip_network(p)
        for v in (int(net.network_address), int(net.broadcast_address),
                  int(net.network_address) + 1):
            values.add(v)
    return sorted(values)


IPS6 = None


def l4(r, ports):
    proto = r.choice([6, 17])
    dport = r.choice(ports)
    raw = struct.pack(">HH", 40000, dport) + (bytes(16) if proto == 6 else struct.pack(">HH", 8, 0))
    return proto, raw, f"{'tcp' if proto == 6 else 'udp'} src=40000 dst={dport}"


def ip4(src, dst, proto, payload):
    return struct.pack(">BBHHHBBHII", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, src,
                       dst) + payload


def ip6(src, dst, proto, payload):
    return struct.pack(">IHBB", 6 << 28, len(payload), proto, 64) + src.to_bytes(16, "big") + \
        dst.to_bytes(16, "big") + payload


def outer_ip(r, ips, proto, payload, v6):
    """An outer IPv4 or IPv6 header (random addresses) before the payload, and
    its text."""
    if v6:
        src, dst = r.choice(IPS6), r.choice(IPS6)
        return (struct.pack(">H", 0x86dd) + ip6(src, dst, proto, payload),
                f"ipv6 src={ipaddress.IPv6Address(src)} dst={ipaddress.IPv6Address(dst)} "
                f"hop_limit=64")
    src, dst = r.choice(ips), r.choice(ips)
    return (struct.pack(">H", 0x0800) + ip4(src, dst, proto, payload),
            f"ipv4 src={ipaddress.ip_address(src)} dst={ipaddress.ip_address(dst)} ttl=64")


def inner_ip(r, ips, ports, v6):
    """An inner IPv4 or IPv6 packet with TCP or UDP, its ethertype and text."""
    proto, raw, text = l4(r, ports)
    if v6:
        src, dst = r.choice(IPS6), r.choice(IPS6)
        return (0x86dd, ip6(src, dst, proto, raw),
                f"inner ipv6 src={ipaddress.IPv6Address(src)} "
                f"dst={ipaddress.IPv6Address(dst)} hop_limit=64 / inner {text}")
    src, dst = r.choice(ips), r.choice(ips)
    return (0x0800, ip4(src, dst, proto, raw),
            f"inner ipv4 src={ipaddress.ip_address(src)} dst={ipaddress.ip_address(dst)} "
            f"ttl=64 / inner {text}")


def mpls_entry(r):
    """One MPLS label stack entry, bottom of stack, and its text."""
    label = r.choice([16, 2500, 1000, 1999, 2000, 77])
    return (struct.pack(">I", (label << 12) | (1 << 8) | 64),
            f"mpls label={label} bos=1 ttl=64")


def frame(r, ips, ports):
    """A random Ethernet frame (IPv4 or IPv6 with TCP or UDP, ESP over IPv4 or
    IPv6, VXLAN with an inner IPv4 or IPv6 frame, GRE with an inner IPv4 or
    IPv6 packet, MPLS over Ethernet, UDP or GRE with an inner IPv4 packet, or
    ARP), its `flowc trace --packet` text, and which of NEW_KINDS it is (or
    None)."""
    global IPS6
    if IPS6 is None:
        IPS6 = ip6_values()
    eth = bytes.fromhex("020000000001020000000002")
    text_eth = "eth dst=02:00:00:00:00:01 src=02:00:00:00:00:02"
    kind = r.random()
    if kind < 0.07:
        return eth + struct.pack(">H", 0x0806) + bytes(28), text_eth + " type=0x0806", None
    if kind < 0.42:
        src, dst = r.choice(ips), r.choice(ips)
        proto, raw, text = l4(r, ports)
        return (eth + struct.pack(">H", 0x0800) + ip4(src, dst, proto, raw),
                f"{text_eth} / ipv4 src={ipaddress.ip_address(src)} "
                f"dst={ipaddress.ip_address(dst)} ttl=64 / {text}", None)
    if kind < 0.54:
        src, dst = r.choice(IPS6), r.choice(IPS6)
        proto, raw, text = l4(r, ports)
        return (eth + struct.pack(">H", 0x86dd) + ip6(src, dst, proto, raw),
                f"{text_eth} / ipv6 src={ipaddress.IPv6Address(src)} "
                f"dst={ipaddress.IPv6Address(dst)} hop_limit=64 / {text}", None)
    if kind < 0.66 or 0.82 <= kind < 0.85:
        # VXLAN with an inner IPv4 frame, or (new) an inner IPv6 frame.
        v6 = kind >= 0.82
        vni = r.choice([5001, 5002, 5009, 7000, 42])
        ethertype, ip, text = inner_ip(r, ips, ports, v6)
        inner = bytes.fromhex("02aa0000000102aa00000002") + struct.pack(">H", ethertype) + ip
        vx = struct.pack(">II", 0x08000000, vni << 8) + inner
        udp = struct.pack(">HHHH", 50000, 4789, 8 + len(vx), 0) + vx
        raw, outer = outer_ip(r, ips, 17, udp, False)
        return (eth + raw,
                f"{text_eth} / {outer} / udp src=50000 dst=4789 / vxlan vni={vni}"
                f" / inner eth dst=02:aa:00:00:00:01 src=02:aa:00:00:00:02 / {text}",
                "vxlan-ipv6" if v6 else None)
    if kind < 0.74 or 0.85 <= kind < 0.88:
        # GRE with an inner IPv4 packet over IPv4, or (new) an inner IPv6
        # packet over IPv4 or IPv6.
        v6 = kind >= 0.85
        ethertype, ip, text = inner_ip(r, ips, ports, v6)
        gre = struct.pack(">HH", 0, ethertype) + ip
        raw, outer = outer_ip(r, ips, 47, gre, v6 and r.random() < 0.3)
        return (eth + raw, f"{text_eth} / {outer} / gre protocol={ethertype:#06x} / {text}",
                "gre-ipv6" if v6 else None)
    if kind < 0.82:
        entry, mpls = mpls_entry(r)
        _, ip, text = inner_ip(r, ips, ports, False)
        return (eth + struct.pack(">H", 0x8847) + entry + ip,
                f"{text_eth} type=0x8847 / {mpls} / {text}", None)
    if kind < 0.93:
        # ESP over IPv4 or IPv6: SPI, sequence number, some encrypted bytes.
        spi = r.choice([0x1000, 0x1001, 0xfff, 0x10ff, 0x1100, 0x2000, 0x2fff, 0x3000, 7,
                        0x17, 0xdeadbeef])
        raw, outer = outer_ip(r, ips, 50, struct.pack(">II", spi, 1) + bytes(16),
                              r.random() < 0.4)
        return eth + raw, f"{text_eth} / {outer} / esp spi={spi} seq=1", "esp"
    # MPLS over UDP (RFC 7510) or over GRE, with an inner IPv4 packet.
    entry, mpls = mpls_entry(r)
    _, ip, text = inner_ip(r, ips, ports, False)
    if kind < 0.965:
        sport = r.choice(ports)
        udp = struct.pack(">HHHH", sport, 6635, 8 + len(entry) + len(ip), 0) + entry + ip
        raw, outer = outer_ip(r, ips, 17, udp, r.random() < 0.3)
        return (eth + raw, f"{text_eth} / {outer} / udp src={sport} dst=6635 / {mpls} / {text}",
                "mpls-udp")
    raw, outer = outer_ip(r, ips, 47, struct.pack(">HH", 0, 0x8847) + entry + ip,
                          r.random() < 0.3)
    return (eth + raw, f"{text_eth} / {outer} / gre protocol=0x8847 / {mpls} / {text}",
            "mpls-gre")


WITNESS = re.compile(r"for example, (.*) is taken by rule '(r\d+)'")
TAKES_SOME = re.compile(r"rule '(r\d+)' takes some, for example (.*)$")
STILL = re.compile(r"it still takes, for example, (.*)$")


def witness_frame(text):
    """The frame of a packet text as flowc prints it ('eth type=0x800 / ipv4
    dst=10.0.0.7 / tcp dst=80 / ...', '... / esp spi=4096', '... / udp
    dst=6635 / mpls label=16 / inner ipv4 ...', '... / gre protocol=0x86dd /
    inner ipv6 ...'): present headers, given fields, 0 for the rest, and the
    values the headers imply."""
    hs = {}
    for part in text.split(" / "):
        words = part.split()
        inner = words[0] == "inner"
        if inner:
            words = words[1:]
        hs[(inner, words[0])] = dict(w.split("=", 1) for w in words[1:])

    def num(fields, key, default=0):
        v = fields.get(key)
        if v is None:
            return default
        return int(v, 16) if v.startswith("0x") else int(v)

    def addr(fields, key, bits):
        v = fields.get(key)
        return int(ipaddress.ip_address(v)) if v else 0

    def l4(inner):
        for name, proto in (("tcp", 6), ("udp", 17)):
            if (inner, name) in hs:
                f = hs[(inner, name)]
                ports = struct.pack(">HH", num(f, "src"), num(f, "dst", 4789 if
                                    (not inner and name == "udp" and (False, "vxlan") in hs)
                                    else 6635 if (not inner and name == "udp" and
                                                  (False, "mpls") in hs) else 0))
                return proto, ports + (bytes(16) if proto == 6 else struct.pack(">HH", 8, 0))
        if (inner, "esp") in hs:
            f = hs[(inner, "esp")]
            return 50, struct.pack(">II", num(f, "spi"), num(f, "seq")) + bytes(16)
        return None, b""

    def ip(inner, proto, payload):
        # A header over IP with no IP header printed: IPv4, or IPv6 after
        # 'eth type=0x86dd' ('gre protocol=0x8847 / mpls label=992').
        over_ip = ("tcp", "udp", "esp") if inner else ("tcp", "udp", "esp", "gre", "vxlan")
        if (inner, "ipv4") not in hs and (inner, "ipv6") not in hs and \
                any((inner, h) in hs for h in over_ip):
            v6 = num(hs.get((inner, "eth"), {}), "type") == 0x86dd
            hs.setdefault((inner, "ipv6" if v6 else "ipv4"), {})
        if (inner, "ipv4") in hs:
            f = hs[(inner, "ipv4")]
            proto = num(f, "proto", proto if proto is not None else 253)
            return 0x0800, struct.pack(">BBHHHBBHII", 0x45, num(f, "tos"), 20 + len(payload), 0,
                                       0, num(f, "ttl"), proto, 0, addr(f, "src", 32),
                                       addr(f, "dst", 32)) + payload
        if (inner, "ipv6") in hs:
            f = hs[(inner, "ipv6")]
            proto = num(f, "next_hdr", proto if proto is not None else 59)
            return 0x86dd, struct.pack(">IHBB", 6 << 28, len(payload), proto,
                                       num(f, "hop_limit")) + \
                addr(f, "src", 128).to_bytes(16, "big") + addr(f, "dst", 128).to_bytes(16, "big") + \
                payload
        return None, b""

    def eth(fields, default_type, payload):
        head = bytes.fromhex(fields.get("dst", "00:00:00:00:00:00").replace(":", "")) + \
            bytes.fromhex(fields.get("src", "00:00:00:00:00:00").replace(":", ""))
        if "tci" in fields:
            head += struct.pack(">HH", 0x8100, num(fields, "tci"))
        return head + struct.pack(">H", num(fields, "type", default_type)) + payload

    if (False, "vxlan") in hs:
        hs.setdefault((False, "udp"), {})
    # Inside out: the inner packet, the tunnel, the outer packet.
    proto, inner_l4 = l4(True)
    inner_type, inner_ip = ip(True, proto, inner_l4)
    if (True, "eth") in hs:
        inner_frame = eth(hs[(True, "eth")], inner_type or 0x0800, inner_ip)
    else:
        inner_frame = eth({}, inner_type or 0x0800, inner_ip)
    tunnel, tunnel_proto, eth_default = b"", None, None
    if (False, "mpls") in hs:
        f = hs[(False, "mpls")]
        tunnel = struct.pack(">I", (num(f, "label") << 12) | (num(f, "tc") << 9) |
                             (num(f, "bos") << 8) | num(f, "ttl"))
        # An inner packet behind a first entry that is not the bottom of the
        # stack: a second, bottom entry before it.
        if inner_ip and not num(f, "bos"):
            tunnel += struct.pack(">I", (100 << 12) | (1 << 8) | 64)
        tunnel += inner_ip
        eth_default = 0x8847
    if (False, "gre") in hs:
        f = hs[(False, "gre")]
        default = 0x8847 if (False, "mpls") in hs else (inner_type or 0x0800)
        tunnel = struct.pack(">HH", num(f, "flags"), num(f, "protocol", default)) + \
            (tunnel if (False, "mpls") in hs else inner_ip)
        tunnel_proto = 47
    if (False, "vxlan") in hs:
        tunnel = struct.pack(">II", 0x08000000, num(hs[(False, "vxlan")], "vni") << 8) + inner_frame
    proto, outer_l4 = l4(False)
    if outer_l4 and tunnel and (False, "gre") not in hs:
        outer_l4 = outer_l4[:4] + struct.pack(">HH", 8 + len(tunnel), 0) + tunnel \
            if proto == 17 else outer_l4
    elif tunnel and (False, "gre") in hs:
        outer_l4 = tunnel
    outer_type, outer_ip = ip(False, tunnel_proto if tunnel_proto else proto, outer_l4)
    if outer_ip:
        return eth(hs.get((False, "eth"), {}), outer_type, outer_ip)
    if (False, "mpls") in hs:
        return eth(hs.get((False, "eth"), {}), eth_default, tunnel)
    # No IP header: a frame too short for one.
    return eth(hs.get((False, "eth"), {}), 0x0800, bytes(4))


FAULTS = ("priority", "reverse", "drop-rule", "mask")
COUNTEREXAMPLE = re.compile(r"^  packet: (.*)$", re.M)


def check_fitting(args, r, k, tmp, fitting, failures):
    """Budget fitting: a policy of 20 to 80 rules over three queues, built for
    16 levels and for 8 (mlx5 without 'prio16'), where the rules that need
    more are fitted by copies and cuts (FL8009's page). Where fitting made
    the 8-level build, the NIC must treat every packet as the 16-level one
    does. Counts [policies fitted, copies made] in `fitting`."""
    n = r.randint(20, 80)
    text = "target mlx5;\nqueue q0, q1, q2;\ningress port 1 {\n" + \
        "".join(random_rule(r, i, 3)[0] for i in range(n)) + "}\n"
    flow, wide, fitted = (os.path.join(tmp, name) for name in ("f.flow", "f16.fbin", "f8.fbin"))
    with open(flow, "w") as f:
        f.write(text)
    fit = subprocess.run([args.flowc, "build", flow, "-o", fitted, "--cap=-prio16", "--stats"],
                         capture_output=True, text=True)
    if "internal error" in fit.stderr:
        failures.append(f"policy {k}: the proof refused the build fitted to 8 levels: "
                        f"{fit.stderr[:400]}\n{text}")
        return
    if fit.returncode != 0 or "to fit 8 levels" not in fit.stderr:
        return
    # The reference must place every rule by its chain, without fitting.
    ref = subprocess.run([args.flowc, "build", flow, "-o", wide, "--stats"],
                         capture_output=True, text=True)
    if ref.returncode != 0 or "to fit" in ref.stderr:
        if "internal error" in ref.stderr:
            failures.append(f"policy {k}: the proof refused the 16-level build: "
                            f"{ref.stderr[:400]}\n{text}")
        else:
            fitting[2] += 1
        return
    fitting[0] += 1
    copies = re.search(r"(\d+) rule\(s\) were added for the packets", fit.stderr)
    fitting[1] += int(copies.group(1)) if copies else 0
    ips, ports = ip_values(), port_values()
    lines = "".join(f"1 {frame(r, ips, ports)[0].hex()}\n" for _ in range(args.packets))
    got = [subprocess.run([args.sim_run, "--ports", "1", fbin], input=lines, capture_output=True,
                          text=True).stdout.splitlines()[1:1 + args.packets]
           for fbin in (wide, fitted)]
    if len(got[0]) != args.packets or len(got[1]) != args.packets:
        failures.append(f"policy {k}: the sim did not run both builds\n{text}")
        return
    for line, a, b in zip(lines.splitlines(), got[0], got[1]):
        if a != b:
            failures.append(f"policy {k}: fitted to 8 levels, packet {line} went to '{b}', "
                            f"not '{a}' as with 16\n{text}")
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("flowc")
    ap.add_argument("sim_run")
    ap.add_argument("--policies", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--packets", type=int, default=300)
    ap.add_argument("--traced", type=int, default=40)
    args = ap.parse_args()
    r = random.Random(args.seed)
    ips, ports = ip_values(), port_values()
    checked = reports = skipped = witnesses = partly = reports_redundant = traces = 0
    # fault -> [built, seen on the NIC, refused by the proof, counterexamples
    # tried, counterexamples confirmed on the NIC]
    faults = {f: [0, 0, 0, 0, 0] for f in FAULTS}
    # new kind -> [rules in policies built, rules in skipped policies, rules
    # (queues unique to rules) that took a test packet on the NIC, packets
    # sent, packets traced, packets some rule took on the NIC]
    news = {kind: [0, 0, 0, 0, 0, 0] for kind in NEW_KINDS}
    # [policies fitted to 8 levels, copies they added, policies skipped
    # because the 16-level build fails or needs fitting too]
    fitting = [0, 0, 0]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        flow, fbin = os.path.join(tmp, "p.flow"), os.path.join(tmp, "p.fbin")
        faulty = os.path.join(tmp, "faulty.fbin")
        for k in range(args.policies):
            shared = k % 2 == 1
            text, n, kinds = random_policy(r, shared)
            with open(flow, "w") as f:
                f.write(text)
            check = subprocess.run([args.flowc, "check", flow, "--format=json"],
                                   capture_output=True, text=True)
            diags = json.loads(check.stdout)["diagnostics"]
            shadowed = {}
            examples = []  # (packet text, rule that must take it, report)
            redundant = []
            for d in diags:
                name = re.match(r"rule '(r\d+)'", d["message"])
                if d["code"] == "FL9001":
                    m = WITNESS.search(d["notes"][-1]["message"])
                    shadowed[name.group(1)] = m
                    examples.append((m.group(1), m.group(2), name.group(1)))
                elif d["code"] == "FL9004":
                    redundant.append(name.group(1))
                elif d["code"] == "FL9003":
                    partly += 1
                    some = TAKES_SOME.search(d["notes"][0]["message"])
                    still = STILL.search(d["notes"][-1]["message"])
                    examples.append((some.group(2), some.group(1), name.group(1)))
                    examples.append((still.group(1), name.group(1), name.group(1)))
            build = subprocess.run([args.flowc, "build", flow, "-o", fbin], capture_output=True,
                                   text=True)
            if build.returncode != 0:
                skipped += 1
                for kind in kinds:
                    if kind:
                        news[kind][1] += 1
                continue
            checked += 1
            reports += len(shadowed)
            frames = [frame(r, ips, ports) for _ in range(args.packets)]
            lines = [f"1 {f.hex()}" for f, _, _ in frames]
            for text_, taker, _ in examples:
                lines.append(f"1 {witness_frame(text_).hex()}")
            run = subprocess.run([args.sim_run, "--ports", "1", fbin], input="\n".join(lines) + "\n",
                                 capture_output=True, text=True)
            outputs = run.stdout.splitlines()[1:1 + len(lines)]
            # What the new kinds of rules and packets took part in.
            took = set()
            for (_, _, kind), out in zip(frames, outputs):
                queues = re.findall(r"queue (q\d+)", out)
                took.update(queues)
                if kind:
                    news[kind][3] += 1
                    news[kind][5] += bool(queues)
            for _, _, kind in frames[:args.traced]:
                if kind:
                    news[kind][4] += 1
            for i, kind in enumerate(kinds):
                if kind:
                    news[kind][0] += 1
                    news[kind][2] += not shared and f"q{i}" in took
            check_fitting(args, random.Random(args.seed * 1000003 + k), k, tmp, fitting,
                          failures)
            # The proof against a broken optimizer: each policy gets one of the
            # faults. Where the faulty rules send one of the packets elsewhere
            # on the NIC, the proof must refuse the build; its counterexample
            # must be a packet the faulty rules treat differently on the NIC.
            fault = FAULTS[k % len(FAULTS)]
            if subprocess.run([args.flowc, "build", flow, "-o", faulty, "--no-verify",
                               f"--inject-fault={fault}"], capture_output=True).returncode == 0:
                proof = subprocess.run([args.flowc, "build", flow, "-o", os.devnull,
                                        f"--inject-fault={fault}"], capture_output=True, text=True)
                refused = proof.returncode != 0 and "internal error" in proof.stderr
                bad = subprocess.run([args.sim_run, "--ports", "1", faulty],
                                     input="\n".join(lines[:args.packets]) + "\n",
                                     capture_output=True, text=True)
                seen = bad.stdout.splitlines()[1:1 + args.packets] != outputs[:args.packets]
                faults[fault][0] += 1
                faults[fault][1] += seen
                faults[fault][2] += refused
                if seen and not refused:
                    failures.append(f"policy {k}: fault {fault} changes where packets go, but "
                                    f"the proof passed\n{text}")
                m = COUNTEREXAMPLE.search(proof.stderr)
                if refused and m and "lookup table" not in proof.stderr:
                    probe = f"1 {witness_frame(m.group(1)).hex()}\n"
                    a, b = (subprocess.run([args.sim_run, "--ports", "1", f], input=probe,
                                           capture_output=True, text=True).stdout.splitlines()[1:2]
                            for f in (fbin, faulty))
                    faults[fault][3] += 1
                    faults[fault][4] += a != b
            # flowc trace on the same packets: source and compiled agree, and
            # (queues unique to rules) the source says where the NIC sends it.
            traced = [t for _, t, _ in frames[:args.traced]]
            trace = subprocess.run([args.flowc, "trace", flow, "--format=json"] +
                                   [a for t in traced for a in ("--packet", t)],
                                   capture_output=True, text=True)
            results = json.loads(trace.stdout)["packets"] if trace.stdout else []
            if len(results) != len(traced):
                failures.append(f"policy {k}: flowc trace failed: {trace.stderr}\n{text}")
            for i, res in enumerate(results):
                traces += 1
                if not res.get("agree"):
                    failures.append(f"policy {k}: trace: source and compiled disagree on "
                                    f"{traced[i]}\n{text}")
                taker = res["source"]["taker"]
                want = re.search(r"steer (q\d+)", taker["actions"]).group(1) if taker else None
                copies = sorted(re.search(r"steer (q\d+)", c["actions"]).group(1)
                                for c in res["source"]["copies"])
                got = re.findall(r"queue (q\d+)", outputs[i])
                expected = sorted(copies + ([want] if want else []))
                if not shared and sorted(got) != expected:
                    failures.append(f"policy {k}: trace says {expected} for {traced[i]}, the NIC "
                                    f"delivered {outputs[i]}\n{text}")
            # The same frames as a capture: --pcap parses them as the NIC does
            # and must find the same fates as the --packet texts.
            pcap = os.path.join(tmp, "p.pcap")
            with open(pcap, "wb") as f:
                f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
                for raw, _, _ in frames[:args.traced]:
                    f.write(struct.pack("<IIII", 0, 0, len(raw), len(raw)) + raw)
            from_pcap = subprocess.run([args.flowc, "trace", flow, "--format=json", "--pcap", pcap],
                                       capture_output=True, text=True)
            pcap_results = json.loads(from_pcap.stdout)["packets"] if from_pcap.stdout else []
            fates = lambda res: [(r["source"]["taker"] or {}).get("rule") for r in res] + \
                [[c["rule"] for c in r["source"]["copies"]] for r in res]
            if fates(pcap_results) != fates(results):
                failures.append(f"policy {k}: --pcap and --packet traces differ\n{text}")
            # FL9004: the policy without the rule treats every packet alike.
            for name in redundant:
                reports_redundant += 1
                without = "".join(l for l in text.splitlines(True)
                                  if not l.startswith(f"    rule {name}:"))
                with open(flow, "w") as f:
                    f.write(without)
                if subprocess.run([args.flowc, "build", flow, "-o", fbin],
                                  capture_output=True).returncode != 0:
                    continue
                rerun = subprocess.run([args.sim_run, "--ports", "1", fbin],
                                       input="\n".join(lines[:args.packets]) + "\n",
                                       capture_output=True, text=True)
                after = rerun.stdout.splitlines()[1:1 + args.packets]
                for i, (a, b) in enumerate(zip(outputs[:args.packets], after)):
                    if a != b:
                        failures.append(f"policy {k}: without redundant {name}, packet "
                                        f"{lines[i]} went to '{b}', not '{a}'\n{text}")
                        break
            passing = set()
            for i in range(n):
                m = re.search(rf"rule r{i} pass: .* -> steer (q\d+);", text)
                if m:
                    passing.add(m.group(1))
            for i, out in enumerate(outputs):
                queues = re.findall(r"queue (q\d+)", out)
                trapped = [q for q in queues if q not in passing]
                for q in queues if not shared else []:
                    if f"r{q[1:]}" in shadowed:
                        failures.append(f"policy {k}: rule r{q[1:]} reported shadowed but took "
                                        f"packet {lines[i]} ({out})\n{text}")
                if i >= args.packets:
                    example, taker, name = examples[i - args.packets]
                    witnesses += 1
                    found = re.search(rf"rule {taker}( pass)?: .* -> steer (q\d+);", text)
                    want, copy = found.group(2), found.group(1) is not None
                    # With shared queues a pass copy may use the same queue: the
                    # taker's queue must be among the deliveries.
                    # A pass rule's packet is a copy among the deliveries.
                    if (trapped != [want]) if not (shared or copy) else (want not in queues):
                        failures.append(f"policy {k}: the example {example} of the report on "
                                        f"{name} went to {out}, not to {taker}\n{text}")
    for f in failures[:5]:
        print(f)
    for fault, (built, seen, refused, tried, confirmed) in faults.items():
        print(f"shadow_differential: fault {fault}: {built} policies, {seen} changed where a "
              f"test packet goes, the proof refused {refused}; {confirmed} of {tried} "
              f"counterexamples confirmed on the NIC")
        if refused < seen or confirmed < tried * 9 // 10 or refused == 0:
            failures.append(f"fault {fault}: too few refusals or confirmations")
    for kind, (built, unbuilt, taking, sent, traced_, taken) in news.items():
        print(f"shadow_differential: {kind}: {built} rules in policies built ({unbuilt} in "
              f"skipped ones), {taking} took a test packet on the NIC; {sent} packets, "
              f"{traced_} traced, {taken} taken by a rule on the NIC")
        # Enough policies must exercise each new kind of rule and packet.
        if built < args.policies // 20 or taking < args.policies // 200 or \
                taken < sent // 10 or traced_ < args.policies // 10:
            failures.append(f"{kind}: too few rules or packets exercised")
            print(f"shadow_differential: {failures[-1]}")
    print(f"shadow_differential: {fitting[0]} policies fitted to 8 levels with {fitting[1]} "
          f"copies, classified alike on the NIC ({fitting[2]} skipped: their 16-level build "
          f"needs fitting too or fails)")
    # Enough of them must need fitting, and copies.
    if fitting[0] < args.policies // 20 or fitting[1] < args.policies // 20:
        failures.append("too few policies fitted to 8 levels")
    print(f"shadow_differential: {checked} policies built and classified ({skipped} skipped), "
          f"{reports} FL9001, {partly} FL9003 and {reports_redundant} FL9004 reports, "
          f"{witnesses} examples checked, {traces} packets traced, "
          f"{len(failures)} failures")
    return 1 if failures or checked < args.policies * 3 // 4 or reports == 0 or reports_redundant == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
