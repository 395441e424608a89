// Tests of the .fbin reader: hand-built files read back, and every kind of damage is refused.
//
// Plain C, no framework: prints each failed check and exits non-zero. Files
// are handed to the reader in heap blocks of their exact size, so that a
// sanitizer catches any read past the end.
#include "flowrt/format.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

// --- Bytes ------------------------------------------------------------------

static void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = (unsigned char)(v >> (8 * i));
  }
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/// Writes `v` as an `n`-byte big-endian (network order) word.
static void put_be(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) {
    p[n - 1 - i] = (unsigned char)(v >> (8 * i));
  }
}

/// A bit-at-a-time CRC-32 (zlib's), independent of the table-driven one under test.
static uint32_t reference_crc32(const unsigned char *p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) {
      crc = (crc >> 1) ^ ((crc & 1u) ? 0xEDB88320u : 0u);
    }
  }
  return ~crc;
}

/// Stores the checksum of the `size`-byte file at `file`.
static void fix_crc(unsigned char *file, size_t size) {
  put32(file + 20, 0);
  put32(file + 20, reference_crc32(file, size));
}

// --- A small writer -----------------------------------------------------------

/// An attr buffer under construction: `struct ibv_flow_attr`, then specs.
struct attr {
  unsigned char b[1024];
  uint32_t size;
};

static void attr_init(struct attr *a, uint32_t type, uint16_t priority, uint8_t port,
                      uint32_t flags) {
  memset(a, 0, sizeof *a);
  put32(a->b + 4, type);
  put16(a->b + 10, priority);
  a->b[13] = port;
  put32(a->b + 16, flags);
  a->size = 20;
  put16(a->b + 8, 20);
}

/// Appends a zeroed spec of `type` whose size field and length are `size`.
static unsigned char *attr_spec(struct attr *a, uint32_t type, uint16_t size) {
  unsigned char *s = a->b + a->size;
  put32(s, type);
  put16(s + 4, size);
  a->size += size;
  a->b[12]++;
  put16(a->b + 8, (uint16_t)a->size);
  return s;
}

struct w_rule {
  const struct attr *attr;
  uint32_t queue;
  uint32_t bindings; // how many of the policy's bindings, in order, are this rule's
  uint32_t flags;
  const char *name;
  const char *file;
  uint32_t line;
  uint32_t column;
};

struct w_binding {
  uint32_t spec;
  uint32_t kind;
  uint32_t symbol;
};

struct w_policy {
  const char *compiler;
  const char *profile;
  const char *capabilities;
  const char *const *symbols[3]; // queues, counters, handles
  uint32_t num_symbols[3];
  const struct w_rule *rules;
  uint32_t num_rules;
  const struct w_binding *bindings;
  uint32_t num_bindings;
};

/// Where write_fbin() put things.
struct w_layout {
  uint32_t table[FLOWRT_FBIN_NUM_TABLES];
  uint32_t attr[16];
  uint32_t strings;
  uint32_t strings_size;
};

struct strtab {
  char b[4096];
  uint32_t size;
};

/// The reference of `s`, appended unless an identical string starts somewhere already.
static uint32_t str_ref(struct strtab *t, const char *s) {
  if (s[0] == '\0') {
    return 0;
  }
  for (uint32_t i = 1; i < t->size; i += (uint32_t)strlen(t->b + i) + 1) {
    if (strcmp(t->b + i, s) == 0) {
      return i;
    }
  }
  uint32_t ref = t->size;
  memcpy(t->b + ref, s, strlen(s) + 1);
  t->size += (uint32_t)strlen(s) + 1;
  return ref;
}

/// Writes `p` as a version 1.0 file into `out` and returns its size: header,
/// directory, the five tables in directory order, the attr buffers, and the
/// string table last. Binding runs follow each other in rule order.
static size_t write_fbin(const struct w_policy *p, unsigned char *out, size_t cap,
                         struct w_layout *layout) {
  struct strtab st;
  struct w_layout l;
  memset(&st, 0, sizeof st);
  memset(&l, 0, sizeof l);
  memset(out, 0, cap);
  st.size = 1;
  uint32_t compiler = str_ref(&st, p->compiler);
  uint32_t profile = str_ref(&st, p->profile);
  uint32_t capabilities = str_ref(&st, p->capabilities);
  uint32_t pos = 88;
  for (int t = 0; t < 3; ++t) {
    l.table[t] = pos;
    for (uint32_t i = 0; i < p->num_symbols[t]; ++i) {
      put32(out + pos, str_ref(&st, p->symbols[t][i]));
      pos += 4;
    }
  }
  l.table[3] = pos;
  pos += 40 * p->num_rules;
  l.table[4] = pos;
  for (uint32_t i = 0; i < p->num_bindings; ++i) {
    put32(out + pos, p->bindings[i].spec);
    put32(out + pos + 4, p->bindings[i].kind);
    put32(out + pos + 8, p->bindings[i].symbol);
    pos += 12;
  }
  uint32_t first = 0;
  for (uint32_t i = 0; i < p->num_rules; ++i) {
    const struct w_rule *r = &p->rules[i];
    pos = (pos + 3) & ~3u;
    l.attr[i] = pos;
    memcpy(out + pos, r->attr->b, r->attr->size);
    pos += r->attr->size;
    unsigned char *e = out + l.table[3] + 40 * i;
    put32(e, l.attr[i]);
    put32(e + 4, r->attr->size);
    put32(e + 8, r->queue);
    put32(e + 12, first);
    put32(e + 16, r->bindings);
    put32(e + 20, str_ref(&st, r->name));
    put32(e + 24, str_ref(&st, r->file));
    put32(e + 28, r->line);
    put32(e + 32, r->column);
    put32(e + 36, r->flags);
    first += r->bindings;
  }
  l.strings = pos;
  l.strings_size = st.size;
  memcpy(out + pos, st.b, st.size);
  pos += st.size;
  if (pos > cap) {
    fprintf(stderr, "write_fbin: %u bytes do not fit in %zu\n", (unsigned)pos, cap);
    exit(2);
  }
  memcpy(out, "FLOWBIN", 8);
  put16(out + 8, 1);
  put16(out + 10, 0);
  put32(out + 12, 1);
  put32(out + 16, pos);
  put32(out + 24, l.strings);
  put32(out + 28, st.size);
  put32(out + 32, compiler);
  put32(out + 36, profile);
  put32(out + 40, capabilities);
  put32(out + 44, 0);
  for (int t = 0; t < FLOWRT_FBIN_NUM_TABLES; ++t) {
    static const int kCounts[] = {0, 1, 2};
    uint32_t count = t < 3 ? p->num_symbols[kCounts[t]] : t == 3 ? p->num_rules : p->num_bindings;
    put32(out + 48 + 8 * t, l.table[t]);
    put32(out + 52 + 8 * t, count);
  }
  fix_crc(out, pos);
  if (layout != NULL) {
    *layout = l;
  }
  return pos;
}

/// Opens a heap copy of exactly `size` bytes of `file`.
static int open_copy(const unsigned char *file, size_t size, char *err, size_t errlen,
                     int (*inspect)(const struct flowrt_fbin *)) {
  unsigned char *copy = (unsigned char *)malloc(size == 0 ? 1 : size);
  if (copy == NULL) {
    abort();
  }
  memcpy(copy, file, size);
  struct flowrt_fbin f;
  int rc = flowrt_fbin_open(copy, size, &f, err, errlen);
  if (rc == 0 && inspect != NULL) {
    inspect(&f);
  }
  free(copy);
  return rc;
}

