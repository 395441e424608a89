// Writing the C header of --emit=c. Match fields are shown through
// FLOWC_BE16/FLOWC_BE32, constant expressions that give a value network
// byte order in memory, so that the initializers read like the man page's
// htons()/htonl() while staying valid static initializers.
#include "compiler/emit/c_header.h"

#include <cctype>

#include "llvm/Support/FormatVariadic.h"

namespace flowc::emit {
namespace {

/// How one member of a filter struct is written.
enum class MemberKind { kBytes, kBe16, kBe32, kU8 };

struct Member {
  const char *name;
  uint8_t offset;
  uint8_t size;
  MemberKind kind;
};

/// The members of each filter struct of verbs.h (verbs-facts §1.2).
llvm::ArrayRef<Member> MembersOf(SpecKind kind) {
  static const Member kEth[] = {{"dst_mac", 0, 6, MemberKind::kBytes},
                                {"src_mac", 6, 6, MemberKind::kBytes},
                                {"ether_type", 12, 2, MemberKind::kBe16},
                                {"vlan_tag", 14, 2, MemberKind::kBe16}};
  static const Member kIpv4[] = {{"src_ip", 0, 4, MemberKind::kBe32},
                                 {"dst_ip", 4, 4, MemberKind::kBe32}};
  static const Member kIpv4Ext[] = {
      {"src_ip", 0, 4, MemberKind::kBe32}, {"dst_ip", 4, 4, MemberKind::kBe32},
      {"proto", 8, 1, MemberKind::kU8},    {"tos", 9, 1, MemberKind::kU8},
      {"ttl", 10, 1, MemberKind::kU8},     {"flags", 11, 1, MemberKind::kU8}};
  static const Member kIpv6[] = {
      {"src_ip", 0, 16, MemberKind::kBytes},  {"dst_ip", 16, 16, MemberKind::kBytes},
      {"flow_label", 32, 4, MemberKind::kBe32}, {"next_hdr", 36, 1, MemberKind::kU8},
      {"traffic_class", 37, 1, MemberKind::kU8}, {"hop_limit", 38, 1, MemberKind::kU8}};
  static const Member kEsp[] = {{"spi", 0, 4, MemberKind::kBe32}, {"seq", 4, 4, MemberKind::kBe32}};
  static const Member kTcpUdp[] = {{"dst_port", 0, 2, MemberKind::kBe16},
                                   {"src_port", 2, 2, MemberKind::kBe16}};
  static const Member kTunnel[] = {{"tunnel_id", 0, 4, MemberKind::kBe32}};
  static const Member kGre[] = {{"c_ks_res0_ver", 0, 2, MemberKind::kBe16},
                                {"protocol", 2, 2, MemberKind::kBe16},
                                {"key", 4, 4, MemberKind::kBe32}};
  static const Member kMpls[] = {{"label", 0, 4, MemberKind::kBe32}};
  switch (kind) {
  case SpecKind::kEth:
    return kEth;
  case SpecKind::kIpv4:
    return kIpv4;
  case SpecKind::kIpv4Ext:
    return kIpv4Ext;
  case SpecKind::kIpv6:
    return kIpv6;
  case SpecKind::kEsp:
    return kEsp;
  case SpecKind::kTcp:
  case SpecKind::kUdp:
    return kTcpUdp;
  case SpecKind::kVxlanTunnel:
    return kTunnel;
  case SpecKind::kGre:
    return kGre;
  case SpecKind::kMpls:
    return kMpls;
  default:
    return {};
  }
}

/// The verbs.h struct of a spec kind.
const char *StructOf(SpecKind kind) {
  switch (kind) {
  case SpecKind::kEth:
    return "ibv_flow_spec_eth";
  case SpecKind::kIpv4:
    return "ibv_flow_spec_ipv4";
  case SpecKind::kIpv4Ext:
    return "ibv_flow_spec_ipv4_ext";
  case SpecKind::kIpv6:
    return "ibv_flow_spec_ipv6";
  case SpecKind::kEsp:
    return "ibv_flow_spec_esp";
  case SpecKind::kTcp:
  case SpecKind::kUdp:
    return "ibv_flow_spec_tcp_udp";
  case SpecKind::kVxlanTunnel:
    return "ibv_flow_spec_tunnel";
  case SpecKind::kGre:
    return "ibv_flow_spec_gre";
  case SpecKind::kMpls:
    return "ibv_flow_spec_mpls";
  case SpecKind::kActionTag:
    return "ibv_flow_spec_action_tag";
  case SpecKind::kActionDrop:
    return "ibv_flow_spec_action_drop";
  case SpecKind::kActionHandle:
    return "ibv_flow_spec_action_handle";
  case SpecKind::kActionCount:
    return "ibv_flow_spec_counter_action";
  }
  return "?";
}

/// The verbs.h enumerator of a spec kind.
std::string TypeName(const HwSpec &s) {
  static const char *const kNames[kNumSpecKinds] = {
      "IBV_FLOW_SPEC_ETH",         "IBV_FLOW_SPEC_IPV4",          "IBV_FLOW_SPEC_IPV4_EXT",
      "IBV_FLOW_SPEC_IPV6",        "IBV_FLOW_SPEC_ESP",           "IBV_FLOW_SPEC_TCP",
      "IBV_FLOW_SPEC_UDP",         "IBV_FLOW_SPEC_VXLAN_TUNNEL",  "IBV_FLOW_SPEC_GRE",
      "IBV_FLOW_SPEC_MPLS",        "IBV_FLOW_SPEC_ACTION_TAG",    "IBV_FLOW_SPEC_ACTION_DROP",
      "IBV_FLOW_SPEC_ACTION_HANDLE", "IBV_FLOW_SPEC_ACTION_COUNT"};
  std::string name = kNames[static_cast<unsigned>(s.kind)];
  return s.inner ? "(enum ibv_flow_spec_type)(" + name + " | IBV_FLOW_SPEC_INNER)" : name;
}

const char *AttrTypeEnum(AttrType t) {
  switch (t) {
  case AttrType::kNormal:
    return "IBV_FLOW_ATTR_NORMAL";
  case AttrType::kAllDefault:
    return "IBV_FLOW_ATTR_ALL_DEFAULT";
  case AttrType::kMcDefault:
    return "IBV_FLOW_ATTR_MC_DEFAULT";
  case AttrType::kSniffer:
    return "IBV_FLOW_ATTR_SNIFFER";
  }
  return "?";
}

std::string Flags(uint32_t flags) {
  std::string out;
  if (flags & kFlagDontTrap) {
    out = "IBV_FLOW_ATTR_FLAGS_DONT_TRAP";
  }
  if (flags & kFlagEgress) {
    out += out.empty() ? "IBV_FLOW_ATTR_FLAGS_EGRESS" : " | IBV_FLOW_ATTR_FLAGS_EGRESS";
  }
  return out.empty() ? "0" : out;
}

/// One member's initializer, from the filter bytes.
std::string Value(const Member &m, const uint8_t *filter) {
  const uint8_t *p = filter + m.offset;
  switch (m.kind) {
  case MemberKind::kBytes: {
    std::string out = "{";
    for (unsigned i = 0; i < m.size; ++i) {
      out += llvm::formatv("{0}0x{1:x-2}", i ? ", " : "", p[i]).str();
    }
    return out + "}";
  }
  case MemberKind::kBe16:
    return llvm::formatv("FLOWC_BE16(0x{0:x-4})", unsigned(p[0]) << 8 | p[1]).str();
  case MemberKind::kBe32:
    return llvm::formatv("FLOWC_BE32(0x{0:x-8})",
                         uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3])
        .str();
  case MemberKind::kU8:
    return llvm::formatv("0x{0:x-2}", p[0]).str();
  }
  return "0";
}

/// `{ .a = x, .b = y }` for the members of a filter that are not zero.
std::string Filter(SpecKind kind, const uint8_t *filter) {
  std::string out;
  for (const Member &m : MembersOf(kind)) {
    bool zero = true;
    for (unsigned i = 0; i < m.size; ++i) {
      zero = zero && filter[m.offset + i] == 0;
    }
    if (!zero) {
      out += (out.empty() ? "." : ", .") + std::string(m.name) + " = " + Value(m, filter);
    }
  }
  return out.empty() ? "{0}" : "{" + out + "}";
}

} // namespace

