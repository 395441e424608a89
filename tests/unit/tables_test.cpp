// Unit tests for the model of mlx5's auto-grouped flow tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "compiler/target/tables.h"

namespace flowc::target {
namespace {

using Slot = TableFill::Slot;

TEST(TableFill, SixGroupsOfASeventhThenSingleEntries) {
  // mlx5's table: 65536 entries, 6 groups of 65536 / 7 = 9362.
  TableFill t(65536, 6);
  for (uint32_t m = 0; m < 6; ++m) {
    EXPECT_EQ(t.Add(m), Slot::kGroup);
  }
  // 56172 entries in groups; a seventh mask gets one entry per rule.
  for (unsigned i = 0; i < 65536 - 6 * 9362; ++i) {
    ASSERT_EQ(t.Add(6 + i), Slot::kSingle) << i;
  }
  EXPECT_EQ(t.Add(100000), Slot::kFull);
  // A mask with room in its group still fits.
  EXPECT_EQ(t.Add(3), Slot::kGroup);
  EXPECT_EQ(t.rules(), 6u + 9364u + 1u);
}

TEST(TableFill, OneMaskFillsItsGroupsAndThenSingles) {
  TableFill t(14, 6); // groups of 2
  unsigned group = 0, single = 0, full = 0;
  for (unsigned i = 0; i < 20; ++i) {
    switch (t.Add(0)) {
    case Slot::kGroup:
      ++group;
      break;
    case Slot::kSingle:
      ++single;
      break;
    case Slot::kFull:
      ++full;
      break;
    }
  }
  // 6 groups of 2 (12 rules, 6 of them making a group), then 2 singles.
  EXPECT_EQ(group, 12u);
  EXPECT_EQ(single, 2u);
  EXPECT_EQ(full, 6u);
}

TEST(TableFill, SafeRulesFitWhateverTheMasks) {
  for (unsigned entries : {7u, 14u, 100u, 65536u}) {
    uint64_t safe = TableFill::SafeRules(entries, 6);
    TableFill t(entries, 6); // every rule a new mask: the worst case
    for (uint32_t m = 0; m < safe; ++m) {
      ASSERT_NE(t.Add(m), Slot::kFull) << entries << " " << m;
    }
    EXPECT_EQ(t.Add(static_cast<uint32_t>(safe)), Slot::kFull) << entries;
  }
  EXPECT_EQ(TableFill::SafeRules(65536, 6), 9370u);
}

TEST(TableFill, FitsSaysWhetherAddFindsRoom) {
  TableFill t(14, 6); // groups of 2
  for (uint32_t m = 0; m < 6; ++m) {
    ASSERT_TRUE(t.Fits(m));
    t.Add(m); // 12 entries in groups, each with one free
  }
  EXPECT_TRUE(t.Fits(7)); // a single entry
  t.Add(7);
  t.Add(8);
  // Every entry is taken; masks 0..5 still have room in their groups.
  EXPECT_FALSE(t.Fits(9));
  EXPECT_EQ(t.Add(9), Slot::kFull);
  EXPECT_TRUE(t.Fits(5));
  EXPECT_EQ(t.Add(5), Slot::kGroup);
  EXPECT_FALSE(t.Fits(5));
}

TEST(TableFill, SmallTablesMakeOneEntryGroups) {
  TableFill t(3, 6); // 3 / 7 = 0: every group has one entry
  EXPECT_EQ(t.Add(0), Slot::kSingle);
  EXPECT_EQ(t.Add(0), Slot::kSingle);
  EXPECT_EQ(t.Add(1), Slot::kSingle);
  EXPECT_EQ(t.Add(2), Slot::kFull);
}

TEST(TableFill, MostRulesCountsBigGroupsAndSingleEntries) {
  // 14 entries, 6 groups: big groups of 2 and 2 single entries per table.
  EXPECT_EQ(TableFill::MostRules(14, 6, 2, {30}), 28u); // one mask fills both tables
  EXPECT_EQ(TableFill::MostRules(14, 6, 2, std::vector<uint64_t>(40, 1)), 16u);
  EXPECT_EQ(TableFill::MostRules(14, 6, 2, {3, 3, 1}), 7u); // all of them
  // 4 whole groups (two of each mask of 5), the 2 largest remainders, and
  // 2 single entries: 8 + 1 + 1 + 2.
  EXPECT_EQ(TableFill::MostRules(14, 6, 1, {5, 5, 1, 1, 1, 1, 1, 1, 1}), 12u);
  EXPECT_EQ(TableFill::MostRules(3, 6, 4, std::vector<uint64_t>(20, 1)), 12u);
}

// No way of filling the tables places more rules than the bound: here each
// rule goes to the first table with room, most frequent mask first, which
// places exactly as many when every mask is its own (the bound is tight).
TEST(TableFill, MostRulesBoundsEveryFill) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    const unsigned entries = 8 + rng() % 40, tables = 1 + rng() % 4;
    std::vector<uint64_t> per_mask(1 + rng() % 30);
    bool distinct = round % 2 == 0;
    for (uint64_t &count : per_mask) {
      count = distinct ? 1 : rng() % 25;
    }
    std::vector<uint32_t> order;
    for (uint32_t m = 0; m < per_mask.size(); ++m) {
      order.insert(order.end(), per_mask[m], m);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return per_mask[a] > per_mask[b]; });
    std::vector<TableFill> fills(tables, TableFill(entries, 6));
    uint64_t placed = 0;
    for (uint32_t m : order) {
      for (TableFill &t : fills) {
        if (t.Add(m) != Slot::kFull) {
          ++placed;
          break;
        }
      }
    }
    uint64_t most = TableFill::MostRules(entries, 6, tables, per_mask);
    EXPECT_LE(placed, most) << "round " << round;
    if (distinct) {
      EXPECT_EQ(placed, most) << "round " << round;
    }
  }
}

TEST(MaskKey, ValuesAndActionsDoNotCountButMasksDo) {
  emit::HwRule a, b, c;
  for (emit::HwRule *r : {&a, &b, &c}) {
    r->specs.push_back(emit::MakeSpec(emit::SpecKind::kEth));
    r->specs.push_back(emit::MakeSpec(emit::SpecKind::kIpv4));
  }
  a.specs[1].mask[4] = b.specs[1].mask[4] = c.specs[1].mask[4] = 0xff;
  a.specs[1].val[4] = 10;
  b.specs[1].val[4] = 11;
  b.specs.push_back(emit::MakeSpec(emit::SpecKind::kActionDrop));
  c.specs[1].mask[5] = 0xff;
  EXPECT_EQ(MaskKey(a), MaskKey(b));
  EXPECT_NE(MaskKey(a), MaskKey(c));
  // An ETH spec without a mask adds nothing.
  emit::HwRule d = a;
  d.specs.erase(d.specs.begin());
  EXPECT_EQ(MaskKey(a), MaskKey(d));
}

} // namespace
} // namespace flowc::target
