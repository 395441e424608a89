/* flowctl: RDMA devices and their flow steering, and compiled policies on them.
 *
 *   flowctl devices [--sim mlx5|mlx4]
 *   flowctl check POLICY.fbin (--device NAME | --sim mlx5|mlx4) [--port N]
 *   flowctl load POLICY.fbin (--device NAME | --sim mlx5|mlx4) [--port N] [--dry-run]
 *                [--for SECONDS]
 *
 * docs/runtime.md ("flowctl") describes each command. Everything runs on
 * libflowrt; --sim runs it on libflowrt-sim instead of a NIC. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "flowrt/flowrt.h"
#include "flowrt/sim.h"

enum { kExitOk = 0, kExitFail = 1, kExitUsage = 2 };

static const char kUsage[] =
    "usage: flowctl <command> [options]\n"
    "\n"
    "  flowctl devices [--sim mlx5|mlx4]\n"
    "      list RDMA devices and their flow-steering capabilities\n"
    "  flowctl check POLICY.fbin (--device NAME | --sim mlx5|mlx4) [--port N]\n"
    "      say whether a compiled policy will load on a device, rule by rule; creates nothing\n"
    "  flowctl load POLICY.fbin (--device NAME | --sim mlx5|mlx4) [--port N] [--dry-run]\n"
    "               [--for SECONDS]\n"
    "      install a policy whose rules need no consumer (drop, egress, pass and sniff copies\n"
    "      to queues flowctl owns) and hold it until interrupted (or for SECONDS)\n"
    "\n"
    "options:\n"
    "  --device NAME   the RDMA device (see 'flowctl devices')\n"
    "  --sim P         use a libflowrt-sim device with driver profile P (mlx5 or mlx4), 2 ports\n"
    "  --port N        only the policy's rules for port N\n"
    "  --dry-run       check everything, print what would be installed, install nothing\n"
    "  --for SECONDS   hold the loaded policy this long instead of until SIGINT/SIGTERM\n";

struct options {
  const char *command;
  const char *policy;
  const char *device;
  const char *sim;
  int port;
  int dry_run;
  long hold_seconds; /* -1: until a signal */
};

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "flowctl: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", kUsage);
  return kExitUsage;
}

static int parse_number(const char *text, long lo, long hi, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, struct options *o) {
  memset(o, 0, sizeof *o);
  o->hold_seconds = -1;
  o->command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const char *a = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    long n = 0;
    if (strcmp(a, "--dry-run") == 0) {
      o->dry_run = 1;
    } else if (strcmp(a, "--device") == 0 || strcmp(a, "--sim") == 0 || strcmp(a, "--port") == 0 ||
               strcmp(a, "--for") == 0) {
      if (value == NULL) {
        return usage_error("'%s' needs a value", a);
      }
      ++i;
      if (strcmp(a, "--device") == 0) {
        o->device = value;
      } else if (strcmp(a, "--sim") == 0) {
        if (strcmp(value, "mlx5") != 0 && strcmp(value, "mlx4") != 0) {
          return usage_error("--sim takes mlx5 or mlx4, not '%s'", value);
        }
        o->sim = value;
      } else if (strcmp(a, "--port") == 0) {
        if (parse_number(value, 1, 255, &n) != 0) {
          return usage_error("--port takes a port number 1..255, not '%s'", value);
        }
        o->port = (int)n;
      } else {
        if (parse_number(value, 0, 1L << 30, &n) != 0) {
          return usage_error("--for takes a number of seconds, not '%s'", value);
        }
        o->hold_seconds = n;
      }
    } else if (a[0] == '-' && a[1] != '\0') {
      return usage_error("unknown option '%s'", a);
    } else if (o->policy == NULL) {
      o->policy = a;
    } else {
      return usage_error("unexpected argument '%s'", a);
    }
  }
  if (o->device != NULL && o->sim != NULL) {
    return usage_error("%s", "--device and --sim exclude each other");
  }
  return kExitOk;
}

/* --- Devices ------------------------------------------------------------------------------ */

/* An open device: a real one through libibverbs, or a simulated one. */
struct device {
  struct ibv_context *context;
  struct flowrt_sim_device *sim;
  const char *name;
  /* What QPs of a real device need. */
  struct ibv_pd *pd;
  struct ibv_cq *cq;
};

