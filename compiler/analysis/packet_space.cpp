#include "compiler/analysis/packet_space.h"
#include "compiler/analysis/trace.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <iterator>

#include "compiler/base/parallel.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

namespace flowc::analysis {
namespace {

bool overflowed = false;

// BuDDy reports errors through this hook instead of exiting; the only one a
// correct caller meets is running out of nodes.
void OnBddError(int code) {
  (void)code;
  overflowed = true;
}

constexpr ir::Layer kOuter = ir::Layer::kOuter;
constexpr ir::Layer kTunnel = ir::Layer::kTunnel;
constexpr ir::Layer kInner = ir::Layer::kInner;

/// splitmix64: a fixed sequence per seed, so results do not vary by run.
class SplitMix {
public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t operator()() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

private:
  uint64_t state_;
};

/// The bits of `vars` variables drawn from `seed` (all 0 for seed 0).
std::vector<uint8_t> DrawBits(uint64_t seed, size_t vars) {
  std::vector<uint8_t> bits(vars, 0);
  SplitMix next(seed);
  for (uint8_t &bit : bits) {
    bit = seed == 0 ? 0 : static_cast<uint8_t>(next() & 1);
  }
  return bits;
}

} // namespace

PacketSpace::PacketSpace(llvm::ArrayRef<expand::TernaryRule> rules, int max_nodes) {
  overflowed = false;
  // What the rules use, as flags by number (a map insert per match cost
  // more than the rest of the model at 100k rules).
  constexpr unsigned kFields = static_cast<unsigned>(Field::kNone) + 1;
  std::vector<bool> field_used(ir::kNumLayers * kFields, false), vlan_used(ir::kNumLayers, false);
  uint32_t header_used[ir::kNumLayers] = {0, 0, 0};
  for (const expand::TernaryRule &r : rules) {
    for (unsigned l = 0; l < ir::kNumLayers; ++l) {
      header_used[l] |= r.headers[l];
    }
    for (const expand::TernaryMatch &m : r.matches) {
      Field f = GetFieldInfo(m.field).container == Field::kNone ? m.field
                                                                : GetFieldInfo(m.field).container;
      field_used[static_cast<unsigned>(m.layer) * kFields + static_cast<unsigned>(f)] = true;
      if (IsVlanTagField(m.field)) {
        vlan_used[static_cast<unsigned>(m.layer)] = true;
      }
    }
  }
  // An IP header, or a header IP carries, needs both IP families in the
  // model: with only IPv4 named, "UDP needs IP" would read "UDP needs IPv4"
  // and a rule `udp` would look shadowed by a rule `ipv4`.
  auto bit = [](Header h) { return 1u << static_cast<unsigned>(h); };
  auto used = [&](ir::Layer l) -> uint32_t & { return header_used[static_cast<unsigned>(l)]; };
  for (ir::Layer l : {kOuter, kInner}) {
    uint32_t on_ip = bit(Header::kIpv4) | bit(Header::kIpv6) | bit(Header::kTcp) |
                     bit(Header::kUdp) | bit(Header::kEsp);
    if ((used(l) & on_ip) != 0 || (l == kOuter && (used(kTunnel) & bit(Header::kGre)) != 0)) {
      used(l) |= bit(Header::kIpv4) | bit(Header::kIpv6);
    }
  }
  // The variables in order: presence bits by (layer, header), then VLAN
  // tags by layer, then field blocks by (layer, field).
  int next = 0;
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    for (unsigned h = 0; h < kNumHeaders; ++h) {
      if (header_used[l] & (1u << h)) {
        header_vars_[{static_cast<ir::Layer>(l), static_cast<Header>(h)}] = next++;
      }
    }
  }
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    if (vlan_used[l]) {
      vlan_vars_[static_cast<ir::Layer>(l)] = next++;
    }
  }
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    for (unsigned f = 0; f < kFields; ++f) {
      if (field_used[l * kFields + f]) {
        unsigned width = GetFieldInfo(static_cast<Field>(f)).bits;
        blocks_[{static_cast<ir::Layer>(l), static_cast<Field>(f)}] = Block{next, width};
        next += static_cast<int>(width);
      }
    }
  }
  num_vars_ = next;
  rules_ = rules;
  // Each rule's cube only reads the model: two threads share them.
  cubes_.resize(rules.size());
  auto cubes = [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      cubes_[i] = LiteralsOf(rules[i]);
    }
  };
  size_t half = rules.size() / 2;
  RunBoth([&] { cubes(0, half); }, [&] { cubes(half, rules.size()); },
          rules.size() >= kParallelFrom);
  // Most questions are answered on the cubes; the BDDs hold a few thousand
  // nodes in a build and a few hundred thousand in `flowc check`. The table
  // starts small (touching a table sized for every rule's cube was 3% of a
  // 100k build) and doubles as it fills, with the caches a quarter of it.
  bdd_init(1 << 16, 1 << 14);
  bdd_setcacheratio(4);
  bdd_setmaxincrease(1 << 22);
  bdd_setmaxnodenum(max_nodes);
  bdd_error_hook(OnBddError);
  bdd_gbc_hook(nullptr);
  bdd_setvarnum(next > 0 ? next : 1);
  for (uint64_t seed = 0; seed < kCachedSeeds; ++seed) {
    drawn_[seed] = DrawBits(seed, static_cast<size_t>(bdd_varnum()));
  }

  // The universe (see the header): facts of every real packet.
  bdd u = bddtrue;
  if (HasHeader(kOuter, Header::kEth)) {
    u &= Present(kOuter, Header::kEth); // every frame is Ethernet
  }
  auto implies = [](const bdd &a, const bdd &b) { return (!a) | b; };
  for (ir::Layer l : {kOuter, kInner}) {
    if (HasHeader(l, Header::kIpv4) && HasHeader(l, Header::kIpv6)) {
      u &= !(Present(l, Header::kIpv4) & Present(l, Header::kIpv6));
    }
    std::vector<std::pair<Header, unsigned>> l4 = {
        {Header::kTcp, 6}, {Header::kUdp, 17}, {Header::kEsp, 50}};
    // The headers carried directly by this layer's IP header; GRE is a
    // tunnel header carried by the outer IP.
    std::vector<bdd> carried;
    for (auto [h, proto] : l4) {
      if (!HasHeader(l, h)) {
        continue;
      }
      bdd present = Present(l, h);
      carried.push_back(present);
      bdd ip = bddfalse;
      if (HasHeader(l, Header::kIpv4)) {
        ip |= Present(l, Header::kIpv4);
        if (HasField(l, Field::kIpv4Proto)) {
          u &= implies(present & Present(l, Header::kIpv4),
                       FieldEquals(l, Field::kIpv4Proto, proto));
        }
      }
      if (HasHeader(l, Header::kIpv6)) {
        ip |= Present(l, Header::kIpv6);
        if (HasField(l, Field::kIpv6NextHdr)) {
          u &= implies(present & Present(l, Header::kIpv6),
                       FieldEquals(l, Field::kIpv6NextHdr, proto));
        }
      }
      if (HasHeader(l, Header::kIpv4) || HasHeader(l, Header::kIpv6)) {
        // Without an IP header variable the model cannot say "needs IP";
        // leaving the fact out only makes the universe larger.
        u &= implies(present, ip);
      }
    }
    if (l == kOuter && HasHeader(kTunnel, Header::kGre)) {
      bdd gre = Present(kTunnel, Header::kGre);
      carried.push_back(gre);
      u &= implies(gre, Present(kOuter, Header::kIpv4) | Present(kOuter, Header::kIpv6));
      if (HasHeader(kOuter, Header::kIpv4) && HasField(kOuter, Field::kIpv4Proto)) {
        u &= implies(gre & Present(kOuter, Header::kIpv4),
                     FieldEquals(kOuter, Field::kIpv4Proto, 47));
      }
      if (HasHeader(kOuter, Header::kIpv6) && HasField(kOuter, Field::kIpv6NextHdr)) {
        u &= implies(gre & Present(kOuter, Header::kIpv6),
                     FieldEquals(kOuter, Field::kIpv6NextHdr, 47));
      }
    }
    for (size_t i = 0; i < carried.size(); ++i) {
      for (size_t j = i + 1; j < carried.size(); ++j) {
        u &= !(carried[i] & carried[j]);
      }
    }
    // The ethertype after the Ethernet header (and its 802.1Q tag). Every
    // frame has an outer Ethernet header; an inner one exists only when the
    // rule says so (VXLAN carries one, GRE does not).
    if (HasField(l, Field::kEthType) && (l == kOuter || HasHeader(l, Header::kEth))) {
      bdd eth = l == kOuter ? bddtrue : Present(l, Header::kEth);
      if (HasHeader(l, Header::kIpv4)) {
        u &= implies(eth & Present(l, Header::kIpv4), FieldEquals(l, Field::kEthType, 0x0800));
      }
      if (HasHeader(l, Header::kIpv6)) {
        u &= implies(eth & Present(l, Header::kIpv6), FieldEquals(l, Field::kEthType, 0x86dd));
      }
    }
  }
  if (HasHeader(kTunnel, Header::kVxlan) && HasHeader(kOuter, Header::kUdp)) {
    bdd vxlan = Present(kTunnel, Header::kVxlan);
    u &= implies(vxlan, Present(kOuter, Header::kUdp));
    if (HasField(kOuter, Field::kUdpDst)) {
      u &= implies(vxlan, FieldEquals(kOuter, Field::kUdpDst, 4789));
    }
  }
  // MPLS over GRE or UDP is recognised by the GRE protocol or the UDP port
  // (RFC 4023, RFC 7510), as the trace parser and expand's prerequisites do.
  if (HasHeader(kTunnel, Header::kMpls)) {
    bdd mpls = Present(kTunnel, Header::kMpls);
    if (HasHeader(kTunnel, Header::kGre) && HasField(kTunnel, Field::kGreProtocol)) {
      u &= implies(mpls & Present(kTunnel, Header::kGre),
                   FieldEquals(kTunnel, Field::kGreProtocol, 0x8847) |
                       FieldEquals(kTunnel, Field::kGreProtocol, 0x8848));
    }
    if (HasHeader(kOuter, Header::kUdp) && HasField(kOuter, Field::kUdpDst)) {
      bdd gre = HasHeader(kTunnel, Header::kGre) ? Present(kTunnel, Header::kGre) : bddfalse;
      u &= implies(mpls & Present(kOuter, Header::kUdp) & !gre,
                   FieldEquals(kOuter, Field::kUdpDst, 6635));
    }
  }
  universe_ = u;
  auto vars = static_cast<size_t>(bdd_varnum());
  free_of_universe_.assign(vars / 64 + 1, ~uint64_t{0});
  // Each node of the universe once: its variable is one it depends on.
  llvm::DenseSet<int> seen;
  llvm::SmallVector<int, 64> stack = {u.id()};
  while (!stack.empty()) {
    int node = stack.pop_back_val();
    if (node == bddtrue.id() || node == bddfalse.id() || !seen.insert(node).second) {
      continue;
    }
    auto v = static_cast<size_t>(bdd_var(node));
    free_of_universe_[v / 64] &= ~(uint64_t{1} << (v % 64));
    stack.push_back(bdd_low(node));
    stack.push_back(bdd_high(node));
  }
}

