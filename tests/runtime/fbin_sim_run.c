/* fbin-sim-run FILE.fbin: loads a compiled policy onto a simulated mlx5
 * device the way a program would (one QP per queue, counters created and
 * statically attached for packets and bytes, handles bound to stand-ins,
 * each rule's buffer copied and its pointers filled, then ibv_create_flow()),
 * then reads frames from standard input, one per line as "PORT HEXBYTES",
 * and prints for each where it went: "queue NAME [tag N]", "dropped", or
 * "untaken". At the end it prints every counter's packets and bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "flowrt/format.h"
#include "sim.h"

enum { kMaxQueues = 256, kMaxCounters = 256, kMaxRules = 4096 };

static unsigned char file_data[1 << 24];

static int HexByte(const char *p) {
  unsigned v = 0;
  for (int i = 0; i < 2; ++i) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= (unsigned)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= (unsigned)(c - 'A' + 10);
    } else {
      return -1;
    }
  }
  return (int)v;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fbin-sim-run FILE.fbin < frames\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) {
    perror(argv[1]);
    return 2;
  }
  size_t size = fread(file_data, 1, sizeof file_data, f);
  fclose(f);
  struct flowrt_fbin fbin;
  char err[256];
  if (flowrt_fbin_open(file_data, size, &fbin, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", argv[1], err);
    return 1;
  }
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, NULL, 2);
  uint32_t nq = flowrt_fbin_count(&fbin, FLOWRT_FBIN_QUEUES);
  uint32_t nc = flowrt_fbin_count(&fbin, FLOWRT_FBIN_COUNTERS);
  uint32_t nr = flowrt_fbin_count(&fbin, FLOWRT_FBIN_RULES);
  if (dev == NULL || nq > kMaxQueues || nc > kMaxCounters || nr > kMaxRules) {
    fprintf(stderr, "fbin-sim-run: cannot set up the device for this policy\n");
    return 1;
  }
  struct ibv_qp *qps[kMaxQueues];
  for (uint32_t i = 0; i < nq; ++i) {
    qps[i] = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  }
  /* Egress and drop-only rules are created on a QP of their own. */
  struct ibv_qp *spare = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_counters *counters[kMaxCounters];
  for (uint32_t i = 0; i < nc; ++i) {
    struct ibv_counters_init_attr init = {0};
    counters[i] = ibv_create_counters(flowrt_sim_context(dev), &init);
    struct ibv_counter_attach_attr packets = {IBV_COUNTER_PACKETS, 0, 0};
    struct ibv_counter_attach_attr bytes = {IBV_COUNTER_BYTES, 1, 0};
    if (counters[i] == NULL || ibv_attach_counters_point_flow(counters[i], &packets, NULL) ||
        ibv_attach_counters_point_flow(counters[i], &bytes, NULL)) {
      fprintf(stderr, "fbin-sim-run: counter %u: %s\n", i, strerror(errno));
      return 1;
    }
  }
  static int handle_stand_in; /* the sim accepts any non-NULL flow action */
  struct ibv_flow *flows[kMaxRules];
  for (uint32_t i = 0; i < nr; ++i) {
    struct flowrt_fbin_rule r;
    if (flowrt_fbin_rule(&fbin, i, &r) != 0) {
      return 1;
    }
    /* The file's buffer is read-only and its pointers are zero: copy it,
     * 8-byte aligned, and fill the pointers of its bindings. */
    uint64_t copy[1024 / 8];
    if (r.attr_size > sizeof copy) {
      return 1;
    }
    memcpy(copy, r.attr, r.attr_size);
    for (uint32_t b = 0; b < r.binding_count; ++b) {
      struct flowrt_fbin_binding bind;
      if (flowrt_fbin_rule_binding(&fbin, i, b, &bind) != 0) {
        return 1;
      }
      void *object = bind.kind == FLOWRT_FBIN_BIND_COUNTER ? (void *)counters[bind.symbol]
                                                            : (void *)&handle_stand_in;
      memcpy((unsigned char *)copy + bind.pointer_offset, &object, sizeof object);
    }
    struct ibv_qp *qp = r.queue == FLOWRT_FBIN_NO_QUEUE ? spare : qps[r.queue];
    flows[i] = ibv_create_flow(qp, (struct ibv_flow_attr *)copy);
    if (flows[i] == NULL) {
      fprintf(stderr, "fbin-sim-run: rule %u (%s %s:%u:%u): %s\n", i, r.name, r.file, r.line,
              r.column, strerror(errno));
      return 1;
    }
  }
  printf("installed %u rules\n", nr);
  char line[8192];
  while (fgets(line, sizeof line, stdin) != NULL) {
    unsigned port = 0;
    char hex[8192];
    if (line[0] == '#' || line[0] == '\n' || sscanf(line, "%u %8191s", &port, hex) != 2) {
      continue;
    }
    unsigned char frame[4096];
    size_t len = 0;
    for (const char *p = hex; p[0] != '\0' && p[1] != '\0' && len < sizeof frame; p += 2) {
      int v = HexByte(p);
      if (v < 0) {
        break;
      }
      frame[len++] = (unsigned char)v;
    }
    struct flowrt_sim_result res;
    int rc = flowrt_sim_receive(dev, (uint8_t)port, frame, len, &res);
    if (rc != 0) {
      printf("error %d\n", rc);
      continue;
    }
    if (res.num_deliveries == 0 && !res.dropped) {
      printf("untaken");
    }
    if (res.dropped) {
      printf("dropped");
    }
    for (unsigned d = 0; d < res.num_deliveries; ++d) {
      const char *name = "(spare)";
      for (uint32_t q = 0; q < nq; ++q) {
        if (qps[q] == res.deliveries[d].qp) {
          name = flowrt_fbin_symbol(&fbin, FLOWRT_FBIN_QUEUES, q);
        }
      }
      printf("%squeue %s", d || res.dropped ? ", " : "", name);
      if (res.deliveries[d].tagged) {
        printf(" tag %u", res.deliveries[d].tag);
      }
    }
    printf("\n");
  }
  for (uint32_t i = 0; i < nc; ++i) {
    uint64_t values[2] = {0, 0};
    ibv_read_counters(counters[i], values, 2, 0);
    printf("counter %s packets %llu bytes %llu\n", flowrt_fbin_symbol(&fbin, FLOWRT_FBIN_COUNTERS, i),
           (unsigned long long)values[0], (unsigned long long)values[1]);
  }
  for (uint32_t i = nr; i > 0; --i) {
    ibv_destroy_flow(flows[i - 1]);
  }
  for (uint32_t i = 0; i < nc; ++i) {
    ibv_destroy_counters(counters[i]);
  }
  flowrt_sim_close(dev);
  return 0;
}
