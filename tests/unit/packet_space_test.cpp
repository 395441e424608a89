// Unit tests for the packet model's set-free answers: packets picked from a
// cube within Universe(), and point queries of the overlap index.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "compiler/analysis/packet_space.h"
#include "compiler/expand/expand.h"
#include "compiler/expand/overlap_index.h"
#include "tests/unit/policy_fixture.h"

namespace flowc {
namespace {

using analysis::PacketSpace;

// Rules over every kind of header, so that Universe() has its prerequisites
// (ethertypes, IP protocols, the VXLAN and MPLS ports) to say no with.
constexpr const char *kPolicy = R"(
queue q0, q1;
ingress port 1 {
  rule a: ipv4 src 10.0.0.0/8, tcp dst 80 -> steer q0;
  rule b: ipv6 dst 2001:db8::/32, udp src 53 -> steer q1;
  rule c: udp dst 4789 -> drop;
  rule d: ipv4 dst 192.168.1.0/24, vxlan vni 7, inner { ipv4 src 1.2.3.4 } -> steer q1;
  rule e: ipv4, gre protocol 0x8847, mpls label 100 -> steer q0;
  rule f: ipv6, esp spi 9 -> drop;
  rule g: eth type 0x86dd -> steer q0;
  rule h: ipv4 proto 17 -> steer q1;
  rule i: tcp src 1000..2000 -> drop;
  rule j: udp dst 6635, mpls label 5 -> steer q1;
  rule k: ipv4 src 10.0.0.0/9 -> steer q0;
  rule l: ipv4 src 10.128.0.0/9 -> steer q1;
}
)";

struct Space {
  Checked checked;
  expand::Expanded expanded;
  std::unique_ptr<PacketSpace> space;

  explicit Space(int max_nodes = 1 << 20) : checked(CheckSource(kPolicy)) {
    EXPECT_TRUE(checked.diags.empty()) << checked.diags.front().second;
    std::optional<target::Target> target = GenericTarget();
    if (!target) {
      return;
    }
    llvm::SourceMgr sources;
    Collect collect;
    diag::Engine engine(sources, {}, collect);
    expanded = expand::Expand(checked.policy, *target, {}, engine);
    space = std::make_unique<PacketSpace>(expanded.rules, max_nodes);
  }

  /// Calls `fn(a, b, cube)` for every rule (a == b) and every meet of two
  /// rules whose cubes may overlap.
  template <typename Fn> void ForEachMeet(Fn &&fn) const {
    for (size_t a = 0; a < expanded.rules.size(); ++a) {
      for (size_t b = a; b < expanded.rules.size(); ++b) {
        const PacketSpace::Literals &la = space->CubeOfRule(a), &lb = space->CubeOfRule(b);
        if (PacketSpace::MayOverlap(la, lb)) {
          fn(a, b, PacketSpace::Meet(la, lb));
        }
      }
    }
  }

