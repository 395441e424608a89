// Unit tests for expansion, legalization and hardware priorities.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>

#include "compiler/emit/outputs.h"
#include "compiler/expand/expand.h"
#include "compiler/target/legalize.h"
#include "tests/unit/policy_fixture.h"

namespace flowc {
namespace {

using llvm::APInt;

/// A policy taken through sema, expand and legalize, with the sources and
/// diagnostics kept alive.
struct Built {
  llvm::SourceMgr sources;
  Collect collect;
  std::unique_ptr<diag::Engine> engine;
  sema::Program program;
  ir::Policy policy;
  expand::Expanded expanded;
  target::HwPolicy hw;

  Built(llvm::StringRef text, llvm::StringRef target_name, expand::Options eopts = {}) {
    unsigned id = sources.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "t.flow"),
                                             llvm::SMLoc());
    diag::Options dopts;
    dopts.max_errors = 0;
    engine = std::make_unique<diag::Engine>(sources, dopts, collect);
    program.modules.push_back(parse::Parse(id, *engine, {}));
    sema::Options sopts;
    sopts.default_stdlib_dirs = false;
    policy = sema::Check(program, sopts, *engine);
    auto t = target::MakeTarget(target_name, {});
    EXPECT_TRUE(bool(t));
    if (!t || engine->error_count() != 0) {
      llvm::consumeError(t.takeError());
      return;
    }
    expanded = expand::Expand(policy, *t, eopts, *engine);
    hw = target::Legalize(policy, expanded, *t, *engine);
  }

  std::vector<unsigned> Codes() const {
    std::vector<unsigned> out;
    for (auto &d : collect.seen) {
      out.push_back(d.first);
    }
    return out;
  }
  std::vector<unsigned> Priorities() const {
    std::vector<unsigned> out;
    for (const target::HwRuleInfo &r : hw.rules) {
      out.push_back(r.rule.priority);
    }
    return out;
  }
};

TEST(PrefixCover, IsExactAndMinimalOnEveryRangeOfAByte) {
  for (unsigned lo = 0; lo < 256; ++lo) {
    for (unsigned hi = lo; hi < 256; ++hi) {
      auto cover = expand::PrefixCover(APInt(8, lo), APInt(8, hi));
      std::vector<int> hits(256, 0);
      for (auto &[value, mask] : cover) {
        ASSERT_TRUE((value & ~mask).isZero());
        for (unsigned x = 0; x < 256; ++x) {
          if ((APInt(8, x) & mask) == value) {
            ++hits[x];
          }
        }
      }
      for (unsigned x = 0; x < 256; ++x) {
        ASSERT_EQ(hits[x], (x >= lo && x <= hi) ? 1 : 0) << lo << ".." << hi << " at " << x;
      }
      // The greedy cover is the minimal prefix cover: at most 2w-2 blocks.
      ASSERT_LE(cover.size(), 14u) << lo << ".." << hi;
    }
  }
  auto full = expand::PrefixCover(APInt(16, 0), APInt(16, 65535));
  ASSERT_EQ(full.size(), 1u);
  EXPECT_TRUE(full[0].second.isZero());
  EXPECT_EQ(expand::PrefixCover(APInt(16, 1), APInt(16, 65534)).size(), 30u);
}

TEST(Expand, SetsMultiplyAndRangesBecomePrefixes) {
  Built b(R"(
    queue q;
    ingress port 1 { rule r: ipv4 dst { 10.0.0.1, 10.0.0.2 }, tcp dst 1..3 -> steer q; }
  )",
          "mlx5");
  ASSERT_TRUE(b.Codes().empty());
  ASSERT_EQ(b.expanded.rules.size(), 4u); // 2 addresses x {1, 2..3}
  EXPECT_EQ(b.hw.rules.size(), 4u);
}

