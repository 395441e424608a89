// Unit tests for literal parsing and formatting (compiler/base/value_parse).
#include "compiler/base/value_parse.h"

#include <gtest/gtest.h>

#include <random>

namespace flowc {
namespace {

TEST(ParseInteger, DecimalAndHex) {
  struct Case {
    const char *text;
    uint64_t value;
  } cases[] = {{"0", 0}, {"4791", 4791}, {"0x12b7", 0x12b7}, {"0XFF", 255},
               {"18446744073709551615", UINT64_MAX}, {"0xffffffffffffffff", UINT64_MAX}};
  for (const Case &c : cases) {
    auto v = ParseInteger(c.text);
    ASSERT_TRUE(bool(v)) << c.text;
    EXPECT_EQ(*v, c.value) << c.text;
  }
}

TEST(ParseInteger, Rejects) {
  for (const char *text : {"", "0x", "18446744073709551616", "0x10000000000000000", "12a"}) {
    auto v = ParseInteger(text);
    EXPECT_FALSE(bool(v)) << text;
    llvm::consumeError(v.takeError());
  }
}

TEST(ParseMac, Forms) {
  auto v = ParseMac("66:11:22:33:44:55");
  ASSERT_TRUE(bool(v));
  EXPECT_EQ(FormatMac(*v), "66:11:22:33:44:55");
  auto short_groups = ParseMac("1:2:3:a:b:C");
  ASSERT_TRUE(bool(short_groups));
  EXPECT_EQ(FormatMac(*short_groups), "01:02:03:0a:0b:0c");
}

TEST(ParseMac, Rejects) {
  for (const char *text : {"1:2:3:4:5", "1:2:3:4:5:6:7", "123:2:3:4:5:6", "1:2:3:4:5:g", "1::3:4:5:6"}) {
    auto v = ParseMac(text);
    EXPECT_FALSE(bool(v)) << text;
    llvm::consumeError(v.takeError());
  }
}

TEST(ParseIpv4, Forms) {
  auto v = ParseIpv4("11.134.200.6");
  ASSERT_TRUE(bool(v));
  EXPECT_EQ(*v, 0x0B86C806u);
  EXPECT_EQ(FormatIpv4(*v), "11.134.200.6");
  auto edge = ParseIpv4("255.255.255.255");
  ASSERT_TRUE(bool(edge));
  EXPECT_EQ(*edge, 0xffffffffu);
}

TEST(ParseIpv4, Rejects) {
  for (const char *text : {"256.0.0.1", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.1000"}) {
    auto v = ParseIpv4(text);
    EXPECT_FALSE(bool(v)) << text;
    llvm::consumeError(v.takeError());
  }
}

TEST(ParseIpv6, Forms) {
  struct Case {
    const char *text;
    const char *canonical;
  } cases[] = {
      {"::", "::"},
      {"::1", "::1"},
      {"2001:db8::", "2001:db8::"},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
      {"fe80::1:2", "fe80::1:2"},
      {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
      {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},
      {"::ffff:10.0.0.1", "::ffff:10.0.0.1"},
      {"::fffe:10.0.0.1", "::fffe:a00:1"},
      {"a0a1::a2a3:a4a5:a6a7:a8a9", "a0a1::a2a3:a4a5:a6a7:a8a9"},
      {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"},
  };
  for (const Case &c : cases) {
    auto v = ParseIpv6(c.text);
    ASSERT_TRUE(bool(v)) << c.text << ": " << llvm::toString(v.takeError());
    EXPECT_EQ(FormatIpv6(*v), c.canonical) << c.text;
  }
}

TEST(ParseIpv6, Rejects) {
  for (const char *text : {"1:2:3:4:5:6:7", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9",
                           "1:2:3:4:5:6:7:8::", "::1.2.3.256", "g::1", "1:2:3:4:5:6:7:8.1.1.1"}) {
    auto v = ParseIpv6(text);
    EXPECT_FALSE(bool(v)) << text;
    llvm::consumeError(v.takeError());
  }
}

// RFC 5952: lower case, no leading zeros, "::" for the longest run of two or
// more zero groups (the first of equal runs), and parse(format(a)) == a.
TEST(FormatIpv6, RoundTripsInCanonicalForm) {
  std::mt19937 rng(5952);
  for (int n = 0; n < 20000; ++n) {
    Ipv6Address a{};
    for (unsigned g = 0; g < 8; ++g) {
      // Mostly zero groups, so that runs of every length and position occur.
      uint16_t v = rng() % 3 == 0 ? static_cast<uint16_t>(rng() >> (rng() % 16)) : 0;
      a[2 * g] = static_cast<uint8_t>(v >> 8);
      a[2 * g + 1] = static_cast<uint8_t>(v);
    }
    std::string text = FormatIpv6(a);
    auto back = ParseIpv6(text);
    ASSERT_TRUE(bool(back)) << text << ": " << llvm::toString(back.takeError());
    EXPECT_EQ(*back, a) << text;
    EXPECT_EQ(text, llvm::StringRef(text).lower()) << text;
    llvm::StringRef rest(text);
    EXPECT_LE(llvm::StringRef(text).count("::"), 1u) << text;
    // The longest zero run of two or more groups is the one compressed.
    unsigned best = 0, best_at = 8, run = 0;
    for (unsigned g = 0; g < 8; ++g) {
      bool zero = a[2 * g] == 0 && a[2 * g + 1] == 0;
      run = zero ? run + 1 : 0;
      if (run > best) {
        best = run;
        best_at = g + 1 - run;
      }
    }
    bool mapped = best == 5 && best_at == 0 && a[10] == 0xff && a[11] == 0xff;
    if (best >= 2 && !mapped) {
      EXPECT_NE(text.find("::"), std::string::npos) << text;
    } else if (!mapped) {
      EXPECT_EQ(text.find("::"), std::string::npos) << text;
    }
    llvm::SmallVector<llvm::StringRef, 8> groups;
    rest.split(groups, ':');
    for (llvm::StringRef g : groups) {
      EXPECT_FALSE(g.size() > 1 && g.front() == '0' && !g.contains('.')) << text;
    }
  }
}

TEST(FormatMacAndIpv4, RoundTrip) {
  std::mt19937 rng(48);
  for (int n = 0; n < 2000; ++n) {
    MacAddress mac;
    for (auto &b : mac) {
      b = static_cast<uint8_t>(rng());
    }
    auto m = ParseMac(FormatMac(mac));
    ASSERT_TRUE(bool(m)) << FormatMac(mac);
    EXPECT_EQ(*m, mac);
    uint32_t v4 = rng();
    auto v = ParseIpv4(FormatIpv4(v4));
    ASSERT_TRUE(bool(v)) << FormatIpv4(v4);
    EXPECT_EQ(*v, v4);
  }
}

TEST(LooksLikeMac, DistinguishesIpv6) {
  EXPECT_TRUE(LooksLikeMac("66:11:22:33:44:55"));
  EXPECT_FALSE(LooksLikeMac("2001:db8::1"));
  EXPECT_FALSE(LooksLikeMac("1:2:3:4:5:6:7:8"));
}

} // namespace
} // namespace flowc

#include "compiler/base/suggest.h"

namespace flowc {
namespace {

TEST(SuggestName, TyposAndFarMisses) {
  const llvm::StringRef names[] = {"dst", "src", "type", "vlan", "rx_storage", "check"};
  EXPECT_EQ(SuggestName("dts", names), "dst");          // transposition
  EXPECT_EQ(SuggestName("chekc", names), "check");      // transposition
  EXPECT_EQ(SuggestName("rx_storag", names), "rx_storage");
  EXPECT_EQ(SuggestName("typ", names), "type");
  EXPECT_EQ(SuggestName("proto", names), "");           // nothing close
  EXPECT_EQ(SuggestName("dst", names), "");             // exact names are not suggested
}

} // namespace
} // namespace flowc