PacketSpace::~PacketSpace() {
  universe_ = bddfalse;
  bdd_done();
}

bool PacketSpace::Overflowed() {
  return overflowed;
}

bool PacketSpace::HasField(ir::Layer layer, Field field) const {
  return blocks_.count({layer, field}) != 0;
}

bool PacketSpace::HasHeader(ir::Layer layer, Header header) const {
  return header_vars_.count({layer, header}) != 0;
}

bdd PacketSpace::Present(ir::Layer layer, Header header) const {
  return bdd_ithvar(header_vars_.at({layer, header}));
}

bdd PacketSpace::FieldIs(ir::Layer layer, Field field, const llvm::APInt &value,
                         const llvm::APInt &mask) const {
  const Block &b = blocks_.at({layer, field});
  bdd r = bddtrue;
  // Bottom-up (least significant bit last in the order first) keeps the
  // intermediate BDDs a single path.
  for (unsigned i = 0; i < b.bits; ++i) {
    if (!mask[i]) {
      continue;
    }
    int var = b.first_var + static_cast<int>(b.bits - 1 - i);
    r &= value[i] ? bdd_ithvar(var) : bdd_nithvar(var);
  }
  return r;
}

bdd PacketSpace::FieldEquals(ir::Layer layer, Field field, uint64_t value) const {
  unsigned bits = blocks_.at({layer, field}).bits;
  return FieldIs(layer, field, llvm::APInt(bits, value), llvm::APInt::getAllOnes(bits));
}

