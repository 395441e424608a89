# lit configuration for flowc's golden tests.
import os
import lit.formats

config.name = "flowc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".flow", ".test"]
config.excludes = ["inputs", "Inputs"]
config.test_source_root = config.lit_source
config.test_exec_root = os.path.join(os.path.dirname(config.flowc), "..", "..", "tests", "lit", "out")

# Tests never see the installed stdlib or the user's environment.
config.environment["LC_ALL"] = "C"
# %flowctl before %flowc, which is its prefix.
config.substitutions.append(("%flowctl", config.flowctl))
config.substitutions.append(("%flowc", config.flowc))
config.substitutions.append(("%fbin-dump", config.fbin_dump))
config.substitutions.append(("%fbin-sim-accepts", config.fbin_sim_accepts))
config.substitutions.append(("%fbin-sim-run", config.fbin_sim_run))
config.substitutions.append(("%steer_quickstart", config.steer_quickstart))
config.substitutions.append(("%FileCheck", config.filecheck))
config.substitutions.append(("FileCheck", config.filecheck))
config.substitutions.append(("%not", config.not_tool))
config.substitutions.append(("%python", config.python))
config.substitutions.append(("%stdlib", os.path.join(config.source_root, "stdlib")))
config.substitutions.append(("%srcroot", config.source_root))
config.substitutions.append(("%inputs", os.path.join(config.lit_source, "inputs")))

# The 'count' tool of llvm-14-tools, for "no output" checks.
config.substitutions.append((r"\bcount\b", os.path.join(os.path.dirname(config.filecheck), "count")))
if os.getuid() != 0:
    config.available_features.add("non-root")
