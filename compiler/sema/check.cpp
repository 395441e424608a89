// Checking a loaded program into the IR.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "compiler/base/suggest.h"
#include "compiler/base/value_parse.h"
#include "compiler/sema/sema.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

namespace flowc::sema {

/// The profile used without `target` or --target (design.md: mlx5).
constexpr const char *kDefaultTarget = "mlx5";

llvm::ArrayRef<llvm::StringRef> KnownTargets() {
  static const llvm::StringRef kTargets[] = {"generic", "mlx5", "mlx4"};
  return kTargets;
}

namespace {

using ast::ValueForm;
using diag::Kind;
using ir::HeaderSet;

enum class SymbolKind : uint8_t { kConst, kQueue, kCounter, kHandle, kTemplate };

llvm::StringRef SymbolNoun(SymbolKind kind) {
  switch (kind) {
  case SymbolKind::kConst:
    return "a constant";
  case SymbolKind::kQueue:
    return "a queue";
  case SymbolKind::kCounter:
    return "a counter";
  case SymbolKind::kHandle:
    return "a handle";
  case SymbolKind::kTemplate:
    return "a match template";
  }
  return "a name";
}

struct Symbol {
  SymbolKind kind;
  llvm::SMRange range;
  /// kConst: the declaration; kTemplate: the declaration; objects: the id.
  const ast::ConstDecl *const_decl = nullptr;
  const ast::MatchDecl *template_decl = nullptr;
  uint32_t object = 0;
  /// Some name lookup found it (a rule, template, constant or action).
  bool used = false;
};

/// Template parameters in scope: name -> the (resolved) argument.
using Scope = llvm::StringMap<const ast::Value *>;

/// A field's spelling for messages: 'udp dst' or 'inner udp dst'.
using ir::FieldTitle;

/// An integer as people write it for `field`: ethertypes and other code
/// points in 4-digit hex (0x0800), everything else (ports, labels) in decimal.
std::string FormatInt(Field field, const llvm::APInt &v) {
  switch (field) {
  case Field::kEthType:
  case Field::kEthTci:
  case Field::kGreProtocol:
  case Field::kGreFlags:
    return llvm::formatv("{0:x4}", v.getZExtValue()).str();
  default: {
    llvm::SmallString<40> s;
    v.toString(s, 10, /*Signed=*/false);
    return std::string(s);
  }
  }
}

/// A mask of an integer field, in hex padded to the field's width.
std::string FormatMask(const llvm::APInt &v) {
  llvm::SmallString<40> s;
  v.toString(s, 16, /*Signed=*/false);
  std::string digits = llvm::StringRef(s).lower();
  size_t width = (v.getBitWidth() + 3) / 4;
  return "0x" + std::string(width > digits.size() ? width - digits.size() : 0, '0') + digits;
}

bool Admits(const ir::FieldMatch &m, uint64_t v) {
  auto ternary = [&](const llvm::APInt &value, const llvm::APInt &mask) {
    llvm::APInt x(value.getBitWidth(), v);
    return (x & mask) == value;
  };
  auto range = [&](const llvm::APInt &lo, const llvm::APInt &hi) {
    llvm::APInt x(lo.getBitWidth(), v);
    return lo.ule(x) && x.ule(hi);
  };
  switch (m.kind) {
  case ir::MatchKind::kTernary:
    return ternary(m.value, m.mask);
  case ir::MatchKind::kRange:
    return range(m.lo, m.hi);
  case ir::MatchKind::kSet:
    for (const ir::SetElement &e : m.elements) {
      if (e.kind == ir::MatchKind::kRange ? range(e.lo, e.hi) : ternary(e.value, e.mask)) {
        return true;
      }
    }
    return false;
  }
  return false;
}

class Checker {
public:
  Checker(const Program &program, const Options &options, diag::Engine &diags)
      : program_(program), options_(options), diags_(diags) {}

  ir::Policy Run() {
    for (const ast::Module &m : program_.modules) {
      Declare(m);
    }
    ResolveTarget();
    // Definitions are checked in source order, whether or not a rule uses
    // them, so their diagnostics come out in the order of the file.
    for (const ast::Module &m : program_.modules) {
      for (auto [kind, index] : m.order) {
        if (kind == ast::DeclKind::kMatch) {
          CheckTemplateDefinition(m.templates[index]);
        } else if (kind == ast::DeclKind::kConst) {
          ConstValue(&m.consts[index]);
        }
      }
    }
    for (const ast::Module &m : program_.modules) {
      for (const ast::PortBlock &b : m.port_blocks) {
        if (diags_.ShouldStop()) {
          break;
        }
        CheckBlock(b);
      }
    }
    // After an error a definition may be unused only because the use was
    // wrong (a misspelt name, a bad value): say nothing then.
    if (!program_.modules.empty() && diags_.error_count() == 0) {
      ReportUnusedDefinitions(program_.modules.back());
    }
    std::stable_sort(policy_.rules.begin(), policy_.rules.end(), ir::Precedes);
    return std::move(policy_);
  }

  /// FL3009: constants and templates of the root file that no lookup found.
  /// Imported files (the standard library above all) are collections of
  /// definitions that a policy uses in part, so they are not reported, and
  /// neither is a root file without rules.
  void ReportUnusedDefinitions(const ast::Module &root) {
    if (root.port_blocks.empty()) {
      return; // a file of definitions only is a library checked on its own
    }
    for (auto [kind, index] : root.order) {
      llvm::StringRef name;
      llvm::SMRange range;
      const char *what = nullptr;
      const void *decl = nullptr;
      if (kind == ast::DeclKind::kConst) {
        name = root.consts[index].name;
        range = root.consts[index].name_range;
        what = "constant";
        decl = &root.consts[index];
      } else if (kind == ast::DeclKind::kMatch) {
        name = root.templates[index].name;
        range = root.templates[index].name_range;
        what = "template";
        decl = &root.templates[index];
      } else {
        continue;
      }
      auto it = globals_.find(name);
      if (it == globals_.end() || it->second.used || redefined_.count(name) != 0 ||
          (it->second.const_decl != decl && it->second.template_decl != decl)) {
        continue;
      }
      Report(Kind::kUnusedDefinition, range.Start,
             llvm::Twine(what) + " '" + name + "' is declared but never used")
          .Range(range);
    }
  }

private:
  // --- Declarations -------------------------------------------------------

  void Define(llvm::StringRef name, Symbol symbol) {
    auto [it, inserted] = globals_.try_emplace(name, symbol);
    if (!inserted) {
      redefined_.insert(name);
      Report(Kind::kDuplicateDefinition, symbol.range.Start,
             "'" + name + "' is already defined as " + SymbolNoun(it->second.kind))
          .Range(symbol.range)
          .AddNote(it->second.range.Start, "previous definition is here", it->second.range);
    }
  }

  /// Declares a module's names in source order, so that a duplicate is
  /// reported at the later definition.
  void Declare(const ast::Module &m) {
    for (auto [kind, index] : m.order) {
      if (kind == ast::DeclKind::kConst) {
        const ast::ConstDecl &c = m.consts[index];
        Symbol s{SymbolKind::kConst, c.name_range};
        s.const_decl = &c;
        Define(c.name, s);
      } else if (kind == ast::DeclKind::kMatch) {
        const ast::MatchDecl &t = m.templates[index];
        Symbol s{SymbolKind::kTemplate, t.name_range};
        s.template_decl = &t;
        Define(t.name, s);
      } else if (kind == ast::DeclKind::kObject) {
        DeclareObjects(m.objects[index]);
      }
    }
  }

