#include "compiler/analysis/trace.h"

#include <algorithm>

#include "compiler/base/value_parse.h"
#include "compiler/target/tables.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

namespace flowc::analysis {
namespace {

using llvm::APInt;
constexpr ir::Layer kOuter = ir::Layer::kOuter;
constexpr ir::Layer kTunnel = ir::Layer::kTunnel;
constexpr ir::Layer kInner = ir::Layer::kInner;

llvm::Error Fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

bool Has(const TracePacket &p, ir::Layer l, Header h) {
  return (p.headers[static_cast<unsigned>(l)] & ir::Bit(h)) != 0;
}

bool HasField(const TracePacket &p, ir::Layer l, Field f) {
  return p.fields.count({l, f}) != 0;
}

void SetDefault(TracePacket &p, ir::Layer l, Field f, uint64_t v) {
  if (!HasField(p, l, f)) {
    p.fields.emplace(std::make_pair(l, f), APInt(GetFieldInfo(f).bits, v));
  }
}

llvm::Expected<APInt> ParseFieldValue(Field f, llvm::StringRef text) {
  const FieldInfo &info = GetFieldInfo(f);
  switch (info.type) {
  case ValueType::kMac: {
    llvm::Expected<MacAddress> mac = ParseMac(text);
    if (!mac) {
      return mac.takeError();
    }
    APInt v(48, 0);
    for (uint8_t b : *mac) {
      v = v.shl(8) | APInt(48, b);
    }
    return v;
  }
  case ValueType::kIpv4: {
    llvm::Expected<uint32_t> ip = ParseIpv4(text);
    if (!ip) {
      return ip.takeError();
    }
    return APInt(32, *ip);
  }
  case ValueType::kIpv6: {
    llvm::Expected<Ipv6Address> ip = ParseIpv6(text);
    if (!ip) {
      return ip.takeError();
    }
    APInt v(128, 0);
    for (uint8_t b : *ip) {
      v = v.shl(8) | APInt(128, b);
    }
    return v;
  }
  case ValueType::kInt: {
    llvm::Expected<uint64_t> n = ParseInteger(text);
    if (!n) {
      return n.takeError();
    }
    if (info.bits < 64 && (*n >> info.bits) != 0) {
      return Fail("'" + text + "' does not fit in the " + llvm::Twine(info.bits) + " bits of '" +
                  HeaderName(info.header) + " " + info.name + "'");
    }
    return APInt(info.bits, *n);
  }
  }
  return Fail("unknown field type");
}

/// Makes a sub-field and its container agree: the container's bits from
/// the sub-fields given, or the sub-fields from the container.
void Compose(TracePacket &p, ir::Layer l, Field container,
             std::initializer_list<std::pair<Field, unsigned>> parts) {
  bool any_part = false;
  for (auto [f, shift] : parts) {
    any_part |= HasField(p, l, f);
  }
  unsigned width = GetFieldInfo(container).bits;
  if (HasField(p, l, container)) {
    const APInt &c = p.fields.at({l, container});
    for (auto [f, shift] : parts) {
      p.fields[{l, f}] = c.lshr(shift).trunc(GetFieldInfo(f).bits);
    }
  } else if (any_part) {
    APInt c(width, 0);
    for (auto [f, shift] : parts) {
      if (HasField(p, l, f)) {
        c |= p.fields.at({l, f}).zext(width).shl(shift);
      } else {
        p.fields.emplace(std::make_pair(l, f), APInt(GetFieldInfo(f).bits, 0));
      }
    }
    p.fields[{l, container}] = c;
  }
}

} // namespace

llvm::Expected<TracePacket> ParsePacket(llvm::StringRef text) {
  TracePacket p;
  llvm::SmallVector<llvm::StringRef, 8> segments;
  text.split(segments, '/', -1, /*KeepEmpty=*/true);
  for (llvm::StringRef segment : segments) {
    llvm::SmallVector<llvm::StringRef, 8> words;
    segment.split(words, ' ', -1, /*KeepEmpty=*/false);
    if (words.empty()) {
      return Fail("an empty header in the packet (two '/' in a row, or one at an end)");
    }
    bool inner = words.front() == "inner";
    if (inner) {
      words.erase(words.begin());
      if (words.empty()) {
        return Fail("'inner' needs a header after it");
      }
    }
    llvm::StringRef keyword = words.front();
    std::optional<Header> header;
    for (unsigned h = 0; h < kNumHeaders; ++h) {
      if (HeaderName(static_cast<Header>(h)) == keyword) {
        header = static_cast<Header>(h);
      }
    }
    if (!header) {
      return Fail("unknown header '" + keyword +
                  "'; the headers are eth, ipv4, ipv6, tcp, udp, esp, vxlan, gre and mpls");
    }
    bool tunnel = *header == Header::kVxlan || *header == Header::kGre || *header == Header::kMpls;
    if (inner && (tunnel || *header == Header::kEsp)) {
      return Fail("'inner " + keyword + "' is not a header the language matches");
    }
    ir::Layer layer = tunnel ? kTunnel : inner ? kInner : kOuter;
    p.headers[static_cast<unsigned>(layer)] |= ir::Bit(*header);
    for (size_t i = 1; i < words.size(); ++i) {
      auto [name, value] = words[i].split('=');
      if (value.empty() && !words[i].contains('=')) {
        return Fail("expected 'field=value' after '" + keyword + "', got '" + words[i] + "'");
      }
      std::optional<Field> f = FindField(*header, name);
      if (!f) {
        return Fail("'" + keyword + "' has no field '" + name + "'");
      }
      llvm::Expected<APInt> v = ParseFieldValue(*f, value);
      if (!v) {
        return Fail("'" + keyword + " " + name + "': " + llvm::toString(v.takeError()));
      }
      p.fields[{layer, *f}] = *v;
    }
  }
  // Every frame is Ethernet; the rest of what headers imply.
  p.headers[static_cast<unsigned>(kOuter)] |= ir::Bit(Header::kEth);
  for (ir::Layer l : {kOuter, kInner}) {
    bool v4 = Has(p, l, Header::kIpv4), v6 = Has(p, l, Header::kIpv6);
    if (v4 && v6) {
      return Fail(llvm::Twine(l == kInner ? "the inner" : "the") +
                  " packet cannot have both an ipv4 and an ipv6 header");
    }
    int l4 = 0;
    for (auto [h, proto] :
         {std::pair{Header::kTcp, 6}, std::pair{Header::kUdp, 17}, std::pair{Header::kEsp, 50}}) {
      if (!Has(p, l, h)) {
        continue;
      }
      if (++l4 > 1 || (l == kOuter && Has(p, kTunnel, Header::kGre))) {
        return Fail("a packet has one of tcp, udp, esp and gre after its IP header");
      }
      if (!v4 && !v6) {
        return Fail("'" + HeaderName(h) + "' needs an ipv4 or ipv6 header");
      }
      SetDefault(p, l, v4 ? Field::kIpv4Proto : Field::kIpv6NextHdr, proto);
    }
    if (v4 && (l == kOuter || Has(p, l, Header::kEth))) {
      SetDefault(p, l, Field::kEthType, 0x0800);
    }
    if (v6 && (l == kOuter || Has(p, l, Header::kEth))) {
      SetDefault(p, l, Field::kEthType, 0x86dd);
    }
    Compose(p, l, Field::kEthTci,
            {{Field::kEthVlan, 0}, {Field::kEthDei, 12}, {Field::kEthPcp, 13}});
    p.vlan_tag[static_cast<unsigned>(l)] = HasField(p, l, Field::kEthTci);
    Compose(p, l, Field::kIpv4Tos, {{Field::kIpv4Ecn, 0}, {Field::kIpv4Dscp, 2}});
    Compose(p, l, Field::kIpv6Tclass, {{Field::kIpv6Ecn, 0}, {Field::kIpv6Dscp, 2}});
  }
  bool outer_ip = Has(p, kOuter, Header::kIpv4) || Has(p, kOuter, Header::kIpv6);
  if (Has(p, kTunnel, Header::kGre)) {
    if (!outer_ip) {
      return Fail("'gre' needs an outer ipv4 or ipv6 header");
    }
    SetDefault(p, kOuter, Has(p, kOuter, Header::kIpv4) ? Field::kIpv4Proto : Field::kIpv6NextHdr,
               47);
  }
  if (Has(p, kTunnel, Header::kVxlan)) {
    if (!Has(p, kOuter, Header::kUdp)) {
      return Fail("'vxlan' needs an outer udp header");
    }
    SetDefault(p, kOuter, Field::kUdpDst, 4789);
  }
  if (Has(p, kTunnel, Header::kMpls)) {
    if (Has(p, kTunnel, Header::kGre)) {
      SetDefault(p, kTunnel, Field::kGreProtocol, 0x8847);
    } else if (Has(p, kOuter, Header::kUdp)) {
      SetDefault(p, kOuter, Field::kUdpDst, 6635);
    } else {
      SetDefault(p, kOuter, Field::kEthType, 0x8847);
    }
  }
  if (p.headers[static_cast<unsigned>(kInner)] != 0 &&
      p.headers[static_cast<unsigned>(kTunnel)] == 0) {
    return Fail("'inner' headers need a tunnel header (vxlan, gre or mpls) before them");
  }
  return p;
}

namespace {

/// Reads frames into a TracePacket; each Parse* takes the bytes from the
/// header on and leaves out what is truncated.
class FrameParser {
public:
  explicit FrameParser(TracePacket &p) : p_(p) {}