TEST(Expand, FullMaskTargetsCountOrEnumerateExactRules) {
  const char *text = R"(
    queue q;
    ingress port 1 { rule r: ipv4 dst 10.0.0.0/30, tcp dst 80..81 -> steer q; }
  )";
  EXPECT_EQ(Built(text, "mlx4").Codes(), (std::vector<unsigned>{8003, 8003}));
  expand::Options allow;
  allow.expand_masks = true;
  Built b(text, "mlx4", allow);
  ASSERT_TRUE(b.Codes().empty());
  EXPECT_EQ(b.hw.rules.size(), 8u); // 4 addresses x 2 ports
  for (const expand::TernaryRule &t : b.expanded.rules) {
    for (const expand::TernaryMatch &m : t.matches) {
      EXPECT_TRUE(m.mask.isAllOnes());
    }
  }
  allow.max_per_rule = 7;
  EXPECT_EQ(Built(text, "mlx4", allow).Codes(), (std::vector<unsigned>{8008}));
}

TEST(Priorities, OnlyOverlapsWithDifferentOutcomesCostALevel) {
  Built b(R"(
    queue a, b;
    ingress port 1 {
      rule host: ipv4 dst 10.0.0.1 -> steer a;
      rule net: ipv4 dst 10.0.0.0/24 -> steer b;
      rule other_net: ipv4 dst 10.0.1.0/24 -> steer a;
      rule same_outcome: ipv4 dst 10.0.0.0/16 -> steer b;
      rule v6: ipv6 dst 2001:db8::/32 -> steer a;
      rule web: tcp dst 80 -> steer a;
      rule dns: udp dst 53 -> steer b;
    }
    ingress port 2 { rule other_port: ipv4 dst 10.0.0.1 -> steer b; }
  )",
          "mlx5");
  ASSERT_TRUE(b.Codes().empty());
  // host 0; net overlaps host (other queue) 1; other_net is disjoint from
  // both 0; same_outcome overlaps host and other_net (queue a) 1... and net
  // shares its outcome, so 1; v6 is disjoint from IPv4 (ethertype) 0; web
  // overlaps every IPv4 rule and same-outcome ones do not count: after net
  // and same_outcome, 2; dns (UDP) is disjoint from web (TCP), after the
  // queue-a IPv4 rules: 1 + max(host 0, other_net 0) = 1; port 2 starts over.
  EXPECT_EQ(b.Priorities(), (std::vector<unsigned>{0, 1, 0, 1, 0, 2, 1, 0}));
}

TEST(Priorities, PassRulesKeepTheirOrder) {
  Built b(R"(
    queue a, b;
    ingress port 1 {
      rule copy pass: udp dst 4791 -> steer b;
      rule roce: udp dst 4791 -> steer b;
    }
  )",
          "mlx5");
  ASSERT_TRUE(b.Codes().empty());
  // mlx5 looks up a priority's DONT_TRAP table before its trapping table
  // (verbs-facts §3.4): the copy and the rule after it share priority 0.
  EXPECT_EQ(b.Priorities(), (std::vector<unsigned>{0, 0}));
  EXPECT_EQ(b.hw.rules[0].rule.flags, emit::kFlagDontTrap);
  // A trapping rule before a `pass` rule it overlaps needs a level of its own.
  Built after(R"(
    queue a, b;
    ingress port 1 {
      rule roce: udp dst 4791 -> steer b;
      rule copy pass: udp -> steer a;
    }
  )",
              "mlx5");
  ASSERT_TRUE(after.Codes().empty());
  EXPECT_EQ(after.Priorities(), (std::vector<unsigned>{0, 1}));
  // Two overlapping 'pass' rules are ordered too: a lookup hits one entry
  // per priority, so at one priority one of the copies would be lost.
  Built both(R"(
    queue a, b;
    ingress port 1 {
      rule copy_a pass: udp dst 4791 -> steer a;
      rule copy_b pass: udp -> steer b;
    }
  )",
             "mlx5");
  ASSERT_TRUE(both.Codes().empty());
  EXPECT_EQ(both.Priorities(), (std::vector<unsigned>{0, 1}));
}

