// Text and JSON listings of hardware rules.
#include "compiler/emit/outputs.h"

#include "compiler/base/value_parse.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

namespace flowc::emit {
namespace {

/// Integers as people write them: code points (ethertype, TCI, GRE) and
/// masks in hex, ports, labels and the like in decimal.
std::string Show(Field f, const llvm::APInt &v, bool is_mask = false) {
  const FieldInfo &info = GetFieldInfo(f);
  bool hex = is_mask || f == Field::kEthType || f == Field::kEthTci || f == Field::kGreProtocol ||
             f == Field::kGreFlags;
  if (info.type == ValueType::kInt && !hex) {
    return std::to_string(v.getZExtValue());
  }
  switch (info.type) {
  case ValueType::kMac:
  case ValueType::kIpv4:
  case ValueType::kIpv6:
    return FormatAddressBits(v);
  case ValueType::kInt: {
    // Padded to the field's width: 0x0800, 0x0fff.
    llvm::SmallString<40> s;
    v.toString(s, 16, /*Signed=*/false);
    std::string digits = llvm::StringRef(s).lower();
    size_t width = (info.bits + 3) / 4;
    return "0x" + std::string(width > digits.size() ? width - digits.size() : 0, '0') + digits;
  }
  }
  return "?";
}

std::string Hex(llvm::ArrayRef<uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 3);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i != 0) {
      out += ' ';
    }
    out += llvm::formatv("{0:x-2}", bytes[i]).str();
  }
  return out;
}

std::string FlagNames(const HwRule &r) {
  std::string out;
  if (r.flags & kFlagDontTrap) {
    out += "DONT_TRAP";
  }
  if (r.flags & kFlagEgress) {
    out += out.empty() ? "EGRESS" : "|EGRESS";
  }
  return out;
}

std::string SpecName(const HwSpec &s) {
  return (s.inner ? "INNER|" : "") + GetLayout(s.kind).name.str();
}

} // namespace

std::vector<std::pair<std::string, std::string>> DescribeSpec(const HwSpec &spec) {
  std::vector<std::pair<std::string, std::string>> out;
  if (IsAction(spec.kind)) {
    if (spec.kind == SpecKind::kActionTag) {
      out.emplace_back("tag_id", llvm::formatv("{0:x}", spec.tag).str());
    }
    return out;
  }
  for (const FieldInfo &f : AllFields()) {
    // Sub-fields show as the word they live in (tci, tos, tclass).
    if (f.container != Field::kNone || !PlacementOf(f.field, spec.kind)) {
      continue;
    }
    auto [value, mask] = GetField(spec, f.field);
    if (mask.isZero() && value.isZero()) {
      continue;
    }
    out.emplace_back(f.name.str(), Show(f.field, value) + "/" + Show(f.field, mask, true));
  }
  return out;
}

void WriteText(const OutputPolicy &p, llvm::raw_ostream &out) {
  out << "; " << p.compiler << ", target " << p.target
      << (p.caps.empty() ? "" : " (" + p.caps + ")") << ", " << p.rules.size()
      << " hardware rule" << (p.rules.size() == 1 ? "" : "s") << " from " << p.input << '\n';
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const OutputRule &r = p.rules[i];
    out << "\nrule " << i << ": " << (r.egress ? "egress" : "ingress") << " port "
        << static_cast<unsigned>(r.rule.port) << " priority " << r.rule.priority << ' '
        << AttrTypeName(r.rule.type);
    std::string flags = FlagNames(r.rule);
    if (!flags.empty()) {
      out << ' ' << flags;
    }
    if (r.queue) {
      out << " queue " << *r.queue;
    }
    out << "  <- " << r.source.rule << " (" << r.source.file << ':' << r.source.line << ':'
        << r.source.column << ")\n";
    for (size_t s = 0; s < r.rule.specs.size(); ++s) {
      const HwSpec &spec = r.rule.specs[s];
      out << "  " << llvm::left_justify(SpecName(spec), 16);
      for (auto &[name, value] : DescribeSpec(spec)) {
        out << ' ' << name << ' ' << value;
      }
      if (!r.bindings[s].empty()) {
        out << ' ' << r.bindings[s];
      }
      out << '\n';
    }
    out << "  ; " << r.bytes.size() << " bytes\n";
  }
}

void WriteJson(const OutputPolicy &p, llvm::raw_ostream &out) {
  llvm::json::OStream j(out, 2);
  auto names = [&](llvm::StringRef key, const std::vector<std::string> &list) {
    j.attributeArray(key, [&] {
      for (const std::string &n : list) {
        j.value(n);
      }
    });
  };
  j.object([&] {
    j.attribute("compiler", p.compiler);
    j.attribute("target", p.target);
    j.attribute("capabilities", p.caps);
    j.attribute("input", p.input);
    names("queues", p.queues);
    names("counters", p.counters);
    names("handles", p.handles);
    j.attributeArray("rules", [&] {
      for (const OutputRule &r : p.rules) {
        j.object([&] {
          j.attribute("direction", r.egress ? "egress" : "ingress");
          j.attribute("port", static_cast<int64_t>(r.rule.port));
          j.attribute("priority", static_cast<int64_t>(r.rule.priority));
          j.attribute("type", AttrTypeName(r.rule.type));
          j.attribute("flags", FlagNames(r.rule));
          if (r.queue) {
            j.attribute("queue", *r.queue);
          } else {
            j.attribute("queue", nullptr);
          }
          j.attributeArray("specs", [&] {
            for (size_t s = 0; s < r.rule.specs.size(); ++s) {
              const HwSpec &spec = r.rule.specs[s];
              j.object([&] {
                j.attribute("type", GetLayout(spec.kind).name);
                j.attribute("inner", spec.inner);
                j.attributeObject("fields", [&] {
                  for (auto &[name, value] : DescribeSpec(spec)) {
                    j.attribute(name, value);
                  }
                });
                if (!r.bindings[s].empty()) {
                  j.attribute("symbol", r.bindings[s]);
                }
              });
            }
          });
          j.attribute("bytes", Hex(r.bytes));
          j.attributeObject("source", [&] {
            j.attribute("rule", r.source.rule);
            j.attribute("file", r.source.file);
            j.attribute("line", static_cast<int64_t>(r.source.line));
            j.attribute("column", static_cast<int64_t>(r.source.column));
          });
        });
      }
    });
  });
  out << '\n';
}

} // namespace flowc::emit
