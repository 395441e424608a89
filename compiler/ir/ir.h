// The checked policy: ordered rules, each a match over outer, tunnel and inner
// layers plus actions, with every name resolved and every value typed. Later
// phases (expand, legalize, analyze, emit) read and transform this.
#ifndef FLOWC_IR_IR_H
#define FLOWC_IR_IR_H

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ast/ast.h"
#include "compiler/base/schema.h"
#include "llvm/ADT/APInt.h"
#include "llvm/Support/SMLoc.h"

namespace flowc::ir {

/// Where in the packet a match applies.
enum class Layer : uint8_t { kOuter, kTunnel, kInner };
inline constexpr unsigned kNumLayers = 3;

/// A set of headers, one bit per flowc::Header.
using HeaderSet = uint16_t;
inline HeaderSet Bit(Header h) { return static_cast<HeaderSet>(1u << static_cast<unsigned>(h)); }

/// How a field is constrained. Ranges and sets are kept as written here; the
/// expand phase turns them into ternary matches for a target.
enum class MatchKind : uint8_t { kTernary, kRange, kSet };

/// One element of a set: a ternary match or a range.
struct SetElement {
  MatchKind kind = MatchKind::kTernary;
  llvm::APInt value, mask; ///< kTernary
  llvm::APInt lo, hi;      ///< kRange
  llvm::SMRange range;
};

/// A constraint on one field of one layer. All APInts have the field's width
/// (schema.h) and hold the value in host bit order (bit 0 = least significant
/// bit of the field as written on the wire, most significant first).
struct FieldMatch {
  Field field = Field::kNone;
  Layer layer = Layer::kOuter;
  MatchKind kind = MatchKind::kTernary;
  llvm::APInt value, mask;           ///< kTernary: value & ~mask == 0
  llvm::APInt lo, hi;                ///< kRange: lo <= hi
  std::vector<SetElement> elements; ///< kSet: at least one
  llvm::SMRange range;
};

/// Typed indexes into Policy's object tables.
struct QueueId {
  uint32_t index;
};
struct CounterId {
  uint32_t index;
};
struct HandleId {
  uint32_t index;
};

/// One action. `operand` is the object index (steer, count, handle) or the
/// tag value (tag); unused for drop.
struct Action {
  ast::ActionKind kind = ast::ActionKind::kDrop;
  uint32_t operand = 0;
  llvm::SMRange range;
};

/// A queue, counter or handle declaration.
struct Object {
  std::string name;
  llvm::SMRange range;
};

/// Where a rule names a header, for messages about the header.
struct HeaderUse {
  Layer layer;
  Header header;
  llvm::SMRange range;
};

/// One checked rule.
struct Rule {
  std::string name; ///< empty for anonymous, default and sniff rules
  ast::RuleKind kind = ast::RuleKind::kNormal;
  ast::Direction direction = ast::Direction::kIngress;
  uint8_t port = 1;
  /// The `priority N` precedence class; 0 when not written.
  uint32_t priority_class = 0;
  /// Position among all rules of the program, in source (import) order.
  uint32_t source_order = 0;
  /// `pass`: IBV_FLOW_ATTR_FLAGS_DONT_TRAP.
  bool pass = false;
  /// Headers present per layer (`tcp` alone constrains only the protocol).
  HeaderSet headers[kNumLayers] = {0, 0, 0};
  /// The first place each present header is named.
  std::vector<HeaderUse> header_uses;
  /// Field constraints, sorted by (layer, field).
  std::vector<FieldMatch> matches;
  std::vector<Action> actions;
  llvm::SMRange range;
};

/// The checked program.
struct Policy {
  /// The target profile: --target, else the `target` declaration, else mlx5.
  std::string target;
  llvm::SMRange target_range;
  /// Neither --target nor a `target` declaration chose it.
  bool target_is_default = false;
  std::vector<Object> queues, counters, handles;
  /// Ordered by precedence: direction, port, normal rules before the special
  /// kinds, then priority class, then source order. For one port and
  /// direction, the first normal rule that matches a packet decides.
  std::vector<Rule> rules;
};

/// True if rule `a` takes precedence over rule `b`.
bool Precedes(const Rule &a, const Rule &b);

llvm::StringRef LayerName(Layer layer);

/// How messages name a rule: "rule 'web'", "the 'default' rule", "this rule"
/// (an anonymous normal rule, shown by the caret line).
std::string RuleTitle(const Rule &rule);

/// How messages name a field: "'ipv4 dst'", "'inner tcp dst'".
std::string FieldTitle(Field field, Layer layer);

/// A value of `field` as the dumps print it: a MAC, IPv4 or IPv6 address
/// in its usual form, an integer in hex ("0x12b7").
std::string FormatValue(Field field, const llvm::APInt &value);

/// Prints `policy` for --dump-ir.
void Dump(const Policy &policy, const llvm::SourceMgr &sources, llvm::raw_ostream &out);

} // namespace flowc::ir

#endif // FLOWC_IR_IR_H
