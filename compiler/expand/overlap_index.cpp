#include "compiler/expand/overlap_index.h"

#include <algorithm>

#include "compiler/base/parallel.h"
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

namespace {

/// A prefix's bits from bit 63 down, the rest zero.
uint64_t Left(unsigned bits, uint64_t top) {
  return bits == 0 ? 0 : top << (64 - bits);
}

/// Bit `i` of a left-aligned path, counting from the top.
unsigned BitAt(uint64_t path, unsigned i) {
  return static_cast<unsigned>(path >> (63 - i)) & 1;
}

/// How many leading bits two left-aligned prefixes share, at most the
/// shorter one's length.
unsigned Common(uint64_t a, unsigned a_bits, uint64_t b, unsigned b_bits) {
  unsigned same = a == b ? 64 : llvm::countLeadingZeros(a ^ b);
  return std::min({same, a_bits, b_bits});
}

/// `path` cut to its first `bits` bits.
uint64_t Cut(uint64_t path, unsigned bits) {
  return bits == 0 ? 0 : path & ~(~uint64_t{0} >> bits);
}

} // namespace

template <typename T> uint32_t OverlapIndex::PrefixTrie<T>::NewValue() {
  values_.emplace_back();
  return static_cast<uint32_t>(values_.size() - 1);
}

template <typename T> uint32_t OverlapIndex::PrefixTrie<T>::NewNode(uint64_t path, unsigned bits) {
  Node node;
  node.path = path;
  node.bits = static_cast<uint8_t>(bits);
  node.slot = NewValue();
  nodes_.push_back(node);
  return static_cast<uint32_t>(nodes_.size() - 1);
}

template <typename T>
void OverlapIndex::PrefixTrie<T>::Count(uint32_t n, uint32_t id, uint32_t key) {
  nodes_[n].max_key = std::max(nodes_[n].max_key, key);
  nodes_[n].min_id = std::min(nodes_[n].min_id, id);
}

template <typename T>
T &OverlapIndex::PrefixTrie<T>::Repeat(llvm::ArrayRef<uint32_t> path, uint32_t id, uint32_t key) {
  for (uint32_t n : path) {
    Count(n, id, key);
  }
  return values_[nodes_[path.back()].slot];
}

template <typename T>
T &OverlapIndex::PrefixTrie<T>::Add(Prefix p, uint32_t id, uint32_t key,
                                    llvm::SmallVectorImpl<uint32_t> &nodes) {
  uint64_t path = Left(p.bits, p.top);
  nodes.clear();
  auto count = [&](uint32_t n) {
    Count(n, id, key);
    nodes.push_back(n);
  };
  if (nodes_.empty()) {
    uint32_t n = NewNode(path, p.bits);
    count(n);
    return values_[nodes_[n].slot];
  }
  uint32_t n = 0;
  for (;;) {
    const Node node = nodes_[n];
    unsigned common = Common(node.path, node.bits, path, p.bits);
    if (common < node.bits) {
      // The prefix leaves this node's path, or ends on it: a node for it
      // or for the branching point takes this node's place (so that its
      // parent's link stays), and the node moves below it.
      uint32_t moved = static_cast<uint32_t>(nodes_.size());
      nodes_.push_back(node);
      Node top;
      top.max_key = node.max_key;
      top.min_id = node.min_id;
      top.child[BitAt(node.path, common)] = moved;
      uint32_t at = n;
      if (common == p.bits) {
        top.path = path;
        top.bits = static_cast<uint8_t>(p.bits);
        top.slot = NewValue();
      } else {
        top.path = Cut(path, common);
        top.bits = static_cast<uint8_t>(common);
        at = NewNode(path, p.bits);
        top.child[BitAt(path, common)] = at;
      }
      nodes_[n] = top;
      count(n);
      if (at != n) {
        count(at);
      }
      return values_[nodes_[at].slot];
    }
    count(n);
    if (node.bits == p.bits) {
      if (node.slot == kNone) {
        nodes_[n].slot = NewValue();
      }
      return values_[nodes_[n].slot];
    }
    unsigned side = BitAt(path, node.bits);
    if (node.child[side] == kNone) {
      uint32_t leaf = NewNode(path, p.bits);
      nodes_[n].child[side] = leaf;
      count(leaf);
      return values_[nodes_[leaf].slot];
    }
    n = node.child[side];
  }
}