// --- The policies -------------------------------------------------------------

enum {
  kEth = 0x20,
  kIpv4 = 0x30,
  kIpv6 = 0x31,
  kIpv4Ext = 0x32,
  kEsp = 0x34,
  kTcp = 0x40,
  kUdp = 0x41,
  kVxlan = 0x50,
  kGre = 0x51,
  kMpls = 0x60,
  kInner = 0x100,
  kTag = 0x1000,
  kDrop = 0x1001,
  kHandle = 0x1002,
  kCount = 0x1003
};

static const uint64_t kStorageMac = 0x661122334455u;

/// The worked example of docs/format.md: one rule, ETH dst + ACTION_COUNT.
static size_t write_example(unsigned char *out, size_t cap, struct w_layout *layout) {
  static struct attr a;
  attr_init(&a, 0, 0, 1, 0);
  unsigned char *eth = attr_spec(&a, kEth, 40);
  put_be(eth + 6, kStorageMac, 6);
  put_be(eth + 22, 0xFFFFFFFFFFFFu, 6);
  attr_spec(&a, kCount, 16);
  static const char *const queues[] = {"rx_storage"};
  static const char *const counters[] = {"hits"};
  const struct w_rule rules[] = {{&a, 0, 1, 0, "manpage", "policy.flow", 3, 5}};
  const struct w_binding bindings[] = {{1, FLOWRT_FBIN_BIND_COUNTER, 0}};
  struct w_policy p = {"flowc 0.1.0", "mlx5", "", {queues, counters, NULL}, {1, 1, 0}, rules, 1,
                       bindings,      1};
  return write_fbin(&p, out, cap, layout);
}

/// The bytes of the worked example, exactly as printed in docs/format.md.
static const unsigned char kExample[] = {
    0x46, 0x4c, 0x4f, 0x57, 0x42, 0x49, 0x4e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x16, 0x01, 0x00, 0x00, 0xd9, 0xf9, 0x65, 0xf3, 0xe0, 0x00, 0x00, 0x00, 0x36, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x58, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x5c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x88, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x00,
    0x94, 0x00, 0x00, 0x00, 0x4c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x00, 0x00, 0x00,
    0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x28, 0x00, 0x66, 0x11,
    0x22, 0x33, 0x44, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x03, 0x10, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x66, 0x6c, 0x6f, 0x77, 0x63, 0x20, 0x30, 0x2e, 0x31, 0x2e, 0x30, 0x00, 0x6d, 0x6c, 0x78,
    0x35, 0x00, 0x72, 0x78, 0x5f, 0x73, 0x74, 0x6f, 0x72, 0x61, 0x67, 0x65, 0x00, 0x68, 0x69, 0x74,
    0x73, 0x00, 0x6d, 0x61, 0x6e, 0x70, 0x61, 0x67, 0x65, 0x00, 0x70, 0x6f, 0x6c, 0x69, 0x63, 0x79,
    0x2e, 0x66, 0x6c, 0x6f, 0x77, 0x00};

/// Rule indices of the full policy.
enum { kRoce, kTenant, kMplsGre, kVlanPrio, kEspIn, kArpCopy, kDefault, kSniff, kBlockDoc, kRules };

static struct attr full_attrs[kRules];

/// A policy using every spec type, every rule kind and flag, and bindings of
/// both kinds; the attr offsets of its specs are listed in the comments.
static size_t write_full(unsigned char *out, size_t cap, struct w_layout *layout) {
  struct attr *a = full_attrs;
  unsigned char *s;
  // roce_storage: ETH@20 IPV4@60 UDP@84 TAG@100 COUNT@112, 128 bytes.
  attr_init(&a[kRoce], 0, 0, 1, 0);
  s = attr_spec(&a[kRoce], kEth, 40);
  put_be(s + 6, kStorageMac, 6);
  put_be(s + 22, 0xFFFFFFFFFFFFu, 6);
  s = attr_spec(&a[kRoce], kIpv4, 24);
  put_be(s + 12, 0x0A010000u, 4);
  put_be(s + 20, 0xFFFF0000u, 4);
  s = attr_spec(&a[kRoce], kUdp, 16);
  put_be(s + 6, 4791, 2);
  put_be(s + 10, 0xFFFF, 2);
  s = attr_spec(&a[kRoce], kTag, 12);
  put32(s + 8, 0x42);
  attr_spec(&a[kRoce], kCount, 16);
  // tenant_a: ETH@20 IPV4@60 UDP@84 VXLAN@100 INNER ETH@116 INNER IPV4@156 INNER TCP@180, 196.
  attr_init(&a[kTenant], 0, 1, 1, 0);
  attr_spec(&a[kTenant], kEth, 40);
  s = attr_spec(&a[kTenant], kIpv4, 24);
  put_be(s + 12, 0xC000020Au, 4);
  put_be(s + 20, 0xFFFFFFFFu, 4);
  s = attr_spec(&a[kTenant], kUdp, 16);
  put_be(s + 6, 4789, 2);
  put_be(s + 10, 0xFFFF, 2);
  s = attr_spec(&a[kTenant], kVxlan, 16);
  put_be(s + 8, 100, 4);
  put_be(s + 12, 0xFFFFFF, 4);
  attr_spec(&a[kTenant], kInner | kEth, 40);
  s = attr_spec(&a[kTenant], kInner | kIpv4, 24);
  put_be(s + 12, 0x0A010000u, 4);
  put_be(s + 20, 0xFFFF0000u, 4);
  s = attr_spec(&a[kTenant], kInner | kTcp, 16);
  put_be(s + 6, 80, 2);
  put_be(s + 10, 0xFFF8, 2);
  // mpls_over_gre: GRE@20 MPLS@44 DROP@60, 68.
  attr_init(&a[kMplsGre], 0, 0, 1, 0);
  s = attr_spec(&a[kMplsGre], kGre, 24);
  put_be(s + 10, 0x8847, 2);
  put_be(s + 18, 0xFFFF, 2);
  s = attr_spec(&a[kMplsGre], kMpls, 16);
  put_be(s + 8, 1000u << 12, 4);
  put_be(s + 12, 0xFFFFF000u, 4);
  attr_spec(&a[kMplsGre], kDrop, 8);
  // vlan_prio: ETH@20 IPV6@60, 148.
  attr_init(&a[kVlanPrio], 0, 2, 1, 0);
  s = attr_spec(&a[kVlanPrio], kEth, 40);
  put_be(s + 20, 100, 2);
  put_be(s + 36, 0x0FFF, 2);
  s = attr_spec(&a[kVlanPrio], kIpv6, 88);
  put_be(s + 24, 0x20010DB8u, 4);
  put_be(s + 64, 0xFFFFFFFFu, 4);
  // esp_in: ESP@20 HANDLE@44 COUNT@60, 76.
  attr_init(&a[kEspIn], 0, 0, 1, 0);
  s = attr_spec(&a[kEspIn], kEsp, 24);
  put_be(s + 8, 0x1000, 4);
  put_be(s + 16, 0xFFFFFFFFu, 4);
  attr_spec(&a[kEspIn], kHandle, 16);
  attr_spec(&a[kEspIn], kCount, 16);
  // arp_copy (pass): ETH@20, 60.
  attr_init(&a[kArpCopy], 0, 0, 1, 0x2);
  s = attr_spec(&a[kArpCopy], kEth, 40);
  put_be(s + 18, 0x0806, 2);
  put_be(s + 34, 0xFFFF, 2);
  // default and sniff: no specs, 20.
  attr_init(&a[kDefault], 1, 0, 1, 0);
  attr_init(&a[kSniff], 3, 0, 1, 0);
  // block_doc (egress): IPV4_EXT@20 DROP@52, 60.
  attr_init(&a[kBlockDoc], 0, 0, 1, 0x4);
  s = attr_spec(&a[kBlockDoc], kIpv4Ext, 32);
  put_be(s + 12, 0xCB007100u, 4);
  put_be(s + 24, 0xFFFFFF00u, 4);
  attr_spec(&a[kBlockDoc], kDrop, 8);

  static const char *const queues[] = {"rx_storage", "rx_tenant", "rx_default", "rx_sniff"};
  static const char *const counters[] = {"storage_hits", "esp_hits"};
  static const char *const handles[] = {"esp_decrypt"};
  const uint32_t none = FLOWRT_FBIN_NO_QUEUE;
  const struct w_rule rules[kRules] = {
      {&a[kRoce], 0, 1, 0, "roce_storage", "policy.flow", 30, 5},
      {&a[kTenant], 1, 0, 0, "tenant_a", "policy.flow", 34, 5},
      {&a[kMplsGre], none, 0, 0, "mpls_over_gre", "policy.flow", 37, 5},
      {&a[kVlanPrio], 1, 0, 0, "vlan_prio", "tenants.flow", 12, 9},
      {&a[kEspIn], 0, 2, 0, "esp_in", "policy.flow", 44, 5},
      {&a[kArpCopy], 3, 0, FLOWRT_FBIN_RULE_PASS, "arp_copy", "policy.flow", 48, 5},
      {&a[kDefault], 2, 0, 0, "", "policy.flow", 50, 5},
      {&a[kSniff], 3, 0, 0, "", "", 0, 0},
      {&a[kBlockDoc], none, 0, FLOWRT_FBIN_RULE_EGRESS, "block_doc", "policy.flow", 56, 5},
  };
  // esp_in's bindings are not in spec order: any order is valid.
  const struct w_binding bindings[] = {{4, FLOWRT_FBIN_BIND_COUNTER, 0},
                                       {2, FLOWRT_FBIN_BIND_COUNTER, 1},
                                       {1, FLOWRT_FBIN_BIND_HANDLE, 0}};
  struct w_policy p = {
      "flowc 0.1.0", "mlx5", "inner,mpls", {queues, counters, handles}, {4, 2, 1}, rules, kRules,
      bindings,      3};
  return write_fbin(&p, out, cap, layout);
}

