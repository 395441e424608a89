// The Flow abstract syntax tree: plain data with source ranges, built by
// compiler/parse and read by compiler/sema. No ANTLR type appears here.
#ifndef FLOWC_AST_AST_H
#define FLOWC_AST_AST_H

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/base/schema.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/raw_ostream.h"

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace flowc::ast {

/// The kind of a single literal or name.
enum class ScalarKind : uint8_t { kInteger, kMac, kIpv4, kIpv6, kName, kInvalid };
// kInvalid: a malformed literal, already diagnosed; later phases skip it.

/// One literal (already parsed into bits) or one name reference. Names point
/// into the source buffer, which the SourceMgr keeps alive.
struct Scalar {
  ScalarKind kind = ScalarKind::kInteger;
  llvm::SMRange range;
  /// kInteger: the value; kIpv4: the address in host order.
  uint64_t integer = 0;
  /// kMac: bytes 0..5; kIpv6: all 16, in wire order.
  std::array<uint8_t, 16> bytes{};
  /// kName: the identifier.
  llvm::StringRef name;
};

/// The shape of a value.
enum class ValueForm : uint8_t {
  kScalar, ///< `x`
  kPrefix, ///< `x/len`
  kRange,  ///< `lo..hi`
  kMask,   ///< `x mask m`
  kSet,    ///< `{ a, b/16, c..d }`, or `in { ... }` when `membership`
  kInName, ///< `in NAME`: membership in a named set
};

/// A value in a field match, a constant, a template argument or a set.
struct Value {
  ValueForm form = ValueForm::kScalar;
  llvm::SMRange range;
  /// The value, the range's lo, or the name after `in`.
  Scalar first;
  /// The range's hi or the mask.
  Scalar second;
  /// kPrefix: the length and where it is written.
  uint64_t prefix_len = 0;
  llvm::SMRange prefix_range;
  /// kSet: the elements, each of a non-set form.
  std::vector<Value> elements;
  /// Written with `in`.
  bool membership = false;
};

/// `dst 10.0.0.1` inside a header match.
struct FieldMatch {
  llvm::StringRef name;
  llvm::SMRange name_range;
  Value value;
};

/// `ipv4 src 1.2.3.4 dst 5.6.7.8`.
struct HeaderMatch {
  Header header = Header::kEth;
  llvm::SMRange range;
  std::vector<FieldMatch> fields;
};

enum class MatchItemKind : uint8_t { kHeader, kInner, kTemplate };

/// One comma-separated item of a match.
struct MatchItem {
  MatchItemKind kind = MatchItemKind::kHeader;
  llvm::SMRange range;
  /// kHeader: the header; kInner: each header inside the braces.
  std::vector<HeaderMatch> headers;
  /// kTemplate: the template's name and arguments.
  llvm::StringRef template_name;
  llvm::SMRange name_range;
  bool has_args = false;
  std::vector<Value> args;
};

/// The match of a rule or template: `any`, or a list of items.
struct MatchSpec {
  bool any = false;
  llvm::SMRange range;
  std::vector<MatchItem> items;
};

enum class ActionKind : uint8_t { kSteer, kTag, kDrop, kCount, kHandle, kAllow };
constexpr unsigned kNumActionKinds = 6;

/// One action after `->`.
struct Action {
  ActionKind kind = ActionKind::kDrop;
  llvm::SMRange range;
  /// kSteer, kCount, kHandle: the object's name.
  llvm::StringRef name;
  llvm::SMRange name_range;
  /// kTag: the tag value (a literal or a constant's name).
  Scalar tag;
};

enum class RuleKind : uint8_t { kNormal, kDefault, kMulticastDefault, kSniffer };

/// A rule, `default`, `default multicast` or `sniff` inside a port block.
struct Rule {
  RuleKind kind = RuleKind::kNormal;
  /// From the keyword to the semicolon.
  llvm::SMRange range;
  /// The rule's keyword(s), for diagnostics about the rule kind.
  llvm::SMRange keyword_range;
  llvm::StringRef name;
  llvm::SMRange name_range;
  bool has_priority = false;
  /// False when the priority was a malformed literal (already reported).
  bool priority_valid = true;
  uint64_t priority = 0;
  llvm::SMRange priority_range;
  bool pass = false;
  llvm::SMRange pass_range;
  MatchSpec match;
  std::vector<Action> actions;
};

enum class Direction : uint8_t { kIngress, kEgress };

/// `ingress port 1 { ... }`.
struct PortBlock {
  Direction direction = Direction::kIngress;
  llvm::SMRange range;
  uint64_t port = 0;
  llvm::SMRange port_range;
  /// False when the port number was a malformed literal (already reported).
  bool port_valid = true;
  std::vector<Rule> rules;
};

/// `import std.proto;` or `import "file.flow";`.
struct ImportDecl {
  llvm::SMRange range;
  /// True for a module path (`std.proto`), false for a string.
  bool is_module = true;
  /// The module path with dots, or the string's contents.
  std::string path;
  llvm::SMRange path_range;
};

/// `target mlx5;`.
struct TargetDecl {
  llvm::SMRange range;
  llvm::StringRef name;
  llvm::SMRange name_range;
};

/// `const name = value;`.
struct ConstDecl {
  llvm::SMRange range;
  llvm::StringRef name;
  llvm::SMRange name_range;
  Value value;
};

enum class ObjectKind : uint8_t { kQueue, kCounter, kHandle };

/// A name with the place it is written.
struct Name {
  llvm::StringRef text;
  llvm::SMRange range;
};

/// `queue a, b;`, `counter c;`, `handle h;`.
struct ObjectDecl {
  llvm::SMRange range;
  ObjectKind kind = ObjectKind::kQueue;
  std::vector<Name> names;
};

/// `match name(p1, p2) = items;`.
struct MatchDecl {
  llvm::SMRange range;
  llvm::StringRef name;
  llvm::SMRange name_range;
  bool has_params = false;
  std::vector<Name> params;
  MatchSpec spec;
};

/// What a top-level entry of a module is, in source order.
enum class DeclKind : uint8_t { kImport, kTarget, kConst, kObject, kMatch, kPortBlock };

/// One parsed `.flow` file.
struct Module {
  std::string path;
  unsigned buffer_id = 0;
  std::vector<ImportDecl> imports;
  std::vector<TargetDecl> targets;
  std::vector<ConstDecl> consts;
  std::vector<ObjectDecl> objects;
  std::vector<MatchDecl> templates;
  std::vector<PortBlock> port_blocks;
  /// Source order of all of the above: (kind, index into its vector).
  std::vector<std::pair<DeclKind, uint32_t>> order;
};

/// Names for dumps and messages.
llvm::StringRef ActionKeyword(ActionKind kind);
llvm::StringRef RuleKindName(RuleKind kind);
llvm::StringRef ObjectKeyword(ObjectKind kind);
llvm::StringRef DirectionKeyword(Direction direction);

/// Prints `module` as an indented tree with line:col ranges (--dump-ast).
void Dump(const Module &module, const llvm::SourceMgr &sources, llvm::raw_ostream &out);
/// Prints a value in Flow syntax.
void PrintValue(const Value &value, llvm::raw_ostream &out);
/// Prints a scalar in Flow syntax.
void PrintScalar(const Scalar &scalar, llvm::raw_ostream &out);

} // namespace flowc::ast

#endif // FLOWC_AST_AST_H