  void Eth(llvm::ArrayRef<uint8_t> b, ir::Layer l) {
    if (b.size() < 14) {
      return;
    }
    Set(l, Header::kEth);
    Put(l, Field::kEthDst, Bytes(b, 0, 6));
    Put(l, Field::kEthSrc, Bytes(b, 6, 6));
    size_t at = 12;
    uint64_t type = Int(b, at, 2);
    if (type == 0x8100) {
      if (b.size() < 18) {
        return;
      }
      uint64_t tci = Int(b, 14, 2);
      p_.vlan_tag[static_cast<unsigned>(l)] = true;
      Put(l, Field::kEthTci, tci);
      Put(l, Field::kEthVlan, tci & 0xfff);
      Put(l, Field::kEthDei, (tci >> 12) & 1);
      Put(l, Field::kEthPcp, tci >> 13);
      at = 16;
      type = Int(b, at, 2);
    }
    Put(l, Field::kEthType, type);
    llvm::ArrayRef<uint8_t> rest = b.drop_front(at + 2);
    if (type == 0x0800 || type == 0x86dd) {
      Ip(rest, l);
    } else if (l == ir::Layer::kOuter && (type == 0x8847 || type == 0x8848)) {
      Mpls(rest);
    }
  }

  void Ip(llvm::ArrayRef<uint8_t> b, ir::Layer l) {
    if (b.empty()) {
      return;
    }
    unsigned version = b[0] >> 4;
    uint64_t proto = 0;
    llvm::ArrayRef<uint8_t> rest;
    if (version == 4 && b.size() >= 20) {
      size_t ihl = (b[0] & 0xf) * 4u;
      if (ihl < 20 || b.size() < ihl) {
        return;
      }
      Set(l, Header::kIpv4);
      uint64_t tos = b[1];
      Put(l, Field::kIpv4Tos, tos);
      Put(l, Field::kIpv4Dscp, tos >> 2);
      Put(l, Field::kIpv4Ecn, tos & 3);
      Put(l, Field::kIpv4Flags, b[6] >> 5);
      Put(l, Field::kIpv4Ttl, b[8]);
      proto = b[9];
      Put(l, Field::kIpv4Proto, proto);
      Put(l, Field::kIpv4Src, Int(b, 12, 4));
      Put(l, Field::kIpv4Dst, Int(b, 16, 4));
      if ((Int(b, 6, 2) & 0x1fff) != 0) {
        return; // a later fragment has no L4 header
      }
      rest = b.drop_front(ihl);
    } else if (version == 6 && b.size() >= 40) {
      Set(l, Header::kIpv6);
      uint64_t first = Int(b, 0, 4);
      uint64_t tclass = (first >> 20) & 0xff;
      Put(l, Field::kIpv6Tclass, tclass);
      Put(l, Field::kIpv6Dscp, tclass >> 2);
      Put(l, Field::kIpv6Ecn, tclass & 3);
      Put(l, Field::kIpv6FlowLabel, first & 0xfffff);
      proto = b[6];
      Put(l, Field::kIpv6NextHdr, proto);
      Put(l, Field::kIpv6HopLimit, b[7]);
      Put(l, Field::kIpv6Src, Bytes(b, 8, 16));
      Put(l, Field::kIpv6Dst, Bytes(b, 24, 16));
      rest = b.drop_front(40);
    } else {
      return;
    }
    if ((proto == 6 || proto == 17) && rest.size() >= 4) {
      Header h = proto == 6 ? Header::kTcp : Header::kUdp;
      Set(l, h);
      uint64_t dst = Int(rest, 2, 2);
      Put(l, proto == 6 ? Field::kTcpSrc : Field::kUdpSrc, Int(rest, 0, 2));
      Put(l, proto == 6 ? Field::kTcpDst : Field::kUdpDst, dst);
      if (proto == 17 && l == ir::Layer::kOuter && rest.size() >= 8) {
        if (dst == 4789 && rest.size() >= 16) {
          Set(ir::Layer::kTunnel, Header::kVxlan);
          Put(ir::Layer::kTunnel, Field::kVxlanVni, Int(rest, 12, 3));
          Eth(rest.drop_front(16), ir::Layer::kInner);
        } else if (dst == 6635) {
          Mpls(rest.drop_front(8));
        }
      }
    } else if (proto == 50 && l == ir::Layer::kOuter && rest.size() >= 8) {
      Set(l, Header::kEsp);
      Put(l, Field::kEspSpi, Int(rest, 0, 4));
      Put(l, Field::kEspSeq, Int(rest, 4, 4));
    } else if (proto == 47 && l == ir::Layer::kOuter && rest.size() >= 4) {
      uint64_t flags = Int(rest, 0, 2);
      bool c = flags & 0x8000, k = flags & 0x2000, s = flags & 0x1000;
      size_t hdr = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0);
      if (rest.size() < hdr) {
        return;
      }
      Set(ir::Layer::kTunnel, Header::kGre);
      Put(ir::Layer::kTunnel, Field::kGreFlags, flags);
      uint64_t protocol = Int(rest, 2, 2);
      Put(ir::Layer::kTunnel, Field::kGreProtocol, protocol);
      if (k) {
        Put(ir::Layer::kTunnel, Field::kGreKey, Int(rest, 4 + (c ? 4 : 0), 4));
      }
      if (protocol == 0x0800 || protocol == 0x86dd) {
        Ip(rest.drop_front(hdr), ir::Layer::kInner);
      } else if (protocol == 0x8847 || protocol == 0x8848) {
        Mpls(rest.drop_front(hdr));
      }
    }
  }