// --- Invariants of an accepted file ---------------------------------------------

/// True if `s` is a NUL-terminated string inside f's string table.
static int in_string_table(const struct flowrt_fbin *f, const char *s) {
  const char *table = (const char *)f->data + f->string_table_offset;
  if (s == NULL || s < table || s >= table + f->string_table_size) {
    return 0;
  }
  return memchr(s, 0, (size_t)(table + f->string_table_size - s)) != NULL;
}

/// Checks everything the API promises about an opened file, using only the
/// API; any pointer out of bounds is also caught by the sanitizer.
static int check_consistent(const struct flowrt_fbin *f) {
  unsigned before = failures;
  CHECK(f->version_major == 1);
  CHECK(f->flags == FLOWRT_FBIN_FLAG_LITTLE_ENDIAN_ATTRS);
  CHECK(f->string_table_offset >= FLOWRT_FBIN_DATA_OFFSET);
  CHECK((uint64_t)f->string_table_offset + f->string_table_size <= f->size);
  CHECK(in_string_table(f, f->compiler) && in_string_table(f, f->profile) &&
        in_string_table(f, f->capabilities));
  CHECK(flowrt_fbin_string(f, f->string_table_size) == NULL);
  for (int t = FLOWRT_FBIN_QUEUES; t <= FLOWRT_FBIN_HANDLES; ++t) {
    enum flowrt_fbin_table table = (enum flowrt_fbin_table)t;
    uint32_t n = flowrt_fbin_count(f, table);
    for (uint32_t i = 0; i < n; ++i) {
      const char *name = flowrt_fbin_symbol(f, table, i);
      uint32_t found = UINT32_MAX;
      CHECKF(in_string_table(f, name) && name[0] != '\0', "table %d symbol %u", t, (unsigned)i);
      CHECKF(name != NULL && flowrt_fbin_find_symbol(f, table, name, &found) == 0 && found == i,
             "table %d symbol %u is unique", t, (unsigned)i);
    }
    CHECK(flowrt_fbin_symbol(f, table, n) == NULL);
  }
  uint32_t num_rules = flowrt_fbin_count(f, FLOWRT_FBIN_RULES);
  uint32_t bindings = 0;
  for (uint32_t i = 0; i < num_rules; ++i) {
    struct flowrt_fbin_rule r;
    CHECK(flowrt_fbin_rule(f, i, &r) == 0);
    CHECKF(r.attr >= f->data && r.attr_size >= 20 && r.attr_size <= f->size &&
               r.attr <= f->data + f->size - r.attr_size,
           "rule %u attr in the file", (unsigned)i);
    CHECK(r.attr == f->data + r.attr_offset);
    CHECK(r.type <= 3 && r.num_specs <= FLOWRT_FBIN_MAX_SPECS);
    CHECK(r.queue == FLOWRT_FBIN_NO_QUEUE || r.queue < flowrt_fbin_count(f, FLOWRT_FBIN_QUEUES));
    CHECK(in_string_table(f, r.name) && in_string_table(f, r.file));
    CHECK((r.flags & ~3u) == 0);
    CHECK(r.attr_flags == (((r.flags & 1) ? 4u : 0u) | ((r.flags & 2) ? 2u : 0u)));
    CHECK(r.first_binding == bindings);
    bindings += r.binding_count;
    for (uint32_t j = 0; j < r.binding_count; ++j) {
      struct flowrt_fbin_binding b;
      CHECK(flowrt_fbin_rule_binding(f, i, j, &b) == 0);
      CHECK(b.spec_index < r.num_specs);
      CHECKF(b.pointer_offset >= 28 && b.pointer_offset + 8 <= r.attr_size,
             "rule %u binding %u pointer at %u", (unsigned)i, (unsigned)j,
             (unsigned)b.pointer_offset);
      if (b.pointer_offset >= 28 && b.pointer_offset + 8 <= r.attr_size) {
        uint32_t type = get32(r.attr + b.pointer_offset - 8);
        static const unsigned char kZero[8] = {0};
        CHECK(memcmp(r.attr + b.pointer_offset, kZero, 8) == 0);
        CHECK(b.kind == FLOWRT_FBIN_BIND_COUNTER ? type == kCount : type == kHandle);
      }
      CHECK(b.kind == FLOWRT_FBIN_BIND_COUNTER
                ? b.symbol < flowrt_fbin_count(f, FLOWRT_FBIN_COUNTERS)
                : b.kind == FLOWRT_FBIN_BIND_HANDLE &&
                      b.symbol < flowrt_fbin_count(f, FLOWRT_FBIN_HANDLES));
    }
    struct flowrt_fbin_binding b;
    CHECK(flowrt_fbin_rule_binding(f, i, r.binding_count, &b) == -EINVAL);
  }
  CHECK(bindings == flowrt_fbin_count(f, FLOWRT_FBIN_BINDINGS));
  struct flowrt_fbin_rule r;
  CHECK(flowrt_fbin_rule(f, num_rules, &r) == -EINVAL);
  return failures == before ? 0 : -1;
}

