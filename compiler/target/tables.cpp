#include "compiler/target/tables.h"

#include <algorithm>
#include <functional>

#include "compiler/emit/layout.h"

namespace flowc::target {

TableFill::Slot TableFill::Add(uint32_t mask) {
  if (mask >= free_.size()) {
    free_.resize(mask + 1, 0);
  }
  if (free_[mask] > 0) {
    --free_[mask];
    ++rules_;
    return Slot::kGroup;
  }
  // A table too small for big groups makes one-entry groups only.
  unsigned size = NextGroupSize();
  if (used_ + size > entries_) {
    return Slot::kFull;
  }
  used_ += size;
  if (size == group_size_) {
    ++big_;
  }
  free_[mask] += size - 1;
  ++rules_;
  return size == 1 ? Slot::kSingle : Slot::kGroup;
}

bool TableFill::Fits(uint32_t mask) const {
  if (mask < free_.size() && free_[mask] > 0) {
    return true;
  }
  return used_ + NextGroupSize() <= entries_;
}

uint64_t TableFill::SafeRules(unsigned entries, unsigned groups) {
  unsigned group_size = entries / (groups + 1);
  if (group_size <= 1) {
    return entries;
  }
  return uint64_t{entries} - uint64_t{groups} * group_size + groups;
}

uint64_t TableFill::MostRules(unsigned entries, unsigned groups, uint64_t tables,
                              std::vector<uint64_t> per_mask) {
  const uint64_t group_size = entries / (groups + 1);
  uint64_t total = 0;
  for (uint64_t count : per_mask) {
    total += count;
  }
  if (group_size <= 1) {
    return std::min(total, tables * entries); // one-entry groups only
  }
  const uint64_t big = tables * groups;
  uint64_t rules = tables * (entries - groups * group_size);
  // Whole groups of the masks first, then the largest remainders.
  uint64_t whole = 0;
  for (uint64_t &count : per_mask) {
    whole += count / group_size;
    count %= group_size;
  }
  if (whole >= big) {
    return std::min(total, rules + big * group_size);
  }
  rules += whole * group_size;
  uint64_t left = big - whole;
  if (left < per_mask.size()) {
    std::nth_element(per_mask.begin(), per_mask.begin() + static_cast<std::ptrdiff_t>(left),
                     per_mask.end(), std::greater<>());
    per_mask.resize(left);
  }
  for (uint64_t count : per_mask) {
    rules += count;
  }
  return std::min(total, rules);
}

bool MulticastOnly(const emit::HwSpec &s) {
  if (s.inner) {
    return false;
  }
  if (s.kind == emit::SpecKind::kEth) {
    return (s.val[0] & 1) != 0 && (s.mask[0] & 1) != 0;
  }
  if (s.kind == emit::SpecKind::kIpv4 || s.kind == emit::SpecKind::kIpv4Ext) {
    return (s.val[4] & 0xf0) == 0xe0; // dst_ip in 224.0.0.0/4
  }
  return false;
}

uint64_t TableOf(const emit::HwRule &rule, bool multicast_first_spec) {
  bool trapping = (rule.flags & emit::kFlagDontTrap) == 0;
  if (multicast_first_spec && trapping && !rule.specs.empty() &&
      MulticastOnly(rule.specs.front())) {
    return kMulticastTable;
  }
  return 2ull * rule.priority + (trapping ? 1 : 0);
}

std::string MaskKey(const emit::HwRule &rule) {
  std::string key;
  for (const emit::HwSpec &s : rule.specs) {
    if (emit::IsAction(s.kind)) {
      continue;
    }
    size_t size = emit::GetLayout(s.kind).filter_size;
    auto mask = llvm::ArrayRef(s.mask).take_front(size);
    // An ETH spec that matches nothing adds no criteria.
    if (s.kind == emit::SpecKind::kEth && llvm::all_of(mask, [](uint8_t b) { return b == 0; })) {
      continue;
    }
    key.push_back(static_cast<char>(s.kind));
    key.push_back(s.inner ? 'i' : 'o');
    key.append(mask.begin(), mask.end());
  }
  return key;
}

} // namespace flowc::target
