#include "compiler/expand/overlap_index.h"

#include <algorithm>
#include <iterator>

#include "llvm/Support/MathExtras.h"

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

template <typename T> T &OverlapIndex::PrefixMap<T>::operator[](Prefix p) {
  uint64_t key = Pack(p.bits, p.top);
  lengths_ |= uint64_t{1} << p.bits;
  if (slots_.empty()) {
    auto it = std::lower_bound(keys_.begin(), keys_.end(), key);
    auto at = static_cast<size_t>(it - keys_.begin());
    if (it != keys_.end() && *it == key) {
      return values_[at];
    }
    if (keys_.size() < kSmall) {
      keys_.insert(it, key);
      return *values_.emplace(values_.begin() + static_cast<std::ptrdiff_t>(at));
    }
    // Grown: slots by hash and in order from now on.
    for (uint32_t slot = 0; slot < keys_.size(); ++slot) {
      slots_[keys_[slot]] = slot;
      sorted_.emplace_back(keys_[slot], slot);
    }
    keys_.clear();
  }
  auto [it, added] = slots_.try_emplace(key, static_cast<uint32_t>(values_.size()));
  if (!added) {
    return values_[it->second];
  }
  uint32_t slot = it->second;
  values_.emplace_back();
  pending_.emplace(key, slot);
  if (pending_.size() * kPendingShare > sorted_.size()) {
    std::vector<std::pair<uint64_t, uint32_t>> merged;
    merged.reserve(sorted_.size() + pending_.size());
    std::merge(sorted_.begin(), sorted_.end(), pending_.begin(), pending_.end(),
               std::back_inserter(merged),
               [](const auto &a, const auto &b) { return a.first < b.first; });
    sorted_ = std::move(merged);
    pending_.clear();
  }
  return values_[slot];
}

template <typename T>
template <typename Fn>
void OverlapIndex::PrefixMap<T>::Visit(Prefix q, Fn &&fn) const {
  if (slots_.empty()) {
    for (size_t slot = 0; slot < keys_.size(); ++slot) {
      auto bits = static_cast<unsigned>(keys_[slot] >> 56);
      uint64_t top = keys_[slot] & ((uint64_t{1} << 56) - 1);
      bool agree = bits <= q.bits ? (bits == 0 || q.top >> (q.bits - bits) == top)
                                  : (q.bits == 0 || top >> (bits - q.bits) == q.top);
      if (agree) {
        fn(values_[slot]);
      }
    }
    return;
  }
  for (uint64_t lengths = lengths_; lengths != 0; lengths &= lengths - 1) {
    auto bits = static_cast<unsigned>(llvm::countTrailingZeros(lengths));
    if (bits <= q.bits) {
      auto it = slots_.find(Pack(bits, bits == 0 ? 0 : q.top >> (q.bits - bits)));
      if (it != slots_.end()) {
        fn(values_[it->second]);
      }
      continue;
    }
    unsigned extra = bits - q.bits;
    uint64_t lo = Pack(bits, q.top << extra), hi = lo | ((uint64_t{1} << extra) - 1);
    // Both in key order: the sorted keys and the pending ones, merged.
    auto a = std::lower_bound(sorted_.begin(), sorted_.end(), lo,
                              [](const auto &e, uint64_t key) { return e.first < key; });
    auto b = pending_.lower_bound(lo);
    for (;;) {
      bool in_a = a != sorted_.end() && a->first <= hi;
      bool in_b = b != pending_.end() && b->first <= hi;
      if (in_a && (!in_b || a->first < b->first)) {
        fn(values_[(a++)->second]);
      } else if (in_b) {
        fn(values_[(b++)->second]);
      } else {
        break;
      }
    }
  }
}

void OverlapIndex::Insert(uint32_t id, const TernaryRule &rule, uint32_t key) {
  if (!chosen_) {
    Choose();
  }
  Prefix p[2] = {PrefixOf(rule, 0), PrefixOf(rule, 1)};
  for (unsigned o = 0; o < (nkeys_ > 1 ? 2u : 1u); ++o) {
    Inner &inner = outer_[o][p[o]];
    inner.max_key = std::max(inner.max_key, key);
    inner.min_id = std::min(inner.min_id, id);
    Bucket &bucket = inner.buckets[p[1 - o]];
    bucket.max_key = std::max(bucket.max_key, key);
    bucket.ids.push_back(id);
  }
  ascending_ = ascending_ && (size_ == 0 || id > last_id_);
  last_id_ = id;
  ++size_;
}

template <typename Fn>
void OverlapIndex::Scan(const std::array<Prefix, 2> &p, uint32_t below, uint32_t bar,
                        Fn &&fn) const {
  unsigned o = nkeys_ > 1 && p[1].bits > p[0].bits ? 1 : 0;
  outer_[o].Visit(p[o], [&](const Inner &inner) {
    if (inner.max_key < bar || inner.min_id >= below) {
      return;
    }
    inner.buckets.Visit(p[1 - o], [&](const Bucket &bucket) {
      if (bucket.max_key < bar) {
        return;
      }
      for (uint32_t id : bucket.ids) {
        if (id < below) {
          bar = fn(id);
        } else if (ascending_) {
          break; // the rest of the bucket is larger still
        }
      }
    });
  });
}

void OverlapIndex::Query(const TernaryRule &rule, llvm::function_ref<void(uint32_t)> fn,
                         uint32_t below, uint32_t min_key) const {
  if (size_ == 0 || below == 0) {
    return;
  }
  QueryPrefixes({PrefixOf(rule, 0), PrefixOf(rule, 1)}, fn, below, min_key);
}

void OverlapIndex::QueryPoint(Leading leading, llvm::function_ref<void(uint32_t)> fn,
                              uint32_t below, uint32_t min_key) const {
  if (size_ == 0 || below == 0) {
    return;
  }
  std::array<Prefix, 2> p;
  for (unsigned which = 0; which < nkeys_; ++which) {
    // What PrefixOf() gives for a full mask.
    unsigned bits = std::min(GetFieldInfo(keys_[which].second).bits, kMaxBits);
    if (std::optional<uint64_t> top = leading(keys_[which].first, keys_[which].second, bits)) {
      p[which] = {bits, *top};
    }
  }
  QueryPrefixes(p, fn, below, min_key);
}

void OverlapIndex::QueryPrefixes(const std::array<Prefix, 2> &p,
                                 llvm::function_ref<void(uint32_t)> fn, uint32_t below,
                                 uint32_t min_key) const {
  Scan(p, below, min_key, [&](uint32_t id) {
    fn(id);
    return min_key;
  });
}

void OverlapIndex::Search(const TernaryRule &rule,
                          llvm::function_ref<uint32_t(uint32_t)> fn) const {
  if (size_ == 0) {
    return;
  }
  Scan({PrefixOf(rule, 0), PrefixOf(rule, 1)}, UINT32_MAX, 0, fn);
}

} // namespace flowc::expand
