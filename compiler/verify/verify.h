// Translation validation: a proof, on every build, that the emitted rules
// deliver to every packet exactly what the source policy delivers.
//
// The emitted rules are read back from their bytes (emit::Decode) and given
// the target's matching semantics; the source is read with its own semantics
// (first match per port and direction, `pass` copies, default rules take what
// no rule takes). Each rule is compared, as sets of packets in the exact
// model (analysis::PacketSpace), with the rules of the other side whose
// cubes meet it (found by an expand::OverlapIndex), so the answer holds for
// every packet, not for a sample, without sets the size of the policy.
#ifndef FLOWC_VERIFY_VERIFY_H
#define FLOWC_VERIFY_VERIFY_H

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compiler/emit/outputs.h"
#include "compiler/expand/expand.h"
#include "compiler/ir/ir.h"
#include "compiler/target/profile.h"
#include "llvm/ADT/ArrayRef.h"

namespace flowc::verify {

struct Options {
  /// The most BDD nodes the proof may use (about 20 bytes each).
  int max_nodes = 16 << 20;
  /// The most rules (source expansions plus emitted rules) the proof takes
  /// on; past it the build is not verified (0: no limit).
  uint64_t max_rules = 0;
  /// Called now and then with the rules compared so far and the total
  /// (each source expansion and emitted rule is compared once per pass).
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct Result {
  enum class Status {
    kProved,   ///< the emitted rules equal the source for every packet
    kFailed,   ///< they differ: `counterexample` and `detail` say where
    kUnproved, ///< the proof could not be completed: `detail` says why
  };
  Status status = Status::kUnproved;
  /// A packet the two treat differently, as `flowc trace --packet` reads it.
  std::string counterexample;
  /// What the source and the compiled rules do to it, or why no proof.
  std::string detail;
  /// Rules compared.
  uint32_t source_rules = 0, hardware_rules = 0;
};

/// The proof's reading of the source: its normal rules expanded on the
/// generic target (sets and ranges as prefix covers, nothing merged), in
/// policy order. It depends on the policy alone, so a build may make it on
/// another thread while it compiles.
struct Source {
  std::vector<expand::TernaryRule> rules;
  /// Not empty: the source could not be expanded, and why.
  std::string error;
  /// The rules' outcomes, and per port and direction an overlap index of
  /// the trapping ones: the source side of the comparison, which also
  /// depends on the policy alone.
  struct Prepared;
  std::unique_ptr<Prepared> prepared;

  Source();
  ~Source();
  Source(Source &&) noexcept;
  Source &operator=(Source &&) noexcept;
};
Source ExpandSource(const ir::Policy &policy);

/// Proves that `rules` (flowc build's output, in emission order) deliver to
/// every packet of every port and direction the same copies and the same
/// final outcome (queue and actions) as `policy` on `target`, whose source
/// side `source` is (ExpandSource(policy)).
///
/// Target semantics (verbs-facts §3.4, §3.3, §3.5): normal rules are looked
/// up in tables 2 x priority (DONT_TRAP) and 2 x priority + 1, lowest first;
/// one entry of a table takes a packet, so entries of one table that overlap
/// must agree; a DONT_TRAP entry copies and lets the packet go on; on mlx5 a
/// rule whose first spec matches only multicast is looked up after every
/// other. Default rules take what no normal rule takes and sniffer rules
/// copy everything; they must appear with the same port, direction and
/// outcome on both sides.
Result Verify(const ir::Policy &policy, const target::Target &target,
              llvm::ArrayRef<emit::OutputRule> rules, const Options &options, Source source);

/// The packets a decoded rule matches, as the NIC reads its specs: each
/// match spec requires its header, at the inner level when flagged INNER
/// (verbs-facts §1.5, §3.3), but an ESP, VXLAN_TUNNEL or MPLS spec with a
/// zero mask only where the rule matches what carries the header (§3.2);
/// the tunnel specs (VXLAN, GRE, an outer MPLS) describe the tunnel layer;
/// each field with a non-zero mask is compared under it. Sub-fields are
/// read through their containers. `index` becomes the result's `source`.
expand::TernaryRule MatchOf(const emit::HwRule &rule, uint32_t index);

} // namespace flowc::verify

#endif // FLOWC_VERIFY_VERIFY_H