  void DeclareObjects(const ast::ObjectDecl &o) {
    {
      for (const ast::Name &n : o.names) {
        std::vector<ir::Object> *table = o.kind == ast::ObjectKind::kQueue     ? &policy_.queues
                                         : o.kind == ast::ObjectKind::kCounter ? &policy_.counters
                                                                               : &policy_.handles;
        SymbolKind kind = o.kind == ast::ObjectKind::kQueue     ? SymbolKind::kQueue
                          : o.kind == ast::ObjectKind::kCounter ? SymbolKind::kCounter
                                                                : SymbolKind::kHandle;
        if (globals_.count(n.text) == 0) {
          Symbol s{kind, n.range};
          s.object = static_cast<uint32_t>(table->size());
          table->push_back(ir::Object{n.text.str(), n.range});
          globals_.try_emplace(n.text, s);
        } else {
          Define(n.text, Symbol{kind, n.range});
        }
      }
    }
  }

  void ResolveTarget() {
    const ast::TargetDecl *first = nullptr;
    for (const ast::Module &m : program_.modules) {
      for (const ast::TargetDecl &t : m.targets) {
        if (first != nullptr) {
          Report(Kind::kDuplicateTarget, t.range.Start, "the target is already declared")
              .Range(t.range)
              .AddNote(first->range.Start, "first target declaration is here", first->range);
          continue;
        }
        first = &t;
        if (llvm::is_contained(KnownTargets(), t.name)) {
          continue;
        }
        std::string message = "unknown target '" + t.name.str() + "'";
        llvm::StringRef guess = SuggestName(t.name, KnownTargets());
        message += guess.empty() ? "; known targets are generic, mlx5 and mlx4"
                                 : "; did you mean '" + guess.str() + "'?";
        Report(Kind::kUnknownTarget, t.name_range.Start, message).Range(t.name_range);
      }
    }
    if (!options_.target_override.empty()) {
      policy_.target = options_.target_override;
    } else if (first != nullptr) {
      policy_.target = first->name.str();
      policy_.target_range = first->name_range;
    } else {
      policy_.target = kDefaultTarget;
      policy_.target_is_default = true;
    }
  }

  /// Looks `name` up; reports undefined names with a suggestion among the
  /// symbols of `wanted` kinds.
  const Symbol *Lookup(llvm::StringRef name, llvm::SMRange range,
                       std::initializer_list<SymbolKind> wanted, const Scope *scope = nullptr) {
    auto it = globals_.find(name);
    if (it != globals_.end()) {
      it->second.used = true;
      return &it->second;
    }
    std::vector<llvm::StringRef> candidates;
    if (scope != nullptr) {
      for (const auto &p : *scope) {
        candidates.push_back(p.getKey());
      }
    }
    for (const auto &g : globals_) {
      if (llvm::is_contained(wanted, g.second.kind)) {
        candidates.push_back(g.getKey());
      }
    }
    std::sort(candidates.begin(), candidates.end());
    std::string message = "undefined name '" + name.str() + "'";
    llvm::StringRef guess = SuggestName(name, candidates);
    if (!guess.empty()) {
      message += "; did you mean '" + guess.str() + "'?";
    }
    auto d = Report(Kind::kUndefinedName, range.Start, message);
    d.Range(range);
    if (!guess.empty()) {
      auto g = globals_.find(guess);
      if (g != globals_.end()) {
        d.AddNote(g->second.range.Start, "'" + guess + "' is declared here", g->second.range);
      }
    }
    return nullptr;
  }

  /// Reports `name` being `symbol`'s kind where `expected` was needed.
  void WrongKind(llvm::StringRef name, llvm::SMRange range, const Symbol &symbol,
                 llvm::StringRef expected) {
    if (redefined_.count(name) != 0) {
      // The duplicate definition already explains the clash; a use meant for
      // the rejected definition is not a second mistake.
      return;
    }
    Report(Kind::kWrongKind, range.Start,
           "'" + name + "' is " + SymbolNoun(symbol.kind) + ", not " + expected)
        .Range(range)
        .AddNote(symbol.range.Start, "'" + name + "' is declared here", symbol.range);
  }

  // --- Constants and values -------------------------------------------------

  /// The resolved value of a constant, or null if it is invalid.
  const ast::Value *ConstValue(const ast::ConstDecl *decl) {
    auto [it, inserted] = consts_.try_emplace(decl);
    ConstState &state = it->second;
    if (state.status == ConstState::kDone) {
      return state.value ? &*state.value : nullptr;
    }
    if (state.status == ConstState::kVisiting) {
      Report(Kind::kDefinitionCycle, decl->name_range.Start,
             "constant '" + decl->name + "' is defined in terms of itself")
          .Range(decl->name_range);
      return nullptr;
    }
    state.status = ConstState::kVisiting;
    std::optional<ast::Value> value = ResolveValue(decl->value, nullptr);
    if (value) {
      CheckConstShape(*value);
    }
    ConstState &done = consts_[decl];
    done.status = ConstState::kDone;
    done.value = std::move(value);
    return done.value ? &*done.value : nullptr;
  }

  /// A constant's elements must agree in kind ({ 10.0.0.0/8, 80 } is wrong).
  void CheckConstShape(const ast::Value &v) {
    if (v.form != ValueForm::kSet || v.elements.empty()) {
      return;
    }
    ast::ScalarKind kind = v.elements.front().first.kind;
    for (const ast::Value &e : v.elements) {
      if (e.first.kind != kind && e.first.kind != ast::ScalarKind::kInvalid &&
          kind != ast::ScalarKind::kInvalid) {
        Report(Kind::kTypeMismatch, e.range.Start,
               "set mixes " + ScalarNoun(kind) + " and " + ScalarNoun(e.first.kind))
            .Range(e.range)
            .AddNote(v.elements.front().range.Start, "first element is here",
                     v.elements.front().range);
        return;
      }
    }
  }

  static std::string ScalarNoun(ast::ScalarKind kind) {
    switch (kind) {
    case ast::ScalarKind::kInteger:
      return "an integer";
    case ast::ScalarKind::kMac:
      return "a MAC address";
    case ast::ScalarKind::kIpv4:
      return "an IPv4 address";
    case ast::ScalarKind::kIpv6:
      return "an IPv6 address";
    default:
      return "a name";
    }
  }

  /// What `name` stands for as a value: a template argument or a constant.
  std::optional<ast::Value> NamedValue(const ast::Scalar &name, const Scope *scope) {
    if (scope != nullptr) {
      auto it = scope->find(name.name);
      if (it != scope->end()) {
        return *it->second;
      }
    }
    const Symbol *s = Lookup(name.name, name.range, {SymbolKind::kConst}, scope);
    if (s == nullptr) {
      return std::nullopt;
    }
    if (s->kind != SymbolKind::kConst) {
      WrongKind(name.name, name.range, *s, "a constant");
      return std::nullopt;
    }
    const ast::Value *v = ConstValue(s->const_decl);
    if (v == nullptr) {
      return std::nullopt;
    }
    return *v;
  }

  /// Resolves a scalar position: a literal, or a name that must stand for a
  /// single value.
  std::optional<ast::Scalar> ResolveScalar(const ast::Scalar &s, const Scope *scope,
                                           llvm::StringRef role) {
    if (s.kind != ast::ScalarKind::kName) {
      return s;
    }
    std::optional<ast::Value> v = NamedValue(s, scope);
    if (!v) {
      return std::nullopt;
    }
    if (v->form != ValueForm::kScalar) {
      Report(Kind::kInvalidValueForm, s.range.Start,
             "'" + s.name + "' is " + FormNoun(*v) + "; " + role + " must be a single value")
          .Range(s.range);
      return std::nullopt;
    }
    ast::Scalar out = v->first;
    out.range = s.range;
    return out;
  }

