// Text rendering of diagnostics, clang style.
#include "compiler/diag/diagnostic.h"

#include <algorithm>

#include "llvm/Support/ConvertUTF.h"

namespace flowc::diag {
namespace {

// Lines longer than this are shown as a window around the caret.
constexpr size_t kMaxShownLine = 160;

llvm::raw_ostream::Colors ColorOf(Severity severity) {
  switch (severity) {
  case Severity::kError:
    return llvm::raw_ostream::RED;
  case Severity::kWarning:
    return llvm::raw_ostream::MAGENTA;
  case Severity::kNote:
    return llvm::raw_ostream::CYAN;
  }
  return llvm::raw_ostream::RED;
}

} // namespace

void TextConsumer::PrintIncludeStack(llvm::SMLoc loc) {
  unsigned buffer = sources_.FindBufferContainingLoc(loc);
  if (buffer == 0 || buffer == last_include_buffer_) {
    return;
  }
  last_include_buffer_ = buffer;
  llvm::SMLoc parent = sources_.getParentIncludeLoc(buffer);
  while (parent.isValid()) {
    Position pos = Resolve(sources_, parent);
    out_ << "in file imported from " << pos.file << ':' << pos.line << ":\n";
    parent = sources_.getParentIncludeLoc(sources_.FindBufferContainingLoc(parent));
  }
}

void TextConsumer::PrintLocated(llvm::SMLoc loc, llvm::ArrayRef<llvm::SMRange> ranges,
                                Severity severity, llvm::StringRef message, llvm::StringRef code,
                                llvm::StringRef file) {
  Position pos = Resolve(sources_, loc);
  if (colors_) {
    out_.changeColor(llvm::raw_ostream::SAVEDCOLOR, true);
  }
  if (pos.line != 0) {
    out_ << pos.file << ':' << pos.line << ':' << pos.column << ": ";
  } else if (!file.empty()) {
    out_ << file << ": ";
  }
  if (colors_) {
    out_.changeColor(ColorOf(severity), true);
  }
  out_ << SeverityName(severity) << ": ";
  if (colors_) {
    out_.changeColor(llvm::raw_ostream::SAVEDCOLOR, true);
  }
  out_ << message;
  if (!code.empty()) {
    out_ << " [" << code << ']';
  }
  if (colors_) {
    out_.resetColor();
  }
  out_ << '\n';
  if (pos.line == 0) {
    return;
  }

  // The source line, with the caret under `loc` and tildes under each range
  // on the same line.
  unsigned buffer = sources_.FindBufferContainingLoc(loc);
  const llvm::MemoryBuffer *mb = sources_.getMemoryBuffer(buffer);
  const char *buf_begin = mb->getBufferStart();
  const char *buf_end = mb->getBufferEnd();
  const char *line_begin = loc.getPointer();
  while (line_begin > buf_begin && line_begin[-1] != '\n' && line_begin[-1] != '\r') {
    --line_begin;
  }
  const char *line_end = loc.getPointer();
  while (line_end < buf_end && *line_end != '\n' && *line_end != '\r') {
    ++line_end;
  }
  // Marks are placed per code point, so that a caret after a non-ASCII
  // character sits under the column the location reports.
  llvm::SmallVector<const char *, 128> starts; // start of each code point
  for (const char *p = line_begin; p < line_end; ++p) {
    if ((static_cast<unsigned char>(*p) & 0xC0) != 0x80) {
      starts.push_back(p);
    }
  }
  auto column_of = [&](const char *p) {
    return static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), p) - starts.begin()) -
           (p < line_end && !starts.empty() && p >= starts.front() ? 1 : 0);
  };
  size_t length = starts.size();
  size_t caret = loc.getPointer() >= line_end ? length : column_of(loc.getPointer());
  std::string marks(length + 1, ' ');
  for (llvm::SMRange r : ranges) {
    const char *b = std::max(r.Start.getPointer(), line_begin);
    const char *e = std::min(r.End.getPointer(), line_end);
    if (b >= e) {
      continue;
    }
    size_t cb = column_of(b);
    size_t ce = e >= line_end ? length : column_of(e);
    for (size_t c = cb; c < ce; ++c) {
      marks[c] = '~';
    }
  }
  marks[std::min(caret, length)] = '^';
  // Tabs stay tabs in the marker line so that both lines align.
  for (size_t c = 0; c < length; ++c) {
    if (*starts[c] == '\t' && marks[c] == ' ') {
      marks[c] = '\t';
    }
  }
  size_t first = 0;
  size_t last = length;
  if (length > kMaxShownLine) {
    first = caret > kMaxShownLine / 2 ? caret - kMaxShownLine / 2 : 0;
    last = std::min(length, first + kMaxShownLine);
  }
  const char *shown_begin = first < length ? starts[first] : line_end;
  const char *shown_end = last < length ? starts[last] : line_end;
  // Control bytes and broken UTF-8 would garble the terminal: show them as
  // '?', one for one, so the caret line still aligns.
  std::string shown(shown_begin, shown_end);
  const llvm::UTF8 *utf8 = reinterpret_cast<const llvm::UTF8 *>(shown.data());
  bool valid_utf8 = llvm::isLegalUTF8String(&utf8, utf8 + shown.size());
  for (char &c : shown) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f || (u >= 0x80 && !valid_utf8)) {
      c = '?';
    }
  }
  llvm::StringRef shown_marks = llvm::StringRef(marks).slice(first, std::max(last, caret + 1));
  out_ << (first > 0 ? "..." : "") << shown << (last < length ? "..." : "") << '\n';
  if (colors_) {
    out_.changeColor(llvm::raw_ostream::GREEN, true);
  }
  out_ << (first > 0 ? "   " : "") << shown_marks.rtrim() << '\n';
  if (colors_) {
    out_.resetColor();
  }
}

void TextConsumer::Handle(const Diagnostic &diag) {
  if (diag.kind == Kind::kTooManyErrors) {
    // Not counted: the summary line reports the errors that were shown.
  } else if (diag.severity == Severity::kError) {
    ++errors_;
  } else if (diag.severity == Severity::kWarning) {
    ++warnings_;
  }
  if (diag.loc.isValid()) {
    PrintIncludeStack(diag.loc);
  }
  PrintLocated(diag.loc, diag.ranges, diag.severity, diag.message,
               CodeString(Info(diag.kind).code), diag.file);
  for (const Note &note : diag.notes) {
    llvm::SmallVector<llvm::SMRange, 1> ranges;
    if (note.range.isValid()) {
      ranges.push_back(note.range);
    }
    PrintLocated(note.loc, ranges, Severity::kNote, note.message, "", "");
  }
}

void TextConsumer::Finish() {
  if (errors_ == 0 && warnings_ == 0) {
    return;
  }
  if (warnings_ > 0) {
    out_ << warnings_ << (warnings_ == 1 ? " warning" : " warnings");
  }
  if (warnings_ > 0 && errors_ > 0) {
    out_ << " and ";
  }
  if (errors_ > 0) {
    out_ << errors_ << (errors_ == 1 ? " error" : " errors");
  }
  out_ << " generated.\n";
}

} // namespace flowc::diag