// --- Tests ---------------------------------------------------------------------

static void test_crc(void) {
  CHECK(flowrt_fbin_crc32(0, "123456789", 9) == 0xCBF43926u);
  CHECK(flowrt_fbin_crc32(0, "", 0) == 0);
  unsigned char data[1000];
  for (size_t i = 0; i < sizeof data; ++i) {
    data[i] = (unsigned char)(i * 131 + 7);
  }
  uint32_t whole = flowrt_fbin_crc32(0, data, sizeof data);
  CHECK(whole == reference_crc32(data, sizeof data));
  CHECK(flowrt_fbin_crc32(flowrt_fbin_crc32(0, data, 333), data + 333, 667) == whole);
}

/// Prints `size` bytes as docs/format.md shows them.
static void hex_dump(const unsigned char *p, size_t size) {
  for (size_t i = 0; i < size; i += 16) {
    fprintf(stderr, "%04zx:", i);
    for (size_t k = i; k < i + 16 && k < size; ++k) {
      fprintf(stderr, " %02x", p[k]);
    }
    fputc('\n', stderr);
  }
}

/// The worked example: the writer reproduces the documented bytes, and the
/// reader reads every field back.
static void test_example(void) {
  unsigned char file[512];
  size_t size = write_example(file, sizeof file, NULL);
  int same = size == sizeof kExample && memcmp(file, kExample, size) == 0;
  CHECKF(same, "the example (%zu bytes) differs from docs/format.md (%zu)", size, sizeof kExample);
  if (!same) {
    hex_dump(file, size);
  }
  char err[200] = "stale";
  struct flowrt_fbin f;
  int rc = flowrt_fbin_open(kExample, sizeof kExample, &f, err, sizeof err);
  CHECKF(rc == 0 && err[0] == '\0', "rc %d, err '%s'", rc, err);
  if (rc != 0) {
    return;
  }
  CHECK(f.version_major == 1 && f.version_minor == 0);
  CHECK(strcmp(f.compiler, "flowc 0.1.0") == 0);
  CHECK(strcmp(f.profile, "mlx5") == 0);
  CHECK(strcmp(f.capabilities, "") == 0);
  CHECK(flowrt_fbin_count(&f, FLOWRT_FBIN_QUEUES) == 1);
  CHECK(flowrt_fbin_count(&f, FLOWRT_FBIN_COUNTERS) == 1);
  CHECK(flowrt_fbin_count(&f, FLOWRT_FBIN_HANDLES) == 0);
  CHECK(flowrt_fbin_count(&f, FLOWRT_FBIN_RULES) == 1);
  CHECK(flowrt_fbin_count(&f, FLOWRT_FBIN_BINDINGS) == 1);
  CHECK(strcmp(flowrt_fbin_symbol(&f, FLOWRT_FBIN_QUEUES, 0), "rx_storage") == 0);
  CHECK(strcmp(flowrt_fbin_symbol(&f, FLOWRT_FBIN_COUNTERS, 0), "hits") == 0);
  struct flowrt_fbin_rule r;
  CHECK(flowrt_fbin_rule(&f, 0, &r) == 0);
  CHECK(r.attr == kExample + 148 && r.attr_offset == 148 && r.attr_size == 76);
  CHECK(r.type == 0 && r.priority == 0 && r.port == 1 && r.num_specs == 2 && r.attr_flags == 0);
  CHECK(r.flags == 0 && r.queue == 0 && r.first_binding == 0 && r.binding_count == 1);
  CHECK(strcmp(r.name, "manpage") == 0 && strcmp(r.file, "policy.flow") == 0);
  CHECK(r.line == 3 && r.column == 5);
  struct flowrt_fbin_binding b;
  CHECK(flowrt_fbin_rule_binding(&f, 0, 0, &b) == 0);
  CHECK(b.spec_index == 1 && b.kind == FLOWRT_FBIN_BIND_COUNTER && b.symbol == 0);
  CHECK(b.pointer_offset == 68);
  check_consistent(&f);

  // The reader assumes no alignment of the file.
  unsigned char *odd = (unsigned char *)malloc(sizeof kExample + 1);
  memcpy(odd + 1, kExample, sizeof kExample);
  CHECK(flowrt_fbin_open(odd + 1, sizeof kExample, &f, err, sizeof err) == 0);
  CHECK(check_consistent(&f) == 0);
  free(odd);
}

static void test_full_policy(void) {
  unsigned char file[4096];
  struct w_layout l;
  size_t size = write_full(file, sizeof file, &l);
  char err[200];
  struct flowrt_fbin f;
  int rc = flowrt_fbin_open(file, size, &f, err, sizeof err);
  CHECKF(rc == 0, "%s", err);
  if (rc != 0) {
    return;
  }
  CHECK(check_consistent(&f) == 0);
  CHECK(strcmp(f.capabilities, "inner,mpls") == 0);
  CHECK(flowrt_fbin_count(&f, FLOWRT_FBIN_RULES) == kRules);
  uint32_t index = 99;
  CHECK(flowrt_fbin_find_symbol(&f, FLOWRT_FBIN_QUEUES, "rx_sniff", &index) == 0 && index == 3);
  CHECK(flowrt_fbin_find_symbol(&f, FLOWRT_FBIN_COUNTERS, "esp_hits", &index) == 0 && index == 1);
  CHECK(flowrt_fbin_find_symbol(&f, FLOWRT_FBIN_HANDLES, "esp_decrypt", &index) == 0 && index == 0);
  CHECK(flowrt_fbin_find_symbol(&f, FLOWRT_FBIN_HANDLES, "rx_sniff", &index) == -ENOENT);
  CHECK(flowrt_fbin_find_symbol(&f, FLOWRT_FBIN_RULES, "rx_sniff", &index) == -ENOENT);

  struct flowrt_fbin_rule r;
  struct flowrt_fbin_binding b;
  CHECK(flowrt_fbin_rule(&f, kTenant, &r) == 0);
  CHECK(r.attr_size == 196 && r.num_specs == 7 && r.priority == 1 && r.queue == 1);
  CHECK(get32(r.attr + 180) == (kInner | kTcp));
  CHECK(flowrt_fbin_rule(&f, kVlanPrio, &r) == 0);
  CHECK(strcmp(r.file, "tenants.flow") == 0 && r.line == 12 && r.column == 9);
  CHECK(flowrt_fbin_rule(&f, kEspIn, &r) == 0);
  CHECK(r.first_binding == 1 && r.binding_count == 2);
  CHECK(flowrt_fbin_rule_binding(&f, kEspIn, 0, &b) == 0);
  CHECK(b.spec_index == 2 && b.kind == FLOWRT_FBIN_BIND_COUNTER && b.symbol == 1);
  CHECK(b.pointer_offset == 68);
  CHECK(flowrt_fbin_rule_binding(&f, kEspIn, 1, &b) == 0);
  CHECK(b.spec_index == 1 && b.kind == FLOWRT_FBIN_BIND_HANDLE && b.symbol == 0);
  CHECK(b.pointer_offset == 52);
  CHECK(flowrt_fbin_rule_binding(&f, kEspIn, 2, &b) == -EINVAL);
  CHECK(flowrt_fbin_rule_binding(&f, kRules, 0, &b) == -EINVAL);
  CHECK(flowrt_fbin_rule(&f, kArpCopy, &r) == 0);
  CHECK(r.flags == FLOWRT_FBIN_RULE_PASS && r.attr_flags == 0x2 && r.queue == 3);
  CHECK(flowrt_fbin_rule(&f, kDefault, &r) == 0);
  CHECK(r.type == 1 && r.num_specs == 0 && r.attr_size == 20 && strcmp(r.name, "") == 0);
  CHECK(flowrt_fbin_rule(&f, kSniff, &r) == 0);
  CHECK(r.type == 3 && r.line == 0 && strcmp(r.file, "") == 0);
  CHECK(flowrt_fbin_rule(&f, kBlockDoc, &r) == 0);
  CHECK(r.flags == FLOWRT_FBIN_RULE_EGRESS && r.attr_flags == 0x4);
  CHECK(r.queue == FLOWRT_FBIN_NO_QUEUE);

  CHECK(flowrt_fbin_count(&f, (enum flowrt_fbin_table)7) == 0);
  CHECK(flowrt_fbin_symbol(&f, FLOWRT_FBIN_RULES, 0) == NULL);
  CHECK(flowrt_fbin_string(&f, 0) != NULL && *flowrt_fbin_string(&f, 0) == '\0');
  CHECK(flowrt_fbin_string(&f, UINT32_MAX) == NULL);
}