PacketSpace::Literals PacketSpace::LiteralsOf(const expand::TernaryRule &rule) const {
  // Every word of the model, filled in place: no literal is sorted.
  llvm::SmallVector<uint64_t, 32> care, value;
  auto words = static_cast<size_t>(num_vars_ / 64 + 1);
  care.assign(words, 0);
  value.assign(words, 0);
  auto set = [&](int var, bool bit) {
    uint64_t mask = uint64_t{1} << (var % 64);
    care[static_cast<size_t>(var / 64)] |= mask;
    value[static_cast<size_t>(var / 64)] |= bit ? mask : 0;
  };
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    for (unsigned h = 0; h < kNumHeaders; ++h) {
      if (rule.headers[l] & (1u << h)) {
        set(header_vars_.at({static_cast<ir::Layer>(l), static_cast<Header>(h)}), true);
      }
    }
  }
  for (const expand::TernaryMatch &m : rule.matches) {
    if (IsVlanTagField(m.field) && !m.mask.isZero()) {
      set(vlan_vars_.at(m.layer), true); // a VLAN match needs a tag
    }
    // One block per container: rules naming the same bits in either form
    // are compared correctly.
    ContainerMatch c = InContainer(m.field, m.value, m.mask);
    const Block &b = blocks_.at({m.layer, c.field});
    // The block's first variable is the field's most significant bit, so
    // with the bits reversed, bit j is variable first_var + j: the words go
    // in whole, shifted into place.
    llvm::APInt mask = c.mask.reverseBits(), bits = (c.value & c.mask).reverseBits();
    for (unsigned k = 0; k < mask.getNumWords(); ++k) {
      auto var = static_cast<unsigned>(b.first_var) + 64 * k;
      unsigned shift = var % 64;
      size_t at = var / 64;
      uint64_t m_word = mask.getRawData()[k], v_word = bits.getRawData()[k];
      care[at] |= m_word << shift;
      value[at] |= v_word << shift;
      if (shift != 0 && at + 1 < words) {
        care[at + 1] |= m_word >> (64 - shift);
        value[at + 1] |= v_word >> (64 - shift);
      }
    }
  }
  Literals cube;
  for (size_t w = 0; w < words; ++w) {
    if (care[w] != 0) {
      cube.push_back({static_cast<uint32_t>(w), care[w], value[w]});
    }
  }
  return cube;
}

