// Parsing and formatting of Flow's literal forms.
#include "compiler/base/value_parse.h"

#include <algorithm>

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace flowc {
namespace {

// Source text quoted in a message, cut so that a huge literal stays readable.
std::string Q(llvm::StringRef text) {
  return text.size() > 40 ? (text.take_front(37) + "...").str() : text.str();
}

llvm::Error Fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

} // namespace

llvm::Expected<uint64_t> ParseInteger(llvm::StringRef text) {
  unsigned radix = 10;
  llvm::StringRef digits = text;
  if (digits.startswith_insensitive("0x")) {
    radix = 16;
    digits = digits.drop_front(2);
  }
  if (digits.empty()) {
    return Fail("'" + Q(text) + "' has no digits");
  }
  uint64_t value = 0;
  for (char c : digits) {
    int d = HexDigit(c);
    if (d < 0 || static_cast<unsigned>(d) >= radix) {
      return Fail("'" + Q(text) + "' is not a valid integer");
    }
    if (value > (UINT64_MAX - static_cast<unsigned>(d)) / radix) {
      return Fail("integer '" + Q(text) + "' does not fit in 64 bits");
    }
    value = value * radix + static_cast<unsigned>(d);
  }
  return value;
}

bool LooksLikeMac(llvm::StringRef text) {
  return !text.contains("::") && !text.contains('.') && text.count(':') == 5;
}

llvm::Expected<MacAddress> ParseMac(llvm::StringRef text) {
  llvm::SmallVector<llvm::StringRef, 6> groups;
  text.split(groups, ':');
  if (groups.size() != 6) {
    return Fail("MAC address '" + Q(text) + "' must have six groups");
  }
  MacAddress mac{};
  for (size_t i = 0; i < 6; ++i) {
    llvm::StringRef g = groups[i];
    if (g.empty() || g.size() > 2) {
      return Fail("MAC address '" + Q(text) + "' has a group of " +
                  llvm::Twine(g.size()) + " digits; each group has one or two hex digits");
    }
    unsigned v = 0;
    for (char c : g) {
      int d = HexDigit(c);
      if (d < 0) {
        return Fail("MAC address '" + Q(text) + "' has a non-hex digit");
      }
      v = v * 16 + static_cast<unsigned>(d);
    }
    mac[i] = static_cast<uint8_t>(v);
  }
  return mac;
}

llvm::Expected<uint32_t> ParseIpv4(llvm::StringRef text) {
  llvm::SmallVector<llvm::StringRef, 4> parts;
  text.split(parts, '.');
  if (parts.size() != 4) {
    return Fail("IPv4 address '" + Q(text) + "' must have four parts");
  }
  uint32_t addr = 0;
  for (llvm::StringRef p : parts) {
    if (p.empty()) {
      return Fail("IPv4 address '" + Q(text) + "' has an empty octet");
    }
    if (p.size() > 3) {
      return Fail("IPv4 address '" + Q(text) + "' has octet '" + Q(p) +
                  "' with more than three digits");
    }
    unsigned v = 0;
    for (char c : p) {
      if (c < '0' || c > '9') {
        return Fail("IPv4 address '" + Q(text) + "' has a non-decimal octet");
      }
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 255) {
      return Fail("IPv4 address '" + Q(text) + "' has octet " + llvm::Twine(v) +
                  " out of range (0..255)");
    }
    addr = (addr << 8) | v;
  }
  return addr;
}

llvm::Expected<Ipv6Address> ParseIpv6(llvm::StringRef text) {
  auto bad = [&](const llvm::Twine &why) {
    return Fail("IPv6 address '" + Q(text) + "' " + why);
  };
  // Split around the one permitted "::".
  size_t gap = text.find("::");
  if (gap != llvm::StringRef::npos && text.find("::", gap + 1) != llvm::StringRef::npos) {
    return bad("has more than one '::'");
  }
  llvm::StringRef head = gap == llvm::StringRef::npos ? text : text.substr(0, gap);
  llvm::StringRef tail = gap == llvm::StringRef::npos ? "" : text.substr(gap + 2);

  // Each side is a list of 16-bit groups; the very last group of the address
  // may be a dotted quad worth two groups.
  auto parse_side = [&](llvm::StringRef side, bool last,
                        llvm::SmallVectorImpl<uint16_t> &out) -> llvm::Error {
    if (side.empty()) {
      return llvm::Error::success();
    }
    llvm::SmallVector<llvm::StringRef, 8> groups;
    side.split(groups, ':');
    for (size_t i = 0; i < groups.size(); ++i) {
      llvm::StringRef g = groups[i];
      if (last && i + 1 == groups.size() && g.contains('.')) {
        auto v4 = ParseIpv4(g);
        if (!v4) {
          std::string why = llvm::toString(v4.takeError());
          return bad("has an invalid embedded IPv4 part: " + why);
        }
        out.push_back(static_cast<uint16_t>(*v4 >> 16));
        out.push_back(static_cast<uint16_t>(*v4 & 0xffff));
        continue;
      }
      if (g.empty()) {
        return bad("has an empty group");
      }
      if (g.size() > 4) {
        return bad("has group '" + g + "' longer than four hex digits");
      }
      unsigned v = 0;
      for (char c : g) {
        int d = HexDigit(c);
        if (d < 0) {
          return bad("has a non-hex digit in group '" + g + "'");
        }
        v = v * 16 + static_cast<unsigned>(d);
      }
      out.push_back(static_cast<uint16_t>(v));
    }
    return llvm::Error::success();
  };

  llvm::SmallVector<uint16_t, 8> before, after;
  bool compressed = gap != llvm::StringRef::npos;
  if (llvm::Error e = parse_side(head, !compressed, before)) {
    return e;
  }
  if (llvm::Error e = parse_side(tail, true, after)) {
    return e;
  }
  size_t total = before.size() + after.size();
  if (compressed ? total > 7 : total != 8) {
    return bad(compressed ? "has too many groups for '::'" : "must have eight groups or use '::'");
  }
  llvm::SmallVector<uint16_t, 8> groups(before.begin(), before.end());
  groups.append(8 - total, 0);
  groups.append(after.begin(), after.end());
  Ipv6Address addr{};
  for (size_t i = 0; i < 8; ++i) {
    addr[2 * i] = static_cast<uint8_t>(groups[i] >> 8);
    addr[2 * i + 1] = static_cast<uint8_t>(groups[i] & 0xff);
  }
  return addr;
}

std::string FormatMac(const MacAddress &mac) {
  std::string out;
  llvm::raw_string_ostream os(out);
  for (size_t i = 0; i < mac.size(); ++i) {
    os << (i ? ":" : "") << llvm::format_hex_no_prefix(mac[i], 2);
  }
  return os.str();
}

std::string FormatIpv4(uint32_t addr) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << (addr >> 24) << '.' << ((addr >> 16) & 0xff) << '.' << ((addr >> 8) & 0xff) << '.'
     << (addr & 0xff);
  return os.str();
}

