/* fbin-sim-run [--profile mlx5|mlx4] [--ports N] [--table-entries N] FILE.fbin < script: loads a
 * compiled policy onto a simulated device with libflowrt, as a program would
 * (one QP per queue, an anchor QP, handles bound to stand-ins, counters
 * created by the runtime; --table-entries sets the entries of an mlx5 flow
 * table), then follows the script on standard input, one
 * command per line:
 *   PORT HEXBYTES   classify a frame received on PORT; prints where it went:
 *                   "queue NAME [tag N]", "dropped", or "untaken"
 *   send PORT HEXBYTES  classify a frame sent on PORT by the egress rules:
 *                   "sent" or "dropped"
 *   update FILE     update to another compiled policy (its queues get QPs
 *                   of their own, or those of the same names); prints
 *                   "updated: F flows" or the error
 *   counters        prints every counter's packets and bytes
 * Lines starting with '#' or ';' are ignored. At the end it prints the
 * counters, uninstalls, and prints how many flows and counters the device
 * still has (both must be 0). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "flowrt/flowrt.h"
#include "flowrt/sim.h"

enum { kMaxQueues = 256, kMaxPolicies = 16 };

struct named_qp {
  char name[128];
  struct ibv_qp *qp;
};

static struct flowrt_sim_device *dev;
static struct named_qp qps[kMaxQueues];
static unsigned num_qps;
static struct ibv_qp *anchor;
static int handle_stand_in; /* the sim accepts any non-NULL flow action */

static struct ibv_qp *qp_named(const char *name) {
  for (unsigned i = 0; i < num_qps; ++i) {
    if (strcmp(qps[i].name, name) == 0) {
      return qps[i].qp;
    }
  }
  if (num_qps == kMaxQueues) {
    return NULL;
  }
  snprintf(qps[num_qps].name, sizeof qps[num_qps].name, "%s", name);
  qps[num_qps].qp = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  return qps[num_qps++].qp;
}

static const char *name_of(const struct ibv_qp *qp) {
  for (unsigned i = 0; i < num_qps; ++i) {
    if (qps[i].qp == qp) {
      return qps[i].name;
    }
  }
  return qp == anchor ? "(anchor)" : "(unknown)";
}

/* Opens and binds a policy; NULL after printing why. */
static struct flowrt_policy *open_bound(const char *path) {
  struct flowrt_error err;
  struct flowrt_policy *p = flowrt_policy_open(path, &err);
  if (p == NULL) {
    printf("error: %s\n", err.message);
    return NULL;
  }
  int rc = flowrt_bind_anchor(p, anchor, &err);
  for (uint32_t i = 0; rc == 0 && i < flowrt_policy_num_symbols(p, FLOWRT_QUEUE); ++i) {
    const char *name = flowrt_policy_symbol(p, FLOWRT_QUEUE, i);
    rc = flowrt_bind_queue(p, name, qp_named(name), &err);
  }
  for (uint32_t i = 0; rc == 0 && i < flowrt_policy_num_symbols(p, FLOWRT_HANDLE); ++i) {
    rc = flowrt_bind_handle(p, flowrt_policy_symbol(p, FLOWRT_HANDLE, i),
                            (struct ibv_flow_action *)&handle_stand_in, &err);
  }
  if (rc != 0) {
    printf("error: %s\n", err.message);
    flowrt_policy_close(p);
    return NULL;
  }
  return p;
}

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

static void print_counters(struct flowrt_installation *inst) {
  struct flowrt_policy *p = flowrt_installation_policy(inst);
  for (uint32_t i = 0; i < flowrt_policy_num_symbols(p, FLOWRT_COUNTER); ++i) {
    const char *name = flowrt_policy_symbol(p, FLOWRT_COUNTER, i);
    uint64_t packets = 0, bytes = 0;
    struct flowrt_error err;
    if (flowrt_read_counter(inst, name, &packets, &bytes, &err) != 0) {
      printf("error: %s\n", err.message);
      continue;
    }
    printf("counter %s packets %llu bytes %llu\n", name, (unsigned long long)packets,
           (unsigned long long)bytes);
  }
}

