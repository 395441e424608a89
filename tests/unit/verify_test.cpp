// Unit tests for the proof's reading of the emitted bytes (verify::Verify).
#include <gtest/gtest.h>

#include <string>
#include <tuple>
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
    llvm::Expected<target::Target> t = target::MakeTarget("generic", {});
    EXPECT_TRUE(bool(t));
    if (!t) {
      llvm::consumeError(t.takeError());
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
    llvm::Expected<target::Target> t = target::MakeTarget("generic", {});
    EXPECT_TRUE(bool(t));
    if (!t) {
      llvm::consumeError(t.takeError());
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

/// A rule of `specs`; `fields` sets (field, value) with full masks on the
/// spec at each index.
emit::HwRule RuleOf(std::vector<emit::HwSpec> specs,
                    std::vector<std::tuple<size_t, Field, uint64_t>> fields = {}) {
  emit::HwRule rule;
  for (auto &[at, field, value] : fields) {
    unsigned bits = GetFieldInfo(field).bits;
    emit::SetField(specs[at], field, llvm::APInt(bits, value), llvm::APInt::getAllOnes(bits));
  }
  rule.specs.assign(specs.begin(), specs.end());
  return rule;
}

bool Has(const expand::TernaryRule &t, ir::Layer layer, Header h) {
  return (t.headers[static_cast<unsigned>(layer)] & ir::Bit(h)) != 0;
}

// mlx5 reads an ESP, VXLAN_TUNNEL or MPLS spec with a zero mask as no match
// at all (verbs-facts §3.2); the header counts only where the rule matches
// what carries it.
TEST(VerifyMatchOf, ZeroMaskTunnelSpecsNeedTheirCarrier) {
  using emit::MakeSpec;
  using emit::SpecKind;
  const auto outer = ir::Layer::kOuter, tunnel = ir::Layer::kTunnel;
  // ESP: IP protocol 50.
  EXPECT_FALSE(
      Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kIpv4), MakeSpec(SpecKind::kEsp)}), 0), outer,
          Header::kEsp));
  EXPECT_TRUE(Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kIpv4Ext), MakeSpec(SpecKind::kEsp)},
                                         {{0, Field::kIpv4Proto, 50}}),
                                  0),
                  outer, Header::kEsp));
  // An ESP spec with an SPI mask matches ESP packets only.
  EXPECT_TRUE(Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kIpv4), MakeSpec(SpecKind::kEsp)},
                                         {{1, Field::kEspSpi, 7}}),
                                  0),
                  outer, Header::kEsp));
  // VXLAN: UDP port 4789.
  EXPECT_FALSE(
      Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kUdp), MakeSpec(SpecKind::kVxlanTunnel)},
                                 {{0, Field::kUdpDst, 53}}),
                          0),
          tunnel, Header::kVxlan));
  EXPECT_TRUE(
      Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kUdp), MakeSpec(SpecKind::kVxlanTunnel)},
                                 {{0, Field::kUdpDst, 4789}}),
                          0),
          tunnel, Header::kVxlan));
  // MPLS, by the spec before it: UDP port 6635, or else the ethertype.
  EXPECT_TRUE(Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kUdp), MakeSpec(SpecKind::kMpls)},
                                         {{0, Field::kUdpDst, 6635}}),
                                  0),
                  tunnel, Header::kMpls));
  EXPECT_FALSE(Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kEth), MakeSpec(SpecKind::kMpls)},
                                          {{0, Field::kEthType, 0x0800}}),
                                   0),
                   tunnel, Header::kMpls));
  EXPECT_TRUE(Has(verify::MatchOf(RuleOf({MakeSpec(SpecKind::kEth), MakeSpec(SpecKind::kMpls)},
                                         {{0, Field::kEthType, 0x8847}}),
                                  0),
                  tunnel, Header::kMpls));
}

} // namespace
} // namespace flowc