  static std::string FormNoun(const ast::Value &v) {
    switch (v.form) {
    case ValueForm::kScalar:
      return "a single value";
    case ValueForm::kPrefix:
      return "a prefix";
    case ValueForm::kRange:
      return "a range";
    case ValueForm::kMask:
      return "a masked value";
    case ValueForm::kSet:
    case ValueForm::kInName:
      return "a set";
    }
    return "a value";
  }

  /// Replaces every name in `v` by what it stands for. Sets are flattened.
  std::optional<ast::Value> ResolveValue(const ast::Value &v, const Scope *scope) {
    switch (v.form) {
    case ValueForm::kScalar: {
      if (v.first.kind != ast::ScalarKind::kName) {
        return v;
      }
      std::optional<ast::Value> named = NamedValue(v.first, scope);
      if (!named) {
        return std::nullopt;
      }
      // Report problems with the value at the place it is used.
      Relocate(*named, v.range);
      return named;
    }
    case ValueForm::kPrefix:
    case ValueForm::kRange:
    case ValueForm::kMask: {
      ast::Value out = v;
      llvm::StringRef role = v.form == ValueForm::kPrefix  ? "the address of a prefix"
                             : v.form == ValueForm::kRange ? "a range bound"
                                                           : "a masked value";
      auto first = ResolveScalar(v.first, scope, role);
      if (!first) {
        return std::nullopt;
      }
      out.first = *first;
      if (v.form != ValueForm::kPrefix) {
        auto second = ResolveScalar(v.second, scope, v.form == ValueForm::kMask ? "a mask" : role);
        if (!second) {
          return std::nullopt;
        }
        out.second = *second;
      }
      return out;
    }
    case ValueForm::kInName: {
      std::optional<ast::Value> named = NamedValue(v.first, scope);
      if (!named) {
        return std::nullopt;
      }
      if (named->form == ValueForm::kScalar && named->first.kind == ast::ScalarKind::kInvalid) {
        return std::nullopt; // a placeholder or an already reported literal
      }
      if (named->form != ValueForm::kSet) {
        Report(Kind::kInvalidValueForm, v.first.range.Start,
               "'" + v.first.name + "' is " + FormNoun(*named) + ", not a set; 'in' needs a set")
            .Range(v.first.range);
        return std::nullopt;
      }
      Relocate(*named, v.range);
      named->membership = true;
      return named;
    }
    case ValueForm::kSet: {
      ast::Value out;
      out.form = ValueForm::kSet;
      out.range = v.range;
      out.membership = v.membership;
      bool ok = true;
      for (const ast::Value &e : v.elements) {
        std::optional<ast::Value> r = ResolveValue(e, scope);
        if (!r) {
          ok = false;
          continue;
        }
        if (r->form == ValueForm::kSet) {
          for (ast::Value &inner : r->elements) {
            out.elements.push_back(std::move(inner));
          }
        } else {
          out.elements.push_back(std::move(*r));
        }
      }
      if (!ok) {
        return std::nullopt;
      }
      return out;
    }
    }
    return std::nullopt;
  }

  /// Points a value taken from a constant at the place that uses it.
  static void Relocate(ast::Value &v, llvm::SMRange use) {
    v.range = use;
    v.first.range = use;
    v.second.range = use;
    v.prefix_range = use;
    for (ast::Value &e : v.elements) {
      Relocate(e, use);
    }
  }

  // --- Typing values for a field --------------------------------------------

  /// Converts a literal to `width` bits of a field of type `type`; `what`
  /// names the field in messages. Integers are accepted for address fields
  /// only as masks.
  std::optional<llvm::APInt> ToBits(const ast::Scalar &s, ValueType type, unsigned width,
                                    const std::string &what, bool is_mask) {
    if (s.kind == ast::ScalarKind::kInvalid) {
      return std::nullopt;
    }
    bool integer_ok = type == ValueType::kInt || is_mask;
    switch (s.kind) {
    case ast::ScalarKind::kInteger:
      if (!integer_ok) {
        break;
      }
      if (width < 64 && (s.integer >> width) != 0) {
        // In the base the value was written in.
        uint64_t max = width == 0 ? 0 : UINT64_MAX >> (64 - width);
        bool hex = llvm::StringRef(Source(s.range)).startswith_insensitive("0x");
        auto show = [&](uint64_t x) {
          return hex ? llvm::formatv("{0:x}", x).str() : std::to_string(x);
        };
        Report(Kind::kValueOutOfRange, s.range.Start,
               llvm::formatv("value {0} is out of range for {1} (0..{2}, {3} bit{4})",
                             show(s.integer), what, show(max), width, width == 1 ? "" : "s"))
            .Range(s.range);
        return std::nullopt;
      }
      return llvm::APInt(width, s.integer);
    case ast::ScalarKind::kMac:
      if (type != ValueType::kMac) {
        break;
      }
      {
        llvm::APInt v(48, 0);
        for (unsigned i = 0; i < 6; ++i) {
          v = v.shl(8) | llvm::APInt(48, s.bytes[i]);
        }
        return v;
      }
    case ast::ScalarKind::kIpv4:
      if (type != ValueType::kIpv4) {
        break;
      }
      return llvm::APInt(32, s.integer);
    case ast::ScalarKind::kIpv6:
      if (type != ValueType::kIpv6) {
        break;
      }
      {
        llvm::APInt v(128, 0);
        for (unsigned i = 0; i < 16; ++i) {
          v = v.shl(8) | llvm::APInt(128, s.bytes[i]);
        }
        return v;
      }
    default:
      break;
    }
    Report(Kind::kTypeMismatch, s.range.Start,
           "expected " + ValueTypeNoun(type).str() +
               (is_mask && type != ValueType::kInt ? " or an integer" : "") + " for " + what +
               ", found " + ScalarNoun(s.kind))
        .Range(s.range);
    return std::nullopt;
  }

