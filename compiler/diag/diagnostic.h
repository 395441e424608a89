// Diagnostics: the registry of kinds, the engine that collects them, and the
// renderers for text (clang style), JSON and SARIF 2.1.0.
#ifndef FLOWC_DIAG_DIAGNOSTIC_H
#define FLOWC_DIAG_DIAGNOSTIC_H

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

namespace flowc::diag {

/// Every diagnostic kind, from kinds.def.
enum class Kind : uint16_t {
#define DIAG(Id, Code, Severity, Name, Summary) k##Id,
#include "compiler/diag/kinds.def"
};

enum class Severity : uint8_t { kNote, kWarning, kError };

/// The registry entry of one kind.
struct KindInfo {
  Kind kind;
  unsigned code;
  Severity default_severity;
  llvm::StringRef name;
  llvm::StringRef summary;
};

/// The registry entry of `kind`.
const KindInfo &Info(Kind kind);
/// Every registered kind, in code order of kinds.def.
llvm::ArrayRef<KindInfo> AllKinds();
/// The kind whose flag name is `name` ("undefined-name"), if any.
std::optional<Kind> FindKindByName(llvm::StringRef name);
/// The kind whose code is `code` ("FL3001"), if any.
std::optional<Kind> FindKindByCode(llvm::StringRef code);
/// "FL0001" style text for a code.
std::string CodeString(unsigned code);
/// "error", "warning" or "note".
llvm::StringRef SeverityName(Severity severity);

/// A note attached to a diagnostic, pointing at a related place.
struct Note {
  llvm::SMLoc loc;
  llvm::SMRange range;
  std::string message;
};

/// One reported problem. `loc` may be invalid for problems with a whole file,
/// in which case `file` names it.
struct Diagnostic {
  Kind kind;
  Severity severity;
  llvm::SMLoc loc;
  llvm::SmallVector<llvm::SMRange, 2> ranges;
  std::string file;
  std::string message;
  llvm::SmallVector<Note, 1> notes;
};

/// How diagnostics are filtered and promoted.
struct Options {
  /// -Werror: warnings become errors.
  bool warnings_as_errors = false;
  /// -Wno-<name>: warnings not to report.
  llvm::SmallVector<Kind, 4> disabled;
  /// --max-errors: stop after this many errors (0 = no limit).
  unsigned max_errors = 20;
};

class Engine;

/// Adds ranges and notes to a diagnostic; reports it when destroyed.
class Builder {
public:
  Builder(Engine *engine, Diagnostic diag) : engine_(engine), diag_(std::move(diag)) {}
  Builder(Builder &&other) : engine_(other.engine_), diag_(std::move(other.diag_)) {
    other.engine_ = nullptr;
  }
  Builder(const Builder &) = delete;
  ~Builder();

  /// Underlines `range` (half-open) in the source line.
  Builder &Range(llvm::SMRange range);
  /// Attaches a note at `loc`.
  Builder &AddNote(llvm::SMLoc loc, const llvm::Twine &message, llvm::SMRange range = {});

private:
  Engine *engine_;
  Diagnostic diag_;
};

/// Receives each diagnostic as it is reported.
class Consumer {
public:
  virtual ~Consumer() = default;
  virtual void Handle(const Diagnostic &diag) = 0;
  /// Called once after the last diagnostic.
  virtual void Finish() {}
};

/// Drops every diagnostic: for a phase that runs a second time (expanding for
/// another target, say) whose problems the first run already reported.
class DiscardConsumer : public Consumer {
public:
  void Handle(const Diagnostic &) override {}
};

/// Collects diagnostics, applies Options, counts errors and enforces the limit.
class Engine {
public:
  Engine(llvm::SourceMgr &sources, Options options, Consumer &consumer)
      : sources_(sources), options_(std::move(options)), consumer_(consumer) {}

  /// Starts a diagnostic of `kind` at `loc`; it is reported when the returned
  /// builder goes out of scope.
  Builder Report(Kind kind, llvm::SMLoc loc, const llvm::Twine &message);
  /// Starts a diagnostic about a whole file that has no source location.
  Builder ReportFile(Kind kind, llvm::StringRef file, const llvm::Twine &message);

  /// True once the error limit was reached: phases should stop early.
  bool ShouldStop() const { return stopped_; }
  /// False if `kind` is a warning turned off with -Wno-NAME: a phase that
  /// only reports it can be skipped.
  bool Enabled(Kind kind) const;
  unsigned error_count() const { return errors_; }
  unsigned warning_count() const { return warnings_; }
  llvm::SourceMgr &sources() { return sources_; }
  /// Tells the consumer that no more diagnostics follow.
  void Finish() { consumer_.Finish(); }

private:
  friend class Builder;
  void Emit(Diagnostic diag);

  llvm::SourceMgr &sources_;
  Options options_;
  Consumer &consumer_;
  unsigned errors_ = 0;
  unsigned warnings_ = 0;
  bool stopped_ = false;
  std::set<std::string> seen_;
};

/// A resolved source position: file name, 1-based line and column (in
/// Unicode code points), for renderers.
struct Position {
  std::string file;
  unsigned line = 0;
  unsigned column = 0;
};
/// Resolves `loc`; returns a Position with line 0 for an invalid location.
Position Resolve(const llvm::SourceMgr &sources, llvm::SMLoc loc);

/// Renders text diagnostics clang style: "file:line:col: error: message
/// [FLnnnn]", the source line, a caret and tildes, then notes.
class TextConsumer : public Consumer {
public:
  TextConsumer(const llvm::SourceMgr &sources, llvm::raw_ostream &out, bool colors)
      : sources_(sources), out_(out), colors_(colors) {}
  void Handle(const Diagnostic &diag) override;
  void Finish() override;

private:
  void PrintLocated(llvm::SMLoc loc, llvm::ArrayRef<llvm::SMRange> ranges, Severity severity,
                    llvm::StringRef message, llvm::StringRef code, llvm::StringRef file);
  void PrintIncludeStack(llvm::SMLoc loc);

  const llvm::SourceMgr &sources_;
  llvm::raw_ostream &out_;
  bool colors_;
  unsigned errors_ = 0;
  unsigned warnings_ = 0;
  unsigned last_include_buffer_ = 0;
};

/// Output flavour of JsonConsumer.
enum class JsonFlavor { kPlain, kSarif };

/// Collects diagnostics and writes them as one JSON document at Finish():
/// flowc's own schema (docs/diagnostics.md) or SARIF 2.1.0.
class JsonConsumer : public Consumer {
public:
  JsonConsumer(const llvm::SourceMgr &sources, llvm::raw_ostream &out, JsonFlavor flavor,
               std::string tool_version)
      : sources_(sources), out_(out), flavor_(flavor), tool_version_(std::move(tool_version)) {}
  void Handle(const Diagnostic &diag) override { diags_.push_back(diag); }
  void Finish() override;

private:
  void WritePlain();
  void WriteSarif();

  const llvm::SourceMgr &sources_;
  llvm::raw_ostream &out_;
  JsonFlavor flavor_;
  std::string tool_version_;
  std::vector<Diagnostic> diags_;
};

} // namespace flowc::diag

#endif // FLOWC_DIAG_DIAGNOSTIC_H
