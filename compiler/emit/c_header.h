// --emit=c: a C header with the compiled policy as an embeddable .fbin byte
// array and, per rule, a readable packed struct initializer in the style of
// the ibv_create_flow(3) man page example.
#ifndef FLOWC_EMIT_C_HEADER_H
#define FLOWC_EMIT_C_HEADER_H

#include <cstdint>
#include <string>

#include "compiler/emit/outputs.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/raw_ostream.h"

namespace flowc::emit {

/// `name` made into a C identifier ("roce-storage" -> "roce_storage").
std::string CIdentifier(llvm::StringRef name);

/// Writes the header. Every name it defines starts with `prefix`: the
/// array `<prefix>_fbin`, one `struct <prefix>_rule_N` type and constant per
/// rule, with static asserts on their sizes, and `<prefix>_rules`, a table
/// of (attr, size, queue) entries with `<prefix>_num_rules`. It compiles with gcc -Wall -Wextra
/// -Werror -pedantic against <infiniband/verbs.h>.
void WriteCHeader(const OutputPolicy &policy, llvm::ArrayRef<uint8_t> fbin, llvm::StringRef prefix,
                  llvm::raw_ostream &out);

} // namespace flowc::emit

#endif // FLOWC_EMIT_C_HEADER_H
