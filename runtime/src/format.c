// The .fbin reader: checks every byte of a compiled policy before use (docs/format.md).
#include "flowrt/format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// Every multi-byte value is read byte by byte: `data` may have any alignment
// and the host may have any byte order.
static uint16_t read16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t read32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// --- CRC-32 ---------------------------------------------------------------

// The reflected polynomial 0xEDB88320 applied to each 4-bit value: half a
// byte per step keeps the table small without a run-time initializer.
static const uint32_t kCrcNibble[16] = {0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
                                        0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
                                        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
                                        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t flowrt_fbin_crc32(uint32_t crc, const void *data, size_t size) {
  const unsigned char *p = (const unsigned char *)data;
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) {
    crc ^= p[i];
    crc = (crc >> 4) ^ kCrcNibble[crc & 15u];
    crc = (crc >> 4) ^ kCrcNibble[crc & 15u];
  }
  return ~crc;
}

// --- Layout ---------------------------------------------------------------

// File header fields (docs/format.md, "File header").
enum {
  kOffMajor = 8,
  kOffMinor = 10,
  kOffFlags = 12,
  kOffFileSize = 16,
  kOffChecksum = 20,
  kOffStringTable = 24,
  kOffStringTableSize = 28,
  kOffCompiler = 32,
  kOffProfile = 36,
  kOffCapabilities = 40,
  kOffReserved = 44
};

// ibv_flow_attr (verbs-facts §1.3) and the verbs constants the reader checks.
enum {
  kAttrType = 4,
  kAttrSizeField = 8,
  kAttrPriority = 10,
  kAttrNumSpecs = 12,
  kAttrPort = 13,
  kAttrFlags = 16,
  kAttrTypeMax = 3, // IBV_FLOW_ATTR_SNIFFER
  kAttrFlagDontTrap = 0x2,
  kAttrFlagEgress = 0x4,
  kSpecInner = 0x100,
  kSpecIpv6 = 0x31,
  kSpecActionHandle = 0x1002,
  kSpecActionCount = 0x1003,
  kSpecHeaderSize = 8,
  kSpecPointer = 8,    // the pointer field of ACTION_HANDLE / ACTION_COUNT
  kIpv6FilterPad = 39, // the last byte of the IPv6 filter is padding (verbs-facts §1.5)
};

// The shape of one spec type in the user buffer (verbs-facts §1.3). Every
// byte of a spec outside type, size and its payload is padding and must be
// zero, which also makes the HANDLE/COUNT pointer zero.
struct spec_layout {
  uint32_t type; // without the INNER flag
  uint16_t size;
  uint8_t payload_offset;
  uint8_t payload_size; // val + mask, tag_id, or 0
  uint8_t inner_ok;     // may carry IBV_FLOW_SPEC_INNER (verbs-facts §1.5)
  const char *name;
};

static const struct spec_layout kSpecs[] = {
    {0x20, 40, 6, 32, 1, "ETH"},
    {0x30, 24, 8, 16, 1, "IPV4"},
    {kSpecIpv6, 88, 8, 80, 1, "IPV6"},
    {0x32, 32, 8, 24, 1, "IPV4_EXT"},
    {0x34, 24, 8, 16, 1, "ESP"},
    {0x40, 16, 6, 8, 1, "TCP"},
    {0x41, 16, 6, 8, 1, "UDP"},
    {0x50, 16, 8, 8, 0, "VXLAN_TUNNEL"},
    {0x51, 24, 8, 16, 0, "GRE"},
    {0x60, 16, 8, 8, 1, "MPLS"},
    {0x1000, 12, 8, 4, 0, "ACTION_TAG"},
    {0x1001, 8, 8, 0, 0, "ACTION_DROP"},
    {kSpecActionHandle, 16, 8, 0, 0, "ACTION_HANDLE"},
    {kSpecActionCount, 16, 8, 0, 0, "ACTION_COUNT"},
};