static int message_is(const char *err, uint64_t offset, const char *text);

/// A policy with no symbols and no rules; empty tables may sit at offset 0.
static void test_empty_policy(void) {
  unsigned char file[256];
  struct w_policy p = {"flowc 0.1.0", "generic", "", {NULL, NULL, NULL}, {0, 0, 0}, NULL, 0,
                       NULL,          0};
  size_t size = write_fbin(&p, file, sizeof file, NULL);
  CHECK(size == 88 + 1 + 12 + 8);
  struct flowrt_fbin f;
  char err[200];
  CHECKF(flowrt_fbin_open(file, size, &f, err, sizeof err) == 0, "%s", err);
  CHECK(check_consistent(&f) == 0);
  for (int t = 0; t < FLOWRT_FBIN_NUM_TABLES; ++t) {
    put32(file + 48 + 8 * t, 0);
  }
  fix_crc(file, size);
  CHECKF(flowrt_fbin_open(file, size, &f, err, sizeof err) == 0, "%s", err);
  put32(file + 48 + 8 * FLOWRT_FBIN_HANDLES, (uint32_t)(size + 4) & ~3u);
  fix_crc(file, size);
  CHECK(flowrt_fbin_open(file, size, &f, err, sizeof err) == -EINVAL);
  CHECKF(message_is(err, 64, "empty handles table offset 112 is past the end of the file (109"),
         "%s", err);
}

static void test_error_buffer(void) {
  unsigned char file[] = "not an fbin file at all, but long enough to have a header.......";
  struct flowrt_fbin f;
  CHECK(flowrt_fbin_open(file, sizeof file, &f, NULL, 0) == -EINVAL);
  char one[1] = {'x'};
  CHECK(flowrt_fbin_open(file, sizeof file, &f, one, sizeof one) == -EINVAL);
  CHECK(one[0] == '\0');
  char small[12];
  memset(small, 'x', sizeof small);
  CHECK(flowrt_fbin_open(file, sizeof file, &f, small, sizeof small) == -EINVAL);
  CHECK(strcmp(small, "offset 0: b") == 0);
  // After a failure the struct is zeroed and the accessors find nothing.
  CHECK(f.data == NULL && f.size == 0 && f.compiler == NULL);
  struct flowrt_fbin_rule r;
  CHECK(flowrt_fbin_rule(&f, 0, &r) == -EINVAL);
  CHECK(flowrt_fbin_string(&f, 0) == NULL);
  CHECK(flowrt_fbin_symbol(&f, FLOWRT_FBIN_QUEUES, 0) == NULL);
}

/// True if `err` is "offset <offset>: " followed by text containing `text`.
static int message_is(const char *err, uint64_t offset, const char *text) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "offset %llu: ", (unsigned long long)offset);
  return strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err + strlen(prefix), text) != NULL;
}

/// Every proper prefix of a valid file is refused, and so is a longer file.
static void test_truncation(const unsigned char *file, size_t size) {
  char err[200];
  for (size_t n = 0; n < size; ++n) {
    int rc = open_copy(file, n, err, sizeof err, NULL);
    CHECKF(rc == -EINVAL, "truncated to %zu bytes: rc %d", n, rc);
    CHECKF(strncmp(err, "offset ", 7) == 0, "truncated to %zu bytes: '%s'", n, err);
  }
  unsigned char *longer = (unsigned char *)calloc(size + 1, 1);
  memcpy(longer, file, size);
  CHECK(open_copy(longer, size + 1, err, sizeof err, NULL) == -EINVAL);
  CHECKF(message_is(err, 16, "file size field says"), "%s", err);
  free(longer);
}

/// Header offsets whose every change makes the file invalid, checksum fixed or not.
static int always_rejected(size_t offset) {
  return offset < 8 || (offset >= 12 && offset < 20) || (offset >= 44 && offset < 48);
}

/// Flips each byte of `file` with several masks: without fixing the checksum
/// every flip is refused; with it, the file is refused or is consistent.
static void test_flips(const char *name, const unsigned char *file, size_t size,
                       const uint32_t *pointer_bytes, size_t num_pointer_bytes) {
  static const unsigned char kMasks[] = {0x01, 0x02, 0x10, 0x80, 0xFF};
  unsigned char *copy = (unsigned char *)malloc(size);
  char err[200];
  unsigned rejected = 0, accepted = 0;
  for (size_t i = 0; i < size; ++i) {
    for (size_t m = 0; m < sizeof kMasks; ++m) {
      memcpy(copy, file, size);
      copy[i] ^= kMasks[m];
      int rc = open_copy(copy, size, err, sizeof err, NULL);
      int version = i == 8 || i == 9;
      CHECKF(rc == -EINVAL || (version && rc == -ENOTSUP),
             "%s: byte %zu ^ 0x%02x, checksum not fixed: rc %d", name, i, kMasks[m], rc);
      if (i >= 20 && i < 24) {
        continue; // fixing the checksum would undo the flip
      }
      fix_crc(copy, size);
      rc = open_copy(copy, size, err, sizeof err, check_consistent);
      CHECKF(rc == 0 || rc == -EINVAL || (version && rc == -ENOTSUP),
             "%s: byte %zu ^ 0x%02x, checksum fixed: rc %d", name, i, kMasks[m], rc);
      int must_reject = always_rejected(i);
      for (size_t k = 0; k < num_pointer_bytes; ++k) {
        must_reject |= pointer_bytes[k] == i;
      }
      CHECKF(!must_reject || rc != 0, "%s: byte %zu ^ 0x%02x, checksum fixed, was accepted", name,
             i, kMasks[m]);
      if (rc == 0) {
        ++accepted;
      } else {
        ++rejected;
      }
    }
  }
  free(copy);
  printf("format_test: %s: %u checksum-fixed byte flips refused, %u still valid files\n", name,
         rejected, accepted);
}