TEST(Priorities, ExpansionsOfAPassRuleShareAPriority) {
  // 10.0.0.0/8 and "last byte 1" overlap (10.2.0.1 is in both) and neither
  // contains the other, so both stay: at two priorities a packet from
  // 10.2.0.1 would be copied twice. Both expansions take the higher level.
  Built b(R"(
    queue q1, q2;
    ingress port 1 {
      rule t: ipv4 src 10.2.0.0/16 -> steer q2;
      rule r pass: ipv4 src { 10.0.0.0/8, 0.0.0.1 mask 0.0.0.255 } -> steer q1;
    }
  )",
          "mlx5");
  ASSERT_TRUE(b.Codes().empty());
  EXPECT_EQ(b.Priorities(), (std::vector<unsigned>{0, 1, 1}));
}

TEST(Expand, PrerequisitesAreWrittenAndMatchesNarrowed) {
  Built b(R"(
    queue q;
    ingress port 1 {
      rule v: udp dst 4000..4999, vxlan vni 5 -> steer q;
      rule e: esp spi 7 -> steer q;
      rule m: mpls label 5 -> steer q;
      rule p: ipv4 proto { 6, 17 }, tcp dst 22 -> steer q;
      rule t: eth type 0x0800 mask 0xff00, ipv4 dst 10.0.0.1 -> steer q;
    }
  )",
          "mlx5");
  ASSERT_TRUE(b.Codes().empty()) << b.collect.seen[0].second;
  // v: only the prefix that holds 4789 survives, narrowed to it.
  // e: IPv4 and IPv6, protocol 50. m: both MPLS ethertypes. p: proto 6.
  // t: ethertype 0x0800 with a full mask.
  std::map<std::string, std::vector<std::string>> got;
  for (const target::HwRuleInfo &r : b.hw.rules) {
    std::string line;
    for (const emit::HwSpec &s : r.rule.specs) {
      line += emit::GetLayout(s.kind).name.str();
      for (auto &[name, value] : emit::DescribeSpec(s)) {
        line += " " + name + "=" + value;
      }
      line += "; ";
    }
    got[b.policy.rules[r.source].name].push_back(line);
  }
  EXPECT_EQ(got["v"], (std::vector<std::string>{
                          "UDP dst=4789/0xffff; VXLAN_TUNNEL vni=5/0xffffff; "}));
  EXPECT_EQ(got["e"], (std::vector<std::string>{
                          "IPV4_EXT proto=50/0xff; ESP spi=7/0xffffffff; ",
                          "IPV6 next_hdr=50/0xff; ESP spi=7/0xffffffff; "}));
  EXPECT_EQ(got["m"], (std::vector<std::string>{
                          "ETH type=0x8847/0xffff; MPLS label=5/0xfffff; ",
                          "ETH type=0x8848/0xffff; MPLS label=5/0xfffff; "}));
  EXPECT_EQ(got["p"], (std::vector<std::string>{"IPV4_EXT proto=6/0xff; TCP dst=22/0xffff; "}));
  EXPECT_EQ(got["t"], (std::vector<std::string>{
                          "ETH type=0x0800/0xffff; IPV4 dst=10.0.0.1/255.255.255.255; "}));
}

TEST(Legalize, SpecsInStackOrderWithInnerFlags) {
  Built b(R"(
    queue q;
    ingress port 1 {
      rule t: inner { tcp dst 80, ipv4 src 10.0.0.1, mpls label 3 }, vxlan vni 9, udp dst 4789,
          ipv4 dst 192.0.2.1 -> steer q, tag 5;
    }
  )",
          "generic");
  ASSERT_TRUE(b.Codes().empty()) << b.collect.seen[0].second;
  using emit::SpecKind;
  std::vector<std::pair<SpecKind, bool>> got;
  for (const emit::HwSpec &s : b.hw.rules.at(0).rule.specs) {
    got.emplace_back(s.kind, s.inner);
  }
  std::vector<std::pair<SpecKind, bool>> want = {
      {SpecKind::kIpv4, false},  {SpecKind::kUdp, false},       {SpecKind::kVxlanTunnel, false},
      {SpecKind::kMpls, true},   {SpecKind::kIpv4, true},       {SpecKind::kTcp, true},
      {SpecKind::kActionTag, false}};
  EXPECT_EQ(got, want);
}

} // namespace
} // namespace flowc
