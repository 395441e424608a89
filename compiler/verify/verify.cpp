#include "compiler/verify/verify.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compiler/analysis/packet_space.h"
#include "compiler/base/parallel.h"
#include "compiler/emit/buffer.h"
#include "compiler/expand/expand.h"
#include "compiler/expand/overlap_index.h"
#include "compiler/target/tables.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace flowc::verify {
namespace {

using analysis::Packet;
using analysis::PacketSpace;
using emit::SpecKind;

/// What a rule does to a packet it takes or copies: its actions as (kind,
/// operand), sorted. `allow` is left out: an egress rule that does not drop
/// allows (verbs-facts §3.6), with or without the word.
using Outcome = std::vector<std::pair<int, uint32_t>>;

/// One port and direction: the rules that see the same packets.
using GroupKey = std::pair<int, uint8_t>;

bool Empty(const bdd &b) {
  return b == bddfalse;
}

bool HasDrop(const Outcome &o) {
  return llvm::is_contained(o, std::make_pair(static_cast<int>(ast::ActionKind::kDrop), 0u));
}

/// A DONT_TRAP table (2 x priority), as opposed to a trapping one or mlx5's
/// multicast priority.
bool IsDontTrapTable(uint64_t table) {
  return (table & 1) == 0 && table != target::kMulticastTable;
}

Outcome SourceOutcome(const ir::Rule &r) {
  Outcome o;
  for (const ir::Action &a : r.actions) {
    if (a.kind != ast::ActionKind::kAllow) {
      o.emplace_back(static_cast<int>(a.kind), a.operand);
    }
  }
  llvm::sort(o);
  return o;
}

std::string DescribeOutcome(const ir::Policy &policy, const Outcome &o) {
  if (o.empty()) {
    return "no action";
  }
  std::string out;
  for (const auto &[kind, operand] : o) {
    auto k = static_cast<ast::ActionKind>(kind);
    out += (out.empty() ? "" : ", ") + ast::ActionKeyword(k).str();
    switch (k) {
    case ast::ActionKind::kSteer:
      out += " " + (operand < policy.queues.size() ? policy.queues[operand].name : "?");
      break;
    case ast::ActionKind::kCount:
      out += " " + (operand < policy.counters.size() ? policy.counters[operand].name : "?");
      break;
    case ast::ActionKind::kHandle:
      out += " " + (operand < policy.handles.size() ? policy.handles[operand].name : "?");
      break;
    case ast::ActionKind::kTag:
      out += " " + std::to_string(operand);
      break;
    default:
      break;
    }
  }
  return out;
}

std::optional<Header> HeaderOfSpec(SpecKind kind) {
  switch (kind) {
  case SpecKind::kEth:
    return Header::kEth;
  case SpecKind::kIpv4:
  case SpecKind::kIpv4Ext:
    return Header::kIpv4;
  case SpecKind::kIpv6:
    return Header::kIpv6;
  case SpecKind::kEsp:
    return Header::kEsp;
  case SpecKind::kTcp:
    return Header::kTcp;
  case SpecKind::kUdp:
    return Header::kUdp;
  case SpecKind::kVxlanTunnel:
    return Header::kVxlan;
  case SpecKind::kGre:
    return Header::kGre;
  case SpecKind::kMpls:
    return Header::kMpls;
  default:
    return std::nullopt; // an action spec
  }
}

/// The copies a packet gets, per outcome, as threshold sets: `at_least[i]`
/// holds the packets that get at least i + 1 copies with that outcome.
struct Copies {
  std::map<Outcome, std::vector<bdd>> at_least;

  void Add(const Outcome &o, const bdd &packets) {
    std::vector<bdd> &levels = at_least[o];
    if (Empty(packets)) {
      return;
    }
    levels.push_back(bddfalse);
    for (size_t i = levels.size() - 1; i > 0; --i) {
      levels[i] |= levels[i - 1] & packets;
    }
    levels[0] |= packets;
    while (!levels.empty() && Empty(levels.back())) {
      levels.pop_back();
    }
  }
};

/// One rule of a group, source or compiled, for the local comparison.
struct Entry {
  size_t rule;            ///< all_ index
  const Outcome *outcome; ///< what it does to a packet it takes or copies
  uint32_t outcome_id;    ///< equal for equal outcomes
  uint64_t table = 0;     ///< compiled: its lookup table
  bool stops = false;     ///< source: trapping; compiled: takes the packet
};

/// The rules of one side of a group, with an index of those that take
/// packets (ids: places in `entries`).
struct Side {
  std::vector<Entry> entries;
  expand::OverlapIndex stops;
  /// How many entries, by place, have been offered to `stops`.
  uint32_t inserted = 0;
  /// Adds the entries before place `end` that take packets to `stops`,
  /// in order, each with its `key` (`rules`: all_).
  void InsertStops(size_t end, const std::vector<expand::TernaryRule> &rules,
                   const std::vector<uint32_t> &key) {
    for (; inserted < std::min(end, entries.size()); ++inserted) {
      if (entries[inserted].stops) {
        stops.Insert(inserted, rules[entries[inserted].rule], key[inserted]);
      }
    }
  }
  /// Calls `fn` with the places below `below` of the entries that take
  /// packets and may share one with `rule`, in order.
  template <typename Fn>
  void ForStops(const expand::TernaryRule &rule, const PacketSpace::Literals &literals,
                const PacketSpace &space, uint32_t below, Fn &&fn) const {
    std::vector<uint32_t> found;
    stops.Query(
        rule,
        [&](uint32_t id) {
          if (PacketSpace::MayOverlap(literals, space.CubeOfRule(entries[id].rule))) {
            found.push_back(id);
          }
        },
        below);
    llvm::sort(found);
    for (uint32_t id : found) {
      fn(id);
    }
  }
  /// Whether an entry before place `before` that takes packets contains
  /// `cube`; if so, `cover` is set to its place. Only the entries that
  /// hold one packet of the cube can, so a point query finds them.
  bool CoveredBefore(size_t before, const PacketSpace::Literals &cube, const PacketSpace &space,
                     uint32_t &cover) const {
    bool covered = false;
    space.QueryPoint(
        stops, space.CornerOf(cube),
        [&](uint32_t j) {
          if (!covered && PacketSpace::CubeContains(space.CubeOfRule(entries[j].rule), cube)) {
            covered = true;
            cover = j;
          }
        },
        static_cast<uint32_t>(before));
    return covered;
  }
  /// The rules (all_ indexes) of the entries before place `before` that
  /// take packets and may share one with `rule`; `contained` says whether
  /// one of them contains it (the list stops there: nothing is left).
  std::vector<size_t> Before(size_t before, const expand::TernaryRule &rule,
                             const PacketSpace::Literals &literals, const PacketSpace &space,
                             bool &contained) const {
    std::vector<size_t> out;
    contained = false;
    ForStops(rule, literals, space, static_cast<uint32_t>(before), [&](uint32_t j) {
      if (!contained) {
        out.push_back(entries[j].rule);
        contained = PacketSpace::CubeContains(space.CubeOfRule(entries[j].rule), literals);
      }
    });
    return out;
  }
};

/// One emitted rule, read back.
struct Emitted {
  emit::HwRule rule;
  Outcome outcome;
  GroupKey group;
  bool dont_trap = false;
  /// Its lookup table: 2 x priority + (DONT_TRAP ? 0 : 1), or after all of
  /// them for mlx5's multicast priority.
  uint64_t table = 0;
};

} // namespace

