// Encoding and decoding ibv_create_flow() buffers byte by byte: no struct is
// ever cast over the buffer (verbs-facts §1.4: HANDLE/COUNT pointers may sit
// at 4-byte alignment).
#include "compiler/emit/buffer.h"

#include <cassert>
#include <cstring>

#include "llvm/Support/Endian.h"
#include "llvm/Support/FormatVariadic.h"

namespace flowc::emit {
namespace {

namespace endian = llvm::support::endian;

/// The IPv6 filter ends in one padding byte (verbs-facts §1.2), which the
/// kernel checks in the mask (§1.5).
constexpr unsigned kIpv6FilterPad = 39;

llvm::APInt ReadWord(const uint8_t *p, unsigned bytes) {
  llvm::APInt word(bytes * 8, 0);
  for (unsigned i = 0; i < bytes; ++i) {
    word <<= 8;
    word |= p[i];
  }
  return word;
}

void WriteWord(uint8_t *p, unsigned bytes, const llvm::APInt &word) {
  for (unsigned i = 0; i < bytes; ++i) {
    p[bytes - 1 - i] = static_cast<uint8_t>(word.extractBitsAsZExtValue(8, 8 * i));
  }
}

llvm::Error Fail(size_t offset, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 llvm::formatv("offset {0}: ", offset) + message);
}

} // namespace

bool HwSpec::operator==(const HwSpec &other) const {
  return kind == other.kind && inner == other.inner && val == other.val && mask == other.mask &&
         tag == other.tag && binding == other.binding;
}

HwSpec MakeSpec(SpecKind kind, bool inner) {
  HwSpec spec;
  spec.kind = kind;
  spec.inner = inner;
  return spec;
}

void SetField(HwSpec &spec, Field field, const llvm::APInt &value, const llvm::APInt &mask) {
  std::optional<Placement> at = PlacementOf(field, spec.kind);
  assert(at && "the spec has no room for this field");
  const FieldInfo &info = GetFieldInfo(field);
  assert(value.getBitWidth() == info.bits && mask.getBitWidth() == info.bits);
  unsigned width = at->bytes * 8u;
  llvm::APInt bits = llvm::APInt::getLowBitsSet(width, info.bits).shl(at->shift);
  auto put = [&](std::array<uint8_t, kMaxFilterSize> &filter, const llvm::APInt &v) {
    llvm::APInt word = ReadWord(filter.data() + at->offset, at->bytes);
    word = (word & ~bits) | v.zext(width).shl(at->shift);
    WriteWord(filter.data() + at->offset, at->bytes, word);
  };
  put(spec.val, value);
  put(spec.mask, mask);
}

std::pair<llvm::APInt, llvm::APInt> GetField(const HwSpec &spec, Field field) {
  std::optional<Placement> at = PlacementOf(field, spec.kind);
  assert(at && "the spec has no room for this field");
  const FieldInfo &info = GetFieldInfo(field);
  auto get = [&](const std::array<uint8_t, kMaxFilterSize> &filter) {
    return ReadWord(filter.data() + at->offset, at->bytes).lshr(at->shift).trunc(info.bits);
  };
  return {get(spec.val), get(spec.mask)};
}

std::vector<uint8_t> Encode(const HwRule &rule) {
  assert(rule.specs.size() <= 255 && "num_of_specs is one byte");
  size_t total = kAttrSize;
  for (const HwSpec &s : rule.specs) {
    total += GetLayout(s.kind).size;
  }
  assert(total <= UINT16_MAX && "attr.size is 16 bits");
  std::vector<uint8_t> out(total, 0);
  uint8_t *p = out.data();
  // struct ibv_flow_attr: comp_mask 0, type 4, size 8, priority 10,
  // num_of_specs 12, port 13, flags 16 (verbs-facts §1.3).
  endian::write32le(p + 4, static_cast<uint32_t>(rule.type));
  // attr.size, little-endian, by hand: gcc 12 misreports write16le here.
  p[8] = static_cast<uint8_t>(total);
  p[9] = static_cast<uint8_t>(total >> 8);
  endian::write16le(p + 10, rule.priority);
  p[12] = static_cast<uint8_t>(rule.specs.size());
  p[13] = rule.port;
  endian::write32le(p + 16, rule.flags);
  size_t offset = kAttrSize;
  for (const HwSpec &s : rule.specs) {
    const SpecLayout &l = GetLayout(s.kind);
    uint8_t *q = p + offset;
    endian::write32le(q, l.type | (s.inner ? kSpecInner : 0));
    endian::write16le(q + 4, l.size);
    if (l.filter_size != 0) {
      std::memcpy(q + l.val_offset, s.val.data(), l.filter_size);
      std::memcpy(q + l.val_offset + l.filter_size, s.mask.data(), l.filter_size);
    } else if (s.kind == SpecKind::kActionTag) {
      endian::write32le(q + l.val_offset, s.tag);
    }
    offset += l.size;
  }
  return out;
}

