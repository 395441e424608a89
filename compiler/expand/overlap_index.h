// An index of ternary rules by the leading bits of two fields, for finding
// the rules that may overlap a given one without testing every pair. It
// answers with candidates: every rule that overlaps the query is among them,
// and the caller tests each candidate exactly.
#ifndef FLOWC_EXPAND_OVERLAP_INDEX_H
#define FLOWC_EXPAND_OVERLAP_INDEX_H

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "compiler/expand/expand.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"

namespace flowc::expand {

class OverlapIndex {
public:
  /// Counts the fields `rule` narrows, to choose the index's fields; call
  /// for the rules (or a sample of them) before the first Insert().
  void Plan(const TernaryRule &rule);
  /// Adds `rule` under the caller's `id`, with a `key` that queries can
  /// bound from below.
  void Insert(uint32_t id, const TernaryRule &rule, uint32_t key = 0);
  /// Calls `fn` with the id of every inserted rule that may overlap `rule`
  /// (a superset of those that do), each once. Only ids below `below` are
  /// given; when the ids were inserted in ascending order, each bucket's
  /// scan stops at the first one that is not. Rules inserted with a key
  /// below `min_key` may be left out: groups whose largest key is smaller
  /// are skipped whole.
  void Query(const TernaryRule &rule, llvm::function_ref<void(uint32_t)> fn,
             uint32_t below = UINT32_MAX, uint32_t min_key = 0) const;
  /// The first `n` bits of a packet's (layer, container field), n at most
  /// the field's width; none if the packet has no such field.
  using Leading = llvm::function_ref<std::optional<uint64_t>(ir::Layer, Field, unsigned n)>;
  /// Query() for a rule that fixes every bit of every field `leading`
  /// gives (a packet), without building that rule.
  void QueryPoint(Leading leading, llvm::function_ref<void(uint32_t)> fn,
                  uint32_t below = UINT32_MAX, uint32_t min_key = 0) const;
  /// Query() for a search that raises its bar as it goes: `fn` returns the
  /// least key still of interest, and from then on groups whose largest
  /// key is below it are skipped. Every rule that overlaps `rule` and has
  /// a key at least the bar at the time is given.
  void Search(const TernaryRule &rule, llvm::function_ref<uint32_t(uint32_t)> fn) const;
  size_t size() const { return size_; }

private:
  /// The leading bits a rule fixes in one field: `bits` of them, `top`.
  struct Prefix {
    unsigned bits = 0;
    uint64_t top = 0;
  };
  /// At most this many leading bits are indexed; longer prefixes are cut,
  /// which makes the answers only coarser.
  static constexpr unsigned kMaxBits = 56;

  /// Values by prefix. Visit() finds the entries a prefix agrees with: its
  /// shorter prefixes by hash, the longer ones under it in key order. A
  /// map of a few entries is a sorted vector, scanned whole; a larger one
  /// keeps its keys in a sorted vector too, for range scans without pointer
  /// chasing, with the keys added since the last merge in a small tree.
  template <typename T> class PrefixMap {
  public:
    PrefixMap() = default;
    // Moved, never copied, and noexcept so that a growing vector of maps
    // moves them (DenseMap's move constructor is not declared noexcept, so
    // the implicit one would let std::vector copy every map instead).
    PrefixMap(const PrefixMap &) = delete;
    PrefixMap &operator=(const PrefixMap &) = delete;
    PrefixMap(PrefixMap &&) noexcept = default;
    PrefixMap &operator=(PrefixMap &&) noexcept = default;
    ~PrefixMap() = default;
    T &operator[](Prefix p);
    /// Calls `fn` on the entries whose prefix and `q` agree on their common
    /// leading bits, in (bits, top) order.
    template <typename Fn> void Visit(Prefix q, Fn &&fn) const;

  private:
    /// (bits, top) as one number in the same order: bits in the top byte.
    static uint64_t Pack(unsigned bits, uint64_t top) { return uint64_t{bits} << 56 | top; }
    static constexpr size_t kSmall = 8;
    /// Merges pending_ into sorted_ once it holds this share of sorted_,
    /// so that each key is moved a bounded number of times on average.
    static constexpr size_t kPendingShare = 8;
    std::vector<uint64_t> keys_; ///< sorted, while small
    std::vector<T> values_;      ///< by slot
    llvm::DenseMap<uint64_t, uint32_t> slots_;
    std::vector<std::pair<uint64_t, uint32_t>> sorted_; ///< (key, slot) by key
    std::map<uint64_t, uint32_t> pending_;
    uint64_t lengths_ = 0; ///< bit n set: some entry has an n-bit prefix
  };

  void Choose();
  /// Query(), QueryPoint() and Search() with the query's prefix in each
  /// field: `fn(id)` returns the bar for the keys.
  template <typename Fn>
  void Scan(const std::array<Prefix, 2> &p, uint32_t below, uint32_t bar, Fn &&fn) const;
  /// Query() and QueryPoint() once the query's prefixes are known.
  void QueryPrefixes(const std::array<Prefix, 2> &p, llvm::function_ref<void(uint32_t)> fn,
                     uint32_t below, uint32_t min_key) const;
  Prefix PrefixOf(const TernaryRule &rule, unsigned which) const;

  /// (layer, container field) -> leading mask bits summed over Plan()'s rules.
  std::map<std::pair<ir::Layer, Field>, uint64_t> score_;
  bool chosen_ = false;
  std::array<std::pair<ir::Layer, Field>, 2> keys_{};
  unsigned nkeys_ = 0;
  /// Ids with one pair of prefixes, in insertion order, and the largest key
  /// among them. Groups whose keys are all below a query's bar, or whose
  /// ids are all at or above its `below`, are skipped whole.
  struct Bucket {
    llvm::SmallVector<uint32_t, 2> ids; ///< most buckets hold one or two
    uint32_t max_key = 0;
    Bucket() = default;
    Bucket(const Bucket &) = delete;
    Bucket &operator=(const Bucket &) = delete;
    // Moved, never copied (see PrefixMap).
    Bucket(Bucket &&) noexcept = default;
    Bucket &operator=(Bucket &&) noexcept = default;
    ~Bucket() = default;
  };
  struct Inner {
    PrefixMap<Bucket> buckets;
    uint32_t max_key = 0;
    uint32_t min_id = UINT32_MAX; ///< the smallest id among the buckets
  };
  /// Rules by their prefix in the first field, then in the second; and the
  /// other way round. A query walks the one whose outer field it narrows
  /// most, so that a rule open in one field does not visit every entry.
  PrefixMap<Inner> outer_[2];
  size_t size_ = 0;
  /// Whether every Insert() so far had a larger id than the one before, so
  /// that each bucket is sorted.
  bool ascending_ = true;
  uint32_t last_id_ = 0;
};

} // namespace flowc::expand

#endif // FLOWC_EXPAND_OVERLAP_INDEX_H