bdd PacketSpace::Match(const expand::TernaryRule &rule) const {
  return Match(LiteralsOf(rule));
}

bool PacketSpace::MayOverlap(const Literals &a, const Literals &b) {
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    if (a[i].word != b[j].word) {
      a[i].word < b[j].word ? ++i : ++j;
      continue;
    }
    if (((a[i].value ^ b[j].value) & a[i].care & b[j].care) != 0) {
      return false;
    }
    ++i;
    ++j;
  }
  return true;
}

PacketSpace::Literals PacketSpace::Meet(const Literals &a, const Literals &b) {
  assert(MayOverlap(a, b) && "the meet of disjoint cubes is empty, not a cube");
  Literals both;
  both.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].word < b[j].word)) {
      both.push_back(a[i++]);
    } else if (i == a.size() || b[j].word < a[i].word) {
      both.push_back(b[j++]);
    } else {
      both.push_back({a[i].word, a[i].care | b[j].care, a[i].value | b[j].value});
      ++i;
      ++j;
    }
  }
  return both;
}

bdd PacketSpace::Match(const Literals &cube) const {
  // A cube: its literals, ANDed from the last variable up so that each step
  // adds one node on top.
  bdd out = bddtrue;
  for (auto it = cube.rbegin(); it != cube.rend(); ++it) {
    for (int bit = 63; bit >= 0; --bit) {
      if ((it->care >> bit) & 1) {
        int var = static_cast<int>(it->word) * 64 + bit;
        out &= ((it->value >> bit) & 1) != 0 ? bdd_ithvar(var) : bdd_nithvar(var);
      }
    }
  }
  return out;
}