llvm::Expected<HwRule> Decode(llvm::ArrayRef<uint8_t> bytes) {
  if (bytes.size() < kAttrSize) {
    return Fail(0, llvm::formatv("{0} bytes is shorter than ibv_flow_attr ({1})", bytes.size(),
                                 kAttrSize));
  }
  const uint8_t *p = bytes.data();
  HwRule rule;
  if (uint32_t comp_mask = endian::read32le(p); comp_mask != 0) {
    return Fail(0, llvm::formatv("comp_mask is {0}, not 0", comp_mask));
  }
  uint32_t type = endian::read32le(p + 4);
  if (type > static_cast<uint32_t>(AttrType::kSniffer)) {
    return Fail(4, llvm::formatv("unknown attr type {0}", type));
  }
  rule.type = static_cast<AttrType>(type);
  if (uint16_t size = endian::read16le(p + 8); size != bytes.size()) {
    return Fail(8, llvm::formatv("attr size is {0}, the buffer has {1} bytes", size, bytes.size()));
  }
  rule.priority = endian::read16le(p + 10);
  unsigned count = p[12];
  rule.port = p[13];
  rule.flags = endian::read32le(p + 16);
  if ((rule.flags & ~(kFlagDontTrap | kFlagEgress)) != 0) {
    return Fail(16, llvm::formatv("flags {0:x} outside DONT_TRAP and EGRESS", rule.flags));
  }
  if (count > kMaxSpecs) {
    return Fail(12, llvm::formatv("{0} specs, more than the kernel's {1}", count, kMaxSpecs));
  }
  size_t offset = kAttrSize;
  for (unsigned i = 0; i < count; ++i) {
    if (bytes.size() - offset < 8) {
      return Fail(offset, llvm::formatv("spec {0} of {1} is missing", i + 1, count));
    }
    const uint8_t *q = p + offset;
    uint32_t raw = endian::read32le(q);
    std::optional<SpecKind> kind = SpecKindOfType(raw & ~kSpecInner);
    if (!kind) {
      return Fail(offset, llvm::formatv("unknown spec type {0:x}", raw));
    }
    const SpecLayout &l = GetLayout(*kind);
    HwSpec spec = MakeSpec(*kind, (raw & kSpecInner) != 0);
    if (spec.inner && !l.inner_ok) {
      return Fail(offset, l.name + " cannot carry IBV_FLOW_SPEC_INNER");
    }
    if (uint16_t size = endian::read16le(q + 4); size != l.size) {
      return Fail(offset + 4, llvm::formatv("{0} spec size is {1}, not {2}", l.name, size, l.size));
    }
    if (bytes.size() - offset < l.size) {
      return Fail(offset, llvm::formatv("{0} spec runs past the end of the buffer", l.name));
    }
    if (l.filter_size != 0) {
      std::memcpy(spec.val.data(), q + l.val_offset, l.filter_size);
      std::memcpy(spec.mask.data(), q + l.val_offset + l.filter_size, l.filter_size);
      if (*kind == SpecKind::kIpv6 && (spec.val[kIpv6FilterPad] | spec.mask[kIpv6FilterPad])) {
        return Fail(offset + l.val_offset + kIpv6FilterPad, "IPv6 filter padding is not zero");
      }
    } else if (*kind == SpecKind::kActionTag) {
      spec.tag = endian::read32le(q + l.val_offset);
    }
    rule.specs.push_back(spec);
    offset += l.size;
  }
  if (offset != bytes.size()) {
    return Fail(offset, llvm::formatv("{0} bytes left after {1} specs", bytes.size() - offset,
                                      count));
  }
  // Everything not decoded above (padding, pointers) must be zero: encoding
  // the decoded rule again must give the same bytes.
  std::vector<uint8_t> again = Encode(rule);
  for (size_t i = 0; i < again.size(); ++i) {
    if (again[i] != bytes[i]) {
      return Fail(i, "padding or pointer byte is not zero");
    }
  }
  return rule;
}

} // namespace flowc::emit