  /// Types one non-set value as a ternary or range match element.
  std::optional<ir::SetElement> TypeElement(const ast::Value &v, const FieldInfo &f,
                                            const std::string &what) {
    ir::SetElement e;
    e.range = v.range;
    unsigned w = f.bits;
    switch (v.form) {
    case ValueForm::kScalar: {
      auto bits = ToBits(v.first, f.type, w, what, false);
      if (!bits) {
        return std::nullopt;
      }
      e.value = *bits;
      e.mask = llvm::APInt::getAllOnes(w);
      return e;
    }
    case ValueForm::kPrefix: {
      auto bits = ToBits(v.first, f.type, w, what, false);
      if (!bits) {
        return std::nullopt;
      }
      if (v.prefix_len > w) {
        Report(
            Kind::kPrefixTooLong, v.prefix_range.Start,
            llvm::formatv("prefix length {0} is longer than {1} ({2} bits)", v.prefix_len, what, w))
            .Range(v.prefix_range);
        return std::nullopt;
      }
      unsigned len = static_cast<unsigned>(v.prefix_len);
      e.mask = llvm::APInt::getHighBitsSet(w, len);
      e.value = *bits;
      if ((*bits & ~e.mask) != 0) {
        llvm::APInt canon = *bits & e.mask;
        std::string shown = ShowBits(canon, f) + "/" + std::to_string(len);
        Report(Kind::kValueOutsideMask, v.range.Start,
               "'" + Source(v.range) + "' has bits set after the first " + std::to_string(len) +
                   "; did you mean '" + shown + "'?")
            .Range(v.range);
        return std::nullopt;
      }
      if (len == 0) {
        WarnEverything(v.range, what, "a /0 prefix");
      }
      return e;
    }
    case ValueForm::kMask: {
      auto bits = ToBits(v.first, f.type, w, what, false);
      auto mask = ToBits(v.second, f.type, w, what, true);
      if (!bits || !mask) {
        return std::nullopt;
      }
      if ((*bits & ~*mask) != 0) {
        std::string fixed =
            f.type == ValueType::kInt ? FormatMask(*bits & *mask) : ShowBits(*bits & *mask, f);
        // An integer is shown as written, and in hex beside the mask when it
        // was written otherwise ("4791 (0x12b7)", "'roce' (4791, 0x12b7)").
        std::string value = ShowBits(*bits, f);
        if (f.type == ValueType::kInt) {
          std::string written = Source(v.first.range);
          std::string hex = FormatMask(*bits);
          // The value may come from a constant: then the text is its name.
          bool named = !written.empty() &&
                       (std::isalpha(static_cast<unsigned char>(written[0])) || written[0] == '_');
          if (named) {
            value = "'" + written + "' (" + FormatInt(f.field, *bits) + ", " + hex + ")";
          } else if (llvm::StringRef(written).startswith_insensitive("0x")) {
            value = written;
          } else {
            value = written + " (" + hex + ")";
          }
        }
        Report(Kind::kValueOutsideMask, v.first.range.Start,
               "value " + value + " has bits set outside mask " + ShowBits(*mask, f, true) +
                   ", so no masked packet equals it and the rule never matches on mlx5; "
                   "did you mean '" +
                   fixed + "'?")
            .Range(v.range);
        return std::nullopt;
      }
      if (mask->isZero()) {
        WarnEverything(v.range, what, "mask 0");
      }
      e.value = *bits;
      e.mask = *mask;
      return e;
    }
    case ValueForm::kRange: {
      auto lo = ToBits(v.first, f.type, w, what, false);
      auto hi = ToBits(v.second, f.type, w, what, false);
      if (!lo || !hi) {
        return std::nullopt;
      }
      if (lo->ugt(*hi)) {
        Report(Kind::kEmptyRange, v.range.Start,
               "range '" + Source(v.range) + "' is empty: its low end is above its high end")
            .Range(v.range);
        return std::nullopt;
      }
      if (lo->isZero() && hi->isAllOnes()) {
        WarnEverything(v.range, what, "the range");
      }
      if (*lo == *hi) {
        e.value = *lo;
        e.mask = llvm::APInt::getAllOnes(w);
        return e;
      }
      e.kind = ir::MatchKind::kRange;
      e.lo = *lo;
      e.hi = *hi;
      return e;
    }
    default:
      break;
    }
    return std::nullopt;
  }

  void WarnEverything(llvm::SMRange range, const std::string &what, llvm::StringRef form) {
    Report(Kind::kMatchesEverything, range.Start,
           form + " matches every value of " + what + "; leave the field out instead")
        .Range(range);
  }

  /// The source text of `r` for quoting in a message, cut if it is long.
  std::string Source(llvm::SMRange r) const {
    llvm::StringRef text(r.Start.getPointer(), r.End.getPointer() - r.Start.getPointer());
    return text.size() > 40 ? (text.take_front(37) + "...").str() : text.str();
  }

  static std::string ShowBits(const llvm::APInt &v, const FieldInfo &f, bool is_mask = false) {
    switch (f.type) {
    case ValueType::kIpv4:
      return FormatIpv4(static_cast<uint32_t>(v.getZExtValue()));
    case ValueType::kMac: {
      MacAddress mac;
      for (unsigned i = 0; i < 6; ++i) {
        mac[i] = static_cast<uint8_t>(v.extractBitsAsZExtValue(8, 40 - 8 * i));
      }
      return FormatMac(mac);
    }
    case ValueType::kIpv6: {
      Ipv6Address a;
      for (unsigned i = 0; i < 16; ++i) {
        a[i] = static_cast<uint8_t>(v.extractBitsAsZExtValue(8, 120 - 8 * i));
      }
      return FormatIpv6(a);
    }
    case ValueType::kInt:
      return is_mask ? FormatMask(v) : FormatInt(f.field, v);
    }
    return "";
  }

  // --- Templates ------------------------------------------------------------

  /// Checks a template where it is defined, so that a template nothing uses
  /// is checked too: its parameters, and its body expanded with placeholder
  /// arguments that pass every check a real argument might fail (field
  /// names, names, templates it uses, literal values). Problems found again
  /// at a use are reported once (the engine drops repeats).
  void CheckTemplateDefinition(const ast::MatchDecl &t) {
    llvm::StringMap<llvm::SMRange> params;
    for (const ast::Name &p : t.params) {
      if (!params.try_emplace(p.text, p.range).second) {
        Report(Kind::kDuplicateDefinition, p.range.Start,
               "parameter '" + p.text + "' is declared twice")
            .Range(p.range)
            .AddNote(params[p.text].Start, "previous declaration is here", params[p.text]);
        continue;
      }
      auto g = globals_.find(p.text);
      if (g != globals_.end()) {
        Report(Kind::kParamShadows, p.range.Start,
               "parameter '" + p.text + "' hides " + SymbolNoun(g->second.kind) +
                   " of the same name")
            .Range(p.range)
            .AddNote(g->second.range.Start, "'" + p.text + "' is declared here", g->second.range);
      }
    }
    ast::Value placeholder;
    placeholder.first.kind = ast::ScalarKind::kInvalid;
    Scope scope;
    for (const ast::Name &p : t.params) {
      scope[p.text] = &placeholder;
    }
    RuleBuilder rb;
    rb.expanding.push_back(&t);
    ProcessSpec(t.spec, &scope, rb);
  }

  // --- Rules ----------------------------------------------------------------

  /// Template uses being expanded, outermost first.
  using UseChain = std::vector<std::pair<const ast::MatchDecl *, llvm::SMRange>>;

  struct RuleBuilder {
    ir::Rule rule;
    llvm::SMRange header_at[ir::kNumLayers][kNumHeaders];
    std::map<std::pair<ir::Layer, Field>, size_t> field_index;
    llvm::SMRange inner_at;
    /// Templates being expanded, innermost last, for cycle detection.
    std::vector<const ast::MatchDecl *> expanding;
    /// The template uses that brought in each remembered source position, so
    /// a check after expansion still points at the rule's use.
    std::map<const char *, UseChain> chains;
  };

  void Remember(RuleBuilder &rb, llvm::SMRange range) {
    if (!uses_.empty() && range.isValid()) {
      rb.chains.emplace(range.Start.getPointer(), uses_);
    }
  }

  void CheckBlock(const ast::PortBlock &b) {
    bool port_ok = b.port >= 1 && b.port <= 255;
    if (!port_ok && b.port_valid) {
      Report(Kind::kPortOutOfRange, b.port_range.Start,
             llvm::formatv("port {0} is out of range; ports are numbered 1..255", b.port))
          .Range(b.port_range);
    }
    for (const ast::Rule &r : b.rules) {
      if (diags_.ShouldStop()) {
        return;
      }
      CheckRule(b, r, port_ok ? static_cast<uint8_t>(b.port) : 1);
    }
  }

