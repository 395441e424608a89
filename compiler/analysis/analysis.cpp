#include "compiler/analysis/analysis.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compiler/analysis/packet_space.h"
#include "compiler/expand/expand.h"
#include "compiler/expand/overlap_index.h"
#include "compiler/target/profile.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Sequence.h"
#include "llvm/Support/MathExtras.h"

namespace flowc::analysis {
namespace {

/// The rules of one port and direction, in precedence order.
using GroupKey = std::pair<ast::Direction, uint8_t>;

bool Empty(const bdd &b) {
  return b == bddfalse;
}

/// "rule 'a'", "rule 'a' and rule 'b'", "rule 'a', rule 'b', rule 'c' and 2 more".
std::string RuleList(const ir::Policy &policy, const std::vector<uint32_t> &rules) {
  std::string out;
  for (size_t k = 0; k < rules.size() && k < 3; ++k) {
    out += (k == 0                  ? ""
            : k + 1 == rules.size() ? " and "
                                    : ", ") +
           ir::RuleTitle(policy.rules[rules[k]]);
  }
  if (rules.size() > 3) {
    out += " and " + std::to_string(rules.size() - 3) + " more";
  }
  return out;
}

/// What a rule does to the packets it takes: its actions, in a canonical
/// order. Two trapping rules with equal outcomes are interchangeable.
std::vector<std::pair<int, uint32_t>> Outcome(const ir::Rule &r) {
  std::vector<std::pair<int, uint32_t>> k;
  for (const ir::Action &a : r.actions) {
    k.emplace_back(static_cast<int>(a.kind), a.operand);
  }
  llvm::sort(k);
  return k;
}

/// FL9003 is decided exactly for a rule that meets at most this many
/// earlier cubes; for one that meets more, only when at most half of its
/// sample packets get through them.
constexpr size_t kPartlyExact = 32;
/// The most sample packets drawn for one rule.
constexpr size_t kMaxSamples = 64;

void AddFields(std::vector<std::pair<ir::Layer, Field>> &to,
               const std::vector<std::pair<ir::Layer, Field>> &from) {
  for (const auto &f : from) {
    if (!llvm::is_contained(to, f)) {
      to.push_back(f);
    }
  }
}

/// An upper bound on the share of a rule's packets (counted by header
/// values, within the universe) that earlier cubes take, without a set of
/// them. A cube C that meets an expansion K takes exactly the share
/// |C∧K∧U| / |K∧U| of it. The universe U depends on few variables (S): the
/// count splits into the part over S, which is U's (asked of BuDDy once per
/// pattern of literals on S, and there are few), and the rest, where each
/// variable C fixes and K does not halves it. Summing over the cubes and
/// expansions is the union bound (an expansion holds at most all of the
/// rule's packets); it stops at 1.
class TakenBound {
public:
  explicit TakenBound(const PacketSpace &space) : space_(space) {}

  double operator()(llvm::ArrayRef<uint32_t> expansions,
                    const std::vector<std::vector<uint32_t>> &before) {
    double sum = 0;
    for (size_t k = 0; k < expansions.size(); ++k) {
      const PacketSpace::Literals &own = space_.CubeOfRule(expansions[k]);
      double whole = Log2CountOnUniverse(own);
      if (whole == kNone) {
        continue; // no packet of it exists
      }
      const int own_free = FreeFixed(own);
      for (uint32_t c : before[k]) {
        const PacketSpace::Literals &other = space_.CubeOfRule(c);
        if (!PacketSpace::MayOverlap(own, other)) {
          continue;
        }
        PacketSpace::Literals both = PacketSpace::Meet(own, other);
        // `both` fixes every variable `own` does, and these more.
        int extra = FreeFixed(both) - own_free;
        sum += std::exp2(Log2CountOnUniverse(both) - whole - extra);
        if (sum >= 1) {
          return 1;
        }
      }
    }
    return sum;
  }

private:
  /// Log2 of the number of packets of `cube`'s literals on the universe's
  /// variables alone, within the universe; kNone if there are none. Counts
  /// are over every variable, which a double does not hold past 2^1023.
  static constexpr double kNone = -HUGE_VAL;
  double Log2CountOnUniverse(const PacketSpace::Literals &cube) {
    const std::vector<uint64_t> &free = space_.FreeOfUniverse();
    PacketSpace::Literals on;
    std::string key;
    for (const PacketSpace::CubeWord &w : cube) {
      uint64_t care = w.care & ~(w.word < free.size() ? free[w.word] : 0);
      if (care != 0) {
        on.push_back({w.word, care, w.value & care});
        for (uint64_t part : {uint64_t{w.word}, care, w.value & care}) {
          key.append(reinterpret_cast<const char *>(&part), sizeof part);
        }
      }
    }
    auto found = counts_.find(key);
    if (found != counts_.end()) {
      return found->second;
    }
    bdd set = space_.Match(on) & space_.Universe();
    double n = set == bddfalse ? kNone : bdd_satcountln(set);
    counts_.emplace(std::move(key), n);
    return n;
  }
  /// How many variables outside the universe's `cube` fixes.
  int FreeFixed(const PacketSpace::Literals &cube) const {
    const std::vector<uint64_t> &free = space_.FreeOfUniverse();
    int n = 0;
    for (const PacketSpace::CubeWord &w : cube) {
      n += static_cast<int>(
          llvm::countPopulation(w.care & (w.word < free.size() ? free[w.word] : 0)));
    }
    return n;
  }

