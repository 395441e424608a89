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

} // namespace
} // namespace flowc