/// The source side of the comparison (see Source::prepared).
struct Source::Prepared {
  /// SourceOutcome() of each policy rule.
  std::vector<Outcome> outcomes;
  /// Entry::outcome_id by outcome; Verify() numbers the compiled rules'
  /// outcomes on from these.
  std::map<Outcome, uint32_t> ids;
  /// Per port and direction, an entry for each of the source's rules there,
  /// in policy order, the trapping ones in `stops`.
  std::map<GroupKey, Side> groups;
};

Source::Source() = default;
Source::~Source() = default;
Source::Source(Source &&) noexcept = default;
Source &Source::operator=(Source &&) noexcept = default;

namespace {

/// Fills `source.prepared` for `source.rules`.
void Prepare(const ir::Policy &policy, Source &source) {
  auto prepared = std::make_unique<Source::Prepared>();
  prepared->outcomes.reserve(policy.rules.size());
  for (const ir::Rule &r : policy.rules) {
    prepared->outcomes.push_back(SourceOutcome(r));
  }
  Side *side = nullptr;
  GroupKey last;
  for (size_t i = 0; i < source.rules.size(); ++i) {
    const ir::Rule &r = policy.rules[source.rules[i].source];
    GroupKey group{static_cast<int>(r.direction), r.port};
    if (side == nullptr || group != last) {
      side = &prepared->groups[group];
      last = group;
    }
    const Outcome &o = prepared->outcomes[source.rules[i].source];
    uint32_t id =
        prepared->ids.try_emplace(o, static_cast<uint32_t>(prepared->ids.size())).first->second;
    side->entries.push_back({i, &o, id, 0, !r.pass});
  }
  for (auto &[group, side] : prepared->groups) {
    for (const Entry &e : side.entries) {
      side.stops.Plan(source.rules[e.rule]);
    }
    for (size_t id = 0; id < side.entries.size(); ++id) {
      if (side.entries[id].stops) {
        side.stops.Insert(static_cast<uint32_t>(id), source.rules[side.entries[id].rule]);
      }
    }
  }
  source.prepared = std::move(prepared);
}

class Verifier {
public:
  Verifier(const ir::Policy &policy, const target::Target &target,
           llvm::ArrayRef<emit::OutputRule> rules, const Options &options, Source source)
      : policy_(policy), target_(target), out_(rules), options_(options),
        source_(std::move(source)) {}

  Result Run() {
    Result result;
    if (!ReadBack(result) || !TakeSource(result)) {
      return result;
    }
    result.source_rules = static_cast<uint32_t>(source_count_);
    result.hardware_rules = static_cast<uint32_t>(emitted_.size());
    if (!CompareSpecialRules(result)) {
      return result;
    }
    if (options_.max_rules != 0 && all_.size() > options_.max_rules) {
      result.status = Result::Status::kUnproved;
      result.detail = llvm::formatv("{0} rules to compare, over the limit of {1}", all_.size(),
                                    options_.max_rules);
      return result;
    }
    PacketSpace space(all_, options_.max_nodes);
    space_ = &space;
    std::map<GroupKey, bool> groups;
    for (const auto &[group, side] : source_.prepared->groups) {
      groups[group] = true;
    }
    for (const Emitted &e : emitted_) {
      if (e.rule.type == emit::AttrType::kNormal) {
        groups[e.group] = true;
      }
    }
    result.status = Result::Status::kProved;
    // Checks 1 and 2 visit each compiled entry twice and each source rule once.
    progress_total_ = source_count_ + 2 * (all_.size() - source_count_);
    for (const auto &[group, unused] : groups) {
      if (!CompareGroup(group, result) || result.status != Result::Status::kProved) {
        break;
      }
    }
    if (PacketSpace::Overflowed()) {
      result.status = Result::Status::kUnproved;
      result.detail = llvm::formatv("the proof needs more than {0} BDD nodes", options_.max_nodes);
    }
    if (options_.progress && result.status == Result::Status::kProved) {
      options_.progress(progress_total_, progress_total_);
    }
    space_ = nullptr;
    return result;
  }

private:
  /// Decodes every emitted rule from its bytes, the two halves on two
  /// threads; a rule that does not decode is reported (the first one).
  bool ReadBack(Result &result) {
    emitted_.resize(out_.size());
    // Per half: the first rule that does not decode, and why.
    struct Failure {
      size_t index = SIZE_MAX;
      std::string why;
    };
    auto decode = [&](size_t lo, size_t hi, Failure &failure) {
      for (size_t i = lo; i < hi; ++i) {
        if (!ReadBackRule(out_[i], emitted_[i], failure.why)) {
          failure.index = i;
          return;
        }
      }
    };
    Failure low, high;
    size_t half = out_.size() / 2;
    RunBoth([&] { decode(0, half, low); }, [&] { decode(half, out_.size(), high); },
            out_.size() >= kParallelFrom);
    const Failure &first = low.index != SIZE_MAX ? low : high;
    if (first.index != SIZE_MAX) {
      result.status = Result::Status::kFailed;
      result.detail =
          llvm::formatv("hardware rule {0} does not decode: {1}", first.index, first.why);
      return false;
    }
    return true;
  }