template <typename T>
template <typename Fn>
void OverlapIndex::PrefixTrie<T>::Visit(Prefix q, const uint32_t &bar, uint32_t below,
                                        Fn &&fn) const {
  if (nodes_.empty()) {
    return;
  }
  uint64_t path = Left(q.bits, q.top);
  auto skip = [&](const Node &node) { return node.max_key < bar || node.min_id >= below; };
  // Down the query's own path: the shorter prefixes that agree with it.
  uint32_t n = 0;
  for (;;) {
    const Node &node = nodes_[n];
    if (skip(node) ||
        Common(node.path, node.bits, path, q.bits) < std::min<unsigned>(node.bits, q.bits)) {
      return;
    }
    if (node.bits >= q.bits) {
      break; // this node's prefix extends the query's: all of its subtree agrees
    }
    if (node.slot != kNone) {
      fn(values_[node.slot]);
    }
    n = node.child[BitAt(path, node.bits)];
    if (n == kNone) {
      return;
    }
  }
  // The subtree under the query's prefix, depth first.
  llvm::SmallVector<uint32_t, 32> stack = {n};
  while (!stack.empty()) {
    const Node &node = nodes_[stack.pop_back_val()];
    if (skip(node)) {
      continue;
    }
    if (node.slot != kNone) {
      fn(values_[node.slot]);
    }
    for (uint32_t c : {node.child[1], node.child[0]}) {
      if (c != kNone) {
        stack.push_back(c);
      }
    }
  }
}

void OverlapIndex::InsertInto(unsigned o, const std::array<Prefix, 2> &p, bool repeat, uint32_t id,
                              uint32_t key) {
  Inner &inner = repeat ? outer_[o].Repeat(outer_path_[o], id, key)
                        : outer_[o].Add(p[o], id, key, outer_path_[o]);
  Bucket &bucket =
      repeat ? inner.Repeat(inner_path_[o], id, key) : inner.Add(p[1 - o], id, key, inner_path_[o]);
  bucket.max_key = std::max(bucket.max_key, key);
  bucket.ids.push_back(id);
}

void OverlapIndex::Inserted(uint32_t id, const std::array<Prefix, 2> &p) {
  ascending_ = ascending_ && (size_ == 0 || id > last_id_);
  last_id_ = id;
  last_ = p;
  ++size_;
}

void OverlapIndex::Insert(uint32_t id, const TernaryRule &rule, uint32_t key) {
  if (!chosen_) {
    Choose();
  }
  std::array<Prefix, 2> p = {PrefixOf(rule, 0), PrefixOf(rule, 1)};
  bool repeat = size_ > 0 && p == last_;
  for (unsigned o = 0; o < (nkeys_ > 1 ? 2u : 1u); ++o) {
    InsertInto(o, p, repeat, id, key);
  }
  Inserted(id, p);
}

void OverlapIndex::InsertAll(llvm::ArrayRef<Item> items) {
  if (items.empty()) {
    return;
  }
  if (!chosen_) {
    Choose();
  }
  bool parallel = items.size() >= kParallelFrom;
  std::vector<std::array<Prefix, 2>> p(items.size());
  auto prefixes = [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      p[i] = {PrefixOf(*items[i].rule, 0), PrefixOf(*items[i].rule, 1)};
    }
  };
  size_t half = items.size() / 2;
  RunBoth([&] { prefixes(0, half); }, [&] { prefixes(half, items.size()); }, parallel);
  // Each field's trie on its own thread: they share nothing.
  auto build = [&](unsigned o) {
    for (size_t i = 0; i < items.size(); ++i) {
      bool repeat = i > 0 ? p[i] == p[i - 1] : size_ > 0 && p[0] == last_;
      InsertInto(o, p[i], repeat, items[i].id, items[i].key);
    }
  };
  if (nkeys_ > 1) {
    RunBoth([&] { build(0); }, [&] { build(1); }, parallel);
  } else {
    build(0);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    Inserted(items[i].id, p[i]);
  }
}

template <typename Fn>
void OverlapIndex::Scan(const std::array<Prefix, 2> &p, uint32_t below, uint32_t bar,
                        Fn &&fn) const {
  unsigned o = nkeys_ > 1 && p[1].bits > p[0].bits ? 1 : 0;
  outer_[o].Visit(p[o], bar, below, [&](const Inner &inner) {
    inner.Visit(p[1 - o], bar, below, [&](const Bucket &bucket) {
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