/// Random multi-byte damage with the checksum fixed: never a crash or an
/// out-of-bounds read, and whatever opens is consistent.
static void test_random_damage(const unsigned char *file, size_t size, unsigned rounds) {
  static const unsigned char kValues[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x14, 0x28,
                                          0x58, 0x7F, 0x80, 0xFE, 0xFF, 0x10, 0x30, 0x41};
  unsigned char *copy = (unsigned char *)malloc(size);
  uint64_t state = 0x9E3779B97F4A7C15u;
  unsigned accepted = 0;
  char err[200];
  for (unsigned round = 0; round < rounds; ++round) {
    memcpy(copy, file, size);
    state = state * 6364136223846793005u + 1442695040888963407u;
    unsigned edits = 1 + (unsigned)(state >> 62);
    for (unsigned e = 0; e < edits; ++e) {
      state = state * 6364136223846793005u + 1442695040888963407u;
      size_t at = (size_t)((state >> 33) % size);
      unsigned char value =
          (state & 0x100) ? kValues[(state >> 12) & 15] : (unsigned char)(state >> 20);
      copy[at] = value;
    }
    fix_crc(copy, size);
    int rc = open_copy(copy, size, err, sizeof err, check_consistent);
    CHECKF(rc == 0 || rc == -EINVAL || rc == -ENOTSUP, "round %u: rc %d", round, rc);
    CHECKF(rc == 0 || strncmp(err, "offset ", 7) == 0, "round %u: '%s'", round, err);
    accepted += rc == 0;
  }
  free(copy);
  printf("format_test: random damage: %u of %u damaged files still valid\n", accepted, rounds);
}

/// One corruption of the full policy: `width` bytes at `at` set to `value`.
struct corruption {
  const char *name;
  uint32_t at;
  int width;
  uint32_t value;
  int fix_crc;
  int rc;
  uint32_t err_offset;
  const char *err_text;
};