bool PacketSpace::Contains(const expand::TernaryRule &rule, const Packet &packet) const {
  size_t index = static_cast<size_t>(&rule - rules_.data());
  assert(index < cubes_.size() && "Contains() takes the constructor's rules");
  return InCube(cubes_[index], packet.bits);
}

Packet PacketSpace::Pick(const bdd &set) const {
  Packet p;
  // Walk one path to true without building nodes: in a reduced BDD every
  // node but false reaches true. Variables off the path are free: 0.
  p.bits.assign(static_cast<size_t>(bdd_varnum()), 0);
  bdd node = set;
  while (node != bddtrue && node != bddfalse) {
    int var = bdd_var(node);
    bdd low = bdd_low(node);
    if (low != bddfalse) {
      node = low;
    } else {
      p.bits[static_cast<size_t>(var)] = 1;
      node = bdd_high(node);
    }
  }
  return p;
}

namespace {
/// Calls `fn(var, value)` for each literal of `cube`.
template <typename Fn> void ForLiterals(const PacketSpace::Literals &cube, Fn &&fn) {
  for (const PacketSpace::CubeWord &w : cube) {
    for (uint64_t care = w.care; care != 0; care &= care - 1) {
      auto bit = static_cast<unsigned>(llvm::countTrailingZeros(care));
      fn(static_cast<size_t>(w.word) * 64 + bit, static_cast<uint8_t>((w.value >> bit) & 1));
    }
  }
}
} // namespace

std::vector<uint8_t> PacketSpace::CornerOf(const Literals &cube) const {
  std::vector<uint8_t> bits(static_cast<size_t>(bdd_varnum()), 0);
  ForLiterals(cube, [&](size_t var, uint8_t value) { bits[var] = value; });
  return bits;
}

bool PacketSpace::Uncovered(const Literals &cube, Holders holders,
                            std::vector<uint8_t> &bits) const {
  if (!PickInCube(cube, 0, bits)) {
    return false;
  }
  std::vector<const Literals *> found;
  bdd set;
  for (bool first = true;; first = false) {
    found.clear();
    holders(bits, found);
    if (found.empty()) {
      return true;
    }
    if (first) {
      if (llvm::any_of(found, [&](const Literals *c) { return CubeContains(*c, cube); })) {
        return false;
      }
      set = Match(cube) & universe_;
    }
    for (const Literals *c : found) {
      set = bdd_apply(set, Match(*c), bddop_diff);
    }
    // Past the node limit BuDDy makes no nodes (a cube would be false), so
    // the same packet would come back forever; every caller checks
    // Overflowed() and drops the answer.
    if (set == bddfalse || Overflowed()) {
      return false;
    }
    bits = Pick(set).bits;
  }
}