  /// One emitted rule read back into `e`; false, with `why`, if its bytes
  /// do not decode. Reads only the policy and the target.
  bool ReadBackRule(const emit::OutputRule &o, Emitted &e, std::string &why) const {
    llvm::Expected<emit::HwRule> back = emit::Decode(o.bytes);
    if (!back) {
      why = llvm::toString(back.takeError());
      return false;
    }
    e.rule = std::move(*back);
    e.dont_trap = (e.rule.flags & emit::kFlagDontTrap) != 0;
    int direction =
        static_cast<int>((e.rule.flags & emit::kFlagEgress) != 0 ? ast::Direction::kEgress
                                                                 : ast::Direction::kIngress);
    e.group = {direction, e.rule.port};
    if (o.queue_index) {
      e.outcome.emplace_back(static_cast<int>(ast::ActionKind::kSteer), *o.queue_index);
    }
    for (size_t s = 0; s < e.rule.specs.size(); ++s) {
      const emit::HwSpec &spec = e.rule.specs[s];
      llvm::StringRef binding = s < o.bindings.size() ? llvm::StringRef(o.bindings[s]) : "";
      auto index_of = [&](const std::vector<ir::Object> &objects) -> uint32_t {
        for (size_t k = 0; k < objects.size(); ++k) {
          if (objects[k].name == binding) {
            return static_cast<uint32_t>(k);
          }
        }
        return UINT32_MAX;
      };
      switch (spec.kind) {
      case SpecKind::kActionTag:
        e.outcome.emplace_back(static_cast<int>(ast::ActionKind::kTag), spec.tag);
        break;
      case SpecKind::kActionDrop:
        e.outcome.emplace_back(static_cast<int>(ast::ActionKind::kDrop), 0);
        break;
      case SpecKind::kActionCount:
        e.outcome.emplace_back(static_cast<int>(ast::ActionKind::kCount),
                               index_of(policy_.counters));
        break;
      case SpecKind::kActionHandle:
        e.outcome.emplace_back(static_cast<int>(ast::ActionKind::kHandle),
                               index_of(policy_.handles));
        break;
      default:
        break;
      }
    }
    llvm::sort(e.outcome);
    e.table = e.rule.type == emit::AttrType::kNormal
                  ? target::TableOf(e.rule, target_.profile->multicast_first_spec)
                  : 2ull * e.rule.priority + (e.dont_trap ? 0 : 1);
    return true;
  }

  /// The source rules (ExpandSource()), then each emitted normal rule read
  /// back.
  bool TakeSource(Result &result) {
    if (!source_.error.empty()) {
      result.detail = source_.error;
      return false;
    }
    if (!source_.prepared) {
      Prepare(policy_, source_);
    }
    outcome_ids_ = std::move(source_.prepared->ids);
    all_ = std::move(source_.rules);
    source_count_ = all_.size();
    std::vector<uint32_t> normal;
    for (size_t i = 0; i < emitted_.size(); ++i) {
      if (emitted_[i].rule.type == emit::AttrType::kNormal) {
        normal.push_back(static_cast<uint32_t>(i));
      }
    }
    all_.resize(source_count_ + normal.size());
    auto matches = [&](size_t lo, size_t hi) {
      for (size_t n = lo; n < hi; ++n) {
        all_[source_count_ + n] = MatchOf(emitted_[normal[n]].rule, normal[n]);
      }
    };
    size_t half = normal.size() / 2;
    RunBoth([&] { matches(0, half); }, [&] { matches(half, normal.size()); },
            normal.size() >= kParallelFrom);
    return true;
  }

  /// Default and sniffer rules have no match of their own on the NIC
  /// (verbs-facts §3.5): each must be emitted once, with its port,
  /// direction and outcome.
  bool CompareSpecialRules(Result &result) {
    using Key = std::tuple<uint32_t, GroupKey, Outcome>;
    std::map<Key, int> count;
    for (const ir::Rule &r : policy_.rules) {
      if (r.kind == ast::RuleKind::kNormal) {
        continue;
      }
      emit::AttrType type = r.kind == ast::RuleKind::kDefault ? emit::AttrType::kAllDefault
                            : r.kind == ast::RuleKind::kMulticastDefault
                                ? emit::AttrType::kMcDefault
                                : emit::AttrType::kSniffer;
      ++count[{
          static_cast<uint32_t>(type), {static_cast<int>(r.direction), r.port}, SourceOutcome(r)}];
    }
    for (const Emitted &e : emitted_) {
      if (e.rule.type != emit::AttrType::kNormal) {
        --count[{static_cast<uint32_t>(e.rule.type), e.group, e.outcome}];
      }
    }
    for (const auto &[key, n] : count) {
      if (n != 0) {
        const auto &[type, group, outcome] = key;
        static const char *const kName[] = {"normal", "default", "default multicast", "sniff"};
        result.status = Result::Status::kFailed;
        result.detail = llvm::formatv(
            "the source has {0} more '{1}' rule(s) ({2}) on port {3} {4} than the compiled rules",
            n, kName[type & 3], DescribeOutcome(policy_, outcome), group.second,
            group.first == static_cast<int>(ast::Direction::kEgress) ? "egress" : "ingress");
        return false;
      }
    }
    return true;
  }

