/* fbin-dump: prints a compiled policy as the runtime's reader sees it: the
 * header, the symbols, and per rule its fields, bindings and attr bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrt/format.h"

static unsigned char *ReadFile(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    return NULL;
  }
  size_t cap = 4096, len = 0;
  unsigned char *buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      unsigned char *bigger = realloc(buf, cap *= 2);
      if (bigger == NULL) {
        free(buf);
        buf = NULL;
      }
      buf = bigger;
    }
  }
  fclose(f);
  *size = len;
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fbin-dump FILE.fbin\n");
    return 2;
  }
  size_t size = 0;
  unsigned char *data = ReadFile(argv[1], &size);
  if (data == NULL) {
    fprintf(stderr, "fbin-dump: cannot read '%s': %s\n", argv[1], strerror(errno));
    return 2;
  }
  struct flowrt_fbin f;
  char err[256];
  int rc = flowrt_fbin_open(data, size, &f, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "fbin-dump: %s: %s (%d)\n", argv[1], err, rc);
    free(data);
    return 1;
  }
  printf("fbin %u.%u compiler \"%s\" target \"%s\" capabilities \"%s\"\n", f.version_major,
         f.version_minor, f.compiler, f.profile, f.capabilities);
  static const char *const kTables[] = {"queue", "counter", "handle"};
  for (int t = FLOWRT_FBIN_QUEUES; t <= FLOWRT_FBIN_HANDLES; ++t) {
    for (uint32_t i = 0; i < flowrt_fbin_count(&f, (enum flowrt_fbin_table)t); ++i) {
      printf("%s %u %s\n", kTables[t], i, flowrt_fbin_symbol(&f, (enum flowrt_fbin_table)t, i));
    }
  }
  uint32_t rules = flowrt_fbin_count(&f, FLOWRT_FBIN_RULES);
  printf("rules %u\n", rules);
  for (uint32_t i = 0; i < rules; ++i) {
    struct flowrt_fbin_rule r;
    if (flowrt_fbin_rule(&f, i, &r) != 0) {
      fprintf(stderr, "fbin-dump: rule %u cannot be read\n", i);
      free(data);
      return 1;
    }
    printf("rule %u type %u priority %u port %u specs %u flags %u queue ", i, r.type, r.priority,
           r.port, r.num_specs, r.flags);
    if (r.queue == FLOWRT_FBIN_NO_QUEUE) {
      printf("none");
    } else {
      printf("%s", flowrt_fbin_symbol(&f, FLOWRT_FBIN_QUEUES, r.queue));
    }
    printf(" source %s %s:%u:%u\n", r.name, r.file, r.line, r.column);
    for (uint32_t j = 0; j < r.binding_count; ++j) {
      struct flowrt_fbin_binding b;
      if (flowrt_fbin_rule_binding(&f, i, j, &b) != 0) {
        fprintf(stderr, "fbin-dump: binding %u of rule %u cannot be read\n", j, i);
        free(data);
        return 1;
      }
      printf("  binding spec %u %s %s\n", b.spec_index,
             b.kind == FLOWRT_FBIN_BIND_COUNTER ? "counter" : "handle",
             flowrt_fbin_symbol(&f, b.kind == FLOWRT_FBIN_BIND_COUNTER ? FLOWRT_FBIN_COUNTERS
                                                                         : FLOWRT_FBIN_HANDLES,
                                b.symbol));
    }
    printf("  bytes");
    for (uint32_t k = 0; k < r.attr_size; ++k) {
      printf(" %02x", r.attr[k]);
    }
    printf("\n");
  }
  free(data);
  return 0;
}
