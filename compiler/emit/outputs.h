// The outputs of `flowc build`: the readable disassembly (--emit=text) and
// the JSON listing (--emit=json) of the hardware rules.
#ifndef FLOWC_EMIT_OUTPUTS_H
#define FLOWC_EMIT_OUTPUTS_H

#include <optional>
#include <string>
#include <vector>

#include "compiler/emit/buffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

namespace flowc::emit {

/// Where a hardware rule comes from.
struct SourceRef {
  std::string rule; ///< the rule's name, or "default", "sniff", ...
  std::string file;
  unsigned line = 0, column = 0;
};

/// One hardware rule with its symbols, ready to print or write.
struct OutputRule {
  HwRule rule;
  std::vector<uint8_t> bytes;
  bool egress = false;
  /// The queue the rule is created on, if any: its index and name.
  std::optional<uint32_t> queue_index;
  std::optional<std::string> queue;
  /// DONT_TRAP from a `pass` rule.
  bool pass = false;
  /// For each spec, the counter or handle it binds ("" for other specs).
  std::vector<std::string> bindings;
  SourceRef source;
};

/// A compiled policy as the outputs see it.
struct OutputPolicy {
  std::string compiler; ///< "flowc 0.1.0"
  std::string target;   ///< "mlx5"
  std::string caps;     ///< capability changes ("-sniffer"), may be empty
  std::string input;    ///< the policy file
  std::vector<std::string> queues, counters, handles;
  std::vector<OutputRule> rules;
};

/// One block per hardware rule, one line per spec with each matched field's
/// value/mask, and the source rule.
void WriteText(const OutputPolicy &policy, llvm::raw_ostream &out);

/// Each hardware rule: priority, kind, flags, port, decoded specs, the exact
/// bytes in hex, symbols and source location.
void WriteJson(const OutputPolicy &policy, llvm::raw_ostream &out);

/// The matched fields of a spec as "name value/mask" pairs, in spec order.
std::vector<std::pair<std::string, std::string>> DescribeSpec(const HwSpec &spec);

} // namespace flowc::emit

#endif // FLOWC_EMIT_OUTPUTS_H
