// Checking policies from in-memory text, for the unit tests.
#ifndef FLOWC_TESTS_UNIT_POLICY_FIXTURE_H
#define FLOWC_TESTS_UNIT_POLICY_FIXTURE_H

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <optional>

#include "compiler/parse/parse.h"
#include "compiler/sema/sema.h"
#include "compiler/target/profile.h"
#include "llvm/Support/MemoryBuffer.h"

namespace flowc {

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

inline Checked CheckSource(llvm::StringRef text, const parse::Options &popts = {}) {
  llvm::SourceMgr sources;
  unsigned id = sources.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, "t.flow"),
                                           llvm::SMLoc());
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

/// The generic target; none, and a test failure, if it cannot be made.
inline std::optional<target::Target> GenericTarget() {
  llvm::Expected<target::Target> t = target::MakeTarget("generic", {});
  EXPECT_TRUE(bool(t));
  if (!t) {
    llvm::consumeError(t.takeError());
    return std::nullopt;
  }
  return std::move(*t);
}

inline std::vector<unsigned> Codes(const Checked &c) {
  std::vector<unsigned> codes;
  for (auto &d : c.diags) {
    codes.push_back(d.first);
  }
  return codes;
}

} // namespace flowc

#endif // FLOWC_TESTS_UNIT_POLICY_FIXTURE_H