  /// Cubes by value, for finding a rule's copy on the other side.
  struct CubeHash {
    size_t operator()(const PacketSpace::Literals *cube) const {
      uint64_t h = cube->size();
      for (const PacketSpace::CubeWord &w : *cube) {
        h = (h ^ w.word ^ w.care * 0x9e3779b97f4a7c15ull ^ w.value) * 0xbf58476d1ce4e5b9ull;
      }
      return static_cast<size_t>(h ^ (h >> 31));
    }
  };
  struct CubeEq {
    bool operator()(const PacketSpace::Literals *a, const PacketSpace::Literals *b) const {
      return *a == *b;
    }
  };

  template <typename T>
  using CubeMap = std::unordered_map<const PacketSpace::Literals *, T, CubeHash, CubeEq>;

  /// Check 2 (CompareGroup) for a source rule r at place `id` of `src` and
  /// a compiled entry j that takes packets: whether j may be the first to
  /// take a packet whose first source rule is r with another outcome (it
  /// has another outcome, may meet r, and its o(j), `origin`, is not before
  /// r).
  bool MayPair(const Side &src, size_t id, const Entry &j, uint32_t origin) const {
    const Entry &r = src.entries[id];
    return j.outcome_id != r.outcome_id && (origin == UINT32_MAX || origin >= id) &&
           PacketSpace::MayOverlap(Lit(r.rule), Lit(j.rule));
  }
  /// Whether compiled entry j takes every packet of source entry r, with
  /// its outcome: a candidate for h(r).
  bool Takes(const Entry &r, const Entry &j) const {
    return j.outcome_id == r.outcome_id && PacketSpace::MayOverlap(Lit(r.rule), Lit(j.rule)) &&
           PacketSpace::CubeContains(Lit(j.rule), Lit(r.rule));
  }

  /// Check 1's candidates (CompareGroup()): the pairs (id, j), j < id, of
  /// compiled entries of one table with different outcomes whose cubes may
  /// meet, by id and then in the index's order. The entries are in lookup
  /// order, so each table's are together; each table gets its own index.
  /// It reads no BDD, so it may run on another thread.
  std::vector<std::pair<uint32_t, uint32_t>> TableClashes(const Side &hw) const {
    std::vector<std::pair<uint32_t, uint32_t>> out;
    std::optional<expand::OverlapIndex> table_index;
    for (size_t id = 0; id < hw.entries.size(); ++id) {
      const Entry &e = hw.entries[id];
      if (id == 0 || e.table != hw.entries[id - 1].table) {
        table_index.emplace();
        for (size_t k = id; k < hw.entries.size() && hw.entries[k].table == e.table; ++k) {
          table_index->Plan(all_[hw.entries[k].rule]);
        }
      }
      const PacketSpace::Literals &lit = Lit(e.rule);
      table_index->Query(all_[e.rule], [&](uint32_t j) {
        const Entry &other = hw.entries[j];
        if (other.outcome_id != e.outcome_id && PacketSpace::MayOverlap(lit, Lit(other.rule))) {
          out.emplace_back(static_cast<uint32_t>(id), j);
        }
      });
      table_index->Insert(static_cast<uint32_t>(id), all_[e.rule]);
    }
    return out;
  }

  /// Check 2's pairs for the source rules with an h(r) whose cube is the
  /// rule's: per source place, h(r) (lowered to an earlier entry that
  /// Takes() the rule, when the index lists one) and, from `start` to the
  /// next place's `start` in `list`, the compiled entries before h(r)'s
  /// table for which MayPair() holds, in the index's order.
  struct Pairs {
    std::vector<uint32_t> taker; ///< UINT32_MAX: no h(r) by cube
    std::vector<uint32_t> start;
    std::vector<uint32_t> list;
  };
  /// Lists the Pairs. Each rule needs only the entries before h(r)'s table,
  /// so the rules go in the order of that bound and hw.stops grows to it
  /// before each query: a query never passes over the entries of later
  /// tables, which the index would visit group by group (they are the
  /// rules that compete, and many).
  Pairs ListPairs(const Side &src, Side &hw, const CubeMap<std::vector<uint32_t>> &hw_cubes,
                  const std::vector<uint32_t> &origin, const std::vector<uint32_t> &table_start) {
    Pairs out;
    out.taker.assign(src.entries.size(), UINT32_MAX);
    std::vector<uint32_t> order;
    for (size_t id = 0; id < src.entries.size(); ++id) {
      const Entry &e = src.entries[id];
      auto it = e.stops ? hw_cubes.find(&Lit(e.rule)) : hw_cubes.end();
      if (it == hw_cubes.end()) {
        continue;
      }
      for (uint32_t j : it->second) {
        if (hw.entries[j].outcome_id == e.outcome_id) {
          out.taker[id] = j;
          order.push_back(static_cast<uint32_t>(id));
          break;
        }
      }
    }
    llvm::stable_sort(order, [&](uint32_t a, uint32_t b) {
      return table_start[out.taker[a]] < table_start[out.taker[b]];
    });
    std::vector<std::pair<uint32_t, uint32_t>> found; // (source place, entry)
    for (uint32_t id : order) {
      const Entry &e = src.entries[id];
      uint32_t &taker = out.taker[id];
      uint32_t bound = table_start[taker];
      hw.InsertStops(bound, all_, origin);
      hw.stops.Query(
          all_[e.rule],
          [&](uint32_t j) {
            if (j < taker && Takes(e, hw.entries[j])) {
              taker = j;
            }
            if (MayPair(src, id, hw.entries[j], origin[j])) {
              found.emplace_back(id, j);
            }
          },
          bound, id);
    }
    llvm::stable_sort(found, [](const auto &a, const auto &b) { return a.first < b.first; });
    out.start.assign(src.entries.size() + 1, 0);
    for (const auto &[id, j] : found) {
      ++out.start[id + 1];
      out.list.push_back(j);
    }
    std::partial_sum(out.start.begin(), out.start.end(), out.start.begin());
    return out;
  }