std::string FormatIpv6(const Ipv6Address &addr) {
  // RFC 5952 section 5: IPv4-mapped addresses end in dotted quad.
  bool mapped = std::all_of(addr.begin(), addr.begin() + 10, [](uint8_t b) { return b == 0; }) &&
                addr[10] == 0xff && addr[11] == 0xff;
  if (mapped) {
    return "::ffff:" + FormatIpv4(static_cast<uint32_t>(addr[12]) << 24 | addr[13] << 16 |
                                  addr[14] << 8 | addr[15]);
  }
  uint16_t groups[8];
  for (size_t i = 0; i < 8; ++i) {
    groups[i] = static_cast<uint16_t>(addr[2 * i] << 8 | addr[2 * i + 1]);
  }
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the
  // first one on a tie.
  int best_start = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) {
      ++j;
    }
    if (j - i > best_len && j - i >= 2) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  std::string out;
  llvm::raw_string_ostream os(out);
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      os << "::";
      i += best_len - 1;
      continue;
    }
    if (i > 0 && i != best_start + best_len) {
      os << ':';
    }
    os << llvm::format_hex_no_prefix(groups[i], 1);
  }
  return os.str();
}

std::string FormatAddressBits(const llvm::APInt &bits) {
  unsigned n = bits.getBitWidth() / 8;
  auto byte = [&](unsigned i) {
    return static_cast<uint8_t>(bits.extractBitsAsZExtValue(8, 8 * (n - 1 - i)));
  };
  if (n == 6) {
    MacAddress mac;
    for (unsigned i = 0; i < 6; ++i) {
      mac[i] = byte(i);
    }
    return FormatMac(mac);
  }
  if (n == 16) {
    Ipv6Address a;
    for (unsigned i = 0; i < 16; ++i) {
      a[i] = byte(i);
    }
    return FormatIpv6(a);
  }
  return FormatIpv4(static_cast<uint32_t>(bits.getZExtValue()));
}

} // namespace flowc
