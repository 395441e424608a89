// Unit tests for parsing and sema on in-memory sources.
#include <gtest/gtest.h>

#include <algorithm>

#include "compiler/parse/parse.h"
#include "compiler/sema/sema.h"
#include "tests/unit/policy_fixture.h"

namespace flowc {
namespace {

TEST(Sema, CleanPolicyBuildsOrderedRules) {
  Checked c = CheckSource(R"(
    queue a, b;
    const web = { 80, 443 };
    ingress port 1 {
      rule late priority 2: tcp dst in web -> steer a;
      rule early: udp dst 4791 -> steer b, tag 7;
      default -> steer a;
    }
  )");
  ASSERT_TRUE(c.diags.empty()) << c.diags.front().second;
  ASSERT_EQ(c.policy.rules.size(), 3u);
  EXPECT_EQ(c.policy.rules[0].name, "early");
  EXPECT_EQ(c.policy.rules[1].name, "late");
  EXPECT_EQ(c.policy.rules[2].kind, ast::RuleKind::kDefault);
  const ir::FieldMatch &m = c.policy.rules[1].matches.at(0);
  EXPECT_EQ(m.field, Field::kTcpDst);
  EXPECT_EQ(m.kind, ir::MatchKind::kSet);
  ASSERT_EQ(m.elements.size(), 2u);
  EXPECT_EQ(m.elements[1].value.getZExtValue(), 443u);
  EXPECT_EQ(c.policy.rules[0].actions[1].operand, 7u);
}

TEST(Sema, TemplatesExpandWithArguments) {
  Checked c = CheckSource(R"(
    queue q;
    match vx(id, net) = udp dst 4789, vxlan vni id, inner { ipv4 dst net };
    ingress port 1 { rule r: vx(100, 10.1.0.0/16), inner { tcp dst 80..89 } -> steer q; }
  )");
  ASSERT_TRUE(c.diags.empty()) << c.diags.front().second;
  const ir::Rule &r = c.policy.rules.at(0);
  ASSERT_EQ(r.matches.size(), 4u);
  EXPECT_EQ(r.matches[0].field, Field::kUdpDst);
  EXPECT_EQ(r.matches[1].field, Field::kVxlanVni);
  EXPECT_EQ(r.matches[1].value.getZExtValue(), 100u);
  EXPECT_EQ(r.matches[2].layer, ir::Layer::kInner);
  EXPECT_EQ(r.matches[2].mask.countLeadingOnes(), 16u);
  EXPECT_EQ(r.matches[3].kind, ir::MatchKind::kRange);
}

TEST(Sema, ReportsEachProblemOnce) {
  struct Case {
    const char *source;
    std::vector<unsigned> codes;
  } cases[] = {
      {"queue q; ingress port 1 { rule r: udp dst 65536 -> steer q; }", {4003}},
      {"queue q; ingress port 1 { rule r: vxlan vni 16777216 -> steer q; }", {4003}},
      {"queue q; ingress port 1 { rule r: ipv6 flow_label 0x100000 -> steer q; }", {4003}},
      {"queue q; ingress port 1 { rule r: mpls label 1048576 -> steer q; }", {4003}},
      {"queue q; ingress port 1 { rule r: any -> steer q, tag 0x1000000; }", {4003}},
      {"queue q; ingress port 1 { rule r: ipv4 dst 10.0.0.0/33 -> steer q; }", {4004}},
      {"queue q; ingress port 1 { rule r: ipv4 dst 10.0.0.1 -> steer q; rule r: any -> drop; }", {7004}},
      {"queue q; ingress port 1 { rule r: eth type 0x0801 mask 0xff00 -> steer q; }", {4006}},
      {"queue q; ingress port 1 { rule r: tcp, ipv4 proto 17 -> steer q; }", {5003}},
      {"queue q; ingress port 1 { rule r: ipv4, ipv6 -> steer q; }", {5002}},
      {"queue q; ingress port 1 { rule r: eth dst 10.0.0.1 -> steer q; }", {4002}},
      {"queue q; ingress port 1 { rule r: ipv4 tos 4, ipv4 dscp 1 -> steer q; }", {5005}},
      {"queue q; ingress port 1 { rule r: udp dst 53, vxlan -> steer q; }", {5003}},
      {"queue q; const c = 1; ingress port 1 { rule r: any -> steer c; }", {3003}},
      {"const a = b; const b = a;", {3004}},
      {"queue q; ingress port 0 { rule r: any -> steer q; }", {7005}},
      {"queue q; egress port 1 { rule r: any -> steer q; }", {6004}},
      {"queue q; ingress port 1 { rule r: any -> tag 1; }", {6001}},
      {"queue q; q2; ingress port 1 { }", {1004}},
  };
  for (const Case &c : cases) {
    Checked r = CheckSource(c.source);
    EXPECT_EQ(Codes(r), c.codes) << c.source << "\n first: " << (r.diags.empty() ? "" : r.diags[0].second);
  }
}

TEST(Sema, PrecedenceIsClassThenSourceOrderPerPortAndDirection) {
  Checked c = CheckSource(R"(
    queue q;
    egress port 1 { rule e1: ipv4 dst 10.0.0.1 -> drop; }
    ingress port 2 { rule p2: udp dst 2 -> steer q; }
    ingress port 1 {
      rule c1a priority 1: udp dst 3 -> steer q;
      rule c0a: udp dst 4 -> steer q;
      sniff -> steer q;
      rule c0b priority 0: udp dst 5 -> steer q;
      rule c1b priority 1: udp dst 6 -> steer q;
      default -> steer q;
    }
  )");
  ASSERT_TRUE(c.diags.empty()) << c.diags.front().second;
  std::vector<std::string> names;
  for (const ir::Rule &r : c.policy.rules) {
    names.push_back(r.name.empty() ? std::string(ast::RuleKindName(r.kind)) : r.name);
  }
  // Ingress before egress, port 1 before port 2, normal rules before the
  // special kinds, then class, then source order.
  std::vector<std::string> want = {"c0a", "c0b", "c1a", "c1b", "sniff", "default", "p2", "e1"};
  std::vector<std::string> got = names;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  ASSERT_EQ(got, want);
  for (size_t i = 1; i < c.policy.rules.size(); ++i) {
    EXPECT_FALSE(ir::Precedes(c.policy.rules[i], c.policy.rules[i - 1]))
        << names[i] << " sorted after " << names[i - 1];
  }
  auto pos = [&](llvm::StringRef n) { return llvm::find(names, n) - names.begin(); };
  EXPECT_LT(pos("c0a"), pos("c0b"));
  EXPECT_LT(pos("c0b"), pos("c1a"));
  EXPECT_LT(pos("c1a"), pos("c1b"));
  EXPECT_LT(pos("c1b"), pos("default"));
}

TEST(Sema, LayersOfTunnelsAndInnerHeaders) {
  Checked c = CheckSource(R"(
    queue q;
    ingress port 1 {
      rule g: gre key 7, inner { ipv4 src 10.0.0.0/8, tcp dst 22 } -> steer q;
      rule m: udp dst 6635, mpls label 100, inner { ipv6 } -> steer q;
    }
  )");
  ASSERT_TRUE(c.diags.empty()) << c.diags.front().second;
  const ir::Rule &g = c.policy.rules.at(0);
  EXPECT_EQ(g.headers[unsigned(ir::Layer::kTunnel)], ir::Bit(Header::kGre));
  EXPECT_EQ(g.headers[unsigned(ir::Layer::kInner)], ir::Bit(Header::kIpv4) | ir::Bit(Header::kTcp));
  for (const ir::FieldMatch &m : g.matches) {
    EXPECT_EQ(m.layer, m.field == Field::kGreKey ? ir::Layer::kTunnel : ir::Layer::kInner);
  }
  const ir::Rule &m = c.policy.rules.at(1);
  EXPECT_EQ(m.headers[unsigned(ir::Layer::kOuter)], ir::Bit(Header::kUdp));
  EXPECT_EQ(m.headers[unsigned(ir::Layer::kTunnel)], ir::Bit(Header::kMpls));
  EXPECT_EQ(m.headers[unsigned(ir::Layer::kInner)], ir::Bit(Header::kIpv6));
}

TEST(Sema, PrefixLengthsAtTheirEdges) {
  struct Case {
    const char *match;
    std::vector<unsigned> codes;
    unsigned mask_ones; ///< when clean
  } cases[] = {
      {"ipv4 dst 10.0.0.1/32", {}, 32},
      {"ipv4 dst 10.0.0.0/8", {}, 8},
      {"ipv4 dst 0.0.0.0/0", {4009}, 0},
      {"ipv4 dst 10.0.0.0/33", {4004}, 0},
      {"ipv4 dst 10.0.0.1/31", {4006}, 0},
      {"ipv6 dst 2001:db8::/32", {}, 32},
      {"ipv6 dst ::1/128", {}, 128},
      {"ipv6 dst ::/129", {4004}, 0},
      {"ipv6 dst 2001:db8::1/127", {4006}, 0},
      {"eth dst 66:11:22:00:00:00/24", {}, 24},
      {"eth dst 66:11:22:33:44:55/48", {}, 48},
      {"eth dst 66:11:22:33:44:55/49", {4004}, 0},
  };
  for (const Case &k : cases) {
    std::string source = "queue q; ingress port 1 { rule r: " + std::string(k.match) + " -> steer q; }";
    Checked c = CheckSource(source);
    EXPECT_EQ(Codes(c), k.codes) << k.match;
    if (k.codes.empty()) {
      ASSERT_EQ(c.policy.rules.size(), 1u) << k.match;
      const ir::FieldMatch &m = c.policy.rules[0].matches.at(0);
      EXPECT_EQ(m.mask.countLeadingOnes(), k.mask_ones) << k.match;
      EXPECT_EQ(m.mask.countPopulation(), k.mask_ones) << k.match;
      EXPECT_TRUE((m.value & ~m.mask).isZero()) << k.match;
    }
  }
}

TEST(Sema, DefinitionsAreCheckedOnceInSourceOrder) {
  Checked c = CheckSource(R"(
    queue q;
    const bad_port = 70000;
    match loop_a = udp dst 1, loop_b;
    match loop_b = loop_a;
    match unused(x) = tcp dst x, ipv4 ttl 300;
    ingress port 1 {
      rule r1: loop_a -> steer q;
      rule r2: loop_b -> steer q;
    }
  )");
  // The template cycle is one diagnostic however many rules reach it; an
  // unused template is still checked.
  EXPECT_EQ(Codes(c), (std::vector<unsigned>{3004, 4003}));
}

TEST(Sema, EgressAllowAndItsMisuse) {
  Checked ok = CheckSource(R"(
    egress port 1 {
      rule mgmt: ipv4 dst 203.0.113.5 -> allow;
      rule doc: ipv4 dst 203.0.113.0/24 -> drop;
    }
  )");
  ASSERT_TRUE(ok.diags.empty()) << ok.diags.front().second;
  EXPECT_EQ(ok.policy.rules.at(0).actions.at(0).kind, ast::ActionKind::kAllow);
  EXPECT_EQ(Codes(CheckSource("ingress port 1 { rule r: any -> allow; }")),
            (std::vector<unsigned>{6005}));
  EXPECT_EQ(Codes(CheckSource("egress port 1 { rule r: any -> allow, drop; }")),
            (std::vector<unsigned>{6003}));
}

TEST(Parse, SllAndLlAgree) {
  const char *source = R"(
    queue q; const s = { 1, 2..3, 4 mask 0xc };
    ingress port 1 { rule r priority 1 pass: eth dst 1:2:3:4:5:6, ipv6 src ::1/128, udp dst s -> steer q; }
  )";
  Checked sll = CheckSource(source);
  parse::Options ll;
  ll.force_ll = true;
  Checked full = CheckSource(source, ll);
  EXPECT_TRUE(sll.diags.empty());
  EXPECT_TRUE(full.diags.empty());
  ASSERT_EQ(sll.policy.rules.size(), full.policy.rules.size());
  EXPECT_EQ(sll.policy.rules[0].matches.size(), full.policy.rules[0].matches.size());
}

TEST(Parse, RecoversAtEachRule) {
  Checked c = CheckSource(R"(
    queue q;
    ingress port 1 {
      rule a: eth dst -> steer q;
      rule b: udp dst 1 -> steer q;
      rule c: tcp dst 2 steer q;
      rule d: tcp dst 3 -> steer q;
    }
  )");
  EXPECT_EQ(Codes(c), (std::vector<unsigned>{1004, 1004}));
  ASSERT_EQ(c.policy.rules.size(), 2u);
  EXPECT_EQ(c.policy.rules[0].name, "b");
  EXPECT_EQ(c.policy.rules[1].name, "d");
}

} // namespace
} // namespace flowc