  /// `set` less the cubes of `rules` (all_ indexes): what none of them takes.
  bdd Less(bdd set, const std::vector<size_t> &rules) const {
    for (size_t r : rules) {
      if (Empty(set)) {
        break;
      }
      set = bdd_apply(set, space_->Match(Lit(r)), bddop_diff);
    }
    return set;
  }

  /// Whether a packet of `cube` lies in none of the rules `holders` gives
  /// (PacketSpace::Uncovered()); if so, `packet` is the least such packet.
  bool Uncovered(const PacketSpace::Literals &cube, PacketSpace::Holders holders,
                 Packet &packet) const {
    return space_->Uncovered(cube, holders, packet.bits);
  }

  /// Reports `set` (not empty) as the counterexample of a different outcome.
  bool Differ(GroupKey group, const bdd &set, Result &result) {
    return Differ(group, space_->Pick(set), result);
  }
  bool Differ(GroupKey group, Packet p, Result &result) {
    space_->Decode(p);
    result.status = Result::Status::kFailed;
    result.counterexample = Format(p);
    result.detail =
        "source: " + DescribeSource(group, p) + "\n  compiled: " + DescribeHardware(group, p);
    return false;
  }

  /// Compares the source and the compiled rules of `group` rule by rule:
  /// each rule is compared only with the rules whose cubes meet it (found
  /// by an overlap index), and what earlier rules take is found packet by
  /// packet (Uncovered()), so no set grows with the whole policy.
  ///  1. Two compiled entries of one table with different outcomes must not
  ///     both match a packet that reaches the table.
  ///  2. Each packet's first trapping source rule and first compiled entry
  ///     that stops it have the same outcome (or are both missing); checked
  ///     pair by pair, most pairs settled by literal containment.
  ///  3. Each packet gets as many copies of each `pass` outcome.
  bool CompareGroup(GroupKey group, Result &result) {
    // The source side was made with the source (Prepare()).
    Side no_rules;
    auto prepared = source_.prepared->groups.find(group);
    Side &src = prepared != source_.prepared->groups.end() ? prepared->second : no_rules;
    Side hw;
    for (size_t k : LookupOrder(group)) {
      const Emitted &e = emitted_[all_[k].source];
      hw.entries.push_back({k, &e.outcome, OutcomeId(e.outcome), e.table,
                            !IsDontTrapTable(e.table) || HasDrop(e.outcome)});
    }
    for (const Entry &e : hw.entries) {
      hw.stops.Plan(all_[e.rule]);
    }
    CubeMap<uint32_t> src_cubes;
    CubeMap<std::vector<uint32_t>> hw_cubes;
    for (size_t id = 0; id < src.entries.size(); ++id) {
      if (src.entries[id].stops) {
        src_cubes.try_emplace(&Lit(src.entries[id].rule), static_cast<uint32_t>(id));
      }
    }
    for (size_t id = 0; id < hw.entries.size(); ++id) {
      if (hw.entries[id].stops) {
        hw_cubes[&Lit(hw.entries[id].rule)].push_back(static_cast<uint32_t>(id));
      }
    }
    // o(j) of each compiled entry that stops packets: any source rule that
    // contains the entry holds its corner packet. It is the entry's key in
    // the index, so that check 2 can skip groups of entries whose o(j)
    // comes before the source rule it compares.
    std::vector<uint32_t> origin(hw.entries.size(), UINT32_MAX); // a place in src
    for (size_t id = 0; id < hw.entries.size(); ++id) {
      const Entry &e = hw.entries[id];
      if (!e.stops) {
        continue;
      }
      const PacketSpace::Literals &lit = Lit(e.rule);
      if (auto it = src_cubes.find(&lit); it != src_cubes.end()) {
        origin[id] = it->second;
      } else {
        space_->QueryPoint(src.stops, space_->CornerOf(lit), [&](uint32_t r) {
          if (r < origin[id] && PacketSpace::CubeContains(Lit(src.entries[r].rule), lit)) {
            origin[id] = r;
          }
        });
      }
    }
    const bdd &u = space_->Universe();
    // The place of the first compiled entry in each entry's table: the
    // entries are in lookup order, so those of earlier tables come before it.
    std::vector<uint32_t> table_start(hw.entries.size());
    for (size_t id = 0; id < hw.entries.size(); ++id) {
      table_start[id] = id > 0 && hw.entries[id].table == hw.entries[id - 1].table
                            ? table_start[id - 1]
                            : static_cast<uint32_t>(id);
    }
    // The compiled entries that take packets go into hw.stops by place, with
    // o(j) as the key: as far as each of check 2's pairs need them, then all.
    // Check 1's scan reads only the compiled entries and their cubes (not
    // hw.stops): it runs on a second thread while check 2's pairs are listed.
    Pairs listed;
    std::vector<std::pair<uint32_t, uint32_t>> clashes;
    RunBoth([&] { listed = ListPairs(src, hw, hw_cubes, origin, table_start); },
            [&] { clashes = TableClashes(hw); }, hw.entries.size() >= kParallelFrom);
    hw.InsertStops(hw.entries.size(), all_, origin);

    // The rules that hold a packet: the source rules before place
    // `src_below` and the compiled entries before place `hw_below` that take
    // packets.
    auto held_by = [&](uint32_t src_below, uint32_t hw_below) {
      return [&, src_below, hw_below](const std::vector<uint8_t> &bits,
                                      std::vector<const PacketSpace::Literals *> &out) {
        PacketSpace::PackedBits packed;
        PacketSpace::Pack(bits, packed);
        for (auto [side, below] : {std::pair(&src, src_below), std::pair(&hw, hw_below)}) {
          space_->QueryPoint(
              side->stops, bits,
              [&](uint32_t k) {
                const PacketSpace::Literals &cube = Lit(side->entries[k].rule);
                if (PacketSpace::InCube(cube, packed)) {
                  out.push_back(&cube);
                }
              },
              below);
        }
      };
    };
    // The compiled entries that stop packets in tables before entry `id`'s
    // and may meet `rule`.
    auto stopped_before = [&](size_t id, const expand::TernaryRule &rule,
                              const PacketSpace::Literals &literals) {
      std::vector<size_t> out;
      hw.ForStops(rule, literals, *space_, table_start[id],
                  [&](uint32_t j) { out.push_back(hw.entries[j].rule); });
      return out;
    };

    // 1. One table, two outcomes: the packets two such entries share must
    // all be taken in earlier tables.
    for (auto [id, j] : clashes) {
      PacketSpace::Literals lits =
          PacketSpace::Meet(Lit(hw.entries[id].rule), Lit(hw.entries[j].rule));
      Packet p;
      if (Uncovered(lits, held_by(0, table_start[id]), p)) {
        space_->Decode(p);
        result.status = Result::Status::kFailed;
        result.counterexample = Format(p);
        result.detail = llvm::formatv("it meets two compiled rules of one lookup table ({0}) with "
                                      "different outcomes, and the NIC may apply either",
                                      TableName(hw.entries[id].table));
        return false;
      }
    }
    Tick(hw.entries.size());

    // 2. A packet's first trapping source rule r and first stopping
    // compiled entry j must agree. Two literal facts settle most pairs:
    //  - o(j), a source rule that contains entry j (the first, or one with
    //    the same cube): j then takes no packet that no source rule takes,
    //    and no packet whose first source rule comes after o(j) (o(j) would
    //    take it first);
    //  - h(r), a compiled entry that contains source rule r with r's outcome
    //    (one with the same cube, or the first): each packet r takes is then
    //    taken, and no entry in a later table is the first to take it; nor
    //    is one in the same table with another outcome (check 1 gave the
    //    packets both meet to earlier tables).
    // So (j, r) with different outcomes can share a first packet only if r
    // is not after o(j) and h(r) is missing or in a later table than j. The
    // index lists only such j: its scan stops at h(r)'s table, and it skips
    // groups of entries whose o(j) all come before r (o(j) is their key).
    // A rule with no h(r) that an earlier source rule contains is no
    // packet's first and has no pairs. The pairs left, and rules without
    // o(j) or h(r), are settled by Uncovered(): the packets they share, less
    // those that earlier rules take, must be none.
    for (size_t id = 0; id < hw.entries.size(); ++id) {
      Tick();
      Packet p;
      if (hw.entries[id].stops && origin[id] == UINT32_MAX &&
          Uncovered(Lit(hw.entries[id].rule), held_by(UINT32_MAX, table_start[id]), p)) {
        return Differ(group, std::move(p), result); // taken by no source rule
      }
    }
    for (size_t id = 0; id < src.entries.size(); ++id) {
      Tick();
      const Entry &e = src.entries[id];
      if (!e.stops) {
        continue;
      }
      const PacketSpace::Literals &lit = Lit(e.rule);
      // The pairs to settle: compiled entries that take packets, may meet
      // r, have another outcome, are not inside a source rule before r
      // (o(j) < r), and lie in a table before h(r)'s. With h(r) known, only
      // the entries before its table were listed; an earlier entry with r's
      // outcome that contains r moves that bound down.
      uint32_t taker = listed.taker[id]; // h(r): a place in hw
      llvm::ArrayRef<uint32_t> pairs(listed.list.data() + listed.start[id],
                                     listed.start[id + 1] - listed.start[id]);
      std::vector<uint32_t> unbounded;
      if (taker == UINT32_MAX) {
        uint32_t cover = UINT32_MAX;
        if (src.CoveredBefore(id, lit, *space_, cover)) {
          continue; // an earlier source rule takes all of r: r is no packet's first
        }
        std::vector<uint32_t> met; // compiled entries that stop packets and may meet r
        hw.stops.Query(all_[e.rule], [&](uint32_t j) {
          if (PacketSpace::MayOverlap(lit, Lit(hw.entries[j].rule))) {
            met.push_back(j);
            if (j < taker && Takes(e, hw.entries[j])) {
              taker = j;
            }
          }
        });
        Packet p;
        if (taker == UINT32_MAX &&
            Uncovered(lit, held_by(static_cast<uint32_t>(id), UINT32_MAX), p)) {
          return Differ(group, std::move(p), result); // left to the default rules
        }
        for (uint32_t j : met) {
          if (MayPair(src, id, hw.entries[j], origin[j])) {
            unbounded.push_back(j);
          }
        }
        pairs = unbounded;
      }
      uint32_t cover = UINT32_MAX; // the last earlier source rule that covered a pair
      for (uint32_t j : pairs) {
        const Entry &h = hw.entries[j];
        if (taker != UINT32_MAX && j >= table_start[taker]) {
          continue;
        }
        // Packets both take, less what earlier source rules and the compiled
        // entries of earlier tables take, must be none. Most pairs share
        // only packets one earlier source rule takes, often the one that
        // took the last pair's; the rules that hold one packet of the pair
        // are few, where those that meet it can be many.
        PacketSpace::Literals lits = PacketSpace::Meet(lit, Lit(h.rule));
        if ((cover != UINT32_MAX &&
             PacketSpace::CubeContains(Lit(src.entries[cover].rule), lits)) ||
            src.CoveredBefore(id, lits, *space_, cover)) {
          continue;
        }
        Packet p;
        if (Uncovered(lits, held_by(static_cast<uint32_t>(id), table_start[j]), p)) {
          return Differ(group, std::move(p), result);
        }
      }
    }

    // 3. Copies: what each `pass` rule copies, less what earlier rules take.
    Copies src_copies, hw_copies;
    for (size_t id = 0; id < src.entries.size();) {
      const Entry &e = src.entries[id];
      size_t end = id + 1;
      while (end < src.entries.size() &&
             all_[src.entries[end].rule].source == all_[e.rule].source) {
        ++end;
      }
      if (!e.stops) {
        // One copy per rule, however many of its expansions match.
        bdd copied = bddfalse;
        for (size_t k = id; k < end; ++k) {
          const PacketSpace::Literals &lit = Lit(src.entries[k].rule);
          bool contained = false;
          std::vector<size_t> earlier =
              src.Before(id, all_[src.entries[k].rule], lit, *space_, contained);
          if (!contained) {
            copied |= Less(space_->Match(lit) & u, earlier);
          }
        }
        src_copies.Add(*e.outcome, copied);
      }
      id = end;
    }
    std::map<std::pair<uint64_t, Outcome>, bdd> per_table;
    for (size_t id = 0; id < hw.entries.size(); ++id) {
      const Entry &e = hw.entries[id];
      if (e.stops) {
        continue;
      }
      const PacketSpace::Literals &lit = Lit(e.rule);
      bdd &copied = per_table.try_emplace({e.table, *e.outcome}, bddfalse).first->second;
      copied |= Less(space_->Match(lit) & u, stopped_before(id, all_[e.rule], lit));
    }
    for (const auto &[key, copied] : per_table) {
      hw_copies.Add(key.second, copied); // one entry per table is hit
    }
    std::map<Outcome, bool> copied;
    for (const auto &[o, levels] : src_copies.at_least) {
      copied[o] = true;
    }
    for (const auto &[o, levels] : hw_copies.at_least) {
      copied[o] = true;
    }
    for (const auto &[o, unused] : copied) {
      std::vector<bdd> &a = src_copies.at_least[o], &b = hw_copies.at_least[o];
      for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
        bdd d =
            bdd_apply(i < a.size() ? a[i] : bddfalse, i < b.size() ? b[i] : bddfalse, bddop_xor) &
            u;
        if (!Empty(d)) {
          return Differ(group, d, result);
        }
      }
    }
    return !PacketSpace::Overflowed();
  }

