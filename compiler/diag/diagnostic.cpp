// The diagnostic registry and engine.
#include "compiler/diag/diagnostic.h"

#include "llvm/ADT/STLExtras.h"

#include "llvm/Support/Format.h"

namespace flowc::diag {
namespace {

constexpr KindInfo kKinds[] = {
#define DIAG(Id, Code, Sev, Name, Summary) {Kind::k##Id, Code, Severity::k##Sev, Name, Summary},
#include "compiler/diag/kinds.def"
};

} // namespace

const KindInfo &Info(Kind kind) { return kKinds[static_cast<size_t>(kind)]; }

llvm::ArrayRef<KindInfo> AllKinds() { return kKinds; }

std::optional<Kind> FindKindByName(llvm::StringRef name) {
  for (const KindInfo &info : kKinds) {
    if (info.name == name) {
      return info.kind;
    }
  }
  return std::nullopt;
}

std::optional<Kind> FindKindByCode(llvm::StringRef code) {
  for (const KindInfo &info : kKinds) {
    if (CodeString(info.code) == code.upper()) {
      return info.kind;
    }
  }
  return std::nullopt;
}

std::string CodeString(unsigned code) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << "FL" << llvm::format_decimal(code, 4);
  std::string s = os.str();
  for (char &c : s) {
    if (c == ' ') {
      c = '0';
    }
  }
  return s;
}

llvm::StringRef SeverityName(Severity severity) {
  switch (severity) {
  case Severity::kNote:
    return "note";
  case Severity::kWarning:
    return "warning";
  case Severity::kError:
    return "error";
  }
  return "error";
}

Builder::~Builder() {
  if (engine_ != nullptr) {
    engine_->Emit(std::move(diag_));
  }
}

Builder &Builder::Range(llvm::SMRange range) {
  if (range.isValid()) {
    diag_.ranges.push_back(range);
  }
  return *this;
}

Builder &Builder::AddNote(llvm::SMLoc loc, const llvm::Twine &message, llvm::SMRange range) {
  diag_.notes.push_back(Note{loc, range, message.str()});
  return *this;
}

Builder Engine::Report(Kind kind, llvm::SMLoc loc, const llvm::Twine &message) {
  Diagnostic d;
  d.kind = kind;
  d.severity = Info(kind).default_severity;
  d.loc = loc;
  d.message = message.str();
  return Builder(this, std::move(d));
}

Builder Engine::ReportFile(Kind kind, llvm::StringRef file, const llvm::Twine &message) {
  Diagnostic d;
  d.kind = kind;
  d.severity = Info(kind).default_severity;
  d.file = file.str();
  d.message = message.str();
  return Builder(this, std::move(d));
}

bool Engine::Enabled(Kind kind) const {
  return !llvm::is_contained(options_.disabled, kind);
}

void Engine::Emit(Diagnostic diag) {
  if (stopped_) {
    return;
  }
  // The same problem at the same place is reported once, however many
  // template uses or constant references lead to it.
  std::string key = std::to_string(static_cast<unsigned>(diag.kind)) + ':' +
                    std::to_string(reinterpret_cast<uintptr_t>(diag.loc.getPointer())) + ':' +
                    diag.file + ':' + diag.message;
  if (!seen_.insert(key).second) {
    return;
  }
  if (diag.severity == Severity::kWarning) {
    for (Kind k : options_.disabled) {
      if (k == diag.kind) {
        return;
      }
    }
    if (options_.warnings_as_errors) {
      diag.severity = Severity::kError;
    }
  }
  if (diag.severity == Severity::kError && options_.max_errors != 0 &&
      errors_ >= options_.max_errors) {
    // One error more than the limit: say so instead, without a location and
    // uncounted, like clang's fatal error-limit message ("20 errors generated"
    // for --max-errors=20), and stop. Nothing is said when nothing was cut.
    Diagnostic limit;
    limit.kind = Kind::kTooManyErrors;
    limit.severity = Severity::kError;
    limit.message = "too many errors emitted, stopping now (use --max-errors=0 for no limit)";
    consumer_.Handle(limit);
    stopped_ = true;
    return;
  }
  if (diag.severity == Severity::kError) {
    ++errors_;
  } else if (diag.severity == Severity::kWarning) {
    ++warnings_;
  }
  consumer_.Handle(diag);
}

Position Resolve(const llvm::SourceMgr &sources, llvm::SMLoc loc) {
  Position pos;
  if (!loc.isValid()) {
    return pos;
  }
  unsigned buffer = sources.FindBufferContainingLoc(loc);
  if (buffer == 0) {
    return pos;
  }
  const llvm::MemoryBuffer *mb = sources.getMemoryBuffer(buffer);
  pos.file = mb->getBufferIdentifier().str();
  auto [line, byte_column] = sources.getLineAndColumn(loc, buffer);
  pos.line = line;
  // Columns count code points, so that they agree with editors and SARIF.
  const char *p = loc.getPointer() - (byte_column - 1);
  unsigned column = 1;
  for (; p < loc.getPointer(); ++p) {
    if ((static_cast<unsigned char>(*p) & 0xC0) != 0x80) {
      ++column;
    }
  }
  pos.column = column;
  return pos;
}

} // namespace flowc::diag
