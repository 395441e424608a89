// IR helpers and --dump-ir.
#include "compiler/ir/ir.h"

#include <tuple>

#include "compiler/base/value_parse.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/SourceMgr.h"

namespace flowc::ir {

bool Precedes(const Rule &a, const Rule &b) {
  auto key = [](const Rule &r) {
    return std::make_tuple(r.direction, r.port, r.kind != ast::RuleKind::kNormal, r.kind,
                           r.priority_class, r.source_order);
  };
  return key(a) < key(b);
}

llvm::StringRef LayerName(Layer layer) {
  switch (layer) {
  case Layer::kOuter:
    return "outer";
  case Layer::kTunnel:
    return "tunnel";
  case Layer::kInner:
    return "inner";
  }
  return "?";
}

std::string RuleTitle(const Rule &rule) {
  if (!rule.name.empty()) {
    return "rule '" + rule.name + "'";
  }
  if (rule.kind == ast::RuleKind::kNormal) {
    return "this rule";
  }
  return "the '" + ast::RuleKindName(rule.kind).str() + "' rule";
}

std::string FieldTitle(Field field, Layer layer) {
  const FieldInfo &info = GetFieldInfo(field);
  return (layer == Layer::kInner ? "'inner " : "'") + HeaderName(info.header).str() + " " +
         info.name.str() + "'";
}

std::string FormatValue(Field field, const llvm::APInt &v) {
  const FieldInfo &info = GetFieldInfo(field);
  switch (info.type) {
  case ValueType::kMac:
  case ValueType::kIpv4:
  case ValueType::kIpv6:
    return FormatAddressBits(v);
  case ValueType::kInt: {
    llvm::SmallString<40> s;
    v.toString(s, 16, /*Signed=*/false, /*formatAsCLiteral=*/true);
    return llvm::StringRef(s).lower();
  }
  }
  return "?";
}

namespace {

void PrintTernary(Field field, const llvm::APInt &value, const llvm::APInt &mask,
                  llvm::raw_ostream &out) {
  out << FormatValue(field, value);
  if (!mask.isAllOnes()) {
    out << " mask " << FormatValue(field, mask);
  }
}

void Where(const llvm::SourceMgr &sources, llvm::SMRange range, llvm::raw_ostream &out) {
  if (!range.Start.isValid()) {
    return;
  }
  unsigned buffer = sources.FindBufferContainingLoc(range.Start);
  auto [line, col] = sources.getLineAndColumn(range.Start, buffer);
  out << "  @" << sources.getMemoryBuffer(buffer)->getBufferIdentifier() << ':' << line << ':'
      << col;
}

} // namespace

void Dump(const Policy &policy, const llvm::SourceMgr &sources, llvm::raw_ostream &out) {
  out << "Policy target=" << policy.target << (policy.target_is_default ? " (default)" : "")
      << '\n';
  auto objects = [&](llvm::StringRef what, const std::vector<Object> &list) {
    for (size_t i = 0; i < list.size(); ++i) {
      out << "  " << what << ' ' << i << ' ' << list[i].name << '\n';
    }
  };
  objects("queue", policy.queues);
  objects("counter", policy.counters);
  objects("handle", policy.handles);
  for (const Rule &r : policy.rules) {
    out << "  Rule " << (r.name.empty() ? "<anonymous>" : r.name) << ' '
        << ast::RuleKindName(r.kind) << ' ' << ast::DirectionKeyword(r.direction) << " port "
        << static_cast<unsigned>(r.port) << " class " << r.priority_class << " order "
        << r.source_order << (r.pass ? " pass" : "");
    Where(sources, r.range, out);
    out << '\n';
    for (unsigned l = 0; l < kNumLayers; ++l) {
      if (r.headers[l] == 0) {
        continue;
      }
      out << "    " << LayerName(static_cast<Layer>(l)) << ':';
      for (unsigned h = 0; h < kNumHeaders; ++h) {
        if (r.headers[l] & (1u << h)) {
          out << ' ' << HeaderName(static_cast<Header>(h));
        }
      }
      out << '\n';
    }
    for (const FieldMatch &m : r.matches) {
      const FieldInfo &info = GetFieldInfo(m.field);
      out << "    " << LayerName(m.layer) << ' ' << HeaderName(info.header) << ' ' << info.name
          << ' ';
      switch (m.kind) {
      case MatchKind::kTernary:
        PrintTernary(m.field, m.value, m.mask, out);
        break;
      case MatchKind::kRange:
        out << "range " << FormatValue(m.field, m.lo) << ".." << FormatValue(m.field, m.hi);
        break;
      case MatchKind::kSet:
        out << "set {";
        for (size_t i = 0; i < m.elements.size(); ++i) {
          const SetElement &e = m.elements[i];
          out << (i ? ", " : " ");
          if (e.kind == MatchKind::kRange) {
            out << FormatValue(m.field, e.lo) << ".." << FormatValue(m.field, e.hi);
          } else {
            PrintTernary(m.field, e.value, e.mask, out);
          }
        }
        out << " }";
        break;
      }
      out << '\n';
    }
    for (const Action &a : r.actions) {
      out << "    action " << ast::ActionKeyword(a.kind);
      switch (a.kind) {
      case ast::ActionKind::kSteer:
        out << ' ' << policy.queues[a.operand].name;
        break;
      case ast::ActionKind::kCount:
        out << ' ' << policy.counters[a.operand].name;
        break;
      case ast::ActionKind::kHandle:
        out << ' ' << policy.handles[a.operand].name;
        break;
      case ast::ActionKind::kTag:
        out << ' ' << a.operand;
        break;
      case ast::ActionKind::kDrop:
      case ast::ActionKind::kAllow:
        break;
      }
      out << '\n';
    }
  }
}

} // namespace flowc::ir
