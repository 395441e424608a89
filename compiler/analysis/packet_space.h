// The exact packet-set model: every matchable field of the outer, tunnel and
// inner layers and the presence of each header, as BuDDy BDD variables.
#ifndef FLOWC_ANALYSIS_PACKET_SPACE_H
#define FLOWC_ANALYSIS_PACKET_SPACE_H

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "compiler/expand/expand.h"
#include "compiler/expand/overlap_index.h"
#include "compiler/ir/ir.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"

#include <bdd.h>

namespace flowc::analysis {

/// One packet of the model: the value of every variable, and once decoded,
/// every field block and which headers are present. Bits a set leaves free
/// are 0.
struct Packet {
  /// The value of every BDD variable.
  std::vector<uint8_t> bits;
  /// (layer, header) -> present.
  std::map<std::pair<ir::Layer, Header>, bool> headers;
  /// Whether each layer's Ethernet header carries an 802.1Q tag.
  bool vlan_tag[ir::kNumLayers] = {false, false, false};
  /// (layer, field) -> value, for the fields the model has.
  std::map<std::pair<ir::Layer, Field>, llvm::APInt> fields;
};

/// The packets a policy's rules can tell apart. Variables exist only for the
/// (layer, field) blocks and (layer, header) presence bits that some rule
/// uses; every field is its own block, most significant bit first. Only one
/// PacketSpace may exist at a time (BuDDy's state is global).
///
/// Soundness: each real packet maps to a model packet that every rule
/// matches exactly when the rule matches the real packet, and Universe()
/// removes only model packets no real packet maps to. So a rule whose model
/// packets all lie in other rules' sets has no real packet outside them.
class PacketSpace {
public:
  /// Allocates the variables `rules` need. `max_nodes` bounds BuDDy's node
  /// table; past it, Overflowed() turns true and results are not to be used.
  PacketSpace(llvm::ArrayRef<expand::TernaryRule> rules, int max_nodes);
  ~PacketSpace();
  PacketSpace(const PacketSpace &) = delete;
  PacketSpace &operator=(const PacketSpace &) = delete;

  /// The packets `rule` matches, as a cube over the model's variables; AND
  /// it with Universe() to leave out packets that cannot exist.
  bdd Match(const expand::TernaryRule &rule) const;

  /// A rule's cube as literals packed 64 variables to a word: the word's
  /// number (variable / 64), the variables the cube fixes (`care`, bit
  /// variable % 64) and their values (`value`, within `care`). A cheap form
  /// for overlap and containment tests before any BDD is built.
  struct CubeWord {
    uint32_t word;
    uint64_t care, value;
    bool operator==(const CubeWord &o) const {
      return word == o.word && care == o.care && value == o.value;
    }
  };
  /// Words with a non-zero `care`, sorted by `word`.
  using Literals = std::vector<CubeWord>;
  Literals CubeOf(const expand::TernaryRule &rule) const { return LiteralsOf(rule); }
  bdd Match(const Literals &cube) const;
  /// CubeOf() the constructor's rules[index], kept from construction.
  const Literals &CubeOfRule(size_t index) const { return cubes_[index]; }
  /// Whether two cubes share a packet, Universe() aside: false only when
  /// some variable has a different value in each.
  static bool MayOverlap(const Literals &a, const Literals &b);
  /// The cube of the packets both cubes match; they must MayOverlap().
  static Literals Meet(const Literals &a, const Literals &b);
  /// The packets that can exist: an IP header is IPv4 or IPv6, one L4 header
  /// per IP header, TCP/UDP/ESP/GRE imply the IP protocol, IPv4/IPv6 imply
  /// the ethertype, VXLAN implies UDP port 4789.
  const bdd &Universe() const { return universe_; }
  /// The variables Universe() does not depend on, by word as in CubeWord
  /// (bit v % 64 of word v / 64). Packets differing only in them all exist
  /// or none does, so within any cube each such variable a second cube
  /// fixes halves the share of the cube's packets it can hold.
  const std::vector<uint64_t> &FreeOfUniverse() const { return free_of_universe_; }

  /// Whether `rule`, one of the rules given to the constructor, matches
  /// `packet` (the same answer as Match(), by comparing bits).
  bool Contains(const expand::TernaryRule &rule, const Packet &packet) const;