  const PacketSpace &space_;
  std::unordered_map<std::string, double> counts_;
};

} // namespace

Stats Analyze(const ir::Policy &policy, const Options &options, diag::Engine &diags) {
  Stats stats;
  if (options.max_rules != 0 && policy.rules.size() > options.max_rules) {
    stats.skipped = true; // every rule expands to one ternary rule at least
    stats.complete = false;
    return stats;
  }
  llvm::Expected<target::Target> generic = target::MakeTarget("generic", {});
  if (!generic) {
    llvm::consumeError(generic.takeError());
    stats.complete = false;
    return stats;
  }
  // Source semantics: sets and ranges exactly (prefix covers), no target limits.
  expand::Options expand_options;
  expand_options.max_per_rule = 1u << 16;
  diag::DiscardConsumer discard;
  diag::Engine scratch(diags.sources(), {}, discard);
  expand::Expanded expanded = expand::Expand(policy, *generic, expand_options, scratch);
  if (scratch.error_count() > 0) {
    // Some rule did not expand (over a limit): its packets are unknown, and
    // every later rule's verdict would be unproven.
    stats.complete = false;
    return stats;
  }
  stats.expanded = static_cast<uint32_t>(expanded.rules.size());
  if (options.max_rules != 0 && expanded.rules.size() > options.max_rules) {
    stats.skipped = true;
    stats.complete = false;
    return stats;
  }

  PacketSpace space(expanded.rules, options.max_nodes);
  TakenBound taken_bound(space);
  const bdd &u = space.Universe();
  // Each rule's expansions (expanded.rules indexes). Rule BDDs are built when
  // needed and kept only for rules that take another's packets: keeping
  // every one alive makes each garbage collection walk them all.
  std::vector<std::vector<uint32_t>> expansions(policy.rules.size());
  for (uint32_t e = 0; e < expanded.rules.size(); ++e) {
    expansions[expanded.rules[e].source].push_back(e);
  }
  auto cube = [&](uint32_t e) -> const PacketSpace::Literals & { return space.CubeOfRule(e); };
  auto build = [&](uint32_t i) {
    bdd m = bddfalse;
    for (uint32_t e : expansions[i]) {
      m |= space.Match(cube(e));
    }
    return m;
  };
  std::map<uint32_t, bdd> kept;
  auto match_of = [&](uint32_t i) -> bdd {
    auto found = kept.find(i);
    if (found != kept.end()) {
      return found->second;
    }
    return kept.emplace(i, build(i)).first->second;
  };
  auto fields_of = [&](uint32_t i) {
    std::vector<std::pair<ir::Layer, Field>> fields;
    for (uint32_t e : expansions[i]) {
      for (const expand::TernaryMatch &m : expanded.rules[e].matches) {
        if (!llvm::is_contained(fields, std::make_pair(m.layer, m.field))) {
          fields.push_back({m.layer, m.field});
        }
      }
    }
    return fields;
  };
  auto contains = [&](uint32_t j, const Packet &p) {
    return llvm::any_of(expansions[j],
                        [&](uint32_t e) { return PacketSpace::InCube(cube(e), p.bits); });
  };
  // The least packet (in Pick()'s order: by variable, 0 first) of those
  // `pick(k, bits)` gives for k in [0, n), where it returns true: Pick() of
  // a union is the least of its parts' least packets.
  auto least_of = [](size_t n, auto &&pick) {
    std::optional<Packet> least;
    std::vector<uint8_t> bits;
    for (size_t k = 0; k < n; ++k) {
      if (pick(k, bits) && (!least || bits < least->bits)) {
        least.emplace().bits = bits;
      }
    }
    return least;
  };
  // The rule that takes `p`: the first of `candidates` (sorted) that matches it.
  auto taker_of = [&](const std::vector<uint32_t> &candidates,
                      const Packet &p) -> std::optional<uint32_t> {
    for (uint32_t j : candidates) {
      if (contains(j, p)) {
        return j;
      }
    }
    return std::nullopt;
  };
  // Per port and direction: the trapping rules seen so far, and (for
  // FL9004) every rule, by expansion, so that a rule is compared only with
  // the rules whose cubes meet it.
  struct Group {
    expand::OverlapIndex earlier, all;
  };
  std::map<GroupKey, Group> groups;
  for (uint32_t i = 0; i < policy.rules.size(); ++i) {
    const ir::Rule &r = policy.rules[i];
    if (r.kind != ast::RuleKind::kNormal) {
      continue;
    }
    Group &g = groups[{r.direction, r.port}];
    for (uint32_t e : expansions[i]) {
      g.earlier.Plan(expanded.rules[e]);
      g.all.Plan(expanded.rules[e]);
    }
  }
  if (options.redundant) {
    for (uint32_t i = 0; i < policy.rules.size(); ++i) {
      const ir::Rule &r = policy.rules[i];
      if (r.kind == ast::RuleKind::kNormal) {
        for (uint32_t e : expansions[i]) {
          groups[{r.direction, r.port}].all.Insert(e, expanded.rules[e]);
        }
      }
    }
  }
  // The rules j (sorted) with an expansion in `index` that may share a
  // packet with one of rule i's expansions, and keep(j).
  auto rules_meeting = [&](const expand::OverlapIndex &index, uint32_t i, auto &&keep) {
    std::vector<uint32_t> out;
    for (uint32_t e : expansions[i]) {
      index.Query(expanded.rules[e], [&](uint32_t c) {
        uint32_t j = expanded.rules[c].source;
        if (keep(j) && PacketSpace::MayOverlap(cube(e), cube(c))) {
          out.push_back(j);
        }
      });
    }
    llvm::sort(out);
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };

  // FL9004: rule `i` (trapping; `witnesses` are packets that reach it, and
  // `holders` gives the earlier trapping cubes that hold a packet) is
  // redundant when the rules after it would give every packet it takes the
  // same outcome: each such packet meets, before any other rule, a later
  // trapping rule with the same actions, and no `pass` rule on the way (it
  // would add a copy). Packets no later rule takes would go to a default
  // rule or the kernel: a different outcome.
  auto ReportRedundant = [&](uint32_t i, const Group &g, const std::vector<Packet> &witnesses,
                             const std::vector<bool> &inside, PacketSpace::Holders holders) {
    const ir::Rule &rule = policy.rules[i];
    const std::vector<uint32_t> &own = expansions[i];
    std::vector<std::pair<int, uint32_t>> outcome = Outcome(rule);
    // Cheap first: a packet that reaches it and meets another outcome first
    // (or none) shows that some packet ends elsewhere. The index finds the
    // later rules that hold the packet (a point query); listing every later
    // rule that meets this one can take thousands.
    for (const Packet &p : witnesses) {
      std::optional<uint32_t> next;
      space.QueryPoint(g.all, p.bits, [&](uint32_t c) {
        uint32_t j = expanded.rules[c].source;
        if (j > i && (!next || j < *next) && PacketSpace::InCube(cube(c), p.bits)) {
          next = j;
        }
      });
      if (!next || policy.rules[*next].pass || Outcome(policy.rules[*next]) != outcome) {
        return;
      }
    }
    // So does the lack of a later rule of the same outcome that may overlap
    // it.
    std::vector<uint32_t> later = rules_meeting(g.all, i, [&](uint32_t j) { return j > i; });
    if (llvm::none_of(later, [&](uint32_t j) {
          return !policy.rules[j].pass && Outcome(policy.rules[j]) == outcome;
        })) {
      return;
    }
    // `rem` starts as the rule's packets, not only those that reach it:
    // subtracting every earlier cube that meets a wide rule took most of
    // FL9004's time. Earlier cubes are taken out only where a packet asks
    // for them: settle(part) looks for a packet of `part` (inside `rem`)
    // that reaches the rule, taking the earlier cubes that hold the least
    // packet left out of both, so that `rem` holds every packet that
    // reaches the rule and no later rule has taken yet, and more only while
    // no later rule has met them.
    bdd rem = bddfalse;
    for (size_t k = 0; k < own.size(); ++k) {
      if (!inside[k]) {
        rem |= space.Match(cube(own[k]));
      }
    }
    rem &= u;
    std::vector<const PacketSpace::Literals *> found;
    auto settle = [&](bdd part) {
      while (!Empty(part) && !PacketSpace::Overflowed()) {
        found.clear();
        holders(space.Pick(part).bits, found);
        if (found.empty()) {
          return true;
        }
        for (const PacketSpace::Literals *c : found) {
          bdd m = space.Match(*c);
          part = bdd_apply(part, m, bddop_diff);
          rem = bdd_apply(rem, m, bddop_diff);
        }
      }
      return false;
    };
    std::vector<uint32_t> takers;
    for (uint32_t j : later) {
      if (Empty(rem)) {
        break;
      }
      const ir::Rule &t = policy.rules[j];
      bdd part = rem & match_of(j);
      if (PacketSpace::Overflowed()) {
        return;
      }
      if (Empty(part) || !settle(part)) {
        continue; // no packet that reaches the rule meets it first
      }
      if (t.pass || Outcome(t) != outcome) {
        return;
      }
      takers.push_back(j);
      rem = bdd_apply(rem, match_of(j), bddop_diff);
    }
    // What is left goes to no later rule: none of it may reach the rule.
    if (settle(rem) || takers.empty() || PacketSpace::Overflowed()) {
      return;
    }
    // The example: the least packet that reaches the rule, as Pick() gives
    // it of that set, found per expansion without building the set.
    std::optional<Packet> least = least_of(own.size(), [&](size_t k, std::vector<uint8_t> &bits) {
      return !inside[k] && space.Uncovered(cube(own[k]), holders, bits);
    });
    if (!least || PacketSpace::Overflowed()) {
      return;
    }
    Packet example = std::move(*least);
    space.Decode(example);
    std::optional<uint32_t> first = taker_of(takers, example);
    std::vector<std::pair<ir::Layer, Field>> shown = fields_of(i);
    for (uint32_t t : takers) {
      AddFields(shown, fields_of(t));
    }
    std::string by = RuleList(policy, takers);
    diag::Builder b =
        diags.Report(diag::Kind::kRedundantRule, rule.range.Start,
                     ir::RuleTitle(rule) + " is redundant: without it, " + by +
                         (takers.size() == 1 ? " would take" : " would together take") +
                         " every packet it takes, with the same actions");
    b.Range(rule.range);
    for (size_t k = 0; k < takers.size() && k < 3; ++k) {
      const ir::Rule &t = policy.rules[takers[k]];
      b.AddNote(t.range.Start, ir::RuleTitle(t) + " is here");
    }
    if (first) {
      b.AddNote(llvm::SMLoc(), "for example, " + space.Format(example, shown) + " would go to " +
                                   ir::RuleTitle(policy.rules[*first]));
    }
    ++stats.redundant;
  };

  for (uint32_t i = 0; i < policy.rules.size(); ++i) {
    if (options.progress && i % 256 == 0) {
      options.progress(i, policy.rules.size());
    }
    const ir::Rule &rule = policy.rules[i];
    if (rule.kind != ast::RuleKind::kNormal || expansions[i].empty()) {
      continue;
    }
    ++stats.rules;
    Group &g = groups[{rule.direction, rule.port}];
    const std::vector<uint32_t> &own = expansions[i];
    // The earlier trapping expansions that hold a packet: a point query,
    // where listing every earlier cube that meets a wide rule can take
    // thousands.
    PacketSpace::PackedBits packed;
    auto for_holders = [&](const std::vector<uint8_t> &bits, auto &&fn) {
      PacketSpace::Pack(bits, packed);
      space.QueryPoint(g.earlier, bits, [&](uint32_t c) {
        if (PacketSpace::InCube(cube(c), packed)) {
          fn(c);
        }
      });
    };
    auto holders = [&](const std::vector<uint8_t> &bits,
                       std::vector<const PacketSpace::Literals *> &out) {
      for_holders(bits, [&](uint32_t c) { out.push_back(&cube(c)); });
    };
    // The rule that takes `p` first: the earliest trapping rule holding it.
    auto first_taker = [&](const Packet &p) -> std::optional<uint32_t> {
      std::optional<uint32_t> first;
      for_holders(p.bits, [&](uint32_t c) {
        uint32_t j = expanded.rules[c].source;
        first = first ? std::min(*first, j) : j;
      });
      return first;
    };
    // Per expansion, the earlier trapping expansions that may share a
    // packet with it: listed only for the sets FL9003 and FL9004 build.
    std::vector<std::vector<uint32_t>> before;
    size_t met = 0;
    auto list_before = [&]() {
      if (!before.empty()) {
        return;
      }
      before.resize(own.size());
      for (size_t k = 0; k < own.size(); ++k) {
        const PacketSpace::Literals &lit = cube(own[k]);
        g.earlier.Query(expanded.rules[own[k]], [&](uint32_t c) {
          if (PacketSpace::MayOverlap(lit, cube(c))) {
            before[k].push_back(c);
          }
        });
        met += before[k].size();
      }
    };
    auto before_lists = [&]() -> const std::vector<std::vector<uint32_t>> & {
      list_before();
      return before;
    };
    // Whether an earlier cube that may share a packet with it contains
    // expansion k, by the listing (for an expansion no packet of which can
    // exist, which has no packet to ask about).
    auto listed_inside = [&](size_t k) {
      list_before();
      return llvm::any_of(
          before[k], [&](uint32_t c) { return PacketSpace::CubeContains(cube(c), cube(own[k])); });
    };
    // Packets that reach the rule, found without a union: a few packets of
    // each expansion that no earlier cube holds. An expansion inside an
    // earlier cube (one that holds its first packet contains it) counts its
    // four tries as taken without drawing them.
    std::vector<Packet> witnesses;
    std::vector<bool> inside(own.size(), false);
    size_t tried = 0;
    for (size_t k = 0; k < own.size(); ++k) {
      const PacketSpace::Literals &lit = cube(own[k]);
      // Drawn in the cube itself: no set is built (seed 0 is the packet
      // Pick() gives of the expansion's packets).
      for (uint64_t seed = 0; seed < 4; ++seed) {
        Packet p;
        if (!space.PickInCube(lit, seed, p.bits)) {
          inside[k] = seed == 0 && listed_inside(k);
          break; // no packet of it can exist
        }
        bool taken = false;
        for_holders(p.bits, [&](uint32_t c) {
          taken = true;
          inside[k] = inside[k] || (seed == 0 && PacketSpace::CubeContains(cube(c), lit));
        });
        if (inside[k] || tried >= kMaxSamples) {
          break;
        }
        ++tried;
        if (!taken) {
          witnesses.push_back(std::move(p));
        }
      }
      tried += inside[k] ? 4 : 0;
    }
    // All the packets that reach it, built when needed: each expansion less
    // the earlier cubes that meet it.
    std::optional<bdd> reached;
    auto survives = [&]() -> const bdd & {
      if (!reached) {
        list_before();
        bdd all = bddfalse;
        for (size_t k = 0; k < own.size(); ++k) {
          if (inside[k]) {
            continue;
          }
          bdd left = space.Match(cube(own[k])) & u;
          // Wide cubes first: they take the most, so the set shrinks early.
          std::vector<std::pair<unsigned, uint32_t>> order;
          for (uint32_t c : before[k]) {
            order.emplace_back(PacketSpace::FixedVars(cube(c)), c);
          }
          llvm::sort(order);
          for (auto [fixed, c] : order) {
            if (Empty(left)) {
              break;
            }
            left = bdd_apply(left, space.Match(cube(c)), bddop_diff);
          }
          all |= left;
        }
        reached = all;
      }
      return *reached;
    };
    // Without a witness, whether a packet reaches it at all is asked of the
    // earlier cubes that hold the least packet not yet taken (Uncovered()),
    // not of all those that meet it.
    auto uncovered = [&]() {
      std::vector<uint8_t> bits;
      for (size_t k = 0; k < own.size(); ++k) {
        if (!inside[k] && space.Uncovered(cube(own[k]), holders, bits)) {
          return true;
        }
      }
      return false;
    };
    // The gate of FL9003 (see below): the rule meets an earlier cube, and
    // at most kPartlyExact of them or most of its samples are taken. Those
    // met are counted only up to the bound unless the sets need them all.
    auto partly_gate = [&](size_t found, size_t drawn) {
      if (found * 2 <= drawn) {
        list_before();
        return met > 0;
      }
      if (!before.empty()) {
        return met > 0 && met <= kPartlyExact;
      }
      size_t count = 0;
      for (uint32_t e : own) {
        const PacketSpace::Literals &lit = cube(e);
        // Every key is 0: a bar of 1 ends the search.
        g.earlier.Search(expanded.rules[e], [&](uint32_t c) -> uint32_t {
          count += PacketSpace::MayOverlap(lit, cube(c)) ? 1 : 0;
          return count > kPartlyExact ? 1 : 0;
        });
        if (count > kPartlyExact) {
          return false;
        }
      }
      return count > 0;
    };
    bool reaches = !witnesses.empty() || uncovered();
    if (PacketSpace::Overflowed()) {
      stats.complete = false;
      break;
    }
    if (!reaches) {
      // Which earlier rules take its packets: pick a packet of the rule not
      // yet accounted for, find the rule that takes it (the first earlier
      // trapping rule that matches it), repeat. Each rule named takes at
      // least that packet; one alone means it covers the whole rule.
      std::vector<uint32_t> takers;
      // The first packet is the rule's least (what Pick() gives of its
      // set), the least of its expansions' least packets. When one cube of
      // the rule that takes it contains each expansion that has packets,
      // that rule alone takes them all, and no set is built: at 100k, most
      // of the 18,872 shadowed rules.
      std::vector<bool> empty(own.size(), false);
      std::optional<Packet> least = least_of(own.size(), [&](size_t k, std::vector<uint8_t> &bits) {
        empty[k] = !space.PickInCube(cube(own[k]), 0, bits); // seed 0: the least
        return !empty[k];
      });
      if (!least) {
        continue; // an empty rule is sema's contradiction report, not a shadow
      }
      Packet packet = std::move(*least);
      std::optional<uint32_t> first = first_taker(packet);
      auto held_whole = [&](size_t k) {
        return empty[k] || llvm::any_of(expansions[*first], [&](uint32_t c) {
                 return PacketSpace::CubeContains(cube(c), cube(own[k]));
               });
      };
      if (first && llvm::all_of(llvm::seq<size_t>(0, own.size()), held_whole)) {
        takers.push_back(*first);
        space.Decode(packet);
      } else {
        bdd left = build(i) & u;
        while (!Empty(left) && !PacketSpace::Overflowed()) {
          Packet p = space.Pick(left);
          std::optional<uint32_t> taker = first_taker(p);
          if (!taker) {
            break; // cannot happen while the model is consistent; report nothing
          }
          if (takers.empty()) {
            packet = std::move(p);
            space.Decode(packet);
          }
          takers.push_back(*taker);
          left &= !match_of(*taker);
        }
        if (!Empty(left)) {
          takers.clear();
        }
      }
      if (PacketSpace::Overflowed() || takers.empty()) {
        stats.complete = false;
        break;
      }
      uint32_t taker = takers.front(); // takes the example packet
      llvm::sort(takers);
      std::vector<std::pair<ir::Layer, Field>> shown = fields_of(i);
      AddFields(shown, fields_of(taker));
      std::string by = RuleList(policy, takers);
      std::string what = ir::RuleTitle(rule);
      std::string message =
          takers.size() == 1
              ? what + " is shadowed: " + by + " before it takes every packet it matches"
              : what + " is shadowed: " + by + " together take every packet it matches";
      diag::Builder b = diags.Report(diag::Kind::kShadowedRule, rule.range.Start, message);
      b.Range(rule.range);
      for (size_t k = 0; k < takers.size() && k < 3; ++k) {
        const ir::Rule &t = policy.rules[takers[k]];
        b.AddNote(t.range.Start, ir::RuleTitle(t) + " is here");
      }
      b.AddNote(llvm::SMLoc(), "for example, " + space.Format(packet, shown) + " is taken by " +
                                   ir::RuleTitle(policy.rules[taker]));
      ++stats.shadowed;
      continue;
    }
    // FL9003: earlier rules take most of its packets (counted as header
    // values in the model, within the universe). Exact, but only tried when
    // the rule meets few earlier cubes or most of its sample packets are
    // taken: a rule most of whose samples get through is not mostly taken
    // (kPartlyGate in docs/architecture.md, "Analysis").
    if (options.partly_percent > 0 && partly_gate(witnesses.size(), tried) &&
        100.0 * taken_bound(own, before_lists()) >= options.partly_percent - 1e-9) {
      bdd all = build(i) & u;
      const bdd &left_over = survives();
      double total = bdd_satcount(all), left = bdd_satcount(left_over);
      double percent = total > 0 ? 100.0 * (total - left) / total : 0;
      if (!std::isfinite(total)) {
        // Counts over more than 1,023 variables: their ratio, by logarithms.
        percent = Empty(left_over)
                      ? 100.0
                      : 100.0 * (1 - std::exp2(bdd_satcountln(left_over) - bdd_satcountln(all)));
      }
      if (percent >= options.partly_percent && !PacketSpace::Overflowed()) {
        Packet lost = space.Pick(bdd_apply(all, left_over, bddop_diff));
        std::optional<uint32_t> taker = first_taker(lost);
        if (taker) {
          space.Decode(lost);
          Packet kept_packet = space.Pick(left_over);
          space.Decode(kept_packet);
          std::vector<std::pair<ir::Layer, Field>> shown = fields_of(i);
          AddFields(shown, fields_of(*taker));
          const ir::Rule &t = policy.rules[*taker];
          char share[32];
          snprintf(share, sizeof share, "%.4g%%", percent);
          diags
              .Report(diag::Kind::kPartlyShadowed, rule.range.Start,
                      ir::RuleTitle(rule) + " is mostly shadowed: earlier rules take " + share +
                          " of the packets it matches (counted by header values)")
              .Range(rule.range)
              .AddNote(t.range.Start,
                       ir::RuleTitle(t) + " takes some, for example " + space.Format(lost, shown))
              .AddNote(llvm::SMLoc(),
                       "it still takes, for example, " + space.Format(kept_packet, shown));
          ++stats.partly;
        }
      }
    }
    if (options.redundant && !rule.pass) {
      ReportRedundant(i, g, witnesses, inside, holders);
    }
    if (!rule.pass) { // a pass rule copies and lets the packet go on
      for (uint32_t e : expansions[i]) {
        g.earlier.Insert(e, expanded.rules[e]);
      }
    }
    if (PacketSpace::Overflowed()) {
      stats.complete = false;
      break;
    }
  }
  if (options.progress) {
    options.progress(policy.rules.size(), policy.rules.size());
  }
  return stats;
}

void ReportUnusedObjects(const ir::Policy &policy, unsigned root_buffer, diag::Engine &diags) {
  std::vector<bool> used[3] = {std::vector<bool>(policy.queues.size()),
                               std::vector<bool>(policy.counters.size()),
                               std::vector<bool>(policy.handles.size())};
  for (const ir::Rule &rule : policy.rules) {
    for (const ir::Action &a : rule.actions) {
      int table = a.kind == ast::ActionKind::kSteer    ? 0
                  : a.kind == ast::ActionKind::kCount  ? 1
                  : a.kind == ast::ActionKind::kHandle ? 2
                                                       : -1;
      if (table >= 0 && a.operand < used[table].size()) {
        used[table][a.operand] = true;
      }
    }
  }
  const std::vector<ir::Object> *objects[3] = {&policy.queues, &policy.counters, &policy.handles};
  const char *const kWhat[3] = {"queue", "counter", "handle"};
  const char *const kNeed[3] = {"no rule steers to it", "no rule counts into it",
                                "no rule uses it"};
  for (int table = 0; table < 3; ++table) {
    for (size_t i = 0; i < objects[table]->size(); ++i) {
      if (used[table][i]) {
        continue;
      }
      const ir::Object &o = (*objects[table])[i];
      if (diags.sources().FindBufferContainingLoc(o.range.Start) != root_buffer) {
        continue;
      }
      diags
          .Report(diag::Kind::kUnusedObject, o.range.Start,
                  std::string(kWhat[table]) + " '" + o.name + "' is declared but " + kNeed[table])
          .Range(o.range);
    }
  }
}

} // namespace flowc::analysis