  const PacketSpace::Literals &Lit(size_t rule) const { return space_->CubeOfRule(rule); }

  /// `n` rules compared: reports progress every 1024.
  void Tick(uint64_t n = 1) {
    uint64_t before = progress_done_;
    progress_done_ += n;
    if (before / 1024 != progress_done_ / 1024 && options_.progress) {
      options_.progress(progress_done_, progress_total_);
    }
  }

  uint32_t OutcomeId(const Outcome &o) {
    return outcome_ids_.try_emplace(o, static_cast<uint32_t>(outcome_ids_.size())).first->second;
  }

  /// The emitted normal rules of `group` (all_ indexes) in lookup order:
  /// by table, then in emission order.
  std::vector<size_t> LookupOrder(GroupKey group) const {
    std::vector<size_t> order;
    for (size_t k = source_count_; k < all_.size(); ++k) {
      if (emitted_[all_[k].source].group == group) {
        order.push_back(k);
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return emitted_[all_[a].source].table < emitted_[all_[b].source].table;
    });
    return order;
  }

  static std::string TableName(uint64_t table) {
    if (table == target::kMulticastTable) {
      return "mlx5's multicast priority";
    }
    return llvm::formatv("priority {0}, {1}", table / 2,
                         (table & 1) != 0 ? "trapping" : "DONT_TRAP");
  }

