// The .fbin compiled-policy format, version 1.0: its constants and a reader that checks every byte.
#ifndef FLOWRT_FORMAT_H
#define FLOWRT_FORMAT_H

// The format is specified byte by byte in docs/format.md. This header has no
// dependency on the compiler, LLVM, ANTLR or libibverbs; the reader
// (runtime/src/format.c) allocates nothing and never trusts the file.
//
// Every function reads the file through the `data` pointer given to
// flowrt_fbin_open(), which must stay valid and unchanged while the
// `struct flowrt_fbin` is used. The reader makes no assumption about the
// alignment of `data`.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The 8 magic bytes at offset 0: "FLOWBIN" and a NUL.
#define FLOWRT_FBIN_MAGIC "FLOWBIN"
/// The size of the magic, its NUL included.
#define FLOWRT_FBIN_MAGIC_SIZE 8
/// The major version this reader reads; a file with a higher one is refused with -ENOTSUP.
#define FLOWRT_FBIN_VERSION_MAJOR 1
/// The minor version writers of this version write; readers accept any minor of their major.
#define FLOWRT_FBIN_VERSION_MINOR 0

/// The size of the file header.
#define FLOWRT_FBIN_HEADER_SIZE 48
/// The offset of the table directory (FLOWRT_FBIN_NUM_TABLES entries of offset, count).
#define FLOWRT_FBIN_DIRECTORY_OFFSET 48
/// The first offset after the directory: every table, attr buffer and the string table start here
/// or later.
#define FLOWRT_FBIN_DATA_OFFSET 88

/// Header flag: attr buffers are little-endian (the host order of x86-64 and arm64); must be set.
#define FLOWRT_FBIN_FLAG_LITTLE_ENDIAN_ATTRS 0x1u
/// Every header flag version 1 defines; a file with any other flag is refused.
#define FLOWRT_FBIN_FLAGS_KNOWN 0x1u

/// The size of an entry of the queues, counters and handles tables (a name string reference).
#define FLOWRT_FBIN_SYMBOL_ENTRY_SIZE 4
/// The size of an entry of the rules table.
#define FLOWRT_FBIN_RULE_ENTRY_SIZE 40
/// The size of an entry of the bindings table.
#define FLOWRT_FBIN_BINDING_ENTRY_SIZE 12

/// A rule's queue index when the rule is created on no queue (egress or drop-only rules).
#define FLOWRT_FBIN_NO_QUEUE 0xFFFFFFFFu
/// Rule flag: an egress rule (the attr buffer carries IBV_FLOW_ATTR_FLAGS_EGRESS).
#define FLOWRT_FBIN_RULE_EGRESS 0x1u
/// Rule flag: a `pass` rule (the attr buffer carries IBV_FLOW_ATTR_FLAGS_DONT_TRAP).
#define FLOWRT_FBIN_RULE_PASS 0x2u

/// sizeof(struct ibv_flow_attr): the specs of an attr buffer start at this offset.
#define FLOWRT_FBIN_ATTR_SIZE 20
/// The most specs a rule may have (the kernel's IB_FLOW_SPEC_SUPPORT_LAYERS).
#define FLOWRT_FBIN_MAX_SPECS 10

/// The tables of the directory, in directory order.
enum flowrt_fbin_table {
  FLOWRT_FBIN_QUEUES = 0,
  FLOWRT_FBIN_COUNTERS = 1,
  FLOWRT_FBIN_HANDLES = 2,
  FLOWRT_FBIN_RULES = 3,
  FLOWRT_FBIN_BINDINGS = 4,
  FLOWRT_FBIN_NUM_TABLES = 5
};

/// What a binding fills in: an `ibv_counters *` (ACTION_COUNT) or an `ibv_flow_action *`
/// (ACTION_HANDLE).
enum flowrt_fbin_binding_kind { FLOWRT_FBIN_BIND_COUNTER = 1, FLOWRT_FBIN_BIND_HANDLE = 2 };

/// An opened, fully validated compiled policy. flowrt_fbin_open() fills it;
/// callers read its fields and never write them. After a failed open it is
/// all zero, and every accessor then finds nothing.
struct flowrt_fbin {
  /// The file, as given to flowrt_fbin_open().
  const unsigned char *data;
  size_t size;
  uint16_t version_major;
  uint16_t version_minor;
  /// The header flags (FLOWRT_FBIN_FLAG_*).
  uint32_t flags;
  /// The compiler version ("flowc 0.1.0"), the target profile ("mlx5") and the required
  /// capabilities (comma-separated, may be empty): NUL-terminated strings inside `data`.
  const char *compiler;
  const char *profile;
  const char *capabilities;
  /// Where the string table is in the file, and its size in bytes.
  uint32_t string_table_offset;
  uint32_t string_table_size;
  /// The table directory: file offset and entry count of each flowrt_fbin_table.
  uint32_t table_offset[FLOWRT_FBIN_NUM_TABLES];
  uint32_t table_count[FLOWRT_FBIN_NUM_TABLES];
};