static void test_corruptions(void) {
  unsigned char file[4096];
  struct w_layout l;
  size_t size = write_full(file, sizeof file, &l);
  const uint32_t S = (uint32_t)size;
  const uint32_t R = l.table[FLOWRT_FBIN_RULES];
  const uint32_t B = l.table[FLOWRT_FBIN_BINDINGS];
  const uint32_t *A = l.attr;
  const uint32_t strings = l.strings;
  const uint32_t strings_size = l.strings_size;
#define RULE(i) (R + 40 * (i))
  const struct corruption cases[] = {
      // File header.
      {"magic", 3, 1, 'X', 1, -EINVAL, 0, "bad magic"},
      {"major 2", 8, 2, 2, 1, -ENOTSUP, 8, "format version 2.0 is newer than this reader (1.x)"},
      {"major 2, bad checksum", 8, 2, 2, 0, -ENOTSUP, 8, "format version 2.0 is newer"},
      {"major 0", 8, 2, 0, 1, -EINVAL, 8, "format version 0.0 does not exist"},
      {"minor 9", 10, 2, 9, 1, 0, 0, NULL},
      {"flags 0", 12, 4, 0, 1, -EINVAL, 12, "not marked little-endian"},
      {"flags 3", 12, 4, 3, 1, -EINVAL, 12, "unknown header flags 0x2"},
      {"flags 1<<31", 12, 4, 0x80000001u, 1, -EINVAL, 12, "unknown header flags 0x80000000"},
      {"file size", 16, 4, S - 1, 1, -EINVAL, 16, "file size field says"},
      {"checksum", 20, 1, 0, 0, -EINVAL, 20, "checksum is"},
      {"reserved", 44, 4, 1, 1, -EINVAL, 44, "reserved field is 0x00000001, not 0"},
      {"string table in header", 24, 4, 40, 1, -EINVAL, 24, "overlaps the header and directory"},
      {"string table too big", 28, 4, strings_size + 4, 1, -EINVAL, 24, "runs past the end"},
      {"string table huge", 28, 4, 0xFFFFFFFFu, 1, -EINVAL, 24, "runs past the end"},
      {"string table empty", 28, 4, 0, 1, -EINVAL, 28, "string table is empty"},
      {"string table start", strings, 1, 'x', 1, -EINVAL, strings,
       "does not start with the empty string"},
      {"string table end", 28, 4, strings_size - 1, 1, -EINVAL, strings + strings_size - 2,
       "does not end with a NUL"},
      {"compiler ref", 32, 4, strings_size, 1, -EINVAL, 32, "compiler version string reference"},
      {"profile ref", 36, 4, 0xFFFFFFFFu, 1, -EINVAL, 36, "target profile string reference"},
      {"capabilities ref", 40, 4, 0x80000000u, 1, -EINVAL, 40, "capabilities string reference"},
      // Directory.
      {"queues misaligned", 48, 4, 90, 1, -EINVAL, 48, "queues table offset 90 is not 4-byte"},
      {"rules in directory", 72, 4, 84, 1, -EINVAL, 72,
       "rules table at offset 84 overlaps the header"},
      {"bindings count", 84, 4, 0x40000000u, 1, -EINVAL, 80, "runs past the end of the file"},
      {"rules count wraps 32 bits", 76, 4, 0x20000000u, 1, -EINVAL, 72, "rules table (offset"},
      {"handles past end", 64, 4, (S + 4) & ~3u, 1, -EINVAL, 64, "handles table (offset"},
      // Symbols.
      {"empty queue name", l.table[0] + 4, 4, 0, 1, -EINVAL, l.table[0] + 4,
       "queue 1 has an empty name"},
      {"duplicate queue", l.table[0] + 8, 4, get32(file + l.table[0]), 1, -EINVAL, l.table[0] + 8,
       "queue 2 has the same name as queue 0 ('rx_storage')"},
      {"counter ref", l.table[1] + 4, 4, strings_size, 1, -EINVAL, l.table[1] + 4,
       "counter string reference"},
      {"handle ref", l.table[2], 4, 0xFFFFFFF0u, 1, -EINVAL, l.table[2], "handle string reference"},
      // Rules.
      {"attr misaligned", RULE(0), 4, A[0] + 2, 1, -EINVAL, RULE(0), "is not 4-byte aligned"},
      {"attr short", RULE(0) + 4, 4, 16, 1, -EINVAL, RULE(0) + 4, "shorter than ibv_flow_attr"},
      {"attr past end", RULE(0), 4, (S - 16) & ~3u, 1, -EINVAL, RULE(0), "runs past the end"},
      {"attr in header", RULE(0), 4, 0, 1, -EINVAL, RULE(0), "overlaps the header"},
      {"attr size huge", RULE(0) + 4, 4, 0xFFFFFFF0u, 1, -EINVAL, RULE(0), "runs past the end"},
      {"queue", RULE(0) + 8, 4, 4, 1, -EINVAL, RULE(0) + 8, "rule 0 names queue 4; there are 4"},
      {"no queue", RULE(0) + 8, 4, FLOWRT_FBIN_NO_QUEUE, 1, 0, 0, NULL},
      {"binding run start", RULE(kEspIn) + 12, 4, 0, 1, -EINVAL, RULE(kEspIn) + 12,
       "rule 4: bindings start at 0, not where the previous rule's bindings end (1)"},
      {"binding run past table", RULE(kEspIn) + 16, 4, 3, 1, -EINVAL, RULE(kEspIn) + 16,
       "run past the bindings table"},
      {"binding run huge", RULE(kEspIn) + 16, 4, 0xFFFFFFFFu, 1, -EINVAL, RULE(kEspIn) + 16,
       "run past the bindings table"},
      {"binding run short", RULE(kEspIn) + 16, 4, 1, 1, -EINVAL, RULE(kEspIn) + 16,
       "ACTION_HANDLE spec 1 has no binding"},
      {"rule name ref", RULE(1) + 20, 4, strings_size, 1, -EINVAL, RULE(1) + 20,
       "rule name string reference"},
      {"source file ref", RULE(1) + 24, 4, strings_size + 100, 1, -EINVAL, RULE(1) + 24,
       "source file string reference"},
      {"rule flags", RULE(0) + 36, 4, 4, 1, -EINVAL, RULE(0) + 36, "rule 0 has unknown flags 0x4"},
      {"pass without DONT_TRAP", RULE(kArpCopy) + 36, 4, 0, 1, -EINVAL, A[kArpCopy] + 16,
       "rule 5: attr flags 0x2 do not match the rule flags 0x0"},
      {"egress with DONT_TRAP", A[kBlockDoc] + 16, 4, 6, 1, -EINVAL, A[kBlockDoc] + 16,
       "attr flags 0x6 do not match the rule flags 0x1"},
      {"attr flag bit 0", A[0] + 16, 4, 1, 1, -EINVAL, A[0] + 16, "attr flags 0x1 do not match"},
      {"attr flag bit 3", A[0] + 16, 4, 8, 1, -EINVAL, A[0] + 16, "attr flags 0x8 do not match"},
      // Attr buffers.
      {"comp_mask", A[0], 4, 1, 1, -EINVAL, A[0], "rule 0: attr comp_mask is 0x1, not 0"},
      {"attr type", A[0] + 4, 4, 4, 1, -EINVAL, A[0] + 4, "rule 0: unknown attr type 4"},
      {"attr size field", A[0] + 8, 2, 127, 1, -EINVAL, A[0] + 8,
       "rule 0: attr size field is 127, the buffer has 128 bytes"},
      {"num_of_specs 11", A[0] + 12, 1, 11, 1, -EINVAL, A[0] + 12,
       "rule 0: 11 specs, more than the kernel's 10"},
      {"num_of_specs short", A[0] + 12, 1, 4, 1, -EINVAL, A[0] + 112,
       "rule 0: 16 bytes left in the attr buffer after its 4 specs"},
      {"num_of_specs long", A[0] + 12, 1, 6, 1, -EINVAL, A[0] + 128,
       "spec 5 is cut off: 0 bytes left"},
      {"attr padding", A[0] + 15, 1, 1, 1, -EINVAL, A[0] + 15, "rule 0: attr padding"},
      {"unknown spec", A[0] + 20, 4, 0x22, 1, -EINVAL, A[0] + 20, "spec 0 has unknown type 0x22"},
      {"unknown inner spec", A[0] + 20, 4, 0x122, 1, -EINVAL, A[0] + 20,
       "spec 0 has unknown type 0x122"},
      {"other flag on spec", A[0] + 20, 4, 0x220, 1, -EINVAL, A[0] + 20, "unknown type 0x220"},
      {"inner GRE", A[kMplsGre] + 20, 4, kInner | kGre, 1, -EINVAL, A[kMplsGre] + 20,
       "GRE spec 0 cannot carry the INNER flag"},
      {"inner VXLAN", A[kTenant] + 100, 4, kInner | kVxlan, 1, -EINVAL, A[kTenant] + 100,
       "VXLAN_TUNNEL spec 3 cannot carry"},
      {"inner TAG", A[0] + 100, 4, kInner | kTag, 1, -EINVAL, A[0] + 100,
       "ACTION_TAG spec 3 cannot carry"},
      {"inner COUNT", A[0] + 112, 4, kInner | kCount, 1, -EINVAL, A[0] + 112,
       "ACTION_COUNT spec 4 cannot carry"},
      {"UDP size", A[0] + 84 + 4, 2, 24, 1, -EINVAL, A[0] + 88, "UDP spec 2 has size 24, not 16"},
      {"ETH as TCP", A[0] + 20, 4, kTcp, 1, -EINVAL, A[0] + 24, "TCP spec 0 has size 40, not 16"},
      {"IPV4 padding", A[0] + 60 + 6, 1, 1, 1, -EINVAL, A[0] + 66, "padding of IPV4 spec 1"},
      {"ETH padding", A[0] + 20 + 38, 1, 1, 1, -EINVAL, A[0] + 58, "padding of ETH spec 0"},
      {"UDP padding", A[0] + 84 + 15, 1, 1, 1, -EINVAL, A[0] + 99, "padding of UDP spec 2"},
      {"TAG padding", A[0] + 100 + 7, 1, 1, 1, -EINVAL, A[0] + 107, "padding of ACTION_TAG"},
      {"IPV6 val padding", A[kVlanPrio] + 60 + 47, 1, 1, 1, -EINVAL, A[kVlanPrio] + 107,
       "filter padding of IPV6 spec 1 is not zero"},
      {"IPV6 mask padding", A[kVlanPrio] + 60 + 87, 1, 0xFF, 1, -EINVAL, A[kVlanPrio] + 147,
       "filter padding of IPV6 spec 1 is not zero"},
      {"COUNT pointer", A[0] + 112 + 15, 1, 1, 1, -EINVAL, A[0] + 127,
       "pointer field of ACTION_COUNT spec 4 is not zero"},
      {"HANDLE pointer", A[kEspIn] + 44 + 8, 1, 0x80, 1, -EINVAL, A[kEspIn] + 52,
       "pointer field of ACTION_HANDLE spec 1 is not zero"},
      {"DROP padding", A[kMplsGre] + 60 + 6, 1, 1, 1, -EINVAL, A[kMplsGre] + 66,
       "padding of ACTION_DROP spec 2"},
      // Bindings.
      {"binding spec range", B, 4, 5, 1, -EINVAL, B,
       "binding 0 names spec 5 of rule 0, which has 5 specs"},
      {"binding kind", B + 4, 4, 3, 1, -EINVAL, B + 4, "binding 0 has unknown kind 3"},
      {"binding kind 0", B + 4, 4, 0, 1, -EINVAL, B + 4, "binding 0 has unknown kind 0"},
      {"binding kind mismatch", B + 4, 4, FLOWRT_FBIN_BIND_HANDLE, 1, -EINVAL, B,
       "binding 0 binds a handle to spec 4 of rule 0, which is ACTION_COUNT, not ACTION_HANDLE"},
      {"binding to match spec", B, 4, 0, 1, -EINVAL, B,
       "binding 0 binds a counter to spec 0 of rule 0, which is ETH, not ACTION_COUNT"},
      {"binding symbol", B + 8, 4, 2, 1, -EINVAL, B + 8, "binding 0 names counter 2; there are 2"},
      {"handle symbol", B + 24 + 8, 4, 1, 1, -EINVAL, B + 32,
       "binding 2 names handle 1; there are 1"},
      {"binding twice", B + 24, 4, 2, 1, -EINVAL, B + 24,
       "binding 2 binds a handle to spec 2 of rule 4, which is ACTION_COUNT"},
  };
#undef RULE
  char err[200];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    const struct corruption *c = &cases[i];
    unsigned char copy[4096];
    memcpy(copy, file, size);
    for (int k = 0; k < c->width; ++k) {
      copy[c->at + (uint32_t)k] = (unsigned char)(c->value >> (8 * k));
    }
    if (c->fix_crc) {
      fix_crc(copy, size);
    }
    int rc = open_copy(copy, size, err, sizeof err, check_consistent);
    CHECKF(rc == c->rc, "%s: rc %d, expected %d; '%s'", c->name, rc, c->rc, err);
    if (c->err_text != NULL) {
      CHECKF(message_is(err, c->err_offset, c->err_text),
             "%s: '%s', expected 'offset %u: ...%s...'", c->name, err, (unsigned)c->err_offset,
             c->err_text);
    }
  }
}

