// Unit tests for the diagnostic engine and its text, JSON and SARIF renderers.
#include <set>

#include <gtest/gtest.h>

#include "compiler/diag/diagnostic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

namespace flowc::diag {
namespace {

struct Fixture {
  llvm::SourceMgr sources;
  const char *text;
  explicit Fixture(llvm::StringRef source) {
    sources.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(source, "t.flow"), llvm::SMLoc());
    text = sources.getMemoryBuffer(1)->getBufferStart();
  }
  llvm::SMLoc At(size_t offset) { return llvm::SMLoc::getFromPointer(text + offset); }
  llvm::SMRange Span(size_t b, size_t e) { return llvm::SMRange(At(b), At(e)); }
};

TEST(TextConsumer, CaretRangeAndNote) {
  Fixture f("queue rx;\ningress port 1 { rule a: any -> steer rxx; }\n");
  std::string out;
  llvm::raw_string_ostream os(out);
  TextConsumer consumer(f.sources, os, /*colors=*/false);
  Engine engine(f.sources, Options(), consumer);
  // "rxx" starts at offset 10 + 35.
  engine.Report(Kind::kUndefinedName, f.At(45), "undefined name 'rxx'; did you mean 'rx'?")
      .Range(f.Span(45, 48))
      .AddNote(f.At(6), "'rx' is declared here", f.Span(6, 8));
  engine.Finish();
  EXPECT_EQ(os.str(),
            "t.flow:2:36: error: undefined name 'rxx'; did you mean 'rx'? [FL3001]\n"
            "ingress port 1 { rule a: any -> steer rxx; }\n"
            "                                   ^~~\n"
            "t.flow:1:7: note: 'rx' is declared here\n"
            "queue rx;\n"
            "      ^~\n"
            "1 error generated.\n");
  EXPECT_EQ(engine.error_count(), 1u);
}

TEST(TextConsumer, FileDiagnosticWithoutLocation) {
  Fixture f("");
  std::string out;
  llvm::raw_string_ostream os(out);
  TextConsumer consumer(f.sources, os, false);
  Engine engine(f.sources, Options(), consumer);
  engine.ReportFile(Kind::kFileUnreadable, "missing.flow", "cannot read 'missing.flow': No such file");
  EXPECT_EQ(os.str(), "missing.flow: error: cannot read 'missing.flow': No such file [FL0001]\n");
}

TEST(TextConsumer, LongLineIsWindowed) {
  std::string line(5000, 'x');
  line += " bad";
  Fixture f(line);
  std::string out;
  llvm::raw_string_ostream os(out);
  TextConsumer consumer(f.sources, os, false);
  Engine engine(f.sources, Options(), consumer);
  engine.Report(Kind::kSyntaxError, f.At(5001), "expected something").Range(f.Span(5001, 5004));
  std::string s = os.str();
  // The shown source line is cut to a window around the caret.
  EXPECT_LT(s.size(), 600u);
  EXPECT_NE(s.find("...x"), std::string::npos);
  EXPECT_NE(s.find("^~~"), std::string::npos);
}

TEST(Engine, WerrorAndDisabledWarnings) {
  Fixture f("x");
  std::string out;
  llvm::raw_string_ostream os(out);
  TextConsumer consumer(f.sources, os, false);
  Options options;
  options.warnings_as_errors = true;
  options.disabled.push_back(Kind::kDuplicateImport);
  Engine engine(f.sources, options, consumer);
  engine.Report(Kind::kDuplicateImport, f.At(0), "hidden");
  engine.Report(Kind::kMatchesEverything, f.At(0), "promoted");
  EXPECT_EQ(engine.error_count(), 1u);
  EXPECT_EQ(engine.warning_count(), 0u);
  EXPECT_EQ(os.str().find("hidden"), std::string::npos);
  EXPECT_NE(os.str().find("error: promoted [FL4009]"), std::string::npos);
}

TEST(Engine, StopsAtErrorLimit) {
  Fixture f("x");
  std::string out;
  llvm::raw_string_ostream os(out);
  TextConsumer consumer(f.sources, os, false);
  Options options;
  options.max_errors = 2;
  Engine engine(f.sources, options, consumer);
  for (int i = 0; i < 5; ++i) {
    engine.Report(Kind::kSyntaxError, f.At(0), "e" + llvm::Twine(i));
  }
  EXPECT_TRUE(engine.ShouldStop());
  consumer.Finish();
  EXPECT_EQ(engine.error_count(), 2u); // the limit itself is not counted
  EXPECT_NE(os.str().find("2 errors generated."), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("too many errors emitted"), std::string::npos);
}

TEST(Engine, ReportsAProblemAtOnePlaceOnce) {
  Fixture f("x y");
  std::string out;
  llvm::raw_string_ostream os(out);
  TextConsumer consumer(f.sources, os, false);
  Engine engine(f.sources, Options(), consumer);
  engine.Report(Kind::kUndefinedName, f.At(0), "undefined name 'x'");
  engine.Report(Kind::kUndefinedName, f.At(0), "undefined name 'x'");
  engine.Report(Kind::kUndefinedName, f.At(2), "undefined name 'x'");
  EXPECT_EQ(engine.error_count(), 2u);
}

TEST(JsonConsumer, SarifShape) {
  Fixture f("rule\n");
  std::string out;
  llvm::raw_string_ostream os(out);
  JsonConsumer consumer(f.sources, os, JsonFlavor::kSarif, "0.1.0");
  Engine engine(f.sources, Options(), consumer);
  engine.Report(Kind::kSyntaxError, f.At(0), "expected a declaration, found 'rule'")
      .Range(f.Span(0, 4));
  engine.Finish();
  auto doc = llvm::json::parse(os.str());
  ASSERT_TRUE(bool(doc)) << llvm::toString(doc.takeError());
  const llvm::json::Object *root = doc->getAsObject();
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->getString("version"), llvm::StringRef("2.1.0"));
  const llvm::json::Object *run = (*root->getArray("runs"))[0].getAsObject();
  const llvm::json::Object *driver = run->getObject("tool")->getObject("driver");
  EXPECT_EQ(driver->getString("name"), llvm::StringRef("flowc"));
  EXPECT_EQ(driver->getArray("rules")->size(), AllKinds().size());
  const llvm::json::Object *result = (*run->getArray("results"))[0].getAsObject();
  EXPECT_EQ(result->getString("ruleId"), llvm::StringRef("FL1004"));
  EXPECT_EQ(result->getString("level"), llvm::StringRef("error"));
  const llvm::json::Object *region = (*result->getArray("locations"))[0]
                                         .getAsObject()
                                         ->getObject("physicalLocation")
                                         ->getObject("region");
  EXPECT_EQ(*region->getInteger("startLine"), 1);
  EXPECT_EQ(*region->getInteger("startColumn"), 1);
  EXPECT_EQ(*region->getInteger("endColumn"), 5);
  // The rule a result names is the one at its ruleIndex.
  int64_t index = *result->getInteger("ruleIndex");
  EXPECT_EQ((*driver->getArray("rules"))[index].getAsObject()->getString("id"),
            llvm::StringRef("FL1004"));
}

TEST(Registry, CodesAreUniqueAndNamed) {
  std::set<unsigned> codes;
  std::set<std::string> names;
  for (const KindInfo &k : AllKinds()) {
    EXPECT_TRUE(codes.insert(k.code).second) << k.code;
    EXPECT_TRUE(names.insert(k.name.str()).second) << k.name.str();
    EXPECT_FALSE(k.summary.empty());
    EXPECT_EQ(FindKindByName(k.name), k.kind);
    EXPECT_EQ(FindKindByCode(CodeString(k.code)), k.kind);
  }
  EXPECT_EQ(CodeString(1), "FL0001");
  EXPECT_EQ(CodeString(4006), "FL4006");
}

} // namespace
} // namespace flowc::diag