/// One rule: its table entry and the fields of its attr buffer.
struct flowrt_fbin_rule {
  /// The rule's `struct ibv_flow_attr` and its specs, inside the file (validated; possibly
  /// not 8-byte aligned, and read-only: copy it before filling binding pointers).
  const unsigned char *attr;
  uint32_t attr_size;
  /// The file offset of `attr`, for messages.
  uint32_t attr_offset;
  /// From the attr buffer: `enum ibv_flow_attr_type` (0..3), priority, port,
  /// num_of_specs (at most FLOWRT_FBIN_MAX_SPECS) and `ibv_flow_attr.flags`.
  uint32_t type;
  uint16_t priority;
  uint8_t port;
  uint8_t num_specs;
  uint32_t attr_flags;
  /// FLOWRT_FBIN_RULE_* flags; they agree with attr_flags.
  uint32_t flags;
  /// The index in the queues table of the QP the rule is created on, or FLOWRT_FBIN_NO_QUEUE.
  uint32_t queue;
  /// The rule's bindings: indices first_binding .. first_binding + binding_count - 1.
  uint32_t first_binding;
  uint32_t binding_count;
  /// The source rule's name (may be empty) and file (may be empty); never NULL.
  const char *name;
  const char *file;
  /// The source position, 1-based; 0 when unknown.
  uint32_t line;
  uint32_t column;
};

/// One binding: which pointer of a rule's attr buffer receives which symbol's object.
struct flowrt_fbin_binding {
  /// The index of the ACTION_COUNT or ACTION_HANDLE spec in the rule's attr buffer.
  uint32_t spec_index;
  /// The offset in the rule's attr buffer of the spec's 8-byte pointer field (zero in the file).
  uint32_t pointer_offset;
  /// FLOWRT_FBIN_BIND_COUNTER or FLOWRT_FBIN_BIND_HANDLE.
  uint32_t kind;
  /// The index in the counters (kind COUNTER) or handles (kind HANDLE) table.
  uint32_t symbol;
};

/// Validates the `size` bytes at `data` as a compiled policy and fills `out`.
/// Returns 0, -EINVAL for a malformed file or -ENOTSUP for a newer major
/// version. On failure `out` is zeroed and, if `errlen` > 0, `err` receives a
/// one-line message naming the file offset and what is wrong ("offset 24:
/// ..."); on success `err` receives the empty string. `err` may be NULL when
/// `errlen` is 0.
int flowrt_fbin_open(const void *data, size_t size, struct flowrt_fbin *out, char *err,
                     size_t errlen);

/// The string at `ref` in the string table, or NULL if `ref` is not inside the table.
const char *flowrt_fbin_string(const struct flowrt_fbin *f, uint32_t ref);

/// The number of entries of `table`, or 0 for an unknown table.
uint32_t flowrt_fbin_count(const struct flowrt_fbin *f, enum flowrt_fbin_table table);

/// The name of symbol `i` of `table` (QUEUES, COUNTERS or HANDLES), or NULL if there is none.
const char *flowrt_fbin_symbol(const struct flowrt_fbin *f, enum flowrt_fbin_table table,
                               uint32_t i);

/// Stores in `*index` the index of the symbol of `table` named `name`; returns 0, or -ENOENT.
int flowrt_fbin_find_symbol(const struct flowrt_fbin *f, enum flowrt_fbin_table table,
                            const char *name, uint32_t *index);

/// Fills `out` with rule `i`; returns 0, or -EINVAL if there is no rule `i`.
int flowrt_fbin_rule(const struct flowrt_fbin *f, uint32_t i, struct flowrt_fbin_rule *out);

/// Fills `out` with binding `j` (0-based within the rule) of rule `i`; returns 0, or -EINVAL
/// if there is no such binding.
int flowrt_fbin_rule_binding(const struct flowrt_fbin *f, uint32_t i, uint32_t j,
                             struct flowrt_fbin_binding *out);

/// Continues the CRC-32 `crc` (IEEE 802.3, zlib's crc32(); start with 0) over
/// `size` bytes at `data`. A file's checksum is this CRC of the whole file
/// with its 4 checksum bytes (offset 20) read as zero.
uint32_t flowrt_fbin_crc32(uint32_t crc, const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif // FLOWRT_FORMAT_H