static void classify(unsigned port, const char *hex, int sending) {
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
  int rc = sending ? flowrt_sim_send(dev, (uint8_t)port, frame, len, &res)
                   : flowrt_sim_receive(dev, (uint8_t)port, frame, len, &res);
  if (rc != 0) {
    printf("error %d\n", rc);
    return;
  }
  if (sending) {
    printf("%s\n", res.dropped ? "dropped" : "sent");
    return;
  }
  if (res.num_deliveries == 0 && !res.dropped) {
    printf("untaken");
  }
  if (res.dropped) {
    printf("dropped");
  }
  for (unsigned d = 0; d < res.num_deliveries; ++d) {
    printf("%squeue %s", d || res.dropped ? ", " : "", name_of(res.deliveries[d].qp));
    if (res.deliveries[d].tagged) {
      printf(" tag %u", res.deliveries[d].tag);
    }
  }
  printf("\n");
}

int main(int argc, char **argv) {
  enum flowrt_sim_profile profile = FLOWRT_SIM_MLX5;
  unsigned ports = 2;
  uint32_t table_entries = 0;
  int a = 1;
  for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
    if (strcmp(argv[a], "--profile") == 0) {
      profile = strcmp(argv[a + 1], "mlx4") == 0 ? FLOWRT_SIM_MLX4 : FLOWRT_SIM_MLX5;
    } else if (strcmp(argv[a], "--ports") == 0) {
      ports = (unsigned)atoi(argv[a + 1]);
    } else if (strcmp(argv[a], "--table-entries") == 0) {
      table_entries = (uint32_t)strtoul(argv[a + 1], NULL, 10);
    } else {
      break;
    }
  }
  if (a + 1 != argc) {
    fprintf(stderr, "usage: fbin-sim-run [--profile mlx5|mlx4] [--ports N] [--table-entries N] "
                    "FILE.fbin < script\n");
    return 2;
  }
  struct flowrt_sim_caps caps = flowrt_sim_default_caps();
  caps.mlx5_table_entries = table_entries;
  dev = flowrt_sim_open(profile, &caps, (uint8_t)ports);
  if (dev == NULL) {
    fprintf(stderr, "fbin-sim-run: cannot open the simulated device\n");
    return 2;
  }
  anchor = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct flowrt_policy *policies[kMaxPolicies];
  unsigned num_policies = 0;
  struct flowrt_policy *p = open_bound(argv[a]);
  if (p == NULL) {
    flowrt_sim_close(dev);
    return 1;
  }
  policies[num_policies++] = p;
  struct flowrt_error err;
  struct flowrt_installation *inst = flowrt_install(flowrt_sim_context(dev), p, NULL, &err);
  if (inst == NULL) {
    printf("error: %s\n", err.message);
    printf("left: flows %u counters %u\n", flowrt_sim_num_flows(dev), flowrt_sim_num_counters(dev));
    flowrt_policy_close(p);
    flowrt_sim_close(dev);
    return 1;
  }
  printf("installed %u rules\n", flowrt_installation_num_flows(inst));
  char line[8192];
  while (fgets(line, sizeof line, stdin) != NULL) {
    unsigned port = 0;
    char arg[8192];
    if (line[0] == '#' || line[0] == ';' || line[0] == '\n') {
      continue;
    }
    if (sscanf(line, "update %8191s", arg) == 1) {
      struct flowrt_policy *next = num_policies < kMaxPolicies ? open_bound(arg) : NULL;
      if (next == NULL) {
        continue;
      }
      policies[num_policies++] = next;
      if (flowrt_update(inst, next, 0, &err) != 0) {
        printf("error: %s\n", err.message);
      } else {
        printf("updated: %u flows\n", flowrt_installation_num_flows(inst));
      }
    } else if (strncmp(line, "counters", 8) == 0) {
      print_counters(inst);
    } else if (sscanf(line, "send %u %8191s", &port, arg) == 2) {
      classify(port, arg, 1);
    } else if (sscanf(line, "%u %8191s", &port, arg) == 2) {
      classify(port, arg, 0);
    }
  }
  print_counters(inst);
  if (flowrt_uninstall(inst, &err) != 0) {
    printf("error: %s\n", err.message);
  }
  printf("left: flows %u counters %u\n", flowrt_sim_num_flows(dev), flowrt_sim_num_counters(dev));
  for (unsigned i = 0; i < num_policies; ++i) {
    flowrt_policy_close(policies[i]);
  }
  flowrt_sim_close(dev);
  return 0;
}
