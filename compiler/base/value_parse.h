// Parsing of Flow's literal forms: integers, MAC, IPv4 and IPv6 addresses.
#ifndef FLOWC_BASE_VALUE_PARSE_H
#define FLOWC_BASE_VALUE_PARSE_H

#include <array>
#include <cstdint>
#include <string>

#include "llvm/ADT/APInt.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace flowc {

/// A MAC address in wire order.
using MacAddress = std::array<uint8_t, 6>;
/// An IPv6 address in wire order.
using Ipv6Address = std::array<uint8_t, 16>;

/// Parses a decimal ("4791") or hexadecimal ("0x12b7") integer of at most 64
/// bits. Fails with a message on overflow or a malformed digit.
llvm::Expected<uint64_t> ParseInteger(llvm::StringRef text);

/// Parses "aa:bb:cc:dd:ee:ff" (six groups of one or two hex digits).
llvm::Expected<MacAddress> ParseMac(llvm::StringRef text);

/// Parses dotted-quad IPv4 ("10.1.0.0") into a host-order integer.
llvm::Expected<uint32_t> ParseIpv4(llvm::StringRef text);

/// Parses IPv6 text in the forms of RFC 4291 section 2.2: eight groups, "::"
/// compression, and an embedded dotted-quad tail ("::ffff:10.0.0.1").
llvm::Expected<Ipv6Address> ParseIpv6(llvm::StringRef text);

/// True if `text` has the shape of a MAC address rather than an IPv6 one:
/// exactly six colon-separated groups and no "::".
bool LooksLikeMac(llvm::StringRef text);

/// Formats addresses the canonical way (lower-case hex, RFC 5952 for IPv6).
std::string FormatMac(const MacAddress &mac);
std::string FormatIpv4(uint32_t addr);
std::string FormatIpv6(const Ipv6Address &addr);

/// A MAC (48 bits), IPv4 (32) or IPv6 (128) address held as an integer,
/// most significant byte first on the wire, in its usual text form.
std::string FormatAddressBits(const llvm::APInt &bits);

} // namespace flowc

#endif // FLOWC_BASE_VALUE_PARSE_H
