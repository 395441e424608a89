// --dump-ast: the AST as an indented tree.
#include "compiler/ast/ast.h"
#include "compiler/base/value_parse.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/SourceMgr.h"

namespace flowc::ast {

llvm::StringRef ActionKeyword(ActionKind kind) {
  switch (kind) {
  case ActionKind::kSteer:
    return "steer";
  case ActionKind::kTag:
    return "tag";
  case ActionKind::kDrop:
    return "drop";
  case ActionKind::kCount:
    return "count";
  case ActionKind::kHandle:
    return "handle";
  case ActionKind::kAllow:
    return "allow";
  }
  return "?";
}

llvm::StringRef RuleKindName(RuleKind kind) {
  switch (kind) {
  case RuleKind::kNormal:
    return "rule";
  case RuleKind::kDefault:
    return "default";
  case RuleKind::kMulticastDefault:
    return "default multicast";
  case RuleKind::kSniffer:
    return "sniff";
  }
  return "?";
}

llvm::StringRef ObjectKeyword(ObjectKind kind) {
  switch (kind) {
  case ObjectKind::kQueue:
    return "queue";
  case ObjectKind::kCounter:
    return "counter";
  case ObjectKind::kHandle:
    return "handle";
  }
  return "?";
}

llvm::StringRef DirectionKeyword(Direction direction) {
  return direction == Direction::kIngress ? "ingress" : "egress";
}

void PrintScalar(const Scalar &s, llvm::raw_ostream &out) {
  switch (s.kind) {
  case ScalarKind::kInteger:
    out << s.integer;
    return;
  case ScalarKind::kMac: {
    MacAddress mac;
    std::copy(s.bytes.begin(), s.bytes.begin() + 6, mac.begin());
    out << FormatMac(mac);
    return;
  }
  case ScalarKind::kIpv4:
    out << FormatIpv4(static_cast<uint32_t>(s.integer));
    return;
  case ScalarKind::kIpv6:
    out << FormatIpv6(s.bytes);
    return;
  case ScalarKind::kName:
    out << s.name;
    return;
  case ScalarKind::kInvalid:
    out << "<invalid>";
    return;
  }
}

void PrintValue(const Value &v, llvm::raw_ostream &out) {
  switch (v.form) {
  case ValueForm::kScalar:
    PrintScalar(v.first, out);
    return;
  case ValueForm::kPrefix:
    PrintScalar(v.first, out);
    out << '/' << v.prefix_len;
    return;
  case ValueForm::kRange:
    PrintScalar(v.first, out);
    out << "..";
    PrintScalar(v.second, out);
    return;
  case ValueForm::kMask:
    PrintScalar(v.first, out);
    out << " mask ";
    PrintScalar(v.second, out);
    return;
  case ValueForm::kSet:
    out << (v.membership ? "in { " : "{ ");
    for (size_t i = 0; i < v.elements.size(); ++i) {
      out << (i ? ", " : "");
      PrintValue(v.elements[i], out);
    }
    out << " }";
    return;
  case ValueForm::kInName:
    out << "in ";
    PrintScalar(v.first, out);
    return;
  }
}

namespace {

class Dumper {
public:
  Dumper(const llvm::SourceMgr &sources, llvm::raw_ostream &out) : sources_(sources), out_(out) {}

