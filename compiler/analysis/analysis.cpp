#include "compiler/analysis/analysis.h"

#include <cstdio>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "compiler/analysis/packet_space.h"
#include "compiler/expand/expand.h"
#include "compiler/target/profile.h"
#include "llvm/ADT/STLExtras.h"

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

/// False only when the two expanded rules cannot match one packet because
/// a field both match has different values under both masks.
bool MayOverlap(const expand::TernaryRule &a, const expand::TernaryRule &b) {
  for (const expand::TernaryMatch &x : a.matches) {
    for (const expand::TernaryMatch &y : b.matches) {
      if (x.layer == y.layer && x.field == y.field &&
          !((x.value ^ y.value) & x.mask & y.mask).isZero()) {
        return false;
      }
    }
  }
  return true;
}

void AddFields(std::vector<std::pair<ir::Layer, Field>> &to,
               const std::vector<std::pair<ir::Layer, Field>> &from) {
  for (const auto &f : from) {
    if (!llvm::is_contained(to, f)) {
      to.push_back(f);
    }
  }
}

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
  // Rule BDDs are built when needed and kept only for rules that take
  // another's packets: keeping every one alive makes each garbage collection
  // walk them all.
  std::vector<std::vector<const expand::TernaryRule *>> expansions(policy.rules.size());
  for (const expand::TernaryRule &t : expanded.rules) {
    expansions[t.source].push_back(&t);
  }
  auto build = [&](uint32_t i) {
    bdd m = bddfalse;
    for (const expand::TernaryRule *t : expansions[i]) {
      m |= space.Match(*t);
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
    for (const expand::TernaryRule *t : expansions[i]) {
      for (const expand::TernaryMatch &m : t->matches) {
        if (!llvm::is_contained(fields, std::make_pair(m.layer, m.field))) {
          fields.push_back({m.layer, m.field});
        }
      }
    }
    return fields;
  };
  // Walk the rules in precedence order; `taken` is what the earlier trapping
  // rules of the same port and direction take.
  std::map<GroupKey, bdd> taken;
  std::map<GroupKey, std::vector<uint32_t>> earlier;
  // The rule that takes `p`: the first of `candidates` whose cube matches it.
  auto taker_of = [&](const std::vector<uint32_t> &candidates,
                      const Packet &p) -> std::optional<uint32_t> {
    for (uint32_t j : candidates) {
      if (llvm::any_of(expansions[j],
                       [&](const expand::TernaryRule *t) { return space.Contains(*t, p); })) {
        return j;
      }
    }
    return std::nullopt;
  };
  // The normal rules of each port and direction, in order, for FL9004.
  std::map<GroupKey, std::vector<uint32_t>> group_rules;
  for (uint32_t i = 0; i < policy.rules.size(); ++i) {
    const ir::Rule &r = policy.rules[i];
    if (r.kind == ast::RuleKind::kNormal) {
      group_rules[{r.direction, r.port}].push_back(i);
    }
  }
  auto may_overlap = [&](uint32_t a, uint32_t b) {
    for (const expand::TernaryRule *x : expansions[a]) {
      for (const expand::TernaryRule *y : expansions[b]) {
        if (MayOverlap(*x, *y)) {
          return true;
        }
      }
    }
    return false;
  };
  // FL9004: rule `i` (trapping, reached by `survives`) is redundant when the
  // rules after it would give every packet it takes the same outcome: each
  // such packet meets, before any other rule, a later trapping rule with the
  // same actions, and no `pass` rule on the way (it would add a copy).
  // Packets no later rule takes would go to a default rule or the kernel: a
  // different outcome.
  auto ReportRedundant = [&](uint32_t i, const bdd &survives) {
    const ir::Rule &rule = policy.rules[i];
    const std::vector<uint32_t> &group = group_rules[{rule.direction, rule.port}];
    auto at = std::lower_bound(group.begin(), group.end(), i);
    std::vector<std::pair<int, uint32_t>> outcome = Outcome(rule);
    // Cheap first: without a later rule of the same outcome that may overlap
    // it, some packet ends elsewhere.
    bool candidate = false;
    for (auto j = at + 1; j != group.end() && !candidate; ++j) {
      const ir::Rule &t = policy.rules[*j];
      candidate = !t.pass && !expansions[*j].empty() && Outcome(t) == outcome && may_overlap(i, *j);
    }
    if (!candidate) {
      return;
    }
    bdd rem = survives;
    std::vector<uint32_t> takers;
    for (auto j = at + 1; j != group.end(); ++j) {
      if (expansions[*j].empty() || !may_overlap(i, *j)) {
        continue;
      }
      const ir::Rule &t = policy.rules[*j];
      bdd part = rem & match_of(*j);
      if (PacketSpace::Overflowed()) {
        return;
      }
      if (Empty(part)) {
        continue;
      }
      if (t.pass || Outcome(t) != outcome) {
        return;
      }
      takers.push_back(*j);
      rem = bdd_apply(rem, match_of(*j), bddop_diff);
      if (Empty(rem)) {
        break;
      }
    }
    if (!Empty(rem) || takers.empty() || PacketSpace::Overflowed()) {
      return;
    }
    Packet example = space.Pick(survives);
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
    const ir::Rule &rule = policy.rules[i];
    if (rule.kind != ast::RuleKind::kNormal || expansions[i].empty()) {
      continue;
    }
    bdd match = build(i);
    ++stats.rules;
    GroupKey key{rule.direction, rule.port};
    auto [it, inserted] = taken.try_emplace(key, bddfalse);
    bdd &before = it->second;
    // The rule's packets that no earlier rule takes, among those that exist.
    bdd survives = bdd_apply(match, before, bddop_diff) & space.Universe();
    bool reached = !Empty(survives);
    if (PacketSpace::Overflowed()) {
      stats.complete = false;
      break;
    }
    if (!reached && Empty(match & space.Universe())) {
      continue; // an empty rule is sema's contradiction report, not a shadow
    }
    if (!reached) {
      // Which earlier rules take its packets: pick a packet of the rule not
      // yet accounted for, find the rule that takes it (the first earlier
      // trapping rule that matches it), repeat. Each rule named takes at
      // least that packet; one alone means it covers the whole rule.
      std::vector<uint32_t> takers;
      Packet packet;
      bdd left = match & space.Universe();
      while (!Empty(left) && !PacketSpace::Overflowed()) {
        Packet p = space.Pick(left);
        std::optional<uint32_t> taker;
        for (uint32_t j : earlier[key]) {
          if (llvm::any_of(expansions[j],
                           [&](const expand::TernaryRule *t) { return space.Contains(*t, p); })) {
            taker = j;
            break;
          }
        }
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
      if (PacketSpace::Overflowed() || takers.empty() || !Empty(left)) {
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
    if (options.partly_percent > 0 && !earlier[key].empty()) {
      // FL9003: earlier rules take most of its packets (counted as header
      // values in the model, within the universe).
      bdd all = match & space.Universe();
      double total = bdd_satcount(all), left = bdd_satcount(survives);
      double percent = total > 0 ? 100.0 * (total - left) / total : 0;
      if (percent >= options.partly_percent && !PacketSpace::Overflowed()) {
        Packet lost = space.Pick(bdd_apply(all, survives, bddop_diff));
        std::optional<uint32_t> taker = taker_of(earlier[key], lost);
        if (taker) {
          space.Decode(lost);
          Packet kept = space.Pick(survives);
          space.Decode(kept);
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
              .AddNote(llvm::SMLoc(), "it still takes, for example, " + space.Format(kept, shown));
          ++stats.partly;
        }
      }
    }
    if (options.redundant && !rule.pass) {
      ReportRedundant(i, survives);
    }
    if (!rule.pass) { // a pass rule copies and lets the packet go on
      before |= match;
      earlier[key].push_back(i);
    }
    if (PacketSpace::Overflowed()) {
      stats.complete = false;
      break;
    }
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