static int open_device(const struct options *o, struct device *d) {
  memset(d, 0, sizeof *d);
  if (o->sim != NULL) {
    d->sim =
        flowrt_sim_open(strcmp(o->sim, "mlx4") == 0 ? FLOWRT_SIM_MLX4 : FLOWRT_SIM_MLX5, NULL, 2);
    if (d->sim == NULL) {
      fprintf(stderr, "flowctl: error: cannot open the simulated device: %s\n", strerror(errno));
      return -1;
    }
    d->context = flowrt_sim_context(d->sim);
    d->name = ibv_get_device_name(d->context->device);
    return 0;
  }
  if (o->device == NULL) {
    fprintf(stderr, "flowctl: error: name a device with --device NAME (see 'flowctl devices'), "
                    "or use --sim mlx5\n");
    return -1;
  }
  int num = 0;
  struct ibv_device **list = ibv_get_device_list(&num);
  if (list == NULL) {
    /* ENOSYS: the kernel has no RDMA subsystem at all. */
    fprintf(stderr, "flowctl: error: no RDMA device named '%s': %s\n", o->device,
            errno == ENOSYS ? "this machine has no RDMA devices" : strerror(errno));
    return -1;
  }
  int found = 0;
  for (int i = 0; i < num; ++i) {
    if (strcmp(ibv_get_device_name(list[i]), o->device) == 0) {
      found = 1;
      d->context = ibv_open_device(list[i]);
      if (d->context == NULL) {
        fprintf(stderr, "flowctl: error: cannot open %s: %s\n", o->device, strerror(errno));
      }
      break;
    }
  }
  ibv_free_device_list(list);
  if (d->context == NULL) {
    if (!found) {
      fprintf(stderr, "flowctl: error: no RDMA device named '%s' ('flowctl devices' lists them)\n",
              o->device);
    }
    return -1;
  }
  d->name = o->device;
  return 0;
}

static void close_device(struct device *d) {
  if (d->sim != NULL) {
    flowrt_sim_close(d->sim);
    return;
  }
  if (d->cq != NULL) {
    ibv_destroy_cq(d->cq);
  }
  if (d->pd != NULL) {
    ibv_dealloc_pd(d->pd);
  }
  if (d->context != NULL) {
    ibv_close_device(d->context);
  }
}

/* A raw-packet QP that flowctl owns: it never posts receive buffers, so what the NIC copies to
 * it is discarded. On a NIC this needs CAP_NET_RAW (not validated on hardware). */
static struct ibv_qp *create_qp(struct device *d, uint8_t port) {
  if (d->sim != NULL) {
    return flowrt_sim_create_qp(d->sim, IBV_QPT_RAW_PACKET);
  }
  if (d->pd == NULL && (d->pd = ibv_alloc_pd(d->context)) == NULL) {
    return NULL;
  }
  if (d->cq == NULL && (d->cq = ibv_create_cq(d->context, 16, NULL, NULL, 0)) == NULL) {
    return NULL;
  }
  struct ibv_qp_init_attr init;
  memset(&init, 0, sizeof init);
  init.send_cq = d->cq;
  init.recv_cq = d->cq;
  init.cap.max_recv_wr = 1;
  init.cap.max_recv_sge = 1;
  init.qp_type = IBV_QPT_RAW_PACKET;
  struct ibv_qp *qp = ibv_create_qp(d->pd, &init);
  if (qp == NULL) {
    return NULL;
  }
  struct ibv_qp_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.qp_state = IBV_QPS_INIT;
  attr.port_num = port;
  if (ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_PORT) != 0) {
    ibv_destroy_qp(qp);
    return NULL;
  }
  return qp;
}

static void destroy_qp(struct device *d, struct ibv_qp *qp) {
  if (qp == NULL) {
    return;
  }
  if (d->sim != NULL) {
    flowrt_sim_destroy_qp(qp);
  } else {
    ibv_destroy_qp(qp);
  }
}

