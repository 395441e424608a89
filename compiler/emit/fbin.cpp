// Writing .fbin files (docs/format.md). All integers little-endian, every
// table 4-byte aligned, the CRC-32 over the file with its own field zero.
#include "compiler/emit/fbin.h"

#include <array>
#include <cstring>
#include <map>

#include "llvm/Support/CRC.h"
#include "llvm/Support/Endian.h"

namespace flowc::emit {
namespace {

namespace endian = llvm::support::endian;

constexpr size_t kHeaderSize = 48;
constexpr size_t kDirectorySize = 5 * 8;
constexpr size_t kRuleSize = 40;
constexpr size_t kBindingSize = 12;
constexpr uint32_t kNoQueue = 0xFFFFFFFFu;
constexpr uint32_t kBindCounter = 1, kBindHandle = 2;

/// NUL-terminated strings, each stored once; offset 0 is "".
class StringTable {
public:
  StringTable() { bytes_.push_back(0); }
  uint32_t Add(const std::string &s) {
    if (s.empty()) {
      return 0;
    }
    auto [it, inserted] = offsets_.try_emplace(s, static_cast<uint32_t>(bytes_.size()));
    if (inserted) {
      bytes_.insert(bytes_.end(), s.begin(), s.end());
      bytes_.push_back(0);
    }
    return it->second;
  }
  const std::vector<uint8_t> &bytes() const { return bytes_; }

private:
  std::vector<uint8_t> bytes_;
  std::map<std::string, uint32_t> offsets_;
};

size_t Align4(size_t n) { return (n + 3) & ~size_t(3); }

} // namespace

std::vector<uint8_t> WriteFbin(const OutputPolicy &p, const std::string &required_caps) {
  StringTable strings;
  uint32_t compiler = strings.Add(p.compiler);
  uint32_t target = strings.Add(p.target);
  uint32_t caps = strings.Add(required_caps);
  auto refs = [&](const std::vector<std::string> &names) {
    std::vector<uint32_t> out;
    for (const std::string &n : names) {
      out.push_back(strings.Add(n));
    }
    return out;
  };
  std::vector<uint32_t> queues = refs(p.queues), counters = refs(p.counters),
                        handles = refs(p.handles);
  struct Binding {
    uint32_t spec, kind, symbol;
  };
  std::vector<Binding> bindings;
  std::vector<std::array<uint32_t, 10>> rules;
  std::vector<uint8_t> buffers;
  std::vector<size_t> buffer_at;
  for (const OutputRule &r : p.rules) {
    uint32_t first = static_cast<uint32_t>(bindings.size());
    for (uint32_t s = 0; s < r.rule.specs.size(); ++s) {
      const HwSpec &spec = r.rule.specs[s];
      if (spec.kind == SpecKind::kActionCount || spec.kind == SpecKind::kActionHandle) {
        bindings.push_back(
            {s, spec.kind == SpecKind::kActionCount ? kBindCounter : kBindHandle, spec.binding});
      }
    }
    buffer_at.push_back(buffers.size());
    buffers.insert(buffers.end(), r.bytes.begin(), r.bytes.end());
    buffers.resize(Align4(buffers.size()), 0);
    uint32_t flags = (r.egress ? 1u : 0u) | (r.pass ? 2u : 0u);
    rules.push_back({0, static_cast<uint32_t>(r.bytes.size()), r.queue_index.value_or(kNoQueue),
                     first, static_cast<uint32_t>(bindings.size()) - first,
                     strings.Add(r.source.rule), strings.Add(r.source.file), r.source.line,
                     r.source.column, flags});
  }
  // Layout: header, directory, strings, queues, counters, handles, rules,
  // bindings, attr buffers.
  size_t at = kHeaderSize + kDirectorySize;
  size_t strings_at = at;
  at = Align4(at + strings.bytes().size());
  size_t table_at[5], counts[5] = {queues.size(), counters.size(), handles.size(), rules.size(),
                                   bindings.size()};
  size_t entry[5] = {4, 4, 4, kRuleSize, kBindingSize};
  for (int t = 0; t < 5; ++t) {
    table_at[t] = at;
    at = Align4(at + counts[t] * entry[t]);
  }
  size_t buffers_at = at;
  size_t total = buffers_at + buffers.size();

  std::vector<uint8_t> out(total, 0);
  uint8_t *b = out.data();
  std::memcpy(b, "FLOWBIN", 8);
  endian::write16le(b + 8, kFbinMajor);
  endian::write16le(b + 10, kFbinMinor);
  endian::write32le(b + 12, 1); // attr buffers are little-endian
  endian::write32le(b + 16, static_cast<uint32_t>(total));
  endian::write32le(b + 24, static_cast<uint32_t>(strings_at));
  endian::write32le(b + 28, static_cast<uint32_t>(strings.bytes().size()));
  endian::write32le(b + 32, compiler);
  endian::write32le(b + 36, target);
  endian::write32le(b + 40, caps);
  for (int t = 0; t < 5; ++t) {
    endian::write32le(b + kHeaderSize + 8 * t, static_cast<uint32_t>(table_at[t]));
    endian::write32le(b + kHeaderSize + 8 * t + 4, static_cast<uint32_t>(counts[t]));
  }
  std::memcpy(b + strings_at, strings.bytes().data(), strings.bytes().size());
  const std::vector<uint32_t> *names[3] = {&queues, &counters, &handles};
  for (int t = 0; t < 3; ++t) {
    for (size_t i = 0; i < names[t]->size(); ++i) {
      endian::write32le(b + table_at[t] + 4 * i, (*names[t])[i]);
    }
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    rules[i][0] = static_cast<uint32_t>(buffers_at + buffer_at[i]);
    for (int f = 0; f < 10; ++f) {
      endian::write32le(b + table_at[3] + kRuleSize * i + 4 * f, rules[i][f]);
    }
  }
  for (size_t i = 0; i < bindings.size(); ++i) {
    uint8_t *q = b + table_at[4] + kBindingSize * i;
    endian::write32le(q, bindings[i].spec);
    endian::write32le(q + 4, bindings[i].kind);
    endian::write32le(q + 8, bindings[i].symbol);
  }
  std::memcpy(b + buffers_at, buffers.data(), buffers.size());
  endian::write32le(b + 20, llvm::crc32(out));
  return out;
}

} // namespace flowc::emit
