// Unit tests for the overlap index: every rule that overlaps a query is
// among its candidates, once, whatever the mix of prefix lengths.
#include <gtest/gtest.h>

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

TEST(OverlapIndex, CandidatesHoldEveryOverlappingRuleOnce) {
  std::mt19937 rng(7);
  // Few distinct addresses under three /8s, so that prefixes nest often and
  // some prefix has many rules under it (the index's large maps) while
  // others have a few (its small ones).
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

} // namespace
} // namespace flowc::expand