  /// One packet of a non-empty `set`: its bits only (see Decode()).
  Packet Pick(const bdd &set) const;
  /// The packet of `cube` whose other bits are all 0 (as Packet::bits),
  /// whether or not it can exist.
  std::vector<uint8_t> CornerOf(const Literals &cube) const;
  /// Sets `bits` (as Packet::bits) to a packet of `cube` that can exist
  /// (one of Universe()), without building a set; false if there is none.
  /// Seed 0 leaves free bits 0 and takes low branches first, like Pick();
  /// other seeds draw the free bits from a fixed sequence per seed.
  ///
  /// With a seed below kCachedSeeds it only reads the model and BuDDy's
  /// nodes, as do CubeOfRule(), CornerOf(), QueryPoint() and the static
  /// cube tests: several threads may call them at once while no thread
  /// makes or frees a BDD.
  bool PickInCube(const Literals &cube, uint64_t seed, std::vector<uint8_t> &bits) const;
  static constexpr uint64_t kCachedSeeds = 8;
  /// Adds to `out` the cubes of the rules that hold the packet `bits`
  /// (typically found by a point query, QueryPoint()), among those that
  /// count.
  using Holders = llvm::function_ref<void(const std::vector<uint8_t> &bits,
                                          std::vector<const Literals *> &out)>;
  /// Whether a packet of `cube` that can exist lies in none of the cubes
  /// `holders` gives; if so, `bits` is the least such packet (what Pick()
  /// gives for the cube's packets less all those cubes). The cubes are found
  /// lazily: the least packet left is picked and the cubes that hold it are
  /// taken out, until none is left or one no cube holds is found. Each round
  /// takes out a cube not taken out before, so the answer is exact, yet only
  /// the cubes that cover the cube are touched, not every one that meets
  /// it; and no set is built when no packet of the cube can exist or a cube
  /// that holds its least packet contains it. Past the node limit it
  /// returns false; the caller must then check Overflowed().
  bool Uncovered(const Literals &cube, Holders holders, std::vector<uint8_t> &bits) const;
  /// Whether the packet `bits` (Packet::bits) lies in `cube`.
  static bool InCube(const Literals &cube, const std::vector<uint8_t> &bits);
  /// A packet's bits (each 0 or 1, as every function here makes them)
  /// packed 64 variables to a word, as in CubeWord: for testing one packet
  /// against many cubes.
  using PackedBits = llvm::SmallVector<uint64_t, 8>;
  static void Pack(const std::vector<uint8_t> &bits, PackedBits &packed);
  /// InCube() for a packet packed by Pack(): a word at a time.
  static bool InCube(const Literals &cube, llvm::ArrayRef<uint64_t> packed) {
    for (const CubeWord &w : cube) {
      if (((packed[w.word] ^ w.value) & w.care) != 0) {
        return false;
      }
    }
    return true;
  }
  /// Whether every packet of `inner` lies in `outer` (each literal of
  /// `outer` is one of `inner`'s).
  static bool CubeContains(const Literals &outer, const Literals &inner);
  /// How many variables `cube` fixes: the more, the fewer packets it holds
  /// and the fewer cubes it meets.
  static unsigned FixedVars(const Literals &cube);
  /// The packet `bits` as a rule that fixes every field block to its value
  /// (full masks): a query for OverlapIndex whose candidates include every
  /// rule whose cube holds the packet. QueryPoint() asks the same without
  /// building it; this is its definition, for tests.
  expand::TernaryRule PointOf(const std::vector<uint8_t> &bits) const;
  /// `index`'s Query() of PointOf(bits), without building the rule: each
  /// id whose rule's cube holds the packet is among those given to `fn`.
  void QueryPoint(const expand::OverlapIndex &index, const std::vector<uint8_t> &bits,
                  llvm::function_ref<void(uint32_t)> fn, uint32_t below = UINT32_MAX,
                  uint32_t min_key = 0) const;
  /// Fills the headers, vlan_tag and fields of `packet` from its bits.
  void Decode(Packet &packet) const;
  /// A packet as `flowc trace --packet` reads it: "eth dst=... type=0x800 /
  /// ipv4 src=... / udp dst=4791"; only the fields in `shown` (layer, field)
  /// and the headers present are written.
  std::string Format(const Packet &packet,
                     const std::vector<std::pair<ir::Layer, Field>> &shown) const;

  /// True once BuDDy ran out of nodes.
  static bool Overflowed();

private:
  struct Block {
    int first_var;
    unsigned bits;
  };
  /// The value of `block` in the packet `bits`.
  static llvm::APInt BlockValue(const Block &block, const std::vector<uint8_t> &bits);
  bdd Present(ir::Layer layer, Header header) const;
  bdd FieldIs(ir::Layer layer, Field field, const llvm::APInt &value,
              const llvm::APInt &mask) const;
  bdd FieldEquals(ir::Layer layer, Field field, uint64_t value) const;
  bool HasField(ir::Layer layer, Field field) const;
  bool HasHeader(ir::Layer layer, Header header) const;

  /// The literals (variable, value) of a rule's cube, most significant first.
  Literals LiteralsOf(const expand::TernaryRule &rule) const;

  llvm::ArrayRef<expand::TernaryRule> rules_;
  /// The model's variables (headers, tags, field bits), known before
  /// BuDDy's are made.
  int num_vars_ = 0;
  /// LiteralsOf(rules_[i]), for CubeOfRule() and Contains().
  std::vector<Literals> cubes_;
  /// PickInCube()'s drawn bits for the first seeds, made with the model.
  std::vector<uint8_t> drawn_[kCachedSeeds];
  std::map<std::pair<ir::Layer, Header>, int> header_vars_;
  std::map<ir::Layer, int> vlan_vars_;
  std::map<std::pair<ir::Layer, Field>, Block> blocks_;
  bdd universe_;
  std::vector<uint64_t> free_of_universe_;
};

} // namespace flowc::analysis

#endif // FLOWC_ANALYSIS_PACKET_SPACE_H
