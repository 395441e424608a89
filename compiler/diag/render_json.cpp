// JSON and SARIF 2.1.0 rendering of diagnostics.
#include <set>

#include "compiler/diag/diagnostic.h"
#include "llvm/Support/JSON.h"

namespace flowc::diag {
namespace {

// Where the documentation of each code lives, for SARIF's helpUri.
constexpr const char *kDocsUri = "docs/diagnostics.md";

Position EndOf(const llvm::SourceMgr &sources, llvm::ArrayRef<llvm::SMRange> ranges,
               llvm::SMLoc loc) {
  for (llvm::SMRange r : ranges) {
    if (r.Start.getPointer() <= loc.getPointer() && loc.getPointer() <= r.End.getPointer()) {
      return Resolve(sources, r.End);
    }
  }
  return Resolve(sources, loc);
}

void WritePlainLocation(llvm::json::OStream &j, const llvm::SourceMgr &sources, llvm::SMLoc loc,
                        llvm::ArrayRef<llvm::SMRange> ranges, llvm::StringRef file) {
  Position pos = Resolve(sources, loc);
  if (pos.line == 0 && file.empty()) {
    j.attribute("location", nullptr);
    return;
  }
  j.attributeObject("location", [&] {
    j.attribute("file", pos.line != 0 ? pos.file : file.str());
    if (pos.line == 0) {
      return;
    }
    Position end = EndOf(sources, ranges, loc);
    j.attribute("line", pos.line);
    j.attribute("column", pos.column);
    j.attribute("endLine", end.line);
    j.attribute("endColumn", end.column);
  });
}

std::string LevelOf(Severity severity) {
  return severity == Severity::kError     ? "error"
         : severity == Severity::kWarning ? "warning"
                                          : "note";
}

void WriteSarifLocation(llvm::json::OStream &j, const llvm::SourceMgr &sources, llvm::SMLoc loc,
                        llvm::ArrayRef<llvm::SMRange> ranges, llvm::StringRef file) {
  Position pos = Resolve(sources, loc);
  j.attributeObject("physicalLocation", [&] {
    j.attributeObject("artifactLocation",
                      [&] { j.attribute("uri", pos.line != 0 ? pos.file : file.str()); });
    if (pos.line == 0) {
      return;
    }
    Position end = EndOf(sources, ranges, loc);
    j.attributeObject("region", [&] {
      j.attribute("startLine", pos.line);
      j.attribute("startColumn", pos.column);
      if (end.line != 0 && (end.line > pos.line || end.column > pos.column)) {
        j.attribute("endLine", end.line);
        j.attribute("endColumn", end.column);
      }
    });
  });
}

} // namespace

void JsonConsumer::Finish() {
  if (flavor_ == JsonFlavor::kSarif) {
    WriteSarif();
  } else {
    WritePlain();
  }
  out_ << '\n';
  out_.flush();
}

void JsonConsumer::WritePlain() {
  llvm::json::OStream j(out_, 2);
  unsigned errors = 0, warnings = 0;
  j.object([&] {
    j.attribute("version", 1);
    j.attributeArray("diagnostics", [&] {
      for (const Diagnostic &d : diags_) {
        // The "too many errors" notice is not itself an error of the input.
        errors += d.severity == Severity::kError && d.kind != Kind::kTooManyErrors;
        warnings += d.severity == Severity::kWarning;
        j.object([&] {
          const KindInfo &info = Info(d.kind);
          j.attribute("code", CodeString(info.code));
          j.attribute("name", info.name);
          j.attribute("severity", SeverityName(d.severity));
          j.attribute("message", d.message);
          WritePlainLocation(j, sources_, d.loc, d.ranges, d.file);
          j.attributeArray("notes", [&] {
            for (const Note &n : d.notes) {
              j.object([&] {
                j.attribute("message", n.message);
                llvm::SmallVector<llvm::SMRange, 1> r;
                if (n.range.isValid()) {
                  r.push_back(n.range);
                }
                WritePlainLocation(j, sources_, n.loc, r, "");
              });
            }
          });
        });
      }
    });
    j.attributeObject("summary", [&] {
      j.attribute("errors", errors);
      j.attribute("warnings", warnings);
    });
  });
}

void JsonConsumer::WriteSarif() {
  llvm::json::OStream j(out_, 2);
  j.object([&] {
    j.attribute("$schema", "https://json.schemastore.org/sarif-2.1.0.json");
    j.attribute("version", "2.1.0");
    j.attributeArray("runs", [&] {
      j.object([&] {
        j.attributeObject("tool", [&] {
          j.attributeObject("driver", [&] {
            j.attribute("name", "flowc");
            j.attribute("version", tool_version_);
            j.attribute("semanticVersion", tool_version_);
            j.attributeArray("rules", [&] {
              for (const KindInfo &info : AllKinds()) {
                j.object([&] {
                  std::string code = CodeString(info.code);
                  j.attribute("id", code);
                  j.attribute("name", info.name);
                  j.attributeObject("shortDescription", [&] { j.attribute("text", info.summary); });
                  j.attributeObject("fullDescription", [&] { j.attribute("text", info.summary); });
                  j.attributeObject("help", [&] {
                    j.attribute("text", (info.summary + ". Run 'flowc explain " + code +
                                         "' or see the section '" + code + " " + info.name +
                                         "' of " + kDocsUri + ".")
                                            .str());
                  });
                  j.attributeObject("defaultConfiguration",
                                    [&] { j.attribute("level", LevelOf(info.default_severity)); });
                });
              }
            });
          });
        });
        j.attribute("columnKind", "unicodeCodePoints");
        // Every file with a result, in first-seen order.
        std::vector<std::string> artifacts;
        std::set<std::string> seen;
        for (const Diagnostic &d : diags_) {
          Position pos = Resolve(sources_, d.loc);
          std::string uri = pos.line != 0 ? pos.file : d.file;
          if (!uri.empty() && seen.insert(uri).second) {
            artifacts.push_back(uri);
          }
        }
        j.attributeArray("artifacts", [&] {
          for (const std::string &uri : artifacts) {
            j.object([&] { j.attributeObject("location", [&] { j.attribute("uri", uri); }); });
          }
        });
        j.attributeArray("results", [&] {
          for (const Diagnostic &d : diags_) {
            j.object([&] {
              const KindInfo &info = Info(d.kind);
              j.attribute("ruleId", CodeString(info.code));
              j.attribute("ruleIndex", static_cast<int64_t>(d.kind));
              j.attribute("level", LevelOf(d.severity));
              j.attributeObject("message", [&] { j.attribute("text", d.message); });
              j.attributeArray("locations", [&] {
                // A problem with no place (the error limit) has no location.
                if (d.loc.isValid() || !d.file.empty()) {
                  j.object([&] { WriteSarifLocation(j, sources_, d.loc, d.ranges, d.file); });
                }
              });
              if (d.notes.empty()) {
                return;
              }
              j.attributeArray("relatedLocations", [&] {
                int64_t id = 0;
                for (const Note &n : d.notes) {
                  j.object([&] {
                    j.attribute("id", id++);
                    llvm::SmallVector<llvm::SMRange, 1> r;
                    if (n.range.isValid()) {
                      r.push_back(n.range);
                    }
                    WriteSarifLocation(j, sources_, n.loc, r, "");
                    j.attributeObject("message", [&] { j.attribute("text", n.message); });
                  });
                }
              });
            });
          }
        });
      });
    });
  });
}

} // namespace flowc::diag
