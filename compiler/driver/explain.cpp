// The embedded documentation of every diagnostic code.
#include "compiler/driver/explain.h"

namespace flowc::driver {
namespace {

struct Entry {
  const char *code;
  const char *text;
};

const Entry kEntries[] = {
#include "diagnostic_docs.inc"
};

} // namespace

llvm::StringRef ExplainText(llvm::StringRef code) {
  for (const Entry &e : kEntries) {
    if (code.equals_insensitive(e.code)) {
      return e.text;
    }
  }
  return "";
}

} // namespace flowc::driver