  /// Whether the packet `bits` is one of Universe()'s, by walking its BDD.
  bool Exists(const std::vector<uint8_t> &bits) const {
    bdd node = space->Universe();
    while (node != bddtrue && node != bddfalse) {
      node = bits[static_cast<size_t>(bdd_var(node))] != 0 ? bdd_high(node) : bdd_low(node);
    }
    return node == bddtrue;
  }
};

TEST(PacketSpace, PickInCubeFindsAPacketExactlyWhenTheSetHasOne) {
  Space s;
  ASSERT_TRUE(s.space);
  const auto &rules = s.expanded.rules;
  ASSERT_GE(rules.size(), 9u);
  unsigned empty = 0, found = 0;
  // Every rule and every meet of two: meets of IPv4 and IPv6 rules, or of
  // a VXLAN rule and a UDP port other than 4789, are cubes no packet has.
  s.ForEachMeet([&](size_t a, size_t b, const PacketSpace::Literals &cube) {
    bool exists = (s.space->Match(cube) & s.space->Universe()) != bddfalse;
    for (uint64_t seed = 0; seed < 4; ++seed) {
      std::vector<uint8_t> bits;
      bool picked = s.space->PickInCube(cube, seed, bits);
      ASSERT_EQ(picked, exists) << a << " " << b << " seed " << seed;
      if (picked) {
        EXPECT_TRUE(PacketSpace::InCube(cube, bits)) << a << " " << b << " seed " << seed;
        EXPECT_TRUE(s.Exists(bits)) << a << " " << b << " seed " << seed;
      }
    }
    (exists ? found : empty) += 1;
  });
  // Both answers are exercised.
  EXPECT_GT(empty, 0u);
  EXPECT_GT(found, 0u);
}

TEST(PacketSpace, PointQueriesFindEveryRuleThatHoldsThePacket) {
  Space s;
  ASSERT_TRUE(s.space);
  const auto &rules = s.expanded.rules;
  expand::OverlapIndex index;
  for (const expand::TernaryRule &r : rules) {
    index.Plan(r);
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    index.Insert(static_cast<uint32_t>(i), rules[i]);
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    for (uint64_t seed = 0; seed < 8; ++seed) {
      std::vector<uint8_t> bits;
      ASSERT_TRUE(s.space->PickInCube(s.space->CubeOfRule(i), seed, bits)) << i;
      std::vector<bool> candidate(rules.size(), false);
      index.Query(s.space->PointOf(bits), [&](uint32_t id) { candidate[id] = true; });
      EXPECT_TRUE(candidate[i]) << i << " seed " << seed;
      for (size_t j = 0; j < rules.size(); ++j) {
        if (PacketSpace::InCube(s.space->CubeOfRule(j), bits)) {
          EXPECT_TRUE(candidate[j]) << "rule " << j << " holds a packet of " << i;
        }
      }
      // The same ids, in the same order, without building the point's rule.
      std::vector<uint32_t> by_rule, by_point;
      index.Query(s.space->PointOf(bits), [&](uint32_t id) { by_rule.push_back(id); });
      s.space->QueryPoint(index, bits, [&](uint32_t id) { by_point.push_back(id); });
      EXPECT_EQ(by_rule, by_point) << i << " seed " << seed;
      // Bounded the same way.
      by_rule.clear();
      by_point.clear();
      auto below = static_cast<uint32_t>(i);
      index.Query(
          s.space->PointOf(bits), [&](uint32_t id) { by_rule.push_back(id); }, below);
      s.space->QueryPoint(
          index, bits, [&](uint32_t id) { by_point.push_back(id); }, below);
      EXPECT_EQ(by_rule, by_point) << i << " seed " << seed;
      EXPECT_TRUE(llvm::all_of(by_point, [&](uint32_t id) { return id < below; }));
    }
  }
}

TEST(PacketSpace, PackedPacketsAnswerInCubeAsTheirBits) {
  Space s;
  ASSERT_TRUE(s.space);
  size_t in = 0, out = 0;
  s.ForEachMeet([&](size_t a, size_t b, const PacketSpace::Literals &cube) {
    for (uint64_t seed = 0; seed < 12; ++seed) {
      std::vector<uint8_t> bits;
      if (!s.space->PickInCube(cube, seed, bits)) {
        continue;
      }
      PacketSpace::PackedBits packed;
      PacketSpace::Pack(bits, packed);
      for (size_t j = 0; j < s.expanded.rules.size(); ++j) {
        const PacketSpace::Literals &other = s.space->CubeOfRule(j);
        bool held = PacketSpace::InCube(other, bits);
        EXPECT_EQ(PacketSpace::InCube(other, packed), held) << a << " " << b << " rule " << j;
        ++(held ? in : out);
      }
    }
  });
  // Both answers are exercised.
  EXPECT_GT(in, 0u);
  EXPECT_GT(out, 0u);
}

// Uncovered() against the sets: for each rule's cube and meet of two, and
// several sets of other rules, it says whether the cube has a packet none of
// them holds exactly when the BDD difference is not empty, and gives the
// least such packet, Pick() of the difference. Rules k and l cover rule a
// only together, so some answers take more than one round.
TEST(PacketSpace, UncoveredAgreesWithTheSetDifference) {
  Space s;
  ASSERT_TRUE(s.space);
  const auto &rules = s.expanded.rules;
  unsigned uncovered = 0, covered = 0, rounds_over_one = 0;
  s.ForEachMeet([&](size_t a, size_t b, const PacketSpace::Literals &cube) {
    for (unsigned pick = 0; pick < 4; ++pick) {
      // Which other rules count: all, or about two in three.
      auto counts = [&](size_t j) {
        return j != a && j != b && (pick == 0 || (j + a + pick) % 3 != 0);
      };
      bdd diff = s.space->Match(cube) & s.space->Universe();
      for (size_t j = 0; j < rules.size(); ++j) {
        if (counts(j)) {
          diff = bdd_apply(diff, s.space->Match(s.space->CubeOfRule(j)), bddop_diff);
        }
      }
      unsigned rounds = 0;
      std::vector<uint8_t> bits;
      bool found = s.space->Uncovered(
          cube,
          [&](const std::vector<uint8_t> &at, std::vector<const PacketSpace::Literals *> &out) {
            ++rounds;
            for (size_t j = 0; j < rules.size(); ++j) {
              if (counts(j) && PacketSpace::InCube(s.space->CubeOfRule(j), at)) {
                out.push_back(&s.space->CubeOfRule(j));
              }
            }
          },
          bits);
      ASSERT_EQ(found, diff != bddfalse) << a << " " << b << " pick " << pick;
      if (found) {
        EXPECT_EQ(bits, s.space->Pick(diff).bits) << a << " " << b << " pick " << pick;
      }
      (found ? uncovered : covered) += 1;
      rounds_over_one += !found && rounds > 1;
    }
  });
  EXPECT_GT(uncovered, 0u);
  EXPECT_GT(covered, 0u);
  EXPECT_GT(rounds_over_one, 0u);
}

// Past the node limit BuDDy makes no new nodes (a new cube's set comes out
// false), so taking a holder's cube out of a set changes nothing and the
// same packet comes back: Uncovered() must stop there, with Overflowed()
// set, instead of asking about that packet forever.
TEST(PacketSpace, UncoveredStopsPastTheNodeLimit) {
  Space s(1 << 17); // the least limit above the table BuDDy starts with
  ASSERT_TRUE(s.space);
  const PacketSpace::Literals &cube = s.space->CubeOfRule(0);
  // The rule's set is made before the limit, so its nodes still exist.
  bdd whole = s.space->Match(cube), set = whole & s.space->Universe();
  ASSERT_NE(set, bddfalse);
  const auto vars = static_cast<uint32_t>(bdd_varnum());
  uint64_t state = 1;
  bdd fill = bddfalse;
  for (int k = 0; k < 1000000 && !PacketSpace::Overflowed(); ++k) {
    PacketSpace::Literals random;
    for (uint32_t w = 0; w * 64 < vars; ++w) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      uint64_t care = state & (state >> 7) & (state >> 13); // about one bit in eight
      if (w * 64 + 64 > vars) {
        care &= (uint64_t{1} << (vars - w * 64)) - 1;
      }
      random.push_back({w, care, state >> 3});
    }
    fill |= s.space->Match(random);
  }
  ASSERT_TRUE(PacketSpace::Overflowed());
  // Each packet asked about is held by a cube of that packet alone, which
  // cannot be made now.
  unsigned rounds = 0;
  std::vector<uint8_t> bits;
  PacketSpace::Literals point;
  bool found = s.space->Uncovered(
      cube,
      [&](const std::vector<uint8_t> &at, std::vector<const PacketSpace::Literals *> &out) {
        if (++rounds > 100) {
          return; // no holder: ends the loop for a broken Uncovered()
        }
        point.clear();
        for (uint32_t w = 0; w * 64 < vars; ++w) {
          uint64_t care = 0, value = 0;
          for (uint32_t b = 0; b < 64 && w * 64 + b < vars; ++b) {
            care |= uint64_t{1} << b;
            value |= uint64_t{at[w * 64 + b]} << b;
          }
          point.push_back({w, care, value});
        }
        out.push_back(&point);
      },
      bits);
  EXPECT_FALSE(found);
  EXPECT_LE(rounds, 2u);
}