  void Mpls(llvm::ArrayRef<uint8_t> b) {
    if (b.size() < 4) {
      return;
    }
    uint64_t entry = Int(b, 0, 4);
    Set(ir::Layer::kTunnel, Header::kMpls);
    Put(ir::Layer::kTunnel, Field::kMplsLabel, entry >> 12);
    Put(ir::Layer::kTunnel, Field::kMplsTc, (entry >> 9) & 7);
    Put(ir::Layer::kTunnel, Field::kMplsBos, (entry >> 8) & 1);
    Put(ir::Layer::kTunnel, Field::kMplsTtl, entry & 0xff);
    // The tunnel layer is the first entry (what the NIC's first-MPLS match
    // compares); the inner packet follows the bottom of the stack, as
    // libflowrt-sim reads it (up to kMaxMplsDepth entries).
    for (size_t at = 0, depth = 0; depth < kMaxMplsDepth && b.size() >= at + 4; at += 4, ++depth) {
      if ((Int(b, at, 4) >> 8) & 1) {
        Ip(b.drop_front(at + 4), ir::Layer::kInner);
        return;
      }
    }
  }

  /// How many label stack entries are walked to find the bottom one; the
  /// same bound as libflowrt-sim's.
  static constexpr size_t kMaxMplsDepth = 8;

private:
  static uint64_t Int(llvm::ArrayRef<uint8_t> b, size_t at, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      v = v << 8 | b[at + i];
    }
    return v;
  }
  static APInt Bytes(llvm::ArrayRef<uint8_t> b, size_t at, size_t n) {
    APInt v(static_cast<unsigned>(n * 8), 0);
    for (size_t i = 0; i < n; ++i) {
      v = v.shl(8) | APInt(static_cast<unsigned>(n * 8), b[at + i]);
    }
    return v;
  }
  void Set(ir::Layer l, Header h) { p_.headers[static_cast<unsigned>(l)] |= ir::Bit(h); }
  void Put(ir::Layer l, Field f, uint64_t v) { Put(l, f, APInt(GetFieldInfo(f).bits, v)); }
  void Put(ir::Layer l, Field f, const APInt &v) { p_.fields[{l, f}] = v; }