  void CheckRule(const ast::PortBlock &block, const ast::Rule &r, uint8_t port) {
    unsigned errors_before = diags_.error_count();
    RuleBuilder rb;
    rule_ = &rb;
    auto forget = llvm::make_scope_exit([&] { rule_ = nullptr; });
    ir::Rule &rule = rb.rule;
    rule.kind = r.kind;
    rule.direction = block.direction;
    rule.port = port;
    rule.source_order = next_order_++;
    rule.range = r.range;
    rule.name = r.name.str();
    rule.pass = r.pass;
    if (!r.name.empty()) {
      auto [it, inserted] = rule_names_.try_emplace(r.name, r.name_range);
      if (!inserted) {
        Report(Kind::kDuplicateRuleName, r.name_range.Start,
               "a rule named '" + r.name + "' already exists")
            .Range(r.name_range)
            .AddNote(it->second.Start, "previous rule is here", it->second);
      }
    }
    CheckRuleKind(block, r, rule);
    if (r.kind == ast::RuleKind::kNormal) {
      ProcessSpec(r.match, nullptr, rb);
      CheckLayers(rb);
    }
    CheckActions(block, r, rule);
    std::sort(rule.matches.begin(), rule.matches.end(),
              [](const ir::FieldMatch &a, const ir::FieldMatch &b) {
                return std::make_pair(a.layer, a.field) < std::make_pair(b.layer, b.field);
              });
    if (diags_.error_count() == errors_before) {
      policy_.rules.push_back(std::move(rule));
    }
  }

  void CheckRuleKind(const ast::PortBlock &block, const ast::Rule &r, ir::Rule &rule) {
    if (r.has_priority && r.priority_valid) {
      if (r.kind != ast::RuleKind::kNormal) {
        Report(Kind::kInvalidRuleOption, r.priority_range.Start,
               "'priority' has no meaning on a '" + ast::RuleKindName(r.kind) + "' rule, " +
                   (r.kind == ast::RuleKind::kSniffer
                        ? "which receives a copy of all traffic"
                        : "which takes only what no other rule takes"))
            .Range(r.priority_range);
      } else if (r.priority > 0xffff) {
        Report(Kind::kValueOutOfRange, r.priority_range.Start,
               llvm::formatv("priority class {0} is out of range (0..65535)", r.priority))
            .Range(r.priority_range);
      } else {
        rule.priority_class = static_cast<uint32_t>(r.priority);
      }
    }
    if (r.pass && r.kind != ast::RuleKind::kNormal) {
      Report(Kind::kInvalidRuleOption, r.pass_range.Start,
             "'pass' is not allowed on a '" + ast::RuleKindName(r.kind) +
                 "' rule; only normal rules can copy and continue")
          .Range(r.pass_range);
    }
    bool is_default =
        r.kind == ast::RuleKind::kDefault || r.kind == ast::RuleKind::kMulticastDefault;
    if (is_default && block.direction == ast::Direction::kEgress) {
      Report(Kind::kEgressRuleKind, r.keyword_range.Start,
             "'" + ast::RuleKindName(r.kind) +
                 "' rules exist only for ingress; egress traffic has no default queue")
          .Range(r.keyword_range);
    }
    if (r.kind == ast::RuleKind::kSniffer && block.direction == ast::Direction::kEgress) {
      // A sniffer rule copies both directions of the port to the queue it is
      // created on (mlx5 SNIFFER_RX and _TX, mlx4 MIRROR_RX and _SX).
      Report(Kind::kEgressRuleKind, r.keyword_range.Start,
             "'sniff' rules belong in ingress blocks: a sniffer copies both directions of the "
             "port to a receive queue")
          .Range(r.keyword_range);
    }
    if (r.kind != ast::RuleKind::kNormal) {
      auto key = std::make_tuple(block.direction, block.port, r.kind);
      auto [it, inserted] = special_rules_.try_emplace(key, r.keyword_range);
      if (!inserted) {
        Report(Kind::kDuplicateRuleKind, r.keyword_range.Start,
               llvm::formatv("port {0} already has a '{1}' rule", block.port,
                             ast::RuleKindName(r.kind)))
            .Range(r.keyword_range)
            .AddNote(it->second.Start, "previous one is here", it->second);
      }
    }
  }

  void ProcessSpec(const ast::MatchSpec &spec, const Scope *scope, RuleBuilder &rb) {
    if (spec.any) {
      return;
    }
    for (const ast::MatchItem &item : spec.items) {
      switch (item.kind) {
      case ast::MatchItemKind::kHeader:
        ProcessHeader(item.headers.front(), /*inner=*/false, scope, rb);
        break;
      case ast::MatchItemKind::kInner:
        if (!rb.inner_at.isValid()) {
          rb.inner_at = item.range;
          Remember(rb, item.range);
        }
        for (const ast::HeaderMatch &h : item.headers) {
          ProcessHeader(h, /*inner=*/true, scope, rb);
        }
        break;
      case ast::MatchItemKind::kTemplate:
        ExpandTemplate(item, scope, rb);
        break;
      }
    }
  }

  void ExpandTemplate(const ast::MatchItem &item, const Scope *scope, RuleBuilder &rb) {
    const Symbol *s = Lookup(item.template_name, item.name_range, {SymbolKind::kTemplate}, scope);
    if (s == nullptr) {
      return;
    }
    if (s->kind != SymbolKind::kTemplate) {
      WrongKind(item.template_name, item.name_range, *s, "a match template");
      return;
    }
    const ast::MatchDecl &t = *s->template_decl;
    auto cycle_start = llvm::find(rb.expanding, &t);
    if (cycle_start != rb.expanding.end()) {
      // One diagnostic per cycle, however many definitions and rules reach it.
      std::vector<const ast::MatchDecl *> cycle(cycle_start, rb.expanding.end());
      if (llvm::none_of(cycle, [&](const ast::MatchDecl *d) { return cyclic_.count(d) != 0; })) {
        cyclic_.insert(cycle.begin(), cycle.end());
        std::string through;
        for (size_t i = 1; i < cycle.size(); ++i) {
          through += i == 1 ? " through '" : i + 1 == cycle.size() ? "' and '" : "', '";
          through += cycle[i]->name;
        }
        if (!through.empty()) {
          through += "'";
        }
        Report(Kind::kDefinitionCycle, item.name_range.Start,
               "template '" + t.name + "' uses itself" + through)
            .Range(item.name_range)
            .AddNote(t.name_range.Start, "'" + t.name + "' is defined here", t.name_range);
      }
      return;
    }
    if (item.args.size() != t.params.size()) {
      Report(Kind::kTemplateArity, item.name_range.Start,
             llvm::formatv("template '{0}' takes {1} argument{2}, but {3} {4} given", t.name,
                           t.params.size(), t.params.size() == 1 ? "" : "s", item.args.size(),
                           item.args.size() == 1 ? "is" : "are"))
          .Range(item.range)
          .AddNote(t.name_range.Start, "'" + t.name + "' is defined here", t.name_range);
      return;
    }
    std::vector<ast::Value> args;
    args.reserve(item.args.size());
    for (const ast::Value &a : item.args) {
      std::optional<ast::Value> v = ResolveValue(a, scope);
      if (!v) {
        return;
      }
      args.push_back(std::move(*v));
    }
    Scope inner;
    for (size_t i = 0; i < args.size(); ++i) {
      inner[t.params[i].text] = &args[i];
    }
    rb.expanding.push_back(&t);
    uses_.push_back({&t, item.range});
    ProcessSpec(t.spec, &inner, rb);
    uses_.pop_back();
    rb.expanding.pop_back();
  }

  static ir::Layer LayerOf(Header h, bool inner) {
    if (inner) {
      return ir::Layer::kInner;
    }
    return h == Header::kVxlan || h == Header::kGre || h == Header::kMpls ? ir::Layer::kTunnel
                                                                          : ir::Layer::kOuter;
  }