  std::string Format(const Packet &p) const {
    std::vector<std::pair<ir::Layer, Field>> shown;
    for (const auto &[key, value] : p.fields) {
      if (GetFieldInfo(key.second).container == Field::kNone) {
        shown.push_back(key);
      }
    }
    return space_->Format(p, shown);
  }

  bool Contains(size_t k, const Packet &p) const { return space_->Contains(all_[k], p); }

  /// "copied to rule 'x' (steer q1), then taken by rule 'y' (steer q2)".
  std::string DescribeSource(GroupKey group, const Packet &p) const {
    std::string copies, taker;
    for (size_t i = 0; i < source_count_ && taker.empty(); ++i) {
      const ir::Rule &r = policy_.rules[all_[i].source];
      if (GroupKey{static_cast<int>(r.direction), r.port} != group || !Contains(i, p)) {
        continue;
      }
      std::string what = ir::RuleTitle(r) + " (" + DescribeOutcome(policy_, SourceOutcome(r)) + ")";
      if (r.pass) {
        copies += (copies.empty() ? "" : ", ") + what;
        // One copy per rule, however many of its expansions match.
        while (i + 1 < source_count_ && all_[i + 1].source == all_[i].source) {
          ++i;
        }
      } else {
        taker = what;
      }
    }
    return Describe(copies, taker);
  }

  std::string DescribeHardware(GroupKey group, const Packet &p) const {
    std::vector<size_t> order = LookupOrder(group);
    std::string copies, taker;
    uint64_t hit_table = UINT64_MAX - 1; // no table yet
    for (size_t k : order) {
      const Emitted &e = emitted_[all_[k].source];
      if (e.table == hit_table || !Contains(k, p)) {
        continue;
      }
      hit_table = e.table;
      std::string what = llvm::formatv("hardware rule {0} ({1}; {2})", all_[k].source,
                                       TableName(e.table), DescribeOutcome(policy_, e.outcome));
      if (IsDontTrapTable(e.table) && !HasDrop(e.outcome)) {
        copies += (copies.empty() ? "" : ", ") + what;
      } else {
        taker = what;
        break;
      }
    }
    return Describe(copies, taker);
  }

  static std::string Describe(const std::string &copies, const std::string &taker) {
    std::string out;
    if (!copies.empty()) {
      out = "copied to " + copies + ", then ";
    }
    return out + (taker.empty() ? "left to the default rules" : "taken by " + taker);
  }

  const ir::Policy &policy_;
  const target::Target &target_;
  llvm::ArrayRef<emit::OutputRule> out_;
  const Options &options_;
  Source source_;
  std::vector<Emitted> emitted_;
  /// The source's normal rules expanded (first source_count_, `source` the
  /// ir::Policy::rules index), then each emitted normal rule read back
  /// (`source` the emitted_ index).
  std::vector<expand::TernaryRule> all_;
  size_t source_count_ = 0;
  const PacketSpace *space_ = nullptr;
  std::map<Outcome, uint32_t> outcome_ids_;
  uint64_t progress_done_ = 0, progress_total_ = 0;
};