  TracePacket &p_;
};

} // namespace

TracePacket ParseFrame(llvm::ArrayRef<uint8_t> frame) {
  TracePacket p;
  FrameParser(p).Eth(frame, ir::Layer::kOuter);
  return p;
}

std::string FormatPacketValue(Field field, const APInt &value) {
  bool hex = field == Field::kEthType || field == Field::kEthTci || field == Field::kGreProtocol ||
             field == Field::kGreFlags;
  if (GetFieldInfo(field).type != ValueType::kInt || hex) {
    return ir::FormatValue(field, value);
  }
  return llvm::toString(value, 10, /*Signed=*/false);
}

std::string FormatPacket(const TracePacket &p) {
  std::string out;
  llvm::raw_string_ostream os(out);
  for (ir::Layer layer : {kOuter, kTunnel, kInner}) {
    for (unsigned h = 0; h < kNumHeaders; ++h) {
      auto header = static_cast<Header>(h);
      if (!Has(p, layer, header)) {
        continue;
      }
      if (!os.str().empty()) {
        os << " / ";
      }
      os << (layer == kInner ? "inner " : "") << HeaderName(header);
      for (const auto &[key, value] : p.fields) {
        const FieldInfo &info = GetFieldInfo(key.second);
        // Sub-fields are shown through their container.
        if (key.first != layer || info.header != header || info.container != Field::kNone) {
          continue;
        }
        os << ' ' << info.name << '=' << FormatPacketValue(key.second, value);
      }
    }
  }
  return os.str();
}

