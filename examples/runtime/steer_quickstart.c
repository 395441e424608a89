/* Loads examples/quickstart.flow, compiled for mlx5, onto libflowrt-sim (a
 * software NIC) with libflowrt, and shows where a few packets go.
 *
 *   flowc build examples/quickstart.flow -o quickstart.fbin
 *   steer_quickstart quickstart.fbin
 *
 * A program on a real NIC does the same with the ibv_context of
 * ibv_open_device() and QPs of its own instead of flowrt_sim_*(). */
#include <stdio.h>
#include <string.h>

#include <flowrt/flowrt.h>
#include <flowrt/sim.h>

/* The policy's queues, each bound to a QP of its own. */
static const char *const kQueues[] = {"rx_storage", "rx_monitor", "rx_default"};
enum { kNumQueues = 3 };
static struct ibv_qp *qps[kNumQueues];

static const char *queue_of(const struct ibv_qp *qp) {
  for (int i = 0; i < kNumQueues; ++i) {
    if (qps[i] == qp) {
      return kQueues[i];
    }
  }
  return "?";
}

/* An Ethernet + IPv4 + UDP frame from 192.0.2.1 to 192.0.2.`host`, UDP port `port`. */
static size_t udp_frame(unsigned char *f, unsigned host, unsigned port) {
  static const unsigned char head[] = {
      0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, /* eth */
      0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,             /* ipv4 */
      192,  0,    2,    1,    192,  0,    2,    0};
  memcpy(f, head, sizeof head);
  f[33] = (unsigned char)host;
  unsigned char udp[8] = {0xc0, 0x00, (unsigned char)(port >> 8), (unsigned char)port, 0, 8, 0, 0};
  memcpy(f + sizeof head, udp, sizeof udp);
  return sizeof head + sizeof udp;
}

/* An ARP request, broadcast. */
static size_t arp_frame(unsigned char *f) {
  memset(f, 0, 42);
  memset(f, 0xff, 6);
  f[6] = 0x02;
  f[11] = 0x02;
  f[12] = 0x08;
  f[13] = 0x06;
  return 42;
}

static void show(struct flowrt_sim_device *dev, const char *what, const unsigned char *f,
                 size_t len) {
  struct flowrt_sim_result r;
  if (flowrt_sim_receive(dev, 1, f, len, &r) != 0) {
    printf("%-34s -> (not classified)\n", what);
    return;
  }
  printf("%-34s ->", what);
  for (unsigned i = 0; i < r.num_deliveries; ++i) {
    printf("%s %s", i > 0 ? "," : "", queue_of(r.deliveries[i].qp));
  }
  printf("%s\n", r.num_deliveries == 0 ? " (nothing)" : "");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: steer_quickstart quickstart.fbin\n");
    return 2;
  }
  struct flowrt_error err;
  struct flowrt_policy *policy = flowrt_policy_open(argv[1], &err);
  if (policy == NULL) {
    fprintf(stderr, "steer_quickstart: %s\n", err.message);
    return 1;
  }
  /* A simulated mlx5 NIC with one port, and one raw-packet QP per queue. */
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, NULL, 1);
  for (int i = 0; i < kNumQueues; ++i) {
    qps[i] = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
    if (flowrt_bind_queue(policy, kQueues[i], qps[i], &err) != 0) {
      fprintf(stderr, "steer_quickstart: %s\n", err.message);
      return 1;
    }
  }
  struct flowrt_installation *inst = flowrt_install(flowrt_sim_context(dev), policy, NULL, &err);
  if (inst == NULL) {
    fprintf(stderr, "steer_quickstart: %s\n", err.message);
    return 1;
  }
  printf("installed %u rules on %s\n", flowrt_installation_num_flows(inst),
         ibv_get_device_name(flowrt_sim_context(dev)->device));

  unsigned char frame[64];
  size_t len = udp_frame(frame, 20, 4791);
  show(dev, "RoCEv2 to 192.0.2.20 (storage)", frame, len);
  show(dev, "RoCEv2 to 192.0.2.20 again", frame, len);
  len = arp_frame(frame);
  show(dev, "ARP request (broadcast)", frame, len);
  len = udp_frame(frame, 99, 4791);
  show(dev, "RoCEv2 to 192.0.2.99", frame, len);
  len = udp_frame(frame, 20, 53);
  show(dev, "DNS to 192.0.2.20", frame, len);

  uint64_t packets = 0, bytes = 0;
  if (flowrt_read_counter(inst, "storage_packets", &packets, &bytes, &err) == 0) {
    printf("counter storage_packets: %llu packets, %llu bytes\n", (unsigned long long)packets,
           (unsigned long long)bytes);
  }
  if (flowrt_uninstall(inst, &err) != 0) {
    fprintf(stderr, "steer_quickstart: %s\n", err.message);
  }
  printf("uninstalled: %u flows left\n", flowrt_sim_num_flows(dev));
  flowrt_policy_close(policy);
  flowrt_sim_close(dev);
  return 0;
}
