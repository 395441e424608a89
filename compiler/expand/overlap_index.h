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
#include "llvm/ADT/ArrayRef.h"
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
  /// One rule to insert.
  struct Item {
    uint32_t id;
    const TernaryRule *rule;
    uint32_t key;
  };
  /// Insert() of each item in order, with the index's two tries built on
  /// two threads when there are many (kParallelFrom).
  void InsertAll(llvm::ArrayRef<Item> items);
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
    bool operator==(const Prefix &o) const { return bits == o.bits && top == o.top; }
  };
  /// At most this many leading bits are indexed; longer prefixes are cut,
  /// which makes the answers only coarser.
  static constexpr unsigned kMaxBits = 56;

  /// Values by prefix in a binary trie whose one-way branches are
  /// compressed (PATRICIA): a node per value and per branching point. A
  /// query walks down its own prefix, meeting the shorter prefixes that
  /// agree with it, and then takes the subtree under it, the longer ones.
  /// Every node keeps the largest key and the smallest id added under it,
  /// so that a walk skips subtrees outside the query's bounds.
  template <typename T> class PrefixTrie {
  public:
    PrefixTrie() = default;
    // Moved, never copied.
    PrefixTrie(const PrefixTrie &) = delete;
    PrefixTrie &operator=(const PrefixTrie &) = delete;
    PrefixTrie(PrefixTrie &&) noexcept = default;
    PrefixTrie &operator=(PrefixTrie &&) noexcept = default;
    ~PrefixTrie() = default;
    /// The value under prefix `p`, made if missing, counting `id` and
    /// `key` in the bounds of every node on its path; `path` is set to
    /// those nodes, the value's last.
    T &Add(Prefix p, uint32_t id, uint32_t key, llvm::SmallVectorImpl<uint32_t> &path);
    /// Add() again for the prefix of the last Add(), whose `path` is
    /// still valid while no other Add() came between.
    T &Repeat(llvm::ArrayRef<uint32_t> path, uint32_t id, uint32_t key);
    /// Calls `fn` on the values whose prefix and `q` agree on their common
    /// leading bits, skipping subtrees whose keys are all below `bar` (read
    /// again at every node) or whose ids are all at or above `below`.
    template <typename Fn> void Visit(Prefix q, const uint32_t &bar, uint32_t below, Fn &&fn) const;

  private:
    static constexpr uint32_t kNone = UINT32_MAX;
    struct Node {
      uint64_t path = 0; ///< the prefix's bits, from bit 63 down
      uint32_t child[2] = {kNone, kNone};
      uint32_t slot = kNone; ///< its value in values_, if any
      uint32_t max_key = 0;
      uint32_t min_id = UINT32_MAX;
      uint8_t bits = 0;
    };
    /// A new value's slot.
    uint32_t NewValue();
    /// A new node for (path, bits) with a new value.
    uint32_t NewNode(uint64_t path, unsigned bits);
    /// Counts `id` and `key` in node `n`'s bounds.
    void Count(uint32_t n, uint32_t id, uint32_t key);
    // One node and one value inline: most tries of the inner field hold one.
    llvm::SmallVector<Node, 1> nodes_; ///< nodes_[0] is the root
    llvm::SmallVector<T, 1> values_;
  };

  void Choose();
  /// Insert()'s work in trie `o` (outer_[o]), for prefixes `p`; `repeat`:
  /// `p` are the last insert's, whose paths are kept.
  void InsertInto(unsigned o, const std::array<Prefix, 2> &p, bool repeat, uint32_t id,
                  uint32_t key);
  /// Counts an insert of `id` with prefixes `p`.
  void Inserted(uint32_t id, const std::array<Prefix, 2> &p);
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
    // Moved, never copied.
    Bucket(Bucket &&) noexcept = default;
    Bucket &operator=(Bucket &&) noexcept = default;
    ~Bucket() = default;
  };
  /// The buckets under one prefix of the outer field, by their prefix in
  /// the other (its root's bounds are those of all of them).
  using Inner = PrefixTrie<Bucket>;
  /// Rules by their prefix in the first field, then in the second; and the
  /// other way round. A query walks the one whose outer field it narrows
  /// most, so that a rule open in one field does not visit every entry.
  PrefixTrie<Inner> outer_[2];
  size_t size_ = 0;
  /// Whether every Insert() so far had a larger id than the one before, so
  /// that each bucket is sorted.
  bool ascending_ = true;
  uint32_t last_id_ = 0;
  /// The last Insert()'s prefixes and its paths in each trie: the
  /// expansions of one rule often follow each other with the same
  /// prefixes, and then their inserts skip the walk.
  std::array<Prefix, 2> last_;
  llvm::SmallVector<uint32_t, 24> outer_path_[2], inner_path_[2];
};

} // namespace flowc::expand

#endif // FLOWC_EXPAND_OVERLAP_INDEX_H