  void Module(const ast::Module &m) {
    out_ << "Module " << m.path << '\n';
    for (auto [kind, index] : m.order) {
      switch (kind) {
      case DeclKind::kImport: {
        const ImportDecl &d = m.imports[index];
        Line(1, "Import", d.range) << (d.is_module ? " module " : " file ") << d.path << '\n';
        break;
      }
      case DeclKind::kTarget:
        Line(1, "Target", m.targets[index].range) << ' ' << m.targets[index].name << '\n';
        break;
      case DeclKind::kConst: {
        const ConstDecl &d = m.consts[index];
        Line(1, "Const", d.range) << ' ' << d.name << " = ";
        PrintValue(d.value, out_);
        out_ << '\n';
        break;
      }
      case DeclKind::kObject: {
        const ObjectDecl &d = m.objects[index];
        Line(1, "Object", d.range) << ' ' << ObjectKeyword(d.kind);
        for (const Name &n : d.names) {
          out_ << ' ' << n.text;
        }
        out_ << '\n';
        break;
      }
      case DeclKind::kMatch: {
        const MatchDecl &d = m.templates[index];
        Line(1, "Template", d.range) << ' ' << d.name;
        if (d.has_params) {
          out_ << '(';
          for (size_t i = 0; i < d.params.size(); ++i) {
            out_ << (i ? ", " : "") << d.params[i].text;
          }
          out_ << ')';
        }
        out_ << '\n';
        Spec(2, d.spec);
        break;
      }
      case DeclKind::kPortBlock:
        Block(m.port_blocks[index]);
        break;
      }
    }
  }

private:
  llvm::raw_ostream &Line(int depth, llvm::StringRef what, llvm::SMRange range) {
    out_.indent(2 * depth) << what << " <";
    Where(range.Start);
    out_ << '-';
    Where(range.End);
    return out_ << '>';
  }

  void Where(llvm::SMLoc loc) {
    if (!loc.isValid()) {
      out_ << "?";
      return;
    }
    auto [line, col] = sources_.getLineAndColumn(loc);
    out_ << line << ':' << col;
  }

  void Block(const PortBlock &b) {
    Line(1, "PortBlock", b.range) << ' ' << DirectionKeyword(b.direction) << " port " << b.port
                                  << '\n';
    for (const Rule &r : b.rules) {
      Line(2, "Rule", r.range) << ' ' << RuleKindName(r.kind);
      if (!r.name.empty()) {
        out_ << " name=" << r.name;
      }
      if (r.has_priority) {
        out_ << " priority=" << r.priority;
      }
      if (r.pass) {
        out_ << " pass";
      }
      out_ << '\n';
      if (r.kind == RuleKind::kNormal) {
        Spec(3, r.match);
      }
      for (const Action &a : r.actions) {
        Line(3, "Action", a.range) << ' ' << ActionKeyword(a.kind);
        if (a.kind == ActionKind::kTag) {
          out_ << ' ';
          PrintScalar(a.tag, out_);
        } else if (!a.name.empty()) {
          out_ << ' ' << a.name;
        }
        out_ << '\n';
      }
    }
  }

  void Spec(int depth, const MatchSpec &spec) {
    if (spec.any) {
      Line(depth, "Any", spec.range) << '\n';
      return;
    }
    for (const MatchItem &item : spec.items) {
      switch (item.kind) {
      case MatchItemKind::kHeader:
        HeaderLine(depth, item.headers.front());
        break;
      case MatchItemKind::kInner:
        Line(depth, "Inner", item.range) << '\n';
        for (const HeaderMatch &h : item.headers) {
          HeaderLine(depth + 1, h);
        }
        break;
      case MatchItemKind::kTemplate:
        Line(depth, "Use", item.range) << ' ' << item.template_name;
        if (item.has_args) {
          out_ << '(';
          for (size_t i = 0; i < item.args.size(); ++i) {
            out_ << (i ? ", " : "");
            PrintValue(item.args[i], out_);
          }
          out_ << ')';
        }
        out_ << '\n';
        break;
      }
    }
  }

  void HeaderLine(int depth, const HeaderMatch &h) {
    Line(depth, "Header", h.range) << ' ' << HeaderName(h.header) << '\n';
    for (const FieldMatch &f : h.fields) {
      Line(depth + 1, "Field", f.name_range) << ' ' << f.name << ' ';
      PrintValue(f.value, out_);
      out_ << '\n';
    }
  }

  const llvm::SourceMgr &sources_;
  llvm::raw_ostream &out_;
};

} // namespace

void Dump(const ast::Module &module, const llvm::SourceMgr &sources, llvm::raw_ostream &out) {
  Dumper(sources, out).Module(module);
}

} // namespace flowc::ast