std::string CIdentifier(llvm::StringRef name) {
  std::string out;
  for (char c : name) {
    out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) {
    out = "policy_" + out;
  }
  return out;
}

void WriteCHeader(const OutputPolicy &p, llvm::ArrayRef<uint8_t> fbin, llvm::StringRef prefix,
                  llvm::raw_ostream &out) {
  std::string guard = "FLOWC_" + llvm::StringRef(CIdentifier(prefix)).upper() + "_H";
  out << "/* Generated by " << p.compiler << " from " << p.input << " for target " << p.target
      << (p.caps.empty() ? "" : " (" + p.caps + ")") << ". Do not edit. */\n";
  out << "#ifndef " << guard << "\n#define " << guard << "\n\n";
  out << "#include <stddef.h>\n#include <stdint.h>\n\n#include <infiniband/verbs.h>\n\n";
  out << "/* A value of network byte order in memory, as a constant expression. */\n"
         "#ifndef FLOWC_BE16\n"
         "#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__\n"
         "#define FLOWC_BE16(x) ((uint16_t)(x))\n"
         "#define FLOWC_BE32(x) ((uint32_t)(x))\n"
         "#else\n"
         "#define FLOWC_BE16(x) ((uint16_t)((((x) & 0xffu) << 8) | (((x) >> 8) & 0xffu)))\n"
         "#define FLOWC_BE32(x) \\\n"
         "  ((uint32_t)((((x) & 0xffu) << 24) | (((x) & 0xff00u) << 8) | (((x) >> 8) & 0xff00u) | \\\n"
         "              (((x) >> 24) & 0xffu)))\n"
         "#endif\n"
         "#endif\n\n";
  out << "/* The compiled policy (" << fbin.size() << " bytes of .fbin, docs/format.md). */\n";
  out << "static const unsigned char " << prefix << "_fbin[" << fbin.size() << "] = {";
  for (size_t i = 0; i < fbin.size(); ++i) {
    out << (i % 12 == 0 ? "\n   " : "") << llvm::formatv(" 0x{0:x-2},", fbin[i]);
  }
  out << "\n};\n";
  static const char *const kQueueless = "NULL";
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const OutputRule &r = p.rules[i];
    std::string type = prefix.str() + "_rule_" + std::to_string(i);
    out << "\n/* Rule " << i << ": " << (r.egress ? "egress" : "ingress") << " port "
        << unsigned(r.rule.port) << ", priority " << r.rule.priority << ", "
        << AttrTypeName(r.rule.type) << (r.queue ? ", created on queue '" + *r.queue + "'" : "")
        << "; from " << r.source.rule << " (" << r.source.file << ":" << r.source.line << ":"
        << r.source.column << "). */\n";
    out << "struct " << type << " {\n  struct ibv_flow_attr attr;\n";
    for (size_t s = 0; s < r.rule.specs.size(); ++s) {
      out << "  struct " << StructOf(r.rule.specs[s].kind) << " spec" << s << ";\n";
    }
    out << "} __attribute__((packed));\n";
    out << "_Static_assert(sizeof(struct " << type << ") == " << r.bytes.size() << ", \"" << type
        << " has the size flowc emitted\");\n";
    out << "static const struct " << type << " " << type << " = {\n";
    out << "    .attr = {.type = " << AttrTypeEnum(r.rule.type) << ", .size = " << r.bytes.size()
        << ", .priority = " << r.rule.priority << ", .num_of_specs = " << r.rule.specs.size()
        << ", .port = " << unsigned(r.rule.port) << ", .flags = " << Flags(r.rule.flags) << "},\n";
    for (size_t s = 0; s < r.rule.specs.size(); ++s) {
      const HwSpec &spec = r.rule.specs[s];
      const SpecLayout &l = GetLayout(spec.kind);
      out << "    .spec" << s << " = {.type = " << TypeName(spec)
          << ", .size = sizeof(struct " << StructOf(spec.kind) << ")";
      if (l.filter_size != 0) {
        out << ",\n              .val = " << Filter(spec.kind, spec.val.data())
            << ",\n              .mask = " << Filter(spec.kind, spec.mask.data());
      } else if (spec.kind == SpecKind::kActionTag) {
        out << ", .tag_id = " << llvm::formatv("{0:x}", spec.tag);
      } else if (spec.kind == SpecKind::kActionHandle || spec.kind == SpecKind::kActionCount) {
        out << " /* " << (spec.kind == SpecKind::kActionHandle ? ".action" : ".counters")
            << ": '" << r.bindings[s] << "', set when the policy is loaded */";
      }
      out << "},\n";
    }
    out << "};\n";
  }
  out << "\n/* Every rule: its ibv_flow_attr buffer, its size, and the name of the queue it\n"
         "   is created on (NULL for none). The first " << prefix << "_num_rules entries are\n"
         "   rules. */\n";
  out << "enum { " << prefix << "_num_rules = " << p.rules.size() << " };\n";
  out << "static const struct {\n  const void *attr;\n  size_t size;\n  const char *queue;\n} "
      << prefix << "_rules[] = {";
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const OutputRule &r = p.rules[i];
    std::string name = prefix.str() + "_rule_" + std::to_string(i);
    out << "\n    {&" << name << ", sizeof " << name << ", "
        << (r.queue ? "\"" + *r.queue + "\"" : std::string(kQueueless)) << "},";
  }
  if (p.rules.empty()) {
    out << "\n    {NULL, 0, NULL},";
  }
  out << "\n};\n\n#endif /* " << guard << " */\n";
}

} // namespace flowc::emit