  void ProcessHeader(const ast::HeaderMatch &h, bool inner, const Scope *scope, RuleBuilder &rb) {
    if (inner &&
        (h.header == Header::kVxlan || h.header == Header::kGre || h.header == Header::kEsp)) {
      Report(Kind::kInvalidInnerHeader, h.range.Start,
             "'" + HeaderName(h.header) +
                 "' cannot be matched inside 'inner'; inner headers are eth, ipv4, ipv6, "
                 "tcp, udp and mpls")
          .Range(llvm::SMRange(h.range.Start,
                               h.range.Start.getFromPointer(h.range.Start.getPointer() +
                                                            HeaderName(h.header).size())));
      return;
    }
    ir::Layer layer = LayerOf(h.header, inner);
    unsigned l = static_cast<unsigned>(layer);
    rb.rule.headers[l] |= ir::Bit(h.header);
    llvm::SMRange &first = rb.header_at[l][static_cast<unsigned>(h.header)];
    if (!first.isValid()) {
      first = h.range;
      Remember(rb, h.range);
      llvm::SMRange keyword(
          h.range.Start,
          h.range.Start.getFromPointer(h.range.Start.getPointer() + HeaderName(h.header).size()));
      rb.rule.header_uses.push_back({layer, h.header, keyword});
    }
    for (const ast::FieldMatch &f : h.fields) {
      ProcessField(h.header, f, layer, scope, rb);
    }
  }

  void ProcessField(Header header, const ast::FieldMatch &f, ir::Layer layer, const Scope *scope,
                    RuleBuilder &rb) {
    std::optional<Field> field = FindField(header, f.name);
    if (!field) {
      std::vector<llvm::StringRef> names;
      for (const FieldInfo &info : AllFields()) {
        if (info.header == header) {
          names.push_back(info.name);
        }
      }
      std::string message =
          "'" + HeaderName(header).str() + "' has no field '" + f.name.str() + "'";
      llvm::StringRef guess = SuggestName(f.name, names);
      if (!guess.empty()) {
        message += "; did you mean '" + guess.str() + "'?";
      } else {
        message += "; its fields are ";
        for (size_t i = 0; i < names.size(); ++i) {
          message += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i].str();
        }
      }
      Report(Kind::kUnknownField, f.name_range.Start, message).Range(f.name_range);
      return;
    }
    const FieldInfo &info = GetFieldInfo(*field);
    std::string what = FieldTitle(*field, layer);

    // One value per field, and never a field together with its container.
    auto key = std::make_pair(layer, *field);
    auto dup = rb.field_index.find(key);
    if (dup != rb.field_index.end()) {
      llvm::SMRange prev = rb.rule.matches[dup->second].range;
      Report(Kind::kDuplicateField, f.name_range.Start,
             what + " is matched twice in one rule; use a set to allow several values")
          .Range(f.name_range)
          .AddNote(prev.Start, "first match of " + what + " is here", prev);
      return;
    }
    for (auto &[k, index] : rb.field_index) {
      if (k.first != layer) {
        continue;
      }
      const FieldInfo &other = GetFieldInfo(k.second);
      if (other.container == *field || info.container == k.second) {
        llvm::SMRange prev = rb.rule.matches[index].range;
        Report(Kind::kOverlappingFields, f.name_range.Start,
               what + " overlaps " + FieldTitle(k.second, layer) +
                   ", which this rule already matches; match one or the other")
            .Range(f.name_range)
            .AddNote(prev.Start, FieldTitle(k.second, layer) + " is matched here", prev);
        return;
      }
    }

    std::optional<ast::Value> value = ResolveValue(f.value, scope);
    if (!value) {
      return;
    }
    ir::FieldMatch m;
    m.field = *field;
    m.layer = layer;
    m.range = llvm::SMRange(f.name_range.Start, f.value.range.End);
    if (value->form == ValueForm::kSet) {
      if (value->elements.empty()) {
        Report(Kind::kEmptySet, value->range.Start,
               "the set for " + what + " is empty, so the rule can never match")
            .Range(value->range);
        return;
      }
      m.kind = ir::MatchKind::kSet;
      bool ok = true;
      for (const ast::Value &e : value->elements) {
        std::optional<ir::SetElement> typed = TypeElement(e, info, what);
        if (!typed) {
          ok = false;
          continue;
        }
        auto same = llvm::find_if(m.elements, [&](const ir::SetElement &x) {
          return x.kind == typed->kind && x.value == typed->value && x.mask == typed->mask &&
                 x.lo == typed->lo && x.hi == typed->hi;
        });
        if (same != m.elements.end()) {
          Report(Kind::kDuplicateSetElement, e.range.Start,
                 "'" + Source(e.range) + "' appears twice in the set for " + what)
              .Range(e.range)
              .AddNote(same->range.Start, "first occurrence is here", same->range);
          continue;
        }
        m.elements.push_back(std::move(*typed));
      }
      if (!ok) {
        return;
      }
    } else {
      std::optional<ir::SetElement> typed = TypeElement(*value, info, what);
      if (!typed) {
        return;
      }
      m.kind = typed->kind;
      m.value = typed->value;
      m.mask = typed->mask;
      m.lo = typed->lo;
      m.hi = typed->hi;
    }
    rb.field_index[key] = rb.rule.matches.size();
    Remember(rb, m.range);
    rb.rule.matches.push_back(std::move(m));
  }

  /// Checks the headers of each layer against each other and against the
  /// prerequisites they imply (tcp/udp/gre/esp => IP protocol, ipv4/ipv6 =>
  /// ethertype, vxlan => UDP 4789, gre+mpls => GRE protocol 0x8847/0x8848,
  /// udp+mpls => UDP 6635).
  void CheckLayers(RuleBuilder &rb) {
    ir::Rule &r = rb.rule;
    HeaderSet tunnel = r.headers[static_cast<unsigned>(ir::Layer::kTunnel)];
    HeaderSet inner = r.headers[static_cast<unsigned>(ir::Layer::kInner)];
    if (inner != 0 && tunnel == 0) {
      Report(Kind::kInnerWithoutTunnel, rb.inner_at.Start,
             "'inner' headers need a tunnel in the same rule (vxlan, gre or mpls)")
          .Range(rb.inner_at);
    }
    for (ir::Layer layer : {ir::Layer::kOuter, ir::Layer::kInner}) {
      CheckLayer(rb, layer);
    }
    CheckTunnel(rb);
  }

  void Conflict(RuleBuilder &rb, ir::Layer layer, Header a, Header b, llvm::StringRef why) {
    unsigned l = static_cast<unsigned>(layer);
    llvm::SMRange ra = rb.header_at[l][static_cast<unsigned>(a)];
    llvm::SMRange rb_ = rb.header_at[l][static_cast<unsigned>(b)];
    llvm::SMRange later = ra.Start.getPointer() > rb_.Start.getPointer() ? ra : rb_;
    llvm::SMRange earlier = later.Start == ra.Start ? rb_ : ra;
    Header later_h = later.Start == ra.Start ? a : b;
    Header earlier_h = later_h == a ? b : a;
    Report(Kind::kConflictingHeaders, later.Start,
           "'" + HeaderName(later_h) + "' and '" + HeaderName(earlier_h) + "' " + why)
        .Range(later)
        .AddNote(earlier.Start, "'" + HeaderName(earlier_h) + "' is matched here", earlier);
  }

  const ir::FieldMatch *FindMatch(const ir::Rule &r, ir::Layer layer, Field f) const {
    for (const ir::FieldMatch &m : r.matches) {
      if (m.layer == layer && m.field == f) {
        return &m;
      }
    }
    return nullptr;
  }

