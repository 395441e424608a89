// Unit tests for the overlap index: every rule that overlaps a query is
// among its candidates, once, whatever the mix of prefix lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "compiler/expand/overlap_index.h"

namespace flowc::expand {
namespace {

using llvm::APInt;

/// A rule on IPv4 source and destination prefixes and, when `port` is not
/// negative, an exact TCP destination port.
TernaryRule Rule(uint32_t src, unsigned src_bits, uint32_t dst, unsigned dst_bits, int port) {
  TernaryRule r;
  r.source = 0;
  auto add = [&](Field field, uint32_t value, unsigned bits, unsigned width) {
    if (bits == 0) {
      return; // no zero masks
    }
    APInt mask = APInt::getHighBitsSet(width, bits);
    r.matches.push_back({ir::Layer::kOuter, field, APInt(width, value) & mask, mask});
  };
  add(Field::kIpv4Src, src, src_bits, 32);
  add(Field::kIpv4Dst, dst, dst_bits, 32);
  if (port >= 0) {
    add(Field::kTcpDst, static_cast<uint32_t>(port), 16, 16);
  }
  return r;
}

bool Overlap(const TernaryRule &a, const TernaryRule &b) {
  for (const TernaryMatch &x : a.matches) {
    for (const TernaryMatch &y : b.matches) {
      if (x.layer == y.layer && x.field == y.field &&
          !((x.value ^ y.value) & x.mask & y.mask).isZero()) {
        return false;
      }
    }
  }
  return true;
}

/// 600 rules on nested IPv4 prefixes, some with a TCP port: some prefix
/// has many rules under it (the index's large maps), others a few (its
/// small ones).
std::vector<TernaryRule> NestedRules(std::mt19937 &rng) {
  // Few distinct addresses under three /8s, so that prefixes nest often.
  // Octets at both ends of their range: prefixes of all-zero and all-one
  // low bits are the ends of the index's range scans.
  static const uint32_t kOctets[] = {0, 1, 128, 255};
  auto address = [&]() {
    return (static_cast<uint32_t>(rng() % 3 + 10) << 24) | kOctets[rng() % 4] << 16 |
           kOctets[rng() % 4] << 8 | kOctets[rng() % 4];
  };
  auto length = [&]() {
    static const unsigned kLengths[] = {0, 8, 12, 16, 20, 24, 28, 32};
    return kLengths[rng() % 8];
  };
  std::vector<TernaryRule> rules;
  for (int i = 0; i < 600; ++i) {
    rules.push_back(Rule(address(), length(), address(), length(),
                         rng() % 3 == 0 ? static_cast<int>(rng() % 4) : -1));
  }
  return rules;
}

TEST(OverlapIndex, CandidatesHoldEveryOverlappingRuleOnce) {
  std::mt19937 rng(7);
  std::vector<TernaryRule> rules = NestedRules(rng);
  OverlapIndex index;
  for (const TernaryRule &r : rules) {
    index.Plan(r);
  }
  // Queries between inserts too: the index grows from small to large maps
  // while it is asked.
  for (size_t i = 0; i < rules.size(); ++i) {
    std::vector<int> seen(i, 0);
    index.Query(rules[i], [&](uint32_t id) {
      ASSERT_LT(id, i);
      ++seen[id];
    });
    for (size_t j = 0; j < i; ++j) {
      ASSERT_LE(seen[j], 1) << i << " " << j;
      if (Overlap(rules[i], rules[j])) {
        ASSERT_EQ(seen[j], 1) << "rule " << j << " overlaps " << i;
      }
    }
    index.Insert(static_cast<uint32_t>(i), rules[i]);
  }
  EXPECT_EQ(index.size(), rules.size());
}

// Bounds on the id and the key: every overlapping rule with an id below the
// bound and a key at least the minimum is a candidate, once, and no id at or
// past the bound is; whether the ids came in ascending order (each bucket's
// scan stops early) or not (each id is filtered).
TEST(OverlapIndex, BoundedQueriesKeepEveryRuleInBounds) {
  for (bool ascending : {true, false}) {
    std::mt19937 rng(11);
    std::vector<TernaryRule> rules = NestedRules(rng);
    std::vector<uint32_t> order(rules.size()), key(rules.size());
    for (uint32_t i = 0; i < order.size(); ++i) {
      order[i] = i;
      key[i] = rng() % 64;
    }
    if (!ascending) {
      std::shuffle(order.begin(), order.end(), rng);
    }
    OverlapIndex index;
    for (const TernaryRule &r : rules) {
      index.Plan(r);
    }
    for (uint32_t id : order) {
      index.Insert(id, rules[id], key[id]);
    }
    for (size_t q = 0; q < rules.size(); ++q) {
      auto below = static_cast<uint32_t>(rng() % (rules.size() + 1));
      auto min_key = static_cast<uint32_t>(rng() % 72);
      std::vector<int> seen(rules.size(), 0);
      index.Query(
          rules[q],
          [&](uint32_t id) {
            ASSERT_LT(id, below);
            ++seen[id];
          },
          below, min_key);
      for (size_t j = 0; j < rules.size(); ++j) {
        ASSERT_LE(seen[j], 1) << q << " " << j;
        if (j < below && key[j] >= min_key && Overlap(rules[q], rules[j])) {
          ASSERT_EQ(seen[j], 1) << "rule " << j << " overlaps " << q << ", ascending " << ascending;
        }
      }
    }
  }
}

// InsertAll() (two threads past a few thousand rules) answers every query
// as one Insert() per rule does, in the same order, then and after more
// single inserts (its last prefixes and paths are kept for them).
TEST(OverlapIndex, InsertAllAnswersAsInsert) {
  std::mt19937 rng(5);
  std::vector<TernaryRule> rules;
  for (int round = 0; round < 10; ++round) {
    std::vector<TernaryRule> more = NestedRules(rng);
    rules.insert(rules.end(), more.begin(), more.end());
  }
  OverlapIndex one_by_one, at_once;
  std::vector<OverlapIndex::Item> items;
  size_t bulk = rules.size() - 100;
  for (const TernaryRule &r : rules) {
    one_by_one.Plan(r);
    at_once.Plan(r);
  }
  for (uint32_t i = 0; i < rules.size(); ++i) {
    uint32_t key = rng() % 64;
    one_by_one.Insert(i, rules[i], key);
    if (i < bulk) {
      items.push_back({i, &rules[i], key});
    } else {
      if (i == bulk) {
        at_once.InsertAll(items);
      }
      at_once.Insert(i, rules[i], key);
    }
  }
  ASSERT_GT(items.size(), 4096u);
  EXPECT_EQ(at_once.size(), one_by_one.size());
  for (size_t q = 0; q < rules.size(); q += 7) {
    auto below = static_cast<uint32_t>(rng() % (rules.size() + 1));
    auto min_key = static_cast<uint32_t>(rng() % 72);
    std::vector<uint32_t> a, b;
    one_by_one.Query(rules[q], [&](uint32_t id) { a.push_back(id); }, below, min_key);
    at_once.Query(rules[q], [&](uint32_t id) { b.push_back(id); }, below, min_key);
    ASSERT_EQ(a, b) << "query " << q;
  }
}

// A search for the largest key among the rules that overlap a query, raising
// its bar as it finds larger ones (as priority assignment does), finds the
// same largest key as testing every rule.
TEST(OverlapIndex, SearchFindsTheLargestKey) {
  std::mt19937 rng(5);
  std::vector<TernaryRule> rules = NestedRules(rng);
  std::vector<uint32_t> key(rules.size());
  OverlapIndex index;
  for (const TernaryRule &r : rules) {
    index.Plan(r);
  }
  // The bar skips groups: fewer rules are asked than a plain query lists.
  uint64_t asked = 0, listed = 0;
  for (size_t i = 0; i < rules.size(); ++i) {
    uint32_t best = 0, want = 0;
    index.Query(rules[i], [&](uint32_t) { ++listed; });
    index.Search(rules[i], [&](uint32_t j) {
      ++asked;
      if (key[j] > best && Overlap(rules[i], rules[j])) {
        best = key[j];
      }
      return best + 1;
    });
    for (size_t j = 0; j < i; ++j) {
      if (Overlap(rules[i], rules[j])) {
        want = std::max(want, key[j]);
      }
    }
    ASSERT_EQ(best, want) << "rule " << i;
    key[i] = static_cast<uint32_t>(rng() % 100) + 1;
    index.Insert(static_cast<uint32_t>(i), rules[i], key[i]);
  }
  EXPECT_LT(asked, listed);
}

} // namespace
} // namespace flowc::expand
