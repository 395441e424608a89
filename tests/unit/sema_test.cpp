// Unit tests for parsing and sema on in-memory sources.
#include <gtest/gtest.h>

#include "compiler/parse/parse.h"
#include "compiler/sema/sema.h"
#include "llvm/Support/MemoryBuffer.h"

namespace flowc {
namespace {

/// Collects diagnostics as (code, message) pairs.
class Collect : public diag::Consumer {
public:
  std::vector<std::pair<unsigned, std::string>> seen;
  void Handle(const diag::Diagnostic &d) override {
    seen.emplace_back(diag::Info(d.kind).code, d.message);
  }
};

struct Checked {
  ir::Policy policy;
  std::vector<std::pair<unsigned, std::string>> diags;
  sema::Program program;
};

Checked CheckSource(llvm::StringRef text, const parse::Options &popts = {}) {
  llvm::SourceMgr sources;
  unsigned id =
      sources.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "t.flow"), llvm::SMLoc());
  Collect collect;
  diag::Options dopts;
  dopts.max_errors = 0;
  diag::Engine engine(sources, dopts, collect);
  Checked out;
  out.program.modules.push_back(parse::Parse(id, engine, popts));
  sema::Options sopts;
  sopts.default_stdlib_dirs = false;
  out.policy = sema::Check(out.program, sopts, engine);
  out.diags = collect.seen;
  return out;
}

std::vector<unsigned> Codes(const Checked &c) {
  std::vector<unsigned> codes;
  for (auto &d : c.diags) {
    codes.push_back(d.first);
  }
  return codes;
}

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

TEST(Parse, SllAndLlAgree) {
  const char *source = R"(
    queue q; const s = { 1, 2..3, 4 mask 0xc };
    ingress port 1 { rule r priority 1 pass: eth dst 1:2:3:4:5:6, ipv6 src ::1/128 -> steer q; }
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
