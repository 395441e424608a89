"""emit_c.py FLOWC SRCROOT OUTDIR PATH...: for each policy, writes the
--emit=c header, compiles a program with gcc -Wall -Wextra -Werror
-pedantic against the real <infiniband/verbs.h> and the runtime's .fbin
reader, and runs it: each rule's packed struct must have the bytes of the
same rule in the embedded .fbin."""
import os, subprocess, sys

flowc, srcroot, outdir, paths = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
files = []
for p in paths:
    files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".flow")) if os.path.isdir(p) else [p]
MAIN = r'''
#include <stdio.h>
#include <string.h>
#include "flowrt/format.h"
#include "@HEADER@"
int main(void) {
  struct flowrt_fbin f;
  char err[256];
  unsigned i;
  if (flowrt_fbin_open(@P@_fbin, sizeof @P@_fbin, &f, err, sizeof err) != 0) {
    printf("open: %s\n", err);
    return 1;
  }
  if (flowrt_fbin_count(&f, FLOWRT_FBIN_RULES) != (unsigned)@P@_num_rules) {
    printf("rule count differs\n");
    return 1;
  }
  for (i = 0; i < (unsigned)@P@_num_rules; ++i) {
    struct flowrt_fbin_rule r;
    const char *queue;
    if (flowrt_fbin_rule(&f, i, &r) != 0 || r.attr_size != @P@_rules[i].size ||
        memcmp(r.attr, @P@_rules[i].attr, r.attr_size) != 0) {
      printf("rule %u: the struct and the .fbin differ\n", i);
      return 1;
    }
    queue = r.queue == FLOWRT_FBIN_NO_QUEUE ? NULL : flowrt_fbin_symbol(&f, FLOWRT_FBIN_QUEUES, r.queue);
    if ((queue == NULL) != (@P@_rules[i].queue == NULL) ||
        (queue != NULL && strcmp(queue, @P@_rules[i].queue) != 0)) {
      printf("rule %u: queue differs\n", i);
      return 1;
    }
  }
  printf("%u rules agree\n", (unsigned)@P@_num_rules);
  return 0;
}
'''
bad = 0
for f in files:
    stem = os.path.splitext(os.path.basename(f))[0]
    prefix = "".join(c if c.isalnum() else "_" for c in stem)
    header = os.path.join(outdir, stem + ".h")
    r = subprocess.run([flowc, "build", "--emit=c", "-o", header, f], capture_output=True)
    if r.returncode:
        print(f"FAIL {f}: flowc exit {r.returncode}\n{r.stderr.decode()}")
        bad += 1
        continue
    main = os.path.join(outdir, stem + "_main.c")
    open(main, "w").write(MAIN.replace("@HEADER@", header).replace("@P@", prefix))
    exe = os.path.join(outdir, stem + "_main")
    cc = subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                         "-I", os.path.join(srcroot, "runtime/include"), main,
                         os.path.join(srcroot, "runtime/src/format.c"), "-o", exe],
                        capture_output=True)
    if cc.returncode:
        print(f"FAIL {f}: gcc\n{cc.stderr.decode()[:3000]}")
        bad += 1
        continue
    run = subprocess.run([exe], capture_output=True)
    if run.returncode:
        print(f"FAIL {f}: {run.stdout.decode()}")
        bad += 1
        continue
    print(f"{stem}: {run.stdout.decode().strip()}")
print(f"emit_c: {len(files)} policies, {bad} problems")
sys.exit(1 if bad else 0)
