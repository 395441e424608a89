// The compiled-policy file (.fbin, docs/format.md): the writer. The reader
// is runtime/include/flowrt/format.h, which shares no code with this.
#ifndef FLOWC_EMIT_FBIN_H
#define FLOWC_EMIT_FBIN_H

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/emit/outputs.h"

namespace flowc::emit {

/// Format version 1.0.
inline constexpr uint16_t kFbinMajor = 1;
inline constexpr uint16_t kFbinMinor = 0;

/// The .fbin bytes of `policy`; `required_caps` lists the device
/// capabilities the rules rely on ("inner,sniffer"). Same input, same bytes.
std::vector<uint8_t> WriteFbin(const OutputPolicy &policy, const std::string &required_caps);

} // namespace flowc::emit

#endif // FLOWC_EMIT_FBIN_H