// FreeOfUniverse() against the sets: for a rule's cube K and its meet M with
// another rule, |M∧U| / |K∧U| is the same share counted on the universe's
// variables alone, halved for each variable outside them that M fixes and K
// does not. FL9003's bound (analysis.cpp, TakenBound) relies on it.
TEST(PacketSpace, VariablesFreeOfTheUniverseHalveTheShareExactly) {
  Space s;
  ASSERT_TRUE(s.space);
  const std::vector<uint64_t> &free = s.space->FreeOfUniverse();
  auto on_universe = [&](const PacketSpace::Literals &cube) {
    PacketSpace::Literals on;
    for (const PacketSpace::CubeWord &w : cube) {
      uint64_t care = w.care & ~(w.word < free.size() ? free[w.word] : 0);
      on.push_back({w.word, care, w.value & care});
    }
    return bdd_satcount(s.space->Match(on) & s.space->Universe());
  };
  auto free_fixed = [&](const PacketSpace::Literals &cube) {
    int n = 0;
    for (const PacketSpace::CubeWord &w : cube) {
      n += llvm::countPopulation(w.care & (w.word < free.size() ? free[w.word] : 0));
    }
    return n;
  };
  unsigned shares = 0, partial = 0;
  bool some_free = false, some_bound = false;
  for (uint64_t word : free) {
    some_free = some_free || word != 0;
    some_bound = some_bound || word != ~uint64_t{0};
  }
  EXPECT_TRUE(some_free);
  EXPECT_TRUE(some_bound);
  s.ForEachMeet([&](size_t a, size_t b, const PacketSpace::Literals &meet) {
    const PacketSpace::Literals &outer = s.space->CubeOfRule(a);
    double whole = bdd_satcount(s.space->Match(outer) & s.space->Universe());
    if (whole == 0) {
      return;
    }
    double exact = bdd_satcount(s.space->Match(meet) & s.space->Universe()) / whole;
    double split = on_universe(meet) / on_universe(outer) *
                   std::ldexp(1.0, free_fixed(outer) - free_fixed(meet));
    EXPECT_DOUBLE_EQ(exact, split) << a << " " << b;
    ++shares;
    partial += exact > 0 && exact < 1;
  });
  EXPECT_GT(shares, 20u);
  EXPECT_GT(partial, 5u);
}

} // namespace
} // namespace flowc