bool PacketSpace::PickInCube(const Literals &cube, uint64_t seed,
                             std::vector<uint8_t> &bits) const {
  auto vars = static_cast<size_t>(bdd_varnum());
  if (seed < kCachedSeeds) {
    // The drawn bits depend on the seed alone: drawn once, up front.
    bits.assign(drawn_[seed].begin(), drawn_[seed].end());
  } else {
    bits = DrawBits(seed, vars);
  }
  // The cube's care bits by word, to tell which variables it fixes.
  llvm::SmallVector<uint64_t, 8> fixed(vars / 64 + 1, 0);
  for (const CubeWord &w : cube) {
    fixed[w.word] = w.care;
  }
  ForLiterals(cube, [&](size_t var, uint8_t value) { bits[var] = value; });
  // A path of Universe() to true that agrees with the cube. Variables the
  // path skips are free in Universe(), so they keep the cube's value or the
  // drawn one. Nodes found to have no such path below are not walked again,
  // so the walk visits each node of Universe() at most once.
  llvm::SmallVector<int, 32> dead;
  const int yes = bddtrue.id(), no = bddfalse.id();
  auto walk = [&](auto &self, int node) -> bool {
    if (node == yes || node == no) {
      return node == yes;
    }
    if (llvm::is_contained(dead, node)) {
      return false;
    }
    auto var = static_cast<size_t>(bdd_var(node));
    uint8_t first = bits[var];
    for (uint8_t b : {first, static_cast<uint8_t>(first ^ 1)}) {
      if (b != first && ((fixed[var / 64] >> (var % 64)) & 1) != 0) {
        break;
      }
      if (self(self, b != 0 ? bdd_high(node) : bdd_low(node))) {
        bits[var] = b;
        return true;
      }
    }
    dead.push_back(node);
    return false;
  };
  return walk(walk, universe_.id());
}

void PacketSpace::Pack(const std::vector<uint8_t> &bits, PackedBits &packed) {
  assert(llvm::all_of(bits, [](uint8_t b) { return b <= 1; }) && "bits are 0 or 1");
  packed.assign(bits.size() / 64 + 1, 0);
  // Eight variables at a time: with each byte 0 or 1, the multiply moves
  // byte i's bit to bit 56 + i, and no two products meet.
  size_t var = 0;
  for (; var + 8 <= bits.size(); var += 8) {
    uint64_t eight;
    std::memcpy(&eight, bits.data() + var, sizeof eight);
    eight = llvm::support::endian::byte_swap(eight, llvm::support::little);
    packed[var / 64] |= ((eight * 0x0102040810204080ull) >> 56) << (var % 64);
  }
  for (; var < bits.size(); ++var) {
    packed[var / 64] |= uint64_t{bits[var]} << (var % 64);
  }
}

bool PacketSpace::InCube(const Literals &cube, const std::vector<uint8_t> &bits) {
  for (const CubeWord &w : cube) {
    for (uint64_t care = w.care; care != 0; care &= care - 1) {
      int bit = static_cast<int>(llvm::countTrailingZeros(care));
      size_t var = static_cast<size_t>(w.word) * 64 + static_cast<size_t>(bit);
      if ((bits[var] != 0) != (((w.value >> bit) & 1) != 0)) {
        return false;
      }
    }
  }
  return true;
}

unsigned PacketSpace::FixedVars(const Literals &cube) {
  unsigned n = 0;
  for (const CubeWord &w : cube) {
    n += llvm::countPopulation(w.care);
  }
  return n;
}

bool PacketSpace::CubeContains(const Literals &outer, const Literals &inner) {
  size_t j = 0;
  for (const CubeWord &w : outer) {
    while (j < inner.size() && inner[j].word < w.word) {
      ++j;
    }
    // Each variable `outer` fixes, `inner` fixes to the same value.
    if (j == inner.size() || inner[j].word != w.word || (w.care & ~inner[j].care) != 0 ||
        ((w.value ^ inner[j].value) & w.care) != 0) {
      return false;
    }
  }
  return true;
}