/// Whether `t` matches field `f` of `layer` fully, with one of `values`.
bool Pins(const expand::TernaryRule &t, ir::Layer layer, Field f,
          std::initializer_list<uint64_t> values) {
  for (const expand::TernaryMatch &m : t.matches) {
    if (m.layer == layer && m.field == f && m.mask.isAllOnes()) {
      for (uint64_t v : values) {
        if (m.value == v) {
          return true;
        }
      }
    }
  }
  return false;
}

} // namespace

expand::TernaryRule MatchOf(const emit::HwRule &rule, uint32_t index) {
  expand::TernaryRule t;
  t.source = index;
  // ESP, VXLAN_TUNNEL and MPLS specs with a zero mask add no match on mlx5
  // (verbs-facts §3.2: they set only their own fields, and unlike TCP, UDP
  // and GRE force no IP protocol), so they say their header is there only
  // where the rule matches what carries it (checked below): the IP
  // protocol 50, UDP port 4789, or the ethertype, UDP port or GRE protocol
  // of MPLS by where the spec sits (§3.3). With the carrier, the header is
  // taken to be there, as for every real packet; the model's universe says
  // only header => carrier, and a NIC would also take a packet that has the
  // carrier but a short or fragmented header (as for TCP and UDP).
  struct Unmasked {
    Header header;
    ir::Layer layer;
    SpecKind previous;
  };
  llvm::SmallVector<Unmasked, 2> unmasked;
  ir::HeaderSet masked[ir::kNumLayers] = {0, 0, 0};
  // The raw type of the spec before (§3.3), where it is UDP or GRE: an
  // INNER UDP spec is not UDP (ETH stands for any other, or none).
  SpecKind previous = SpecKind::kEth;
  for (const emit::HwSpec &spec : rule.specs) {
    SpecKind before = previous;
    previous = spec.inner ? SpecKind::kEth : spec.kind;
    std::optional<Header> h = HeaderOfSpec(spec.kind);
    if (!h) {
      continue;
    }
    // mlx5 matches an INNER ESP spec on the outer SPI (§3.3).
    ir::Layer layer = spec.inner && *h != Header::kEsp ? ir::Layer::kInner
                      : (*h == Header::kVxlan || *h == Header::kGre || *h == Header::kMpls)
                          ? ir::Layer::kTunnel
                          : ir::Layer::kOuter;
    t.headers[static_cast<unsigned>(layer)] |= ir::Bit(*h);
    bool zero = llvm::all_of(spec.mask, [](uint8_t b) { return b == 0; });
    if (zero && (*h == Header::kEsp || *h == Header::kVxlan || *h == Header::kMpls)) {
      unmasked.push_back({*h, layer, before});
    } else {
      masked[static_cast<unsigned>(layer)] |= ir::Bit(*h);
    }
    for (const FieldInfo &f : AllFields()) {
      if (f.header != *h || f.container != Field::kNone || !emit::PlacementOf(f.field, spec.kind)) {
        continue;
      }
      auto [value, mask] = emit::GetField(spec, f.field);
      if (!mask.isZero()) {
        t.matches.push_back({layer, f.field, value & mask, mask});
      }
    }
  }
  for (const Unmasked &u : unmasked) {
    const ir::Layer outer = ir::Layer::kOuter;
    // The IP header and ethertype of an MPLS spec's own layer: inner when
    // flagged INNER, else outer.
    const ir::Layer ip = u.layer == ir::Layer::kInner ? ir::Layer::kInner : outer;
    bool carried = false;
    switch (u.header) {
    case Header::kEsp:
      carried = Pins(t, ip, Field::kIpv4Proto, {50}) || Pins(t, ip, Field::kIpv6NextHdr, {50});
      break;
    case Header::kVxlan:
      carried = Pins(t, outer, Field::kUdpDst, {4789});
      break;
    default: // MPLS
      carried = u.previous == SpecKind::kUdp ? Pins(t, outer, Field::kUdpDst, {6635})
                : u.previous == SpecKind::kGre
                    ? Pins(t, ir::Layer::kTunnel, Field::kGreProtocol, {0x8847, 0x8848})
                    : Pins(t, ip, Field::kEthType, {0x8847, 0x8848});
      break;
    }
    auto l = static_cast<unsigned>(u.layer);
    if (!carried && (masked[l] & ir::Bit(u.header)) == 0) {
      t.headers[l] &= ~ir::Bit(u.header);
    }
  }
  llvm::sort(t.matches, [](const expand::TernaryMatch &a, const expand::TernaryMatch &b) {
    return std::make_pair(a.layer, a.field) < std::make_pair(b.layer, b.field);
  });
  return t;
}

Source ExpandSource(const ir::Policy &policy) {
  Source out;
  llvm::Expected<target::Target> generic = target::MakeTarget("generic", {});
  if (!generic) {
    out.error = llvm::toString(generic.takeError());
    return out;
  }
  expand::Options options;
  options.max_per_rule = 1u << 16;
  options.warn_per_rule = 0;
  options.merge_sets = false; // the source as written, not as flowc rewrites it
  llvm::SourceMgr sources;
  diag::DiscardConsumer discard;
  diag::Engine scratch(sources, {}, discard);
  // Room for the emitted rules too, which Verify() appends (about as many
  // as the source's expansions); pages not written are not touched.
  out.rules.reserve(3 * policy.rules.size());
  expand::ExpandInto(policy, *generic, options, scratch, [&](expand::TernaryRule &&t) {
    if (policy.rules[t.source].kind == ast::RuleKind::kNormal) {
      out.rules.push_back(std::move(t));
    }
  });
  if (scratch.error_count() > 0) {
    out.error = "a rule has more alternatives than the proof expands (65536)";
    return out;
  }
  Prepare(policy, out);
  return out;
}

Result Verify(const ir::Policy &policy, const target::Target &target,
              llvm::ArrayRef<emit::OutputRule> rules, const Options &options, Source source) {
  return Verifier(policy, target, rules, options, std::move(source)).Run();
}

} // namespace flowc::verify
