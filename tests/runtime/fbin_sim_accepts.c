/* fbin-sim-accepts PROFILE FILE.fbin: every rule of a compiled policy must
 * pass libflowrt-sim's validator for PROFILE (mlx5 or mlx4), which answers as
 * libibverbs, the kernel core and the driver would. Prints one line per
 * rejected rule with its source location and reason; exits 1 if any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrt/format.h"
#include "flowrt/sim_validate.h"

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "mlx5") != 0 && strcmp(argv[1], "mlx4") != 0)) {
    fprintf(stderr, "usage: fbin-sim-accepts mlx5|mlx4 FILE.fbin\n");
    return 2;
  }
  enum flowrt_sim_profile profile = strcmp(argv[1], "mlx5") == 0 ? FLOWRT_SIM_MLX5 : FLOWRT_SIM_MLX4;
  FILE *f = fopen(argv[2], "rb");
  if (f == NULL) {
    perror(argv[2]);
    return 2;
  }
  static unsigned char data[1 << 24];
  size_t size = fread(data, 1, sizeof data, f);
  fclose(f);
  struct flowrt_fbin fbin;
  char err[256];
  if (flowrt_fbin_open(data, size, &fbin, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", argv[2], err);
    return 1;
  }
  uint32_t n = flowrt_fbin_count(&fbin, FLOWRT_FBIN_RULES), bad = 0;
  for (uint32_t i = 0; i < n; ++i) {
    struct flowrt_fbin_rule r;
    char why[256];
    if (flowrt_fbin_rule(&fbin, i, &r) != 0) {
      fprintf(stderr, "rule %u cannot be read\n", i);
      return 1;
    }
    int rc = flowrt_sim_validate(r.attr, r.attr_size, profile, NULL, 1, 2, why, sizeof why);
    if (rc != 0) {
      printf("rule %u (%s %s:%u:%u): errno %d: %s\n", i, r.name, r.file, r.line, r.column, rc, why);
      ++bad;
    }
  }
  printf("%u rules, %u rejected\n", n, bad);
  return bad != 0;
}
