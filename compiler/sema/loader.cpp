// Reading and validating source files.
#include "compiler/sema/loader.h"

#include <algorithm>

#include "llvm/Support/ConvertUTF.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

namespace flowc::sema {
namespace {

// Reports against the import that named the file, or the file itself.
diag::Builder Report(diag::Engine &diags, diag::Kind kind, llvm::StringRef path,
                     llvm::SMRange imported_from, const llvm::Twine &message) {
  if (imported_from.isValid()) {
    diag::Builder b = diags.Report(kind, imported_from.Start, message);
    b.Range(imported_from);
    return b;
  }
  return diags.ReportFile(kind, path, message);
}

} // namespace

Loaded LoadSource(llvm::StringRef path, llvm::SMRange imported_from, diag::Engine &diags) {
  Loaded result;
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(path, status)) {
    Report(diags, diag::Kind::kFileUnreadable, path, imported_from,
           "cannot read '" + path + "': " + ec.message());
    result.failure = LoadFailure::kUnreadable;
    return result;
  }
  if (llvm::sys::fs::is_directory(status)) {
    Report(diags, diag::Kind::kFileUnreadable, path, imported_from,
           "cannot read '" + path + "': it is a directory");
    result.failure = LoadFailure::kUnreadable;
    return result;
  }
  if (status.type() != llvm::sys::fs::file_type::regular_file) {
    // A FIFO or device would block or never end; only regular files are read.
    Report(diags, diag::Kind::kFileUnreadable, path, imported_from,
           "cannot read '" + path + "': it is not a regular file");
    result.failure = LoadFailure::kUnreadable;
    return result;
  }
  if (llvm::sys::path::extension(path) != ".flow") {
    Report(diags, diag::Kind::kNotFlowFile, path, imported_from,
           "'" + path + "' is not a Flow policy: policy files end in '.flow'");
    result.failure = LoadFailure::kUnreadable;
    return result;
  }
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/true);
  if (!buffer) {
    Report(diags, diag::Kind::kFileUnreadable, path, imported_from,
           "cannot read '" + path + "': " + buffer.getError().message());
    result.failure = LoadFailure::kUnreadable;
    return result;
  }
  llvm::StringRef text = (*buffer)->getBuffer();
  unsigned id = diags.sources().AddNewSourceBuffer(std::move(*buffer), imported_from.Start);
  result.buffer_id = id;

  size_t nul = text.find('\0');
  if (nul != llvm::StringRef::npos) {
    diags.Report(diag::Kind::kBinaryFile, llvm::SMLoc::getFromPointer(text.data() + nul),
                 "file contains a NUL byte; is it a binary file?");
    result.failure = LoadFailure::kBadContent;
    return result;
  }
  const llvm::UTF8 *begin = reinterpret_cast<const llvm::UTF8 *>(text.data());
  const llvm::UTF8 *end = begin + text.size();
  // Policies are mostly ASCII: only from the first byte that is not is the
  // text checked sequence by sequence.
  const llvm::UTF8 *cursor = std::find_if(begin, end, [](llvm::UTF8 c) { return c >= 0x80; });
  if (!llvm::isLegalUTF8String(&cursor, end)) {
    diags.Report(diag::Kind::kInvalidUtf8,
                 llvm::SMLoc::getFromPointer(reinterpret_cast<const char *>(cursor)),
                 "invalid UTF-8 byte sequence; Flow files are UTF-8 text");
    result.failure = LoadFailure::kBadContent;
    return result;
  }
  return result;
}

} // namespace flowc::sema