bool Matches(const expand::TernaryRule &rule, const TracePacket &p) {
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    if ((rule.headers[l] & ~p.headers[l]) != 0) {
      return false;
    }
  }
  for (const expand::TernaryMatch &m : rule.matches) {
    if (IsVlanTagField(m.field) && !m.mask.isZero() &&
        !p.vlan_tag[static_cast<unsigned>(m.layer)]) {
      return false;
    }
    auto it = p.fields.find({m.layer, m.field});
    APInt v = it != p.fields.end() ? it->second : APInt(m.value.getBitWidth(), 0);
    if ((v & m.mask) != m.value) {
      return false;
    }
  }
  return true;
}

namespace {

bool Multicast(const TracePacket &p) {
  auto it = p.fields.find({kOuter, Field::kEthDst});
  return it != p.fields.end() && it->second[40]; // the I/G bit of the first octet
}

} // namespace

Fate TraceSource(const ir::Policy &policy, const expand::Expanded &expanded,
                 ast::Direction direction, uint8_t port, const TracePacket &packet) {
  std::vector<std::vector<const expand::TernaryRule *>> by_rule(policy.rules.size());
  for (const expand::TernaryRule &t : expanded.rules) {
    by_rule[t.source].push_back(&t);
  }
  auto matches = [&](uint32_t i) {
    return llvm::any_of(by_rule[i],
                        [&](const expand::TernaryRule *t) { return Matches(*t, packet); });
  };
  Fate fate;
  for (uint32_t i = 0; i < policy.rules.size() && !fate.taker; ++i) {
    const ir::Rule &r = policy.rules[i];
    if (r.direction != direction || r.port != port || r.kind != ast::RuleKind::kNormal ||
        !matches(i)) {
      continue;
    }
    if (r.pass) {
      fate.copies.push_back(i);
    } else {
      fate.taker = i;
    }
  }
  std::optional<uint32_t> all, mc;
  for (uint32_t i = 0; i < policy.rules.size(); ++i) {
    const ir::Rule &r = policy.rules[i];
    if (r.direction != direction || r.port != port) {
      continue;
    }
    if (r.kind == ast::RuleKind::kSniffer) {
      fate.copies.push_back(i);
    } else if (r.kind == ast::RuleKind::kDefault && !all) {
      all = i;
    } else if (r.kind == ast::RuleKind::kMulticastDefault && !mc) {
      mc = i;
    }
  }
  if (!fate.taker) {
    fate.taker = Multicast(packet) && mc ? mc : all;
  }
  return fate;
}