  /// Reports a field match that excludes every value a header needs.
  void RequireValue(RuleBuilder &rb, ir::Layer layer, Field f,
                    std::initializer_list<uint64_t> allowed, llvm::StringRef because,
                    llvm::SMRange because_at) {
    const ir::FieldMatch *m = FindMatch(rb.rule, layer, f);
    if (m == nullptr) {
      return;
    }
    for (uint64_t v : allowed) {
      if (Admits(*m, v)) {
        return;
      }
    }
    std::string values;
    for (uint64_t v : allowed) {
      values += (values.empty() ? "" : " or ") + FormatInt(f, llvm::APInt(GetFieldInfo(f).bits, v));
    }
    Report(Kind::kConflictingProtocol, m->range.Start,
           "'" + Source(m->range) + "' contradicts " + because + ", which needs " +
               FieldTitle(f, layer) + " " + values + "; the rule can never match")
        .Range(m->range)
        .AddNote(because_at.Start, because.str() + " is here", because_at);
  }

  void CheckLayer(RuleBuilder &rb, ir::Layer layer) {
    unsigned l = static_cast<unsigned>(layer);
    HeaderSet h = rb.rule.headers[l];
    HeaderSet tunnel = rb.rule.headers[static_cast<unsigned>(ir::Layer::kTunnel)];
    auto has = [&](Header x) { return (h & ir::Bit(x)) != 0; };
    auto at = [&](Header x) { return rb.header_at[l][static_cast<unsigned>(x)]; };
    if (has(Header::kIpv4) && has(Header::kIpv6)) {
      Conflict(rb, layer, Header::kIpv4, Header::kIpv6, "cannot both be the network header");
      return;
    }
    if (has(Header::kTcp) && has(Header::kUdp)) {
      Conflict(rb, layer, Header::kTcp, Header::kUdp, "cannot both be the transport header");
      return;
    }
    for (Header l4 : {Header::kTcp, Header::kUdp}) {
      if (has(Header::kEsp) && has(l4)) {
        Conflict(rb, layer, Header::kEsp, l4, "cannot both follow the IP header");
        return;
      }
    }
    bool outer = layer == ir::Layer::kOuter;
    bool vxlan = outer && (tunnel & ir::Bit(Header::kVxlan)) != 0;
    bool gre = outer && (tunnel & ir::Bit(Header::kGre)) != 0;
    llvm::SMRange vxlan_at = rb.header_at[static_cast<unsigned>(ir::Layer::kTunnel)]
                                         [static_cast<unsigned>(Header::kVxlan)];
    llvm::SMRange gre_at = rb.header_at[static_cast<unsigned>(ir::Layer::kTunnel)]
                                       [static_cast<unsigned>(Header::kGre)];
    if (vxlan && (has(Header::kTcp) || has(Header::kEsp))) {
      Header other = has(Header::kTcp) ? Header::kTcp : Header::kEsp;
      Report(Kind::kConflictingHeaders, vxlan_at.Start,
             "'vxlan' runs over UDP, but this rule matches '" + HeaderName(other) + "'")
          .Range(vxlan_at)
          .AddNote(at(other).Start, "'" + HeaderName(other) + "' is matched here", at(other));
      return;
    }
    if (gre && (has(Header::kTcp) || has(Header::kUdp) || has(Header::kEsp))) {
      Header other = has(Header::kTcp)   ? Header::kTcp
                     : has(Header::kUdp) ? Header::kUdp
                                         : Header::kEsp;
      Report(Kind::kConflictingHeaders, gre_at.Start,
             "'gre' is IP protocol 47, but this rule matches '" + HeaderName(other) + "'")
          .Range(gre_at)
          .AddNote(at(other).Start, "'" + HeaderName(other) + "' is matched here", at(other));
      return;
    }
    // The IP protocol the rest of the layer implies.
    struct Implied {
      Header header;
      uint64_t proto;
      bool present;
      llvm::SMRange where;
    };
    const Implied implied[] = {
        {Header::kTcp, 6, has(Header::kTcp), at(Header::kTcp)},
        {Header::kUdp, 17, has(Header::kUdp), at(Header::kUdp)},
        {Header::kEsp, 50, has(Header::kEsp), at(Header::kEsp)},
        {Header::kVxlan, 17, vxlan && !has(Header::kUdp), vxlan_at},
        {Header::kGre, 47, gre, gre_at},
    };
    for (const Implied &i : implied) {
      if (!i.present) {
        continue;
      }
      std::string because = "'" + HeaderName(i.header).str() + "'";
      RequireValue(rb, layer, Field::kIpv4Proto, {i.proto}, because, i.where);
      RequireValue(rb, layer, Field::kIpv6NextHdr, {i.proto}, because, i.where);
    }
    if (has(Header::kIpv4)) {
      RequireValue(rb, layer, Field::kEthType, {0x0800}, "'ipv4'", at(Header::kIpv4));
    } else if (has(Header::kIpv6)) {
      RequireValue(rb, layer, Field::kEthType, {0x86DD}, "'ipv6'", at(Header::kIpv6));
    } else {
      // Anything above IP needs an IP ethertype, whichever version.
      for (const Implied &i : implied) {
        if (i.present) {
          RequireValue(rb, layer, Field::kEthType, {0x0800, 0x86DD},
                       "'" + HeaderName(i.header).str() + "'", i.where);
          break;
        }
      }
    }
    if (vxlan) {
      RequireValue(rb, layer, Field::kUdpDst, {4789}, "'vxlan'", vxlan_at);
    }
  }

  void CheckTunnel(RuleBuilder &rb) {
    unsigned t = static_cast<unsigned>(ir::Layer::kTunnel);
    HeaderSet tunnel = rb.rule.headers[t];
    HeaderSet outer = rb.rule.headers[static_cast<unsigned>(ir::Layer::kOuter)];
    auto at = [&](Header x) { return rb.header_at[t][static_cast<unsigned>(x)]; };
    bool vxlan = tunnel & ir::Bit(Header::kVxlan);
    bool gre = tunnel & ir::Bit(Header::kGre);
    bool mpls = tunnel & ir::Bit(Header::kMpls);
    if (vxlan && gre) {
      Conflict(rb, ir::Layer::kTunnel, Header::kVxlan, Header::kGre,
               "cannot both be the tunnel of one packet");
      return;
    }
    if (mpls && vxlan) {
      Conflict(rb, ir::Layer::kTunnel, Header::kVxlan, Header::kMpls,
               "cannot both be the tunnel of one packet");
      return;
    }
    if (mpls && gre) {
      RequireValue(rb, ir::Layer::kTunnel, Field::kGreProtocol, {0x8847, 0x8848}, "'mpls'",
                   at(Header::kMpls));
    }
    if (mpls && !gre && (outer & ir::Bit(Header::kUdp))) {
      // MPLS over UDP is UDP port 6635 (RFC 7510).
      RequireValue(rb, ir::Layer::kOuter, Field::kUdpDst, {6635}, "'mpls'", at(Header::kMpls));
    }
    // verbs-facts 3.3: an MPLS spec follows UDP (MPLS over UDP), GRE, or the
    // Ethernet header; MPLS right after an IP header has no spec order.
    bool over_l3_only = (outer & (ir::Bit(Header::kIpv4) | ir::Bit(Header::kIpv6))) != 0 &&
                        (outer & ir::Bit(Header::kUdp)) == 0;
    if (mpls && !gre && over_l3_only) {
      llvm::SMRange where = at(Header::kMpls);
      Report(Kind::kConflictingHeaders, where.Start,
             "'mpls' must follow 'udp' (MPLS over UDP), 'gre' or 'eth'; this rule puts it "
             "right after the IP header")
          .Range(where);
    }
    HeaderSet over_ip = ir::Bit(Header::kIpv4) | ir::Bit(Header::kIpv6) | ir::Bit(Header::kUdp) |
                        ir::Bit(Header::kTcp) | ir::Bit(Header::kEsp);
    if (mpls && !gre && !vxlan && (outer & over_ip) == 0) {
      // MPLS directly over Ethernet.
      RequireValue(rb, ir::Layer::kOuter, Field::kEthType, {0x8847, 0x8848}, "'mpls'",
                   at(Header::kMpls));
    }
  }