static void print_device(struct ibv_context *context, const char *name) {
  struct ibv_device_attr_ex attr;
  memset(&attr, 0, sizeof attr);
  int rc = ibv_query_device_ex(context, NULL, &attr);
  if (rc != 0) {
    printf("%s: cannot query: %s\n", name, strerror(rc));
    return;
  }
  const char *driver = flowrt_device_driver(context);
  int steering = (attr.orig_attr.device_cap_flags & IBV_DEVICE_MANAGED_FLOW_STEERING) != 0;
  printf("%s: %s, firmware %s, %u port%s, managed flow steering: %s\n", name,
         driver != NULL ? driver : "driver unknown (flowc target generic)", attr.orig_attr.fw_ver,
         attr.orig_attr.phys_port_cnt, attr.orig_attr.phys_port_cnt == 1 ? "" : "s",
         steering ? "yes" : "no (ibv_create_flow will not work; verbs-facts §1.7)");
  for (unsigned p = 1; p <= attr.orig_attr.phys_port_cnt; ++p) {
    struct ibv_port_attr port;
    if (ibv_query_port(context, (uint8_t)p, &port) != 0) {
      continue;
    }
    printf("  port %u: %s, %s\n", p, ibv_port_state_str(port.state),
           port.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet" : "InfiniBand");
  }
}

static int cmd_devices(const struct options *o) {
  if (o->policy != NULL) {
    return usage_error("'devices' takes no policy, got '%s'", o->policy);
  }
  if (o->sim != NULL) {
    struct device d;
    if (open_device(o, &d) != 0) {
      return kExitFail;
    }
    print_device(d.context, d.name);
    close_device(&d);
    return kExitOk;
  }
  int num = 0;
  struct ibv_device **list = ibv_get_device_list(&num);
  if (list == NULL || num == 0) {
    fprintf(stderr,
            "flowctl: no RDMA devices found: this machine has no RDMA NIC, or its driver "
            "(mlx5_ib, mlx4_ib) is not loaded; 'flowctl devices --sim mlx5' shows the simulated "
            "one\n");
    if (list != NULL) {
      ibv_free_device_list(list);
    }
    return kExitFail;
  }
  for (int i = 0; i < num; ++i) {
    struct ibv_context *context = ibv_open_device(list[i]);
    if (context == NULL) {
      printf("%s: cannot open: %s\n", ibv_get_device_name(list[i]), strerror(errno));
      continue;
    }
    print_device(context, ibv_get_device_name(list[i]));
    ibv_close_device(context);
  }
  ibv_free_device_list(list);
  return kExitOk;
}

/* --- Policies ----------------------------------------------------------------------------- */

static struct flowrt_policy *open_policy(const struct options *o) {
  if (o->policy == NULL) {
    usage_error("'%s' needs a compiled policy (POLICY.fbin from 'flowc build')", o->command);
    return NULL;
  }
  struct flowrt_error err;
  struct flowrt_policy *p = flowrt_policy_open(o->policy, &err);
  if (p == NULL) {
    fprintf(stderr, "flowctl: error: %s\n", err.message);
  }
  return p;
}

static int selected(const struct options *o, const struct flowrt_fbin_rule *r) {
  return o->port == 0 || r->port == o->port;
}

static int cmd_check(const struct options *o) {
  struct flowrt_policy *p = open_policy(o);
  if (p == NULL) {
    return o->policy == NULL ? kExitUsage : kExitFail;
  }
  struct device d;
  if (open_device(o, &d) != 0) {
    flowrt_policy_close(p);
    return kExitFail;
  }
  struct flowrt_error err;
  int status = kExitOk;
  if (flowrt_check_device(d.context, p, &err) != 0) {
    fprintf(stderr, "flowctl: error: %s\n", err.message);
    status = kExitFail;
  }
  const char *target = flowrt_policy_target(p);
  const char *driver = flowrt_device_driver(d.context);
  struct ibv_device_attr_ex attr;
  memset(&attr, 0, sizeof attr);
  ibv_query_device_ex(d.context, NULL, &attr);
  uint32_t checked = 0, refused = 0;
  if (status == kExitOk && driver != NULL) {
    /* Each rule as libibverbs, the kernel core and the driver would take it (libflowrt-sim's
     * validator, verbs-facts §1.5-§4), with the device's defaults for what it cannot query. */
    enum flowrt_sim_profile profile =
        strcmp(driver, "mlx4") == 0 ? FLOWRT_SIM_MLX4 : FLOWRT_SIM_MLX5;
    for (uint32_t i = 0; i < flowrt_policy_num_rules(p); ++i) {
      struct flowrt_fbin_rule r;
      if (flowrt_fbin_rule(flowrt_policy_fbin(p), i, &r) != 0 || !selected(o, &r)) {
        continue;
      }
      ++checked;
      char why[256];
      int e = flowrt_sim_validate(r.attr, r.attr_size, profile, NULL, 1,
                                  attr.orig_attr.phys_port_cnt, why, sizeof why);
      if (e != 0) {
        char what[200];
        flowrt_policy_describe_rule(p, i, what, sizeof what);
        fprintf(stderr, "flowctl: error: %s: %s would refuse it with %s: %s\n", what, driver,
                strerror(e), why);
        ++refused;
      }
    }
    if (refused > 0) {
      status = kExitFail;
    }
  }
  if (status == kExitOk) {
    const char *caps = flowrt_policy_capabilities(p);
    printf("%s: %u rule%s for %s can load on %s%s", o->policy, flowrt_policy_num_rules(p),
           flowrt_policy_num_rules(p) == 1 ? "" : "s", target, d.name,
           driver != NULL ? "" : " (driver unknown: the rules were not checked one by one)");
    if (caps[0] != '\0') {
      printf("; it needs the device capabilities %s, which libibverbs cannot report", caps);
    }
    printf("\n");
  }
  close_device(&d);
  flowrt_policy_close(p);
  return status;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* Why flowctl cannot hold rule `r` (it would take packets that no program reads), or NULL. */
static const char *needs_consumer(const struct flowrt_fbin_rule *r) {
  if (r->queue == FLOWRT_FBIN_NO_QUEUE || r->type == IBV_FLOW_ATTR_SNIFFER ||
      (r->flags & (FLOWRT_FBIN_RULE_PASS | FLOWRT_FBIN_RULE_EGRESS)) != 0) {
    return NULL;
  }
  return r->type == IBV_FLOW_ATTR_NORMAL ? "steers packets to a queue"
                                         : "is a default rule steering to a queue";
}

static int cmd_load(const struct options *o) {
  struct flowrt_policy *p = open_policy(o);
  if (p == NULL) {
    return o->policy == NULL ? kExitUsage : kExitFail;
  }
  int status = kExitFail;
  struct device d;
  int device_open = 0;
  struct ibv_qp *qps[257] = {NULL};
  uint32_t num_queues = flowrt_policy_num_symbols(p, FLOWRT_QUEUE);
  struct flowrt_error err;
  uint32_t count = 0;
  for (uint32_t i = 0; i < flowrt_policy_num_rules(p); ++i) {
    struct flowrt_fbin_rule r;
    if (flowrt_fbin_rule(flowrt_policy_fbin(p), i, &r) != 0) {
      fprintf(stderr, "flowctl: error: %s: cannot read rule %u\n", o->policy, i);
      goto out;
    }
    if (!selected(o, &r)) {
      continue;
    }
    ++count;
    const char *why = needs_consumer(&r);
    if (why != NULL) {
      char what[200];
      flowrt_policy_describe_rule(p, i, what, sizeof what);
      fprintf(stderr,
              "flowctl: error: %s %s ('%s'): flowctl holds only rules that need no consumer "
              "(drop, egress, pass and sniff copies); load this policy from the program that "
              "reads '%s', with libflowrt\n",
              what, why, flowrt_policy_symbol(p, FLOWRT_QUEUE, r.queue),
              flowrt_policy_symbol(p, FLOWRT_QUEUE, r.queue));
      goto out;
    }
  }
  if (flowrt_policy_num_symbols(p, FLOWRT_HANDLE) > 0) {
    fprintf(stderr,
            "flowctl: error: the policy uses handle '%s', a flow action only a program "
            "can create; load it with libflowrt\n",
            flowrt_policy_symbol(p, FLOWRT_HANDLE, 0));
    goto out;
  }
  if (num_queues > 256) {
    fprintf(stderr, "flowctl: error: the policy has more than 256 queues\n");
    goto out;
  }
  if (open_device(o, &d) != 0) {
    goto out;
  }
  device_open = 1;
  if (flowrt_check_device(d.context, p, &err) != 0) {
    fprintf(stderr, "flowctl: error: %s\n", err.message);
    goto out;
  }
  if (o->dry_run) {
    printf("%s: would install %u rule%s on %s", o->policy, count, count == 1 ? "" : "s", d.name);
    if (o->port != 0) {
      printf(" port %d", o->port);
    }
    printf(" (dry run: nothing created)\n");
    status = kExitOk;
    goto out;
  }
  /* The QPs flowctl owns: one per queue, and the anchor for rules with no queue. */
  uint8_t port = (uint8_t)(o->port != 0 ? o->port : 1);
  for (uint32_t q = 0; q <= num_queues; ++q) {
    qps[q] = create_qp(&d, port);
    if (qps[q] == NULL) {
      fprintf(stderr,
              "flowctl: error: %s: cannot create a raw-packet QP: %s (creating one needs "
              "CAP_NET_RAW)\n",
              d.name, strerror(errno));
      goto out;
    }
    int rc = q < num_queues
                 ? flowrt_bind_queue(p, flowrt_policy_symbol(p, FLOWRT_QUEUE, q), qps[q], &err)
                 : flowrt_bind_anchor(p, qps[q], &err);
    if (rc != 0) {
      fprintf(stderr, "flowctl: error: %s\n", err.message);
      goto out;
    }
  }
  struct flowrt_install_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.port = (uint8_t)o->port;
  /* The handlers are in place before the rules are, and before anyone is told they hold. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  struct flowrt_installation *inst = flowrt_install(d.context, p, &attr, &err);
  if (inst == NULL) {
    fprintf(stderr, "flowctl: error: %s\n", err.message);
    goto out;
  }
  printf("%s: installed %u rule%s on %s; ", o->policy, flowrt_installation_num_flows(inst),
         flowrt_installation_num_flows(inst) == 1 ? "" : "s", d.name);
  if (o->hold_seconds < 0) {
    printf("holding them until interrupted (Ctrl-C)\n");
  } else {
    printf("holding them for %ld s\n", o->hold_seconds);
  }
  fflush(stdout);
  time_t until = o->hold_seconds < 0 ? 0 : time(NULL) + o->hold_seconds;
  while (!stop_requested && (o->hold_seconds < 0 || time(NULL) < until)) {
    struct timespec tick = {0, 100 * 1000 * 1000};
    nanosleep(&tick, NULL);
  }
  for (uint32_t i = 0; i < flowrt_policy_num_symbols(p, FLOWRT_COUNTER); ++i) {
    const char *name = flowrt_policy_symbol(p, FLOWRT_COUNTER, i);
    uint64_t packets = 0, bytes = 0;
    if (flowrt_read_counter(inst, name, &packets, &bytes, &err) == 0) {
      printf("counter %s: %llu packets, %llu bytes\n", name, (unsigned long long)packets,
             (unsigned long long)bytes);
    }
  }
  uint32_t flows = flowrt_installation_num_flows(inst);
  if (flowrt_uninstall(inst, &err) != 0) {
    fprintf(stderr, "flowctl: error: %s\n", err.message);
    goto out;
  }
  printf("removed %u rule%s\n", flows, flows == 1 ? "" : "s");
  status = kExitOk;
out:
  if (device_open) {
    for (uint32_t q = 0; q <= num_queues && q < 257; ++q) {
      destroy_qp(&d, qps[q]);
    }
    close_device(&d);
  }
  flowrt_policy_close(p);
  return status;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0) {
    fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("flowctl %d.%d (libflowrt)\n", FLOWRT_VERSION_MAJOR, FLOWRT_VERSION_MINOR);
    return kExitOk;
  }
  struct options o;
  int rc = parse_args(argc, argv, &o);
  if (rc != kExitOk) {
    return rc;
  }
  if (strcmp(o.command, "devices") == 0) {
    return cmd_devices(&o);
  }
  if (strcmp(o.command, "check") == 0) {
    return cmd_check(&o);
  }
  if (strcmp(o.command, "load") == 0) {
    return cmd_load(&o);
  }
  return usage_error("unknown command '%s'; the commands are devices, check and load", o.command);
}