Fate TraceCompiled(llvm::ArrayRef<emit::HwRule> rules, llvm::ArrayRef<expand::TernaryRule> matches,
                   bool multicast_first_spec, ast::Direction direction, uint8_t port,
                   const TracePacket &packet) {
  bool egress = direction == ast::Direction::kEgress;
  auto here = [&](const emit::HwRule &r) {
    return r.port == port && ((r.flags & emit::kFlagEgress) != 0) == egress;
  };
  Fate fate;
  // Tables in order; within a table, the first rule in policy order.
  std::vector<uint32_t> normal;
  for (uint32_t i = 0; i < rules.size(); ++i) {
    if (rules[i].type == emit::AttrType::kNormal && here(rules[i])) {
      normal.push_back(i);
    }
  }
  auto table = [&](uint32_t i) { return target::TableOf(rules[i], multicast_first_spec); };
  std::stable_sort(normal.begin(), normal.end(),
                   [&](uint32_t a, uint32_t b) { return table(a) < table(b); });
  for (size_t k = 0; k < normal.size() && !fate.taker;) {
    uint64_t t = table(normal[k]);
    size_t end = k;
    while (end < normal.size() && table(normal[end]) == t) {
      ++end;
    }
    for (size_t j = k; j < end; ++j) {
      uint32_t i = normal[j];
      if (!Matches(matches[i], packet)) {
        continue;
      }
      if ((rules[i].flags & emit::kFlagDontTrap) != 0) {
        fate.copies.push_back(i);
      } else {
        fate.taker = i;
      }
      break; // one entry of a table takes the packet
    }
    k = end;
  }
  std::optional<uint32_t> all, mc;
  for (uint32_t i = 0; i < rules.size(); ++i) {
    const emit::HwRule &r = rules[i];
    if (!here(r)) {
      continue;
    }
    if (r.type == emit::AttrType::kSniffer) {
      fate.copies.push_back(i);
    } else if (r.type == emit::AttrType::kAllDefault && !all) {
      all = i;
    } else if (r.type == emit::AttrType::kMcDefault && !mc) {
      mc = i;
    }
  }
  if (!fate.taker) {
    fate.taker = Multicast(packet) && mc ? mc : all;
  }
  return fate;
}

} // namespace flowc::analysis