/// Corruptions that need a differently built file.
static void test_built_corruptions(void) {
  unsigned char file[1024];
  char err[200];
  struct w_layout l;
  struct attr a;
  const char *const queues[] = {"a_x", "x", "y"};
  const char *const counters[] = {"c"};
  struct w_rule rule = {&a, 0, 0, 0, "r", "f.flow", 1, 1};
  struct w_binding binding[2] = {{1, FLOWRT_FBIN_BIND_COUNTER, 0},
                                 {1, FLOWRT_FBIN_BIND_COUNTER, 0}};
  struct w_policy p = {"flowc", "mlx5",  "", {queues, counters, NULL}, {3, 1, 0}, &rule,
                       1,       binding, 0};
  size_t size;
  int rc;

  // The same name at two different references.
  attr_init(&a, 0, 0, 1, 0);
  size = write_fbin(&p, file, sizeof file, &l);
  CHECKF(open_copy(file, size, err, sizeof err, check_consistent) == 0, "%s", err);
  put32(file + l.table[0] + 8, get32(file + l.table[0]) + 2);
  fix_crc(file, size);
  rc = open_copy(file, size, err, sizeof err, NULL);
  CHECKF(rc == -EINVAL &&
             message_is(err, l.table[0] + 8, "queue 2 has the same name as queue 1 ('x')"),
         "%s", err);

  // A COUNT spec without a binding.
  attr_init(&a, 0, 0, 1, 0);
  attr_spec(&a, kEth, 40);
  attr_spec(&a, kCount, 16);
  size = write_fbin(&p, file, sizeof file, &l);
  rc = open_copy(file, size, err, sizeof err, NULL);
  CHECKF(rc == -EINVAL &&
             message_is(err, l.table[3] + 16, "rule 0: ACTION_COUNT spec 1 has no binding"),
         "%s", err);

  // Two bindings of one spec, both of the right kind.
  rule.bindings = 2;
  p.num_bindings = 2;
  size = write_fbin(&p, file, sizeof file, &l);
  rc = open_copy(file, size, err, sizeof err, NULL);
  CHECKF(rc == -EINVAL &&
             message_is(err, l.table[4] + 12, "binding 1 binds spec 1 of rule 0 a second time"),
         "%s", err);

  // A binding no rule's run covers.
  rule.bindings = 1;
  size = write_fbin(&p, file, sizeof file, &l);
  rc = open_copy(file, size, err, sizeof err, NULL);
  CHECKF(rc == -EINVAL && message_is(err, 84, "the rules use 1 bindings, the bindings table has 2"),
         "%s", err);
  p.num_bindings = 1;
  size = write_fbin(&p, file, sizeof file, &l);
  CHECKF(open_copy(file, size, err, sizeof err, check_consistent) == 0, "%s", err);

  // A spec that runs past its buffer: its size is right, the buffer is short.
  attr_init(&a, 0, 0, 1, 0);
  attr_spec(&a, kEth, 40);
  a.size -= 16;
  put16(a.b + 8, (uint16_t)a.size);
  rule.bindings = 0;
  p.num_bindings = 0;
  size = write_fbin(&p, file, sizeof file, &l);
  rc = open_copy(file, size, err, sizeof err, NULL);
  CHECKF(rc == -EINVAL &&
             message_is(err, l.attr[0] + 20, "ETH spec 0 (40 bytes) runs past the end"),
         "%s", err);

  // Ten specs are allowed, and a spec header cut short is refused.
  attr_init(&a, 0, 0, 1, 0);
  for (int i = 0; i < 10; ++i) {
    attr_spec(&a, kDrop, 8);
  }
  size = write_fbin(&p, file, sizeof file, &l);
  CHECKF(open_copy(file, size, err, sizeof err, check_consistent) == 0, "%s", err);
  attr_init(&a, 0, 0, 1, 0);
  attr_spec(&a, kDrop, 8);
  a.b[12] = 2;
  a.size += 4;
  put16(a.b + 8, (uint16_t)a.size);
  size = write_fbin(&p, file, sizeof file, &l);
  rc = open_copy(file, size, err, sizeof err, NULL);
  CHECKF(rc == -EINVAL && message_is(err, l.attr[0] + 28, "spec 1 is cut off: 4 bytes left"), "%s",
         err);
}

/// Each spec type at its exact size, with and without INNER, and at a wrong size.
static void test_spec_table(void) {
  static const struct {
    uint32_t type;
    uint16_t size;
    int inner_ok;
  } kTypes[] = {{kEth, 40, 1}, {kIpv4, 24, 1}, {kIpv6, 88, 1},   {kIpv4Ext, 32, 1}, {kEsp, 24, 1},
                {kTcp, 16, 1}, {kUdp, 16, 1},  {kVxlan, 16, 0},  {kGre, 24, 0},     {kMpls, 16, 1},
                {kTag, 12, 0}, {kDrop, 8, 0},  {kHandle, 16, 0}, {kCount, 16, 0}};
  unsigned char file[1024];
  char err[200];
  static const char *const queues[] = {"q"};
  static const char *const counters[] = {"c"};
  static const char *const handles[] = {"h"};
  for (size_t i = 0; i < sizeof kTypes / sizeof kTypes[0]; ++i) {
    for (int variant = 0; variant < 4; ++variant) {
      int inner = variant & 1;
      int wrong_size = variant & 2;
      struct attr a;
      attr_init(&a, 0, 0, 1, 0);
      attr_spec(&a, kTypes[i].type | (inner ? kInner : 0u),
                (uint16_t)(kTypes[i].size + (wrong_size ? 4 : 0)));
      int bound = kTypes[i].type == kHandle || kTypes[i].type == kCount;
      struct w_binding b = {0, kTypes[i].type == kHandle ? 2u : 1u, 0};
      struct w_rule rule = {&a, 0, bound ? 1u : 0u, 0, "r", "f", 1, 1};
      struct w_policy p = {"flowc",        "mlx5", "", {queues, counters, handles},
                           {1, 1, 1},      &rule,  1,  &b,
                           bound ? 1u : 0u};
      size_t size = write_fbin(&p, file, sizeof file, NULL);
      int rc = open_copy(file, size, err, sizeof err, check_consistent);
      int valid = !wrong_size && (!inner || kTypes[i].inner_ok);
      CHECKF(rc == (valid ? 0 : -EINVAL), "type 0x%x inner %d size +%d: rc %d '%s'",
             (unsigned)kTypes[i].type, inner, wrong_size ? 4 : 0, rc, err);
    }
  }
}

int main(void) {
  test_crc();
  test_example();
  test_full_policy();
  test_empty_policy();
  test_error_buffer();
  test_corruptions();
  test_built_corruptions();
  test_spec_table();

  unsigned char full[4096];
  struct w_layout l;
  size_t size = write_full(full, sizeof full, &l);
  // The pointer fields of the COUNT and HANDLE specs: any change is refused.
  uint32_t pointers[3 * 8];
  size_t n = 0;
  for (int k = 0; k < 8; ++k) {
    pointers[n++] = l.attr[kRoce] + 120 + (uint32_t)k;
    pointers[n++] = l.attr[kEspIn] + 52 + (uint32_t)k;
    pointers[n++] = l.attr[kEspIn] + 68 + (uint32_t)k;
  }
  test_truncation(kExample, sizeof kExample);
  test_truncation(full, size);
  test_flips("example", kExample, sizeof kExample, pointers, 0);
  test_flips("full policy", full, size, pointers, n);
  test_random_damage(full, size, 20000);

  printf("format_test: %u checks, %u failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