static const struct spec_layout *find_spec(uint32_t type) {
  for (size_t i = 0; i < sizeof kSpecs / sizeof kSpecs[0]; ++i) {
    if (kSpecs[i].type == type) {
      return &kSpecs[i];
    }
  }
  return NULL;
}

static const uint32_t kEntrySize[FLOWRT_FBIN_NUM_TABLES] = {
    FLOWRT_FBIN_SYMBOL_ENTRY_SIZE, FLOWRT_FBIN_SYMBOL_ENTRY_SIZE, FLOWRT_FBIN_SYMBOL_ENTRY_SIZE,
    FLOWRT_FBIN_RULE_ENTRY_SIZE, FLOWRT_FBIN_BINDING_ENTRY_SIZE};

static const char *const kTableName[FLOWRT_FBIN_NUM_TABLES] = {"queues", "counters", "handles",
                                                               "rules", "bindings"};
static const char *const kSymbolKind[3] = {"queue", "counter", "handle"};

// --- Validation -----------------------------------------------------------

// What open() is validating, and where its message goes.
struct checker {
  const unsigned char *d;
  size_t size;
  char *err;
  size_t errlen;
  const struct flowrt_fbin *f; // the fields filled so far
};

// Writes "offset N: <message>" and returns -EINVAL.
static int fail(const struct checker *c, uint64_t offset, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(const struct checker *c, uint64_t offset, const char *format, ...) {
  if (c->errlen > 0) {
    int n = snprintf(c->err, c->errlen, "offset %" PRIu64 ": ", offset);
    if (n >= 0 && (size_t)n < c->errlen) {
      va_list args;
      va_start(args, format);
      vsnprintf(c->err + n, c->errlen - (size_t)n, format, args);
      va_end(args);
    }
  }
  return -EINVAL;
}

// A short, printable copy of a string from the file for a one-line message.
static const char *printable(const char *s, char *buf, size_t bufsize) {
  size_t n = 0;
  for (; s[n] != '\0' && n + 4 < bufsize; ++n) {
    unsigned char ch = (unsigned char)s[n];
    buf[n] = (ch >= 0x20 && ch < 0x7f && ch != '\'') ? (char)ch : '?';
  }
  if (s[n] != '\0') {
    memcpy(buf + n, "...", 3);
    n += 3;
  }
  buf[n] = '\0';
  return buf;
}

// Checks the string reference at file offset `at`; stores the string in `*s`.
static int check_string(const struct checker *c, uint32_t at, const char *what, const char **s) {
  uint32_t ref = read32(c->d + at);
  if (ref >= c->f->string_table_size) {
    return fail(c, at,
                "%s string reference %" PRIu32 " is outside the string table (%" PRIu32 " bytes)",
                what, ref, c->f->string_table_size);
  }
  *s = (const char *)c->d + c->f->string_table_offset + ref;
  return 0;
}

// Checks that [offset, offset + length) lies after the directory and inside
// the file; `at` is where `offset` is stored.
static int check_range(const struct checker *c, uint32_t at, const char *what, uint32_t offset,
                       uint64_t length) {
  if (offset < FLOWRT_FBIN_DATA_OFFSET) {
    return fail(c, at, "%s at offset %" PRIu32 " overlaps the header and directory (%d bytes)",
                what, offset, FLOWRT_FBIN_DATA_OFFSET);
  }
  if ((uint64_t)offset + length > c->size) {
    return fail(c, at,
                "%s (offset %" PRIu32 ", %" PRIu64 " bytes) runs past the end of the file (%zu"
                " bytes)",
                what, offset, length, c->size);
  }
  return 0;
}

static int check_header(const struct checker *c, struct flowrt_fbin *f) {
  const unsigned char *d = c->d;
  if (c->size < kOffFlags) {
    return fail(c, 0, "file is %zu bytes, too short for the magic and version", c->size);
  }
  if (memcmp(d, FLOWRT_FBIN_MAGIC, FLOWRT_FBIN_MAGIC_SIZE) != 0) {
    return fail(c, 0, "bad magic: not a compiled policy (.fbin) file");
  }
  f->version_major = read16(d + kOffMajor);
  f->version_minor = read16(d + kOffMinor);
  if (f->version_major > FLOWRT_FBIN_VERSION_MAJOR) {
    fail(c, kOffMajor, "format version %u.%u is newer than this reader (%d.x)", f->version_major,
         f->version_minor, FLOWRT_FBIN_VERSION_MAJOR);
    return -ENOTSUP;
  }
  if (f->version_major != FLOWRT_FBIN_VERSION_MAJOR) {
    return fail(c, kOffMajor, "format version %u.%u does not exist", f->version_major,
                f->version_minor);
  }
  if (c->size < FLOWRT_FBIN_DATA_OFFSET) {
    return fail(c, c->size, "file is %zu bytes, too short for the header and directory (%d bytes)",
                c->size, FLOWRT_FBIN_DATA_OFFSET);
  }
  uint32_t file_size = read32(d + kOffFileSize);
  if (file_size != c->size) {
    return fail(c, kOffFileSize, "file size field says %" PRIu32 " bytes, the file has %zu",
                file_size, c->size);
  }
  // Corruption is reported as such before any structural message.
  static const unsigned char kZero[4] = {0, 0, 0, 0};
  uint32_t crc = flowrt_fbin_crc32(0, d, kOffChecksum);
  crc = flowrt_fbin_crc32(crc, kZero, sizeof kZero);
  crc = flowrt_fbin_crc32(crc, d + kOffChecksum + 4, c->size - (kOffChecksum + 4));
  uint32_t stored = read32(d + kOffChecksum);
  if (crc != stored) {
    return fail(c, kOffChecksum, "checksum is 0x%08" PRIx32 ", the contents give 0x%08" PRIx32,
                stored, crc);
  }
  f->flags = read32(d + kOffFlags);
  if ((f->flags & ~(uint32_t)FLOWRT_FBIN_FLAGS_KNOWN) != 0) {
    return fail(c, kOffFlags, "unknown header flags 0x%" PRIx32,
                f->flags & ~(uint32_t)FLOWRT_FBIN_FLAGS_KNOWN);
  }
  if ((f->flags & FLOWRT_FBIN_FLAG_LITTLE_ENDIAN_ATTRS) == 0) {
    return fail(c, kOffFlags, "attr buffers are not marked little-endian (flag 0x1)");
  }
  if (read32(d + kOffReserved) != 0) {
    return fail(c, kOffReserved, "reserved field is 0x%08" PRIx32 ", not 0",
                read32(d + kOffReserved));
  }
  f->string_table_offset = read32(d + kOffStringTable);
  f->string_table_size = read32(d + kOffStringTableSize);
  int rc =
      check_range(c, kOffStringTable, "string table", f->string_table_offset, f->string_table_size);
  if (rc != 0) {
    return rc;
  }
  if (f->string_table_size == 0) {
    return fail(c, kOffStringTableSize,
                "string table is empty; it must start with the empty string");
  }
  const unsigned char *table = d + f->string_table_offset;
  if (table[0] != 0) {
    return fail(c, f->string_table_offset, "string table does not start with the empty string");
  }
  // A table of NUL-terminated strings ends in a NUL, so every reference
  // inside it is terminated inside it.
  if (table[f->string_table_size - 1] != 0) {
    return fail(c, (uint64_t)f->string_table_offset + f->string_table_size - 1,
                "string table does not end with a NUL");
  }
  if ((rc = check_string(c, kOffCompiler, "compiler version", &f->compiler)) != 0 ||
      (rc = check_string(c, kOffProfile, "target profile", &f->profile)) != 0 ||
      (rc = check_string(c, kOffCapabilities, "capabilities", &f->capabilities)) != 0) {
    return rc;
  }
  return 0;
}

static int check_directory(const struct checker *c, struct flowrt_fbin *f) {
  for (int t = 0; t < FLOWRT_FBIN_NUM_TABLES; ++t) {
    uint32_t at = FLOWRT_FBIN_DIRECTORY_OFFSET + 8u * (uint32_t)t;
    f->table_offset[t] = read32(c->d + at);
    f->table_count[t] = read32(c->d + at + 4);
    uint64_t length = (uint64_t)f->table_count[t] * kEntrySize[t];
    if (f->table_offset[t] % 4 != 0) {
      return fail(c, at, "%s table offset %" PRIu32 " is not 4-byte aligned", kTableName[t],
                  f->table_offset[t]);
    }
    // An empty table occupies no bytes; its offset only has to be in range.
    if (length == 0) {
      if (f->table_offset[t] > c->size) {
        return fail(c, at,
                    "empty %s table offset %" PRIu32 " is past the end of the file (%zu"
                    " bytes)",
                    kTableName[t], f->table_offset[t], c->size);
      }
      continue;
    }
    char what[32];
    snprintf(what, sizeof what, "%s table", kTableName[t]);
    int rc = check_range(c, at, what, f->table_offset[t], length);
    if (rc != 0) {
      return rc;
    }
  }
  return 0;
}

// Names are non-empty and unique within their table. The uniqueness check is
// quadratic, as the reader allocates nothing (docs/format.md, "Limits").
static int check_symbols(const struct checker *c, const struct flowrt_fbin *f, int t) {
  for (uint32_t i = 0; i < f->table_count[t]; ++i) {
    uint32_t at = f->table_offset[t] + 4 * i;
    const char *name;
    int rc = check_string(c, at, kSymbolKind[t], &name);
    if (rc != 0) {
      return rc;
    }
    if (name[0] == '\0') {
      return fail(c, at, "%s %" PRIu32 " has an empty name", kSymbolKind[t], i);
    }
    for (uint32_t j = 0; j < i; ++j) {
      const char *other =
          (const char *)c->d + f->string_table_offset + read32(c->d + f->table_offset[t] + 4 * j);
      if (strcmp(name, other) == 0) {
        char buf[40];
        return fail(c, at, "%s %" PRIu32 " has the same name as %s %" PRIu32 " ('%s')",
                    kSymbolKind[t], i, kSymbolKind[t], j, printable(name, buf, sizeof buf));
      }
    }
  }
  return 0;
}

// Checks that `n` bytes at file offset `at` are zero.
static int check_zero(const struct checker *c, uint64_t at, size_t n, const char *what,
                      const char *spec, uint32_t index) {
  for (size_t k = 0; k < n; ++k) {
    if (c->d[at + k] != 0) {
      return fail(c, at + k, "%s of %s spec %" PRIu32 " is not zero", what, spec, index);
    }
  }
  return 0;
}

// Checks one spec at file offset `at` with `left` bytes left in its buffer;
// stores its layout in `*out`.
static int check_spec(const struct checker *c, uint64_t at, uint64_t left, uint32_t index,
                      const struct spec_layout **out) {
  if (left < kSpecHeaderSize) {
    return fail(c, at, "spec %" PRIu32 " is cut off: %" PRIu64 " bytes left in the attr buffer",
                index, left);
  }
  uint32_t raw = read32(c->d + at);
  const struct spec_layout *l = find_spec(raw & ~(uint32_t)kSpecInner);
  if (l == NULL) {
    return fail(c, at, "spec %" PRIu32 " has unknown type 0x%" PRIx32, index, raw);
  }
  if ((raw & kSpecInner) != 0 && !l->inner_ok) {
    return fail(c, at, "%s spec %" PRIu32 " cannot carry the INNER flag (0x100)", l->name, index);
  }
  uint16_t size = read16(c->d + at + 4);
  if (size != l->size) {
    return fail(c, at + 4, "%s spec %" PRIu32 " has size %u, not %u", l->name, index, size,
                l->size);
  }
  if (left < l->size) {
    return fail(c, at, "%s spec %" PRIu32 " (%u bytes) runs past the end of the attr buffer",
                l->name, index, l->size);
  }
  int rc;
  if (l->type == kSpecActionHandle || l->type == kSpecActionCount) {
    if ((rc = check_zero(c, at + 6, 2, "padding", l->name, index)) != 0 ||
        (rc = check_zero(c, at + kSpecPointer, 8, "pointer field", l->name, index)) != 0) {
      return rc;
    }
  } else {
    size_t end = (size_t)l->payload_offset + l->payload_size;
    if ((rc = check_zero(c, at + 6, (size_t)l->payload_offset - 6, "padding", l->name, index)) !=
            0 ||
        (rc = check_zero(c, at + end, l->size - end, "padding", l->name, index)) != 0) {
      return rc;
    }
    if (l->type == kSpecIpv6) {
      uint64_t val_pad = at + l->payload_offset + kIpv6FilterPad;
      uint64_t mask_pad = val_pad + l->payload_size / 2;
      if ((rc = check_zero(c, val_pad, 1, "filter padding", l->name, index)) != 0 ||
          (rc = check_zero(c, mask_pad, 1, "filter padding", l->name, index)) != 0) {
        return rc;
      }
    }
  }
  *out = l;
  return 0;
}

// Checks a rule's attr buffer (docs/format.md, "Attr buffers"); stores the
// type of each spec in `types`.
static int check_attr(const struct checker *c, uint32_t rule, uint32_t rule_flags, uint32_t at,
                      uint32_t size, uint32_t types[FLOWRT_FBIN_MAX_SPECS], uint32_t *num_specs) {
  const unsigned char *a = c->d + at;
  if (read32(a) != 0) {
    return fail(c, at, "rule %" PRIu32 ": attr comp_mask is 0x%" PRIx32 ", not 0", rule, read32(a));
  }
  if (read32(a + kAttrType) > kAttrTypeMax) {
    return fail(c, (uint64_t)at + kAttrType, "rule %" PRIu32 ": unknown attr type %" PRIu32, rule,
                read32(a + kAttrType));
  }
  if (read16(a + kAttrSizeField) != size) {
    return fail(c, (uint64_t)at + kAttrSizeField,
                "rule %" PRIu32 ": attr size field is %u, the buffer has %" PRIu32 " bytes", rule,
                read16(a + kAttrSizeField), size);
  }
  *num_specs = a[kAttrNumSpecs];
  if (*num_specs > FLOWRT_FBIN_MAX_SPECS) {
    return fail(c, (uint64_t)at + kAttrNumSpecs,
                "rule %" PRIu32 ": %" PRIu32 " specs, more than the kernel's %d", rule, *num_specs,
                FLOWRT_FBIN_MAX_SPECS);
  }
  if (a[14] != 0 || a[15] != 0) {
    return fail(c, (uint64_t)at + (a[14] != 0 ? 14 : 15),
                "rule %" PRIu32 ": attr padding is not zero", rule);
  }
  uint32_t flags = read32(a + kAttrFlags);
  uint32_t expected = ((rule_flags & FLOWRT_FBIN_RULE_EGRESS) ? (uint32_t)kAttrFlagEgress : 0u) |
                      ((rule_flags & FLOWRT_FBIN_RULE_PASS) ? (uint32_t)kAttrFlagDontTrap : 0u);
  if (flags != expected) {
    return fail(c, (uint64_t)at + kAttrFlags,
                "rule %" PRIu32 ": attr flags 0x%" PRIx32 " do not match the rule flags 0x%" PRIx32
                " (attr flags 0x%" PRIx32 " expected)",
                rule, flags, rule_flags, expected);
  }
  uint32_t offset = FLOWRT_FBIN_ATTR_SIZE;
  for (uint32_t s = 0; s < *num_specs; ++s) {
    const struct spec_layout *l = NULL;
    int rc = check_spec(c, (uint64_t)at + offset, size - offset, s, &l);
    if (rc != 0) {
      return rc;
    }
    types[s] = l->type;
    offset += l->size;
  }
  if (offset != size) {
    return fail(c, (uint64_t)at + offset,
                "rule %" PRIu32 ": %" PRIu32 " bytes left in the attr buffer after its %" PRIu32
                " specs",
                rule, size - offset, *num_specs);
  }
  return 0;
}

// Checks the run of bindings of one rule: each names an ACTION_COUNT or
// ACTION_HANDLE spec of the rule and a symbol of the matching table, and each
// such spec has exactly one binding.
static int check_bindings(const struct checker *c, const struct flowrt_fbin *f, uint32_t rule,
                          uint32_t at_rule, uint32_t first, uint32_t count,
                          const uint32_t types[FLOWRT_FBIN_MAX_SPECS], uint32_t num_specs) {
  uint32_t bound[FLOWRT_FBIN_MAX_SPECS] = {0};
  for (uint32_t b = first; b < first + count; ++b) {
    uint32_t at = f->table_offset[FLOWRT_FBIN_BINDINGS] + FLOWRT_FBIN_BINDING_ENTRY_SIZE * b;
    uint32_t spec = read32(c->d + at);
    uint32_t kind = read32(c->d + at + 4);
    uint32_t symbol = read32(c->d + at + 8);
    if (spec >= num_specs) {
      return fail(c, at,
                  "binding %" PRIu32 " names spec %" PRIu32 " of rule %" PRIu32
                  ", which has %" PRIu32 " specs",
                  b, spec, rule, num_specs);
    }
    if (kind != FLOWRT_FBIN_BIND_COUNTER && kind != FLOWRT_FBIN_BIND_HANDLE) {
      return fail(c, at + 4, "binding %" PRIu32 " has unknown kind %" PRIu32, b, kind);
    }
    int t = kind == FLOWRT_FBIN_BIND_COUNTER ? FLOWRT_FBIN_COUNTERS : FLOWRT_FBIN_HANDLES;
    uint32_t wanted = kind == FLOWRT_FBIN_BIND_COUNTER ? kSpecActionCount : kSpecActionHandle;
    if (types[spec] != wanted) {
      return fail(c, at,
                  "binding %" PRIu32 " binds a %s to spec %" PRIu32 " of rule %" PRIu32
                  ", which is %s, not %s",
                  b, kSymbolKind[t], spec, rule, find_spec(types[spec])->name,
                  find_spec(wanted)->name);
    }
    if (symbol >= f->table_count[t]) {
      return fail(c, at + 8, "binding %" PRIu32 " names %s %" PRIu32 "; there are %" PRIu32, b,
                  kSymbolKind[t], symbol, f->table_count[t]);
    }
    if (bound[spec]++ != 0) {
      return fail(c, at,
                  "binding %" PRIu32 " binds spec %" PRIu32 " of rule %" PRIu32 " a second time", b,
                  spec, rule);
    }
  }
  for (uint32_t s = 0; s < num_specs; ++s) {
    if ((types[s] == kSpecActionCount || types[s] == kSpecActionHandle) && bound[s] == 0) {
      return fail(c, at_rule + 16, "rule %" PRIu32 ": %s spec %" PRIu32 " has no binding", rule,
                  find_spec(types[s])->name, s);
    }
  }
  return 0;
}

static int check_rules(const struct checker *c, const struct flowrt_fbin *f) {
  uint32_t next_binding = 0;
  for (uint32_t i = 0; i < f->table_count[FLOWRT_FBIN_RULES]; ++i) {
    uint32_t at = f->table_offset[FLOWRT_FBIN_RULES] + FLOWRT_FBIN_RULE_ENTRY_SIZE * i;
    const unsigned char *r = c->d + at;
    uint32_t attr_offset = read32(r);
    uint32_t attr_size = read32(r + 4);
    uint32_t queue = read32(r + 8);
    uint32_t first = read32(r + 12);
    uint32_t count = read32(r + 16);
    uint32_t flags = read32(r + 36);
    const char *s;
    int rc;
    if (attr_offset % 4 != 0) {
      return fail(c, at, "rule %" PRIu32 ": attr buffer offset %" PRIu32 " is not 4-byte aligned",
                  i, attr_offset);
    }
    if (attr_size < FLOWRT_FBIN_ATTR_SIZE) {
      return fail(c, at + 4,
                  "rule %" PRIu32 ": attr buffer of %" PRIu32
                  " bytes is shorter than ibv_flow_attr (%d)",
                  i, attr_size, FLOWRT_FBIN_ATTR_SIZE);
    }
    if ((rc = check_range(c, at, "attr buffer", attr_offset, attr_size)) != 0) {
      return rc;
    }
    if (queue != FLOWRT_FBIN_NO_QUEUE && queue >= f->table_count[FLOWRT_FBIN_QUEUES]) {
      return fail(c, at + 8, "rule %" PRIu32 " names queue %" PRIu32 "; there are %" PRIu32, i,
                  queue, f->table_count[FLOWRT_FBIN_QUEUES]);
    }
    // The runs follow each other in rule order, so every binding belongs to
    // exactly one rule and is checked against it.
    if (first != next_binding) {
      return fail(c, at + 12,
                  "rule %" PRIu32 ": bindings start at %" PRIu32
                  ", not where the previous rule's bindings end (%" PRIu32 ")",
                  i, first, next_binding);
    }
    if (count > f->table_count[FLOWRT_FBIN_BINDINGS] - first) {
      return fail(c, at + 16,
                  "rule %" PRIu32 ": bindings %" PRIu32 "+%" PRIu32
                  " run past the bindings table (%" PRIu32 " entries)",
                  i, first, count, f->table_count[FLOWRT_FBIN_BINDINGS]);
    }
    next_binding = first + count;
    if ((rc = check_string(c, at + 20, "rule name", &s)) != 0 ||
        (rc = check_string(c, at + 24, "source file", &s)) != 0) {
      return rc;
    }
    if ((flags & ~(uint32_t)(FLOWRT_FBIN_RULE_EGRESS | FLOWRT_FBIN_RULE_PASS)) != 0) {
      return fail(c, at + 36, "rule %" PRIu32 " has unknown flags 0x%" PRIx32, i, flags);
    }
    uint32_t types[FLOWRT_FBIN_MAX_SPECS];
    uint32_t num_specs = 0;
    if ((rc = check_attr(c, i, flags, attr_offset, attr_size, types, &num_specs)) != 0 ||
        (rc = check_bindings(c, f, i, at, first, count, types, num_specs)) != 0) {
      return rc;
    }
  }
  if (next_binding != f->table_count[FLOWRT_FBIN_BINDINGS]) {
    return fail(c, FLOWRT_FBIN_DIRECTORY_OFFSET + 8 * FLOWRT_FBIN_BINDINGS + 4,
                "the rules use %" PRIu32 " bindings, the bindings table has %" PRIu32, next_binding,
                f->table_count[FLOWRT_FBIN_BINDINGS]);
  }
  return 0;
}

int flowrt_fbin_open(const void *data, size_t size, struct flowrt_fbin *out, char *err,
                     size_t errlen) {
  struct flowrt_fbin f;
  memset(&f, 0, sizeof f);
  memset(out, 0, sizeof *out);
  struct checker c = {(const unsigned char *)data, size, err, errlen, &f};
  if (errlen > 0) {
    err[0] = '\0';
  }
  if ((uint64_t)size > UINT32_MAX) {
    return fail(&c, kOffFileSize, "file is %zu bytes, more than the format's 4 GiB", size);
  }
  int rc;
  if ((rc = check_header(&c, &f)) != 0 || (rc = check_directory(&c, &f)) != 0 ||
      (rc = check_symbols(&c, &f, FLOWRT_FBIN_QUEUES)) != 0 ||
      (rc = check_symbols(&c, &f, FLOWRT_FBIN_COUNTERS)) != 0 ||
      (rc = check_symbols(&c, &f, FLOWRT_FBIN_HANDLES)) != 0 || (rc = check_rules(&c, &f)) != 0) {
    return rc;
  }
  f.data = (const unsigned char *)data;
  f.size = size;
  *out = f;
  return 0;
}

// --- Accessors ------------------------------------------------------------
// open() has checked the file; these check only the caller's indices.

const char *flowrt_fbin_string(const struct flowrt_fbin *f, uint32_t ref) {
  if (ref >= f->string_table_size) {
    return NULL;
  }
  return (const char *)f->data + f->string_table_offset + ref;
}

uint32_t flowrt_fbin_count(const struct flowrt_fbin *f, enum flowrt_fbin_table table) {
  if ((unsigned)table >= FLOWRT_FBIN_NUM_TABLES) {
    return 0;
  }
  return f->table_count[table];
}

const char *flowrt_fbin_symbol(const struct flowrt_fbin *f, enum flowrt_fbin_table table,
                               uint32_t i) {
  if ((unsigned)table > FLOWRT_FBIN_HANDLES || i >= f->table_count[table]) {
    return NULL;
  }
  return flowrt_fbin_string(f, read32(f->data + f->table_offset[table] + 4 * i));
}

int flowrt_fbin_find_symbol(const struct flowrt_fbin *f, enum flowrt_fbin_table table,
                            const char *name, uint32_t *index) {
  uint32_t n = (unsigned)table > FLOWRT_FBIN_HANDLES ? 0 : f->table_count[table];
  for (uint32_t i = 0; i < n; ++i) {
    if (strcmp(flowrt_fbin_symbol(f, table, i), name) == 0) {
      *index = i;
      return 0;
    }
  }
  return -ENOENT;
}

int flowrt_fbin_rule(const struct flowrt_fbin *f, uint32_t i, struct flowrt_fbin_rule *out) {
  if (i >= f->table_count[FLOWRT_FBIN_RULES]) {
    return -EINVAL;
  }
  const unsigned char *r =
      f->data + f->table_offset[FLOWRT_FBIN_RULES] + FLOWRT_FBIN_RULE_ENTRY_SIZE * i;
  memset(out, 0, sizeof *out);
  out->attr_offset = read32(r);
  out->attr_size = read32(r + 4);
  out->attr = f->data + out->attr_offset;
  out->type = read32(out->attr + kAttrType);
  out->priority = read16(out->attr + kAttrPriority);
  out->num_specs = out->attr[kAttrNumSpecs];
  out->port = out->attr[kAttrPort];
  out->attr_flags = read32(out->attr + kAttrFlags);
  out->queue = read32(r + 8);
  out->first_binding = read32(r + 12);
  out->binding_count = read32(r + 16);
  out->name = flowrt_fbin_string(f, read32(r + 20));
  out->file = flowrt_fbin_string(f, read32(r + 24));
  out->line = read32(r + 28);
  out->column = read32(r + 32);
  out->flags = read32(r + 36);
  return 0;
}

int flowrt_fbin_rule_binding(const struct flowrt_fbin *f, uint32_t i, uint32_t j,
                             struct flowrt_fbin_binding *out) {
  struct flowrt_fbin_rule rule;
  if (flowrt_fbin_rule(f, i, &rule) != 0 || j >= rule.binding_count) {
    return -EINVAL;
  }
  const unsigned char *b = f->data + f->table_offset[FLOWRT_FBIN_BINDINGS] +
                           FLOWRT_FBIN_BINDING_ENTRY_SIZE * (rule.first_binding + j);
  out->spec_index = read32(b);
  out->kind = read32(b + 4);
  out->symbol = read32(b + 8);
  uint32_t offset = FLOWRT_FBIN_ATTR_SIZE;
  for (uint32_t s = 0; s < out->spec_index; ++s) {
    offset += read16(rule.attr + offset + 4);
  }
  out->pointer_offset = offset + kSpecPointer;
  return 0;
}
