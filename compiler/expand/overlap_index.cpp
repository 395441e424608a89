#include "compiler/expand/overlap_index.h"

#include <algorithm>

namespace flowc::expand {

void OverlapIndex::Plan(const TernaryRule &rule) {
  for (const TernaryMatch &m : rule.matches) {
    ContainerMatch c = InContainer(m.field, m.value, m.mask);
    score_[{m.layer, c.field}] += std::min(c.mask.countLeadingOnes(), kMaxBits);
  }
}

void OverlapIndex::Choose() {
  chosen_ = true;
  std::vector<std::pair<uint64_t, std::pair<ir::Layer, Field>>> ranked;
  for (const auto &[key, score] : score_) {
    if (score > 0) {
      ranked.emplace_back(score, key);
    }
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto &a, const auto &b) { return a.first > b.first; });
  nkeys_ = static_cast<unsigned>(std::min<size_t>(ranked.size(), keys_.size()));
  for (unsigned i = 0; i < nkeys_; ++i) {
    keys_[i] = ranked[i].second;
  }
  score_.clear();
}

OverlapIndex::Prefix OverlapIndex::PrefixOf(const TernaryRule &rule, unsigned which) const {
  Prefix p;
  if (which >= nkeys_) {
    return p;
  }
  llvm::APInt value, mask;
  bool found = false;
  for (const TernaryMatch &m : rule.matches) {
    if (m.layer != keys_[which].first) {
      continue;
    }
    ContainerMatch c = InContainer(m.field, m.value, m.mask);
    if (c.field != keys_[which].second) {
      continue;
    }
    if (!found) {
      found = true;
      value = c.value;
      mask = c.mask;
    } else {
      value |= c.value;
      mask |= c.mask;
    }
  }
  if (!found) {
    return p;
  }
  p.bits = std::min(mask.countLeadingOnes(), kMaxBits);
  if (p.bits > 0) {
    p.top = value.lshr(value.getBitWidth() - p.bits).getZExtValue();
  }
  return p;
}

void OverlapIndex::Insert(uint32_t id, const TernaryRule &rule) {
  if (!chosen_) {
    Choose();
  }
  Prefix p[2] = {PrefixOf(rule, 0), PrefixOf(rule, 1)};
  for (unsigned o = 0; o < (nkeys_ > 1 ? 2u : 1u); ++o) {
    const Prefix &a = p[o], &b = p[1 - o];
    Inner &inner = outer_[o][{a.bits, a.top}];
    inner.rules[{b.bits, b.top}].push_back(id);
    inner.lengths |= uint64_t{1} << b.bits;
    lengths_[o] |= uint64_t{1} << a.bits;
  }
  ++size_;
}

/// Calls `fn` on the entries of `map` whose prefix and `q` agree on their
/// common leading bits: the shorter prefixes of q, and the longer prefixes
/// that start with q.
template <typename T, typename Fn>
void OverlapIndex::Visit(const std::map<Key, T> &map, uint64_t lengths, Prefix q, Fn &&fn) {
  for (unsigned bits = 0; bits <= kMaxBits; ++bits) {
    if ((lengths >> bits & 1) == 0) {
      continue;
    }
    if (bits <= q.bits) {
      auto it = map.find({bits, bits == 0 ? 0 : q.top >> (q.bits - bits)});
      if (it != map.end()) {
        fn(it->second);
      }
      continue;
    }
    unsigned extra = bits - q.bits;
    uint64_t lo = q.top << extra, hi = lo | ((uint64_t{1} << extra) - 1);
    for (auto it = map.lower_bound({bits, lo}); it != map.end() && it->first <= Key{bits, hi};
         ++it) {
      fn(it->second);
    }
  }
}

void OverlapIndex::Query(const TernaryRule &rule, llvm::function_ref<void(uint32_t)> fn) const {
  if (size_ == 0) {
    return;
  }
  Prefix p[2] = {PrefixOf(rule, 0), PrefixOf(rule, 1)};
  unsigned o = nkeys_ > 1 && p[1].bits > p[0].bits ? 1 : 0;
  Visit(outer_[o], lengths_[o], p[o], [&](const Inner &inner) {
    Visit(inner.rules, inner.lengths, p[1 - o], [&](const std::vector<uint32_t> &ids) {
      for (uint32_t id : ids) {
        fn(id);
      }
    });
  });
}

} // namespace flowc::expand