  // --- Actions --------------------------------------------------------------

  void CheckActions(const ast::PortBlock &block, const ast::Rule &r, ir::Rule &rule) {
    const ast::Action *seen[ast::kNumActionKinds] = {};
    bool egress = block.direction == ast::Direction::kEgress;
    for (const ast::Action &a : r.actions) {
      unsigned k = static_cast<unsigned>(a.kind);
      if (seen[k] != nullptr) {
        Report(Kind::kDuplicateAction, a.range.Start,
               "'" + ast::ActionKeyword(a.kind) + "' appears twice in one rule" +
                   (a.kind == ast::ActionKind::kCount ? "; a flow has one counter" : ""))
            .Range(a.range)
            .AddNote(seen[k]->range.Start, "first one is here", seen[k]->range);
        continue;
      }
      seen[k] = &a;
      if (egress && (a.kind == ast::ActionKind::kSteer || a.kind == ast::ActionKind::kTag)) {
        Report(Kind::kEgressAction, a.range.Start,
               "'" + ast::ActionKeyword(a.kind) +
                   "' is not possible on egress; egress rules can allow, drop, count "
                   "and apply handles")
            .Range(a.range);
        continue;
      }
      if (!egress && a.kind == ast::ActionKind::kAllow) {
        Report(Kind::kIngressAllow, a.range.Start,
               "'allow' is for egress rules; an ingress rule delivers packets to a queue with "
               "'steer'")
            .Range(a.range);
        continue;
      }
      std::optional<ir::Action> action = ResolveAction(a);
      if (action) {
        rule.actions.push_back(*action);
      }
    }
    const ast::Action *drop = seen[static_cast<unsigned>(ast::ActionKind::kDrop)];
    const ast::Action *steer = seen[static_cast<unsigned>(ast::ActionKind::kSteer)];
    const ast::Action *tag = seen[static_cast<unsigned>(ast::ActionKind::kTag)];
    const ast::Action *allow = seen[static_cast<unsigned>(ast::ActionKind::kAllow)];
    if (drop != nullptr && r.kind == ast::RuleKind::kSniffer) {
      Report(Kind::kDropConflict, drop->range.Start,
             "a 'sniff' rule only copies packets; 'drop' has no meaning there")
          .Range(drop->range);
    }
    if (drop != nullptr) {
      for (const ast::Action *other : {steer, tag}) {
        if (other == nullptr || egress) {
          continue;
        }
        Report(Kind::kDropConflict, other->range.Start,
               "'" + ast::ActionKeyword(other->kind) +
                   "' has no effect on packets that the rule drops")
            .Range(other->range)
            .AddNote(drop->range.Start, "'drop' is here", drop->range);
      }
      if (allow != nullptr && egress) {
        Report(Kind::kDropConflict, allow->range.Start,
               "'allow' and 'drop' contradict each other; a rule either lets packets out or "
               "drops them")
            .Range(allow->range)
            .AddNote(drop->range.Start, "'drop' is here", drop->range);
      }
      if (r.pass) {
        Report(Kind::kInvalidRuleOption, r.pass_range.Start,
               "'pass' copies packets and lets later rules see them; a rule that drops "
               "cannot pass")
            .Range(r.pass_range)
            .AddNote(drop->range.Start, "'drop' is here", drop->range);
      }
    }
    if (!egress && drop == nullptr && steer == nullptr && allow == nullptr) {
      llvm::SMRange where = r.actions.empty() ? r.keyword_range : r.actions.front().range;
      Report(Kind::kMissingSteer, where.Start,
             r.kind == ast::RuleKind::kSniffer
                 ? "a 'sniff' rule copies packets to a queue but names none; add 'steer QUEUE'"
                 : "this ingress rule delivers packets but names no queue; add 'steer QUEUE' or "
                   "'drop'")
          .Range(where);
    }
  }

  std::optional<ir::Action> ResolveAction(const ast::Action &a) {
    ir::Action out;
    out.kind = a.kind;
    out.range = a.range;
    switch (a.kind) {
    case ast::ActionKind::kDrop:
    case ast::ActionKind::kAllow:
      return out;
    case ast::ActionKind::kTag: {
      std::optional<ast::Scalar> s = ResolveScalar(a.tag, nullptr, "a tag");
      if (!s) {
        return std::nullopt;
      }
      auto bits = ToBits(*s, ValueType::kInt, 24, "a tag", false);
      if (!bits) {
        return std::nullopt;
      }
      out.operand = static_cast<uint32_t>(bits->getZExtValue());
      return out;
    }
    case ast::ActionKind::kSteer:
    case ast::ActionKind::kCount:
    case ast::ActionKind::kHandle: {
      SymbolKind want = a.kind == ast::ActionKind::kSteer   ? SymbolKind::kQueue
                        : a.kind == ast::ActionKind::kCount ? SymbolKind::kCounter
                                                            : SymbolKind::kHandle;
      const Symbol *s = Lookup(a.name, a.name_range, {want});
      if (s == nullptr) {
        return std::nullopt;
      }
      if (s->kind != want) {
        WrongKind(a.name, a.name_range, *s, SymbolNoun(want));
        return std::nullopt;
      }
      out.operand = s->object;
      return out;
    }
    }
    return std::nullopt;
  }

  struct ConstState {
    enum { kNew, kVisiting, kDone } status = kNew;
    std::optional<ast::Value> value;
  };

  /// Starts a diagnostic and notes each template use being expanded, so a
  /// problem in a template body points at the rule that used it.
  diag::Builder Report(Kind kind, llvm::SMLoc loc, const llvm::Twine &message) {
    diag::Builder b = diags_.Report(kind, loc, message);
    const UseChain *chain = &uses_;
    if (uses_.empty() && rule_ != nullptr) {
      auto found = rule_->chains.find(loc.getPointer());
      if (found != rule_->chains.end()) {
        chain = &found->second;
      }
    }
    for (auto it = chain->rbegin(); it != chain->rend(); ++it) {
      b.AddNote(it->second.Start, "in the use of template '" + it->first->name + "' here",
                it->second);
    }
    return b;
  }

  const Program &program_;
  const Options &options_;
  diag::Engine &diags_;
  /// Template uses being expanded, outermost first.
  UseChain uses_;
  /// Names defined more than once (FL3002 reported).
  llvm::StringSet<> redefined_;
  /// Templates on a cycle already reported.
  std::set<const ast::MatchDecl *> cyclic_;
  /// The rule being checked, for the template chains of its positions.
  RuleBuilder *rule_ = nullptr;
  ir::Policy policy_;
  llvm::StringMap<Symbol> globals_;
  std::map<const ast::ConstDecl *, ConstState> consts_;
  llvm::StringMap<llvm::SMRange> rule_names_;
  std::map<std::tuple<ast::Direction, uint64_t, ast::RuleKind>, llvm::SMRange> special_rules_;
  uint32_t next_order_ = 0;
};

} // namespace

ir::Policy Check(const Program &program, const Options &options, diag::Engine &diags) {
  return Checker(program, options, diags).Run();
}

} // namespace flowc::sema
