// Unit tests for the proof's reading of the emitted bytes (verify::Verify).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compiler/emit/buffer.h"
#include "compiler/emit/outputs.h"
#include "compiler/expand/expand.h"
#include "compiler/target/legalize.h"
#include "compiler/verify/verify.h"
#include "tests/unit/policy_fixture.h"
#include "llvm/Support/FormatVariadic.h"

namespace flowc {
namespace {

/// A policy of `n` disjoint rules on generic, compiled to output rules as
/// flowc build writes them.
struct Compiled {
  Checked checked;
  std::vector<emit::OutputRule> rules;

  explicit Compiled(unsigned n) {
    std::string text = "target generic;\nqueue a, b;\ningress port 1 {\n";
    for (unsigned i = 0; i < n; ++i) {
      text += llvm::formatv("  rule r{0}: ipv4 src 10.{1}.{2}.0/24 -> steer {3};\n", i, i / 256,
                            i % 256, i % 2 == 0 ? "a" : "b");
    }
    text += "}\n";
    checked = CheckSource(text);
    EXPECT_TRUE(checked.diags.empty());
    std::optional<target::Target> t = GenericTarget();
    if (!t) {
      return;
    }
    llvm::SourceMgr sources;
    Collect collect;
    diag::Engine engine(sources, {}, collect);
    expand::Expanded expanded = expand::Expand(checked.policy, *t, {}, engine);
    target::HwPolicy hw = target::Legalize(checked.policy, expanded, *t, engine);
    EXPECT_TRUE(collect.seen.empty());
    for (const target::HwRuleInfo &info : hw.rules) {
      emit::OutputRule o;
      o.rule = info.rule;
      o.bytes = emit::Encode(info.rule);
      o.queue_index = info.queue;
      for (size_t s = 0; s < info.rule.specs.size(); ++s) {
        o.bindings.emplace_back();
      }
      rules.push_back(std::move(o));
    }
  }

  verify::Result Verify() const {
    std::optional<target::Target> t = GenericTarget();
    if (!t) {
      return {};
    }
    return verify::Verify(checked.policy, *t, rules, {}, verify::ExpandSource(checked.policy));
  }
};

TEST(VerifyReadBack, ProvesTheBytesAsEmitted) {
  Compiled c(300);
  ASSERT_EQ(c.rules.size(), 300u);
  verify::Result r = c.Verify();
  EXPECT_EQ(r.status, verify::Result::Status::kProved) << r.detail;
}

TEST(VerifyReadBack, NamesTheFirstRuleThatDoesNotDecode) {
  // Enough rules that the bytes are read on two threads (kParallelFrom),
  // each half with a rule cut short: the first is the one reported.
  Compiled c(6000);
  ASSERT_EQ(c.rules.size(), 6000u);
  c.rules[4500].bytes.resize(10);
  verify::Result high = c.Verify();
  EXPECT_EQ(high.status, verify::Result::Status::kFailed);
  EXPECT_NE(high.detail.find("hardware rule 4500 does not decode"), std::string::npos)
      << high.detail;
  c.rules[17].bytes.resize(10);
  verify::Result both = c.Verify();
  EXPECT_EQ(both.status, verify::Result::Status::kFailed);
  EXPECT_NE(both.detail.find("hardware rule 17 does not decode"), std::string::npos) << both.detail;
}

// mlx5 reads an ESP, VXLAN_TUNNEL or MPLS spec with a zero mask as no match
// at all (verbs-facts §3.2); the header counts only where the rule matches
// what carries it.
TEST(VerifyMatchOf, ZeroMaskTunnelSpecsNeedTheirCarrier) {
  using emit::SpecKind;
  struct Case {
    const char *what;
    SpecKind first, second;
    /// A full-mask match on spec `at`, if any (at 2: none).
    size_t at;
    Field field;
    uint64_t value;
    ir::Layer layer;
    Header header;
    bool required;
  };
  const ir::Layer outer = ir::Layer::kOuter, tunnel = ir::Layer::kTunnel;
  const Case cases[] = {
      {"ESP without IP protocol 50", SpecKind::kIpv4, SpecKind::kEsp, 2, Field::kNone, 0, outer,
       Header::kEsp, false},
      {"ESP with IP protocol 50", SpecKind::kIpv4Ext, SpecKind::kEsp, 0, Field::kIpv4Proto, 50,
       outer, Header::kEsp, true},
      {"ESP with an SPI mask", SpecKind::kIpv4, SpecKind::kEsp, 1, Field::kEspSpi, 7, outer,
       Header::kEsp, true},
      {"VXLAN under UDP port 53", SpecKind::kUdp, SpecKind::kVxlanTunnel, 0, Field::kUdpDst, 53,
       tunnel, Header::kVxlan, false},
      {"VXLAN under UDP port 4789", SpecKind::kUdp, SpecKind::kVxlanTunnel, 0, Field::kUdpDst, 4789,
       tunnel, Header::kVxlan, true},
      {"MPLS after UDP port 6635", SpecKind::kUdp, SpecKind::kMpls, 0, Field::kUdpDst, 6635, tunnel,
       Header::kMpls, true},
      {"MPLS after ethertype 0x0800", SpecKind::kEth, SpecKind::kMpls, 0, Field::kEthType, 0x0800,
       tunnel, Header::kMpls, false},
      {"MPLS after ethertype 0x8847", SpecKind::kEth, SpecKind::kMpls, 0, Field::kEthType, 0x8847,
       tunnel, Header::kMpls, true},
  };
  for (const Case &c : cases) {
    emit::HwRule rule;
    rule.specs = {emit::MakeSpec(c.first), emit::MakeSpec(c.second)};
    if (c.at < 2) {
      unsigned bits = GetFieldInfo(c.field).bits;
      emit::SetField(rule.specs[c.at], c.field, llvm::APInt(bits, c.value),
                     llvm::APInt::getAllOnes(bits));
    }
    expand::TernaryRule t = verify::MatchOf(rule, 0);
    bool has = (t.headers[static_cast<unsigned>(c.layer)] & ir::Bit(c.header)) != 0;
    EXPECT_EQ(has, c.required) << c.what;
  }
}

} // namespace
} // namespace flowc