llvm::APInt PacketSpace::BlockValue(const Block &block, const std::vector<uint8_t> &bits) {
  llvm::APInt v(block.bits, 0);
  for (unsigned i = 0; i < block.bits; ++i) {
    if (bits[static_cast<size_t>(block.first_var + static_cast<int>(block.bits - 1 - i))]) {
      v.setBit(i);
    }
  }
  return v;
}

expand::TernaryRule PacketSpace::PointOf(const std::vector<uint8_t> &bits) const {
  expand::TernaryRule point;
  point.source = 0;
  for (const auto &[key, b] : blocks_) {
    point.matches.push_back(
        {key.first, key.second, BlockValue(b, bits), llvm::APInt::getAllOnes(b.bits)});
  }
  return point;
}

void PacketSpace::QueryPoint(const expand::OverlapIndex &index, const std::vector<uint8_t> &bits,
                             llvm::function_ref<void(uint32_t)> fn, uint32_t below,
                             uint32_t min_key) const {
  index.QueryPoint(
      [&](ir::Layer layer, Field field, unsigned n) -> std::optional<uint64_t> {
        auto it = blocks_.find({layer, field});
        if (it == blocks_.end() || n > it->second.bits) {
          return std::nullopt; // PointOf() has no match for it either
        }
        uint64_t top = 0;
        for (unsigned i = 0; i < n; ++i) { // most significant bit first
          top = top << 1 | bits[static_cast<size_t>(it->second.first_var) + i];
        }
        return top;
      },
      fn, below, min_key);
}

void PacketSpace::Decode(Packet &p) const {
  for (const auto &[key, var] : header_vars_) {
    p.headers[key] = p.bits[static_cast<size_t>(var)] != 0;
  }
  for (const auto &[layer, var] : vlan_vars_) {
    p.vlan_tag[static_cast<unsigned>(layer)] = p.bits[static_cast<size_t>(var)] != 0;
  }
  for (const auto &[key, b] : blocks_) {
    llvm::APInt v = BlockValue(b, p.bits);
    p.fields.emplace(key, v);
    // The sub-fields of a container, for Format() of rules that name them.
    for (const FieldInfo &sub : AllFields()) {
      if (sub.container == key.second) {
        p.fields.emplace(std::make_pair(key.first, sub.field),
                         v.lshr(SubFieldShift(sub.field)).trunc(sub.bits));
      }
    }
  }
}

std::string PacketSpace::Format(const Packet &packet,
                                const std::vector<std::pair<ir::Layer, Field>> &shown) const {
  std::string out;
  llvm::raw_string_ostream os(out);
  for (ir::Layer layer : {kOuter, kTunnel, kInner}) {
    for (unsigned h = 0; h < kNumHeaders; ++h) {
      auto header = static_cast<Header>(h);
      auto it = packet.headers.find({layer, header});
      bool present = it != packet.headers.end() && it->second;
      bool has_field = false;
      std::string text;
      for (const auto &[key, value] : packet.fields) {
        if (key.first != layer || GetFieldInfo(key.second).header != header ||
            std::find(shown.begin(), shown.end(), key) == shown.end()) {
          continue;
        }
        // A field of an absent header says nothing about the packet.
        if (!present && !(layer == kOuter && header == Header::kEth)) {
          continue;
        }
        has_field = true;
        text +=
            " " + GetFieldInfo(key.second).name.str() + "=" + FormatPacketValue(key.second, value);
      }
      // Every frame is Ethernet: a bare outer "eth" says nothing.
      if ((!present && !has_field) || (layer == kOuter && header == Header::kEth && !has_field)) {
        continue;
      }
      if (!os.str().empty()) {
        os << " / ";
      }
      os << (layer == kInner ? "inner " : "") << HeaderName(header) << text;
    }
  }
  return os.str();
}

} // namespace flowc::analysis
