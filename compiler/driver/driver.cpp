// The flowc command line. Options are parsed by hand: the surface is small,
// and exit statuses and messages stay exactly as docs/cli.md says
// (docs/architecture.md, "Command line").
#include "compiler/driver/driver.h"

#include <chrono>

#include <future>
#include <optional>
#include <pcap/pcap.h>

#include "compiler/analysis/analysis.h"
#include "compiler/analysis/trace.h"
#include "compiler/base/suggest.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/driver/explain.h"
#include "compiler/emit/c_header.h"
#include "compiler/emit/fbin.h"
#include "compiler/emit/outputs.h"
#include "compiler/expand/expand.h"
#include "compiler/opt/opt.h"
#include "compiler/sema/sema.h"
#include "compiler/target/legalize.h"
#include "compiler/target/profile.h"
#include "compiler/target/tables.h"
#include "compiler/verify/verify.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"

namespace flowc::driver {
namespace {

constexpr const char *kVersion = FLOWSTEER_VERSION;

constexpr const char *kUsage = R"(usage: flowc <command> [options] [args]

Commands:
  build POLICY.flow    compile a policy into ibv_create_flow() rules for a NIC
  check POLICY.flow    check a policy: syntax, names, types, values, rules
  trace POLICY.flow --packet '...'
                       follow packets through a policy, source and compiled
  targets              list the target profiles and their capabilities
  explain FLnnnn       show the documentation of a diagnostic code
  help [COMMAND]       show help for flowc or one command
  version              print the version (also --version)

Run 'flowc help build' or 'flowc help check' for the options of a command.
)";

constexpr const char *kCheckHelp = R"(usage: flowc check POLICY.flow [options]

Checks a policy and everything it imports and reports every problem found.
Prints nothing and exits 0 when the policy is clean.

Options:
  --format=text|json|sarif  how to print diagnostics (default: text)
  --target=T                target profile, overriding the file's 'target'
                            (generic, mlx5, mlx4)
  --stdlib-dir=DIR          search DIR first for 'import std.x;' (repeatable)
  -Werror                   treat warnings as errors
  -Wno-NAME                 do not report warning NAME (e.g. -Wno-duplicate-import)
  -WNAME                    report warning NAME (all are on by default)
  --max-errors=N            stop after N errors (default 20; 0 = no limit)
  --color=auto|always|never colour text diagnostics (default: auto, on a terminal)
  --dump-ast                print the syntax tree of the root file
  --dump-ir                 print the checked rules
  --time-phases             print the time each phase took, to stderr
  --cap=[+|-]NAME,...       add or remove device capabilities of the target
  --expand-masks            accept partial masks on a full-or-zero-mask target
  --max-expansion=N         the most hardware rules one rule may become (4096)
  --warn-expansion=N        warn (FL8015) when a rule becomes more than N
                            hardware rules (default 64; 0 = never)
  --analysis-limit=N        look for shadowed, mostly shadowed and redundant
                            rules (FL9001, FL9003, FL9004) only in policies of at
                            most N expanded rules (default 200000; 0 = no limit);
                            over it, a note says they were not looked for
  --progress                print the analysis's progress on stderr (on a
                            terminal it is shown once it takes a second)

Besides the language's rules, 'check' reports what the target (the file's
'target', --target, or mlx5) cannot do, as 'flowc build' would; only what
depends on hardware priorities (FL8009, FL8014) needs 'flowc build'. It also
reports rules that no packet reaches (FL9001), from an exact model of every
packet; -Wno-shadowed-rule skips that analysis.

Exit status: 0 clean, 1 errors were reported, 2 bad invocation or unreadable input.
)";

constexpr const char *kBuildHelp = R"(usage: flowc build POLICY.flow [options]

Compiles a policy into the rules ibv_create_flow() takes for one NIC family:
expands sets, ranges and masks, checks every rule against the target's
profile, assigns hardware priorities and writes the result.

Options:
  -o FILE                   where to write (default: POLICY.fbin in the current
                            directory for --emit=fbin, standard output otherwise;
                            '-' is standard output)
  --emit=fbin|text|json|c   the compiled policy file (default), a readable
                            disassembly, a JSON listing with the exact bytes, or
                            a C header: the .fbin as an array and each rule as a
                            packed struct initializer (names start with the
                            policy file's name)
  --target=T                target profile, overriding the file's 'target'
                            (generic, mlx5, mlx4; default mlx5)
  --cap=[+|-]NAME,...       add or remove device capabilities of the target
                            ('flowc targets' lists them; all are on by default)
  --expand-masks            on a full-or-zero-mask target (mlx4), turn partial
                            masks, prefixes and ranges into exact rules
  --max-expansion=N         the most hardware rules one rule may become (4096)
  --warn-expansion=N        warn (FL8015) when a rule becomes more than N
                            hardware rules (default 64; 0 = never)
  --stats                   print rules in, after expansion and out, the
                            priority levels used, and the time of each phase
  --optimize-limit=N        use the exact packet model to leave out rules no
                            packet reaches and to order only rules that compete
                            for a packet, up to N expanded rules (default
                            200000; 0 = no limit); above it, overlapping rules
                            are ordered
  --max-rules=N             the most hardware rules the policy may become when
                            rules are split or added to fit the target's
                            priority levels (default 1048576)
  --table-entries=N         the entries of one flow table on the device: mlx5
                            holds each priority's rules in a table of
                            min(65536, 2^log_max_ft_size) entries (default
                            65536); rules move to later priorities to fit, and
                            what cannot is FL8017
  --no-verify               skip the proof that the emitted rules, read back
                            from their bytes, deliver every packet exactly as
                            the source does (on by default)
  --progress                print the progress of budget fitting and of the
                            proof on stderr (on a terminal each is shown once
                            it takes a second)
  --inject-fault=KIND       for testing the proof: break the compiled rules
                            before it runs (priority: every rule at priority
                            0; reverse: the priorities of the normal rules
                            in reverse order; drop-rule: leave out the first
                            normal rule; mask: clear one mask bit of every
                            normal rule)
  and every diagnostic option of 'flowc check' (--format, -Werror, -Wno-NAME,
  --max-errors, --color, --stdlib-dir, --dump-ir, --time-phases)

Exit status: 0 compiled, 1 errors were reported, 2 bad invocation, unreadable
input or unwritable output.
)";

constexpr const char *kTraceHelp =
    R"(usage: flowc trace POLICY.flow --packet 'TEXT' [--packet 'TEXT' ...] [options]

Follows each packet through the policy: the source rules it meets (pass and
sniff copies, then the rule or default rule that takes it) and the hardware
rules 'flowc build' makes for the target, in their priority order, and says
whether the two agree.

A packet is its headers separated by '/', each with field=value pairs named
as in the language; 'inner' before a header puts it after the tunnel:
  'eth dst=02:00:00:00:00:01 / ipv4 src=10.0.0.1 dst=192.0.2.20 / udp dst=4791'
  'ipv4 dst=192.0.2.10 / udp / vxlan vni=5001 / inner eth / inner ipv4 src=10.1.2.3'
Fields the text leaves out are 0, except what the headers imply (ethertype,
IP protocol, UDP 4789 under vxlan, the MPLS ethertype or port).

Options:
  --packet=TEXT             a packet (repeatable)
  --pcap=FILE               every frame of a capture (Ethernet link type)
  --port=N                  the port it arrives on, or leaves by (default 1)
  --egress                  a packet the host sends (egress rules)
  --format=text|json        how to print the result (default: text)
  --target=T, --cap=..., --expand-masks, --max-expansion=N, --table-entries=N,
  --stdlib-dir=DIR          as for 'flowc build'

Exit status: 0 source and compiled agree on every packet, 1 errors in the
policy or a packet on which they disagree, 2 bad invocation or packet text.
)";

constexpr const char *kTargetsHelp = R"(usage: flowc targets

Lists the target profiles, their priority ranges and the device capabilities
that --cap can remove or add.
)";

struct CheckOptions {
  std::string command = "check";
  std::string input;
  // build only:
  std::string output;
  enum class Emit { kFbin, kText, kJson, kC } emit = Emit::kFbin;
  std::vector<std::string> caps;
  /// --table-entries (0: the target's).
  unsigned table_entries = 0;
  expand::Options expand;
  enum class Format { kText, kJson, kSarif } format = Format::kText;
  enum class Color { kAuto, kAlways, kNever } color = Color::kAuto;
  sema::Options sema;
  diag::Options diag;
  bool dump_ast = false;
  bool dump_ir = false;
  bool time_phases = false;
  bool stats = false;
  bool verify = true;
  /// Progress lines for the proof even when stderr is not a terminal.
  bool progress = false;
  opt::Options optimize;
  std::string inject_fault;
  analysis::Options analysis;
  // trace only:
  std::vector<std::string> packets;
  std::vector<std::string> pcaps;
  uint8_t port = 1;
  bool egress = false;
};

int Usage(llvm::raw_ostream &err, const llvm::Twine &message) {
  err << "flowc: error: " << message << "\n";
  err << "run 'flowc help' for usage\n";
  return kExitUsage;
}

/// Splits "--name=value" or takes the value from the next argument.
bool TakeValue(llvm::ArrayRef<llvm::StringRef> args, size_t &i, llvm::StringRef name,
               std::optional<llvm::StringRef> &value) {
  llvm::StringRef a = args[i];
  if (a == name) {
    if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      value = llvm::StringRef();
    }
    return true;
  }
  if (a.startswith(name) && a.drop_front(name.size()).startswith("=")) {
    value = a.drop_front(name.size() + 1);
    return true;
  }
  return false;
}

std::vector<llvm::StringRef> WarningNames() {
  std::vector<llvm::StringRef> names;
  for (const diag::KindInfo &k : diag::AllKinds()) {
    if (k.default_severity == diag::Severity::kWarning) {
      names.push_back(k.name);
    }
  }
  return names;
}

/// Parses check's arguments; returns an exit code on a usage error.
std::optional<int> ParseCheck(llvm::ArrayRef<llvm::StringRef> args, CheckOptions &o,
                              llvm::raw_ostream &out, llvm::raw_ostream &err) {
  bool only_inputs = false;
  for (size_t i = 0; i < args.size(); ++i) {
    llvm::StringRef a = args[i];
    std::optional<llvm::StringRef> v;
    if (only_inputs || !a.startswith("-") || a == "-") {
      if (!o.input.empty()) {
        return Usage(err, "'" + o.command + "' takes one policy file; got '" + o.input + "' and '" +
                              a + "'");
      }
      o.input = a.str();
      continue;
    }
    if (a == "--") {
      only_inputs = true;
    } else if (a == "-h" || a == "--help") {
      out << (o.command == "build" ? kBuildHelp : o.command == "trace" ? kTraceHelp : kCheckHelp);
      return kExitClean;
    } else if (o.command == "build" && (a == "-o" || a.startswith("-o"))) {
      llvm::StringRef file = a.drop_front(2);
      if (file.empty()) {
        if (i + 1 >= args.size()) {
          return Usage(err, "-o needs a file name");
        }
        file = args[++i];
      }
      o.output = file.str();
    } else if (o.command == "build" && TakeValue(args, i, "--emit", v)) {
      if (*v == "fbin") {
        o.emit = CheckOptions::Emit::kFbin;
      } else if (*v == "text") {
        o.emit = CheckOptions::Emit::kText;
      } else if (*v == "json") {
        o.emit = CheckOptions::Emit::kJson;
      } else if (*v == "c") {
        o.emit = CheckOptions::Emit::kC;
      } else {
        return Usage(err, "unknown --emit '" + *v + "'; use fbin, text, json or c");
      }
    } else if (TakeValue(args, i, "--cap", v)) {
      if (v->empty()) {
        return Usage(err, "--cap needs capability names, such as --cap=-sniffer");
      }
      o.caps.push_back(v->str());
    } else if (a == "--expand-masks") {
      o.expand.expand_masks = true;
    } else if (TakeValue(args, i, "--max-expansion", v)) {
      uint64_t n = 0;
      if (v->getAsInteger(10, n) || n == 0) {
        return Usage(err, "--max-expansion needs a positive number, got '" + *v + "'");
      }
      o.expand.max_per_rule = n;
    } else if (TakeValue(args, i, "--warn-expansion", v)) {
      uint64_t n = 0;
      if (v->getAsInteger(10, n)) {
        return Usage(err, "--warn-expansion needs a number, got '" + *v + "'");
      }
      o.expand.warn_per_rule = n;
    } else if (TakeValue(args, i, "--format", v)) {
      if (*v == "text") {
        o.format = CheckOptions::Format::kText;
      } else if (*v == "json") {
        o.format = CheckOptions::Format::kJson;
      } else if (*v == "sarif") {
        o.format = CheckOptions::Format::kSarif;
      } else {
        return Usage(err, "unknown --format '" + *v + "'; use text, json or sarif");
      }
    } else if (TakeValue(args, i, "--color", v)) {
      if (*v == "auto") {
        o.color = CheckOptions::Color::kAuto;
      } else if (*v == "always") {
        o.color = CheckOptions::Color::kAlways;
      } else if (*v == "never") {
        o.color = CheckOptions::Color::kNever;
      } else {
        return Usage(err, "unknown --color '" + *v + "'; use auto, always or never");
      }
    } else if (TakeValue(args, i, "--target", v)) {
      if (!llvm::is_contained(sema::KnownTargets(), *v)) {
        llvm::StringRef guess = SuggestName(*v, sema::KnownTargets());
        return Usage(err, "unknown target '" + *v + "'" +
                              (guess.empty() ? "; use generic, mlx5 or mlx4"
                                             : "; did you mean '" + guess + "'?"));
      }
      o.sema.target_override = v->str();
    } else if (TakeValue(args, i, "--stdlib-dir", v)) {
      if (v->empty()) {
        return Usage(err, "--stdlib-dir needs a directory");
      }
      o.sema.stdlib_dirs.push_back(v->str());
    } else if (o.command == "trace" && TakeValue(args, i, "--packet", v)) {
      o.packets.push_back(v->str());
    } else if (o.command == "trace" && TakeValue(args, i, "--pcap", v)) {
      o.pcaps.push_back(v->str());
    } else if (o.command == "trace" && TakeValue(args, i, "--port", v)) {
      unsigned n = 0;
      if (v->getAsInteger(10, n) || n < 1 || n > 255) {
        return Usage(err, "--port needs a port number 1..255, got '" + *v + "'");
      }
      o.port = static_cast<uint8_t>(n);
    } else if (o.command == "trace" && a == "--egress") {
      o.egress = true;
    } else if (TakeValue(args, i, "--analysis-limit", v)) {
      unsigned n = 0;
      if (v->getAsInteger(10, n)) {
        return Usage(err, "--analysis-limit needs a number, got '" + *v + "'");
      }
      o.analysis.max_rules = n;
    } else if (TakeValue(args, i, "--max-errors", v)) {
      unsigned n = 0;
      if (v->getAsInteger(10, n)) {
        return Usage(err, "--max-errors needs a number, got '" + *v + "'");
      }
      o.diag.max_errors = n;
    } else if (a == "--dump-ast") {
      o.dump_ast = true;
    } else if (a == "--dump-ir") {
      o.dump_ir = true;
    } else if (a == "--time-phases") {
      o.time_phases = true;
    } else if (o.command == "build" && a == "--stats") {
      o.stats = true;
    } else if (o.command == "build" && TakeValue(args, i, "--optimize-limit", v)) {
      uint64_t n = 0;
      if (v->getAsInteger(10, n)) {
        return Usage(err, "--optimize-limit needs a number, got '" + *v + "'");
      }
      o.optimize.max_rules = n;
    } else if (o.command == "build" && TakeValue(args, i, "--max-rules", v)) {
      uint64_t n = 0;
      if (v->getAsInteger(10, n) || n == 0) {
        return Usage(err, "--max-rules needs a positive number, got '" + *v + "'");
      }
      o.optimize.max_hw_rules = n;
    } else if ((o.command == "build" || o.command == "trace") &&
               TakeValue(args, i, "--table-entries", v)) {
      unsigned n = 0;
      if (v->getAsInteger(10, n) || n == 0) {
        return Usage(err, "--table-entries needs a positive number, got '" + *v + "'");
      }
      o.table_entries = n;
    } else if (o.command == "build" && a == "--no-verify") {
      o.verify = false;
    } else if ((o.command == "build" || o.command == "check") && a == "--progress") {
      o.progress = true;
    } else if (o.command == "build" && TakeValue(args, i, "--inject-fault", v)) {
      if (*v != "priority" && *v != "reverse" && *v != "drop-rule" && *v != "mask") {
        return Usage(err,
                     "--inject-fault takes priority, reverse, drop-rule or mask, got '" + *v + "'");
      }
      o.inject_fault = v->str();
    } else if (a == "-Werror") {
      o.diag.warnings_as_errors = true;
    } else if (a.startswith("-W")) {
      llvm::StringRef name = a.drop_front(2);
      bool disable = name.consume_front("no-");
      std::optional<diag::Kind> kind = diag::FindKindByName(name);
      if (!kind || diag::Info(*kind).default_severity != diag::Severity::kWarning) {
        std::vector<llvm::StringRef> names = WarningNames();
        llvm::StringRef guess = SuggestName(name, names);
        return Usage(err, "unknown warning '" + name + "'" +
                              (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
      }
      if (disable) {
        o.diag.disabled.push_back(*kind);
      } else {
        llvm::erase_value(o.diag.disabled, *kind);
      }
    } else {
      return Usage(err, "unknown option '" + a + "' for '" + o.command + "'");
    }
  }
  if (o.input.empty()) {
    return Usage(err, "'" + o.command + "' needs a policy file");
  }
  if (o.command == "trace" && o.packets.empty() && o.pcaps.empty()) {
    return Usage(err, "'trace' needs at least one --packet or --pcap");
  }
  if (o.command == "trace" && o.format == CheckOptions::Format::kSarif) {
    return Usage(err, "'trace' prints text or json, not sarif");
  }
  bool build_to_stdout =
      o.command == "build" &&
      (o.output == "-" || (o.output.empty() && o.emit != CheckOptions::Emit::kFbin));
  if (build_to_stdout && o.format != CheckOptions::Format::kText) {
    return Usage(err, "--format=json and --format=sarif write diagnostics to standard output; "
                      "write the --emit output to a file with -o");
  }
  return std::nullopt;
}

class PhaseTimer {
public:
  explicit PhaseTimer(bool enabled) : enabled_(enabled) {}
  void Done(llvm::StringRef phase) {
    auto now = std::chrono::steady_clock::now();
    phases_.emplace_back(phase.str(), std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
  void Print(llvm::raw_ostream &err) const {
    if (!enabled_) {
      return;
    }
    double total = 0;
    for (auto &[name, secs] : phases_) {
      err << llvm::format("phase %-14s %9.3f ms\n", name.c_str(), secs * 1000);
      total += secs;
    }
    err << llvm::format("phase %-14s %9.3f ms\n", static_cast<const char *>("total"), total * 1000);
  }

private:
  bool enabled_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, double>> phases_;
};

/// The device capabilities the compiled rules rely on, of those `target`'s
/// family can lack, as "inner,sniffer".
std::string RequiredCaps(const target::Target &t, const target::HwPolicy &hw) {
  using target::Cap;
  target::CapSet used = 0;
  for (const target::HwRuleInfo &r : hw.rules) {
    const emit::HwRule &rule = r.rule;
    if (rule.type == emit::AttrType::kSniffer) {
      used |= target::CapBit(Cap::kSniffer);
    }
    if ((rule.flags & emit::kFlagDontTrap) != 0) {
      used |= target::CapBit(Cap::kDontTrap);
    }
    if (rule.priority > t.profile->max_priority_reduced) {
      used |= target::CapBit(Cap::kPriorities16);
    }
    for (size_t i = 0; i < rule.specs.size(); ++i) {
      const emit::HwSpec &s = rule.specs[i];
      if (s.inner) {
        used |= target::CapBit(Cap::kInner);
      }
      if (s.kind != emit::SpecKind::kMpls) {
        continue;
      }
      if (!s.inner && i > 0 && rule.specs[i - 1].kind == emit::SpecKind::kUdp) {
        used |= target::CapBit(Cap::kMplsOverUdp);
      }
      if (!s.inner && i > 0 && rule.specs[i - 1].kind == emit::SpecKind::kGre) {
        used |= target::CapBit(Cap::kMplsOverGre);
      }
      const std::pair<Field, Cap> sub[] = {{Field::kMplsLabel, Cap::kMplsLabel},
                                           {Field::kMplsTc, Cap::kMplsTc},
                                           {Field::kMplsBos, Cap::kMplsBos},
                                           {Field::kMplsTtl, Cap::kMplsTtl}};
      for (auto [field, cap] : sub) {
        if (!emit::GetField(s, field).second.isZero()) {
          used |= target::CapBit(cap);
        }
      }
    }
  }
  std::string out;
  for (unsigned c = 0; c < target::kNumCaps; ++c) {
    auto cap = static_cast<Cap>(c);
    if ((used & t.profile->caps & target::CapBit(cap)) != 0) {
      out += (out.empty() ? "" : ",") + target::GetCapInfo(cap).name.str();
    }
  }
  return out;
}

/// The target checks of `flowc check`: what `flowc build` would report,
/// except hardware priorities, in one pass over the source rules (one
/// representative expansion each), so that checking stays linear.
std::optional<int> CheckTarget(const CheckOptions &o, const ir::Policy &policy, diag::Engine &diags,
                               PhaseTimer &timer, llvm::raw_ostream &err) {
  if (target::FindProfile(policy.target) == nullptr) {
    return std::nullopt; // an unknown `target` is FL3006, reported by sema
  }
  llvm::Expected<target::Target> t = target::MakeTarget(policy.target, o.caps);
  if (!t) {
    return Usage(err, llvm::toString(t.takeError()));
  }
  target::CheckForTarget(policy, *t, o.expand, diags);
  timer.Done("target");
  return std::nullopt;
}

/// The progress of a long phase (fitting, the proof, the analysis) on stderr:
/// "flowc: <what>: N of M <units> (P%)". On a terminal, one line rewritten
/// in place, shown once the phase has taken a second and cleared at the
/// end; with --progress, also when stderr is a file or a pipe, one line per
/// update. At most four updates a second, and the last always.
class Progress {
public:
  Progress(llvm::raw_ostream &err, bool forced, llvm::StringRef what, llvm::StringRef units)
      : err_(err), terminal_(err.is_displayed()), forced_(forced), what_(what), units_(units),
        start_(std::chrono::steady_clock::now()) {}

  void Show(uint64_t done, uint64_t total) {
    using namespace std::chrono_literals;
    auto now = std::chrono::steady_clock::now();
    bool last = done >= total;
    if ((!forced_ && !terminal_) || (!forced_ && now - start_ < 1s) ||
        (!last && shown_ && now - shown_at_ < 250ms)) {
      return;
    }
    shown_ = true;
    shown_at_ = now;
    unsigned percent = total == 0 ? 100 : static_cast<unsigned>(done * 100 / total);
    err_ << (terminal_ ? "\r" : "") << "flowc: " << what_ << ": " << done << " of " << total << " "
         << units_ << " (" << percent << "%)" << (terminal_ ? "" : "\n");
    err_.flush();
  }

  void Finish() {
    if (shown_ && terminal_) {
      err_ << "\r\x1b[K"; // the line is cleared; --stats says the result
      err_.flush();
    }
  }

private:
  llvm::raw_ostream &err_;
  bool terminal_, forced_;
  llvm::StringRef what_, units_;
  std::chrono::steady_clock::time_point start_, shown_at_;
  bool shown_ = false;
};

/// Opens `path` for writing, or reports why not.
std::unique_ptr<llvm::raw_fd_ostream> OpenOutput(const std::string &path, llvm::raw_ostream &err) {
  std::error_code ec;
  auto file = std::make_unique<llvm::raw_fd_ostream>(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    err << "flowc: error: cannot write '" << path << "': " << ec.message() << "\n";
    return nullptr;
  }
  return file;
}

/// The actions of `rule` as the language writes them: "steer rx, count c".
std::string ActionsText(const ir::Policy &policy, const ir::Rule &rule) {
  std::string out;
  for (const ir::Action &a : rule.actions) {
    out += out.empty() ? "" : ", ";
    switch (a.kind) {
    case ast::ActionKind::kSteer:
      out += "steer " + policy.queues[a.operand].name;
      break;
    case ast::ActionKind::kTag:
      out += "tag " + std::to_string(a.operand);
      break;
    case ast::ActionKind::kDrop:
      out += "drop";
      break;
    case ast::ActionKind::kCount:
      out += "count " + policy.counters[a.operand].name;
      break;
    case ast::ActionKind::kHandle:
      out += "handle " + policy.handles[a.operand].name;
      break;
    case ast::ActionKind::kAllow:
      out += "allow";
      break;
    }
  }
  return out;
}

/// "rule 'storage' (quickstart.flow:13:5)".
std::string RuleWhere(const llvm::SourceMgr &sources, const ir::Rule &rule) {
  diag::Position pos = diag::Resolve(sources, rule.range.Start);
  std::string where = pos.line != 0
                          ? " (" + llvm::sys::path::filename(pos.file).str() + ":" +
                                std::to_string(pos.line) + ":" + std::to_string(pos.column) + ")"
                          : "";
  return ir::RuleTitle(rule) + where;
}

/// Appends the frames of the capture at `path` (Ethernet link type) to
/// `packets`; returns an exit status if it cannot be read.
std::optional<int> ReadPcap(const std::string &path, std::vector<analysis::TracePacket> &packets,
                            llvm::raw_ostream &err) {
  char why[PCAP_ERRBUF_SIZE] = "";
  pcap_t *pcap = pcap_open_offline(path.c_str(), why);
  if (pcap == nullptr) {
    err << "flowc: error: cannot read '" << path << "': " << why << "\n";
    return kExitUsage;
  }
  if (pcap_datalink(pcap) != DLT_EN10MB) {
    const char *name = pcap_datalink_val_to_name(pcap_datalink(pcap));
    err << "flowc: error: '" << path << "' has link type " << (name ? name : "unknown")
        << "; flowc trace reads Ethernet captures (EN10MB)\n";
    pcap_close(pcap);
    return kExitUsage;
  }
  struct pcap_pkthdr *header = nullptr;
  const u_char *data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(pcap, &header, &data)) == 1) {
    packets.push_back(analysis::ParseFrame(llvm::ArrayRef<uint8_t>(data, header->caplen)));
  }
  if (rc == PCAP_ERROR) {
    err << "flowc: error: '" << path << "': " << pcap_geterr(pcap) << "\n";
    pcap_close(pcap);
    return kExitUsage;
  }
  pcap_close(pcap);
  return std::nullopt;
}

/// flowc trace: each --packet on the source rules and on the hardware rules.
std::optional<int> Trace(const CheckOptions &o, const ir::Policy &policy, diag::Engine &diags,
                         llvm::raw_ostream &out, llvm::raw_ostream &err) {
  std::vector<analysis::TracePacket> packets;
  for (const std::string &text : o.packets) {
    llvm::Expected<analysis::TracePacket> p = analysis::ParsePacket(text);
    if (!p) {
      return Usage(err, "--packet '" + text + "': " + llvm::toString(p.takeError()));
    }
    packets.push_back(std::move(*p));
  }
  for (const std::string &path : o.pcaps) {
    if (std::optional<int> failed = ReadPcap(path, packets, err)) {
      return failed;
    }
  }
  diag::DiscardConsumer discard; // trace's own expansions repeat what sema reported
  diag::Engine scratch(diags.sources(), {}, discard);
  llvm::Expected<target::Target> generic = target::MakeTarget("generic", {});
  llvm::Expected<target::Target> t = target::MakeTarget(policy.target, o.caps);
  if (!generic || !t) {
    llvm::consumeError(generic.takeError());
    return Usage(err, t ? "cannot make the generic target" : llvm::toString(t.takeError()));
  }
  t->table_entries = o.table_entries;
  expand::Options source_options = o.expand;
  source_options.max_per_rule = std::max<uint64_t>(source_options.max_per_rule, 1u << 16);
  source_options.warn_per_rule = 0;
  expand::Expanded source = expand::Expand(policy, *generic, source_options, scratch);
  expand::Expanded target_expanded;
  diag::Engine build_diags(diags.sources(), {}, discard);
  target::HwPolicy hw;
  {
    // The rules flowc build emits: optimized the same way.
    opt::ExactRefiner refiner(opt::Options{});
    hw = target::ExpandAndLegalize(policy, *t, o.expand, build_diags, target_expanded, &refiner);
  }
  bool compiled = build_diags.error_count() == 0;
  // The compiled side reads the rules back from the bytes flowc build
  // emits, as the proof does.
  std::vector<emit::HwRule> decoded;
  std::vector<expand::TernaryRule> matches;
  for (size_t i = 0; compiled && i < hw.rules.size(); ++i) {
    llvm::Expected<emit::HwRule> back = emit::Decode(emit::Encode(hw.rules[i].rule));
    if (!back) {
      err << "flowc: internal error: hardware rule " << i
          << " does not decode: " << llvm::toString(back.takeError()) << "\n";
      return kExitErrors;
    }
    matches.push_back(verify::MatchOf(*back, static_cast<uint32_t>(i)));
    decoded.push_back(std::move(*back));
  }
  // mlx5 looks the rule up after every other (verbs-facts §3.3).
  auto multicast_table = [&](uint32_t i) {
    return decoded[i].type == emit::AttrType::kNormal &&
           target::TableOf(decoded[i], t->profile->multicast_first_spec) == target::kMulticastTable;
  };
  ast::Direction direction = o.egress ? ast::Direction::kEgress : ast::Direction::kIngress;
  llvm::SourceMgr &sources = diags.sources();
  bool json = o.format == CheckOptions::Format::kJson;
  llvm::json::Array results;
  bool all_agree = true;
  for (size_t k = 0; k < packets.size(); ++k) {
    const analysis::TracePacket &p = packets[k];
    analysis::Fate src = analysis::TraceSource(policy, source, direction, o.port, p);
    analysis::Fate hwf;
    if (compiled) {
      hwf = analysis::TraceCompiled(decoded, matches, t->profile->multicast_first_spec, direction,
                                    o.port, p);
    }
    // Agreement: the same outcome (actions) for the taker, and copies from
    // the same source rules.
    auto source_of = [&](uint32_t i) { return hw.rules[i].source; };
    std::vector<uint32_t> src_copies = src.copies, hw_copies;
    for (uint32_t i : hwf.copies) {
      hw_copies.push_back(source_of(i));
    }
    llvm::sort(src_copies);
    llvm::sort(hw_copies);
    hw_copies.erase(std::unique(hw_copies.begin(), hw_copies.end()), hw_copies.end());
    auto actions_of = [&](std::optional<uint32_t> rule) {
      return rule ? ActionsText(policy, policy.rules[*rule]) : std::string("-");
    };
    std::optional<uint32_t> hw_taker_source;
    if (hwf.taker) {
      hw_taker_source = source_of(*hwf.taker);
    }
    bool agree =
        compiled && src_copies == hw_copies && actions_of(src.taker) == actions_of(hw_taker_source);
    all_agree &= agree || !compiled;
    std::string nothing = o.egress ? "no rule takes it: it is sent"
                                   : "no rule takes it: it goes to the kernel's own queue";
    if (json) {
      auto rule_json = [&](uint32_t i) {
        const ir::Rule &r = policy.rules[i];
        diag::Position pos = diag::Resolve(sources, r.range.Start);
        return llvm::json::Object{{"rule", r.name},
                                  {"title", ir::RuleTitle(r)},
                                  {"line", pos.line},
                                  {"column", pos.column},
                                  {"actions", ActionsText(policy, r)}};
      };
      llvm::json::Array sc, hc;
      for (uint32_t i : src.copies) {
        sc.push_back(rule_json(i));
      }
      llvm::json::Object result{
          {"packet", analysis::FormatPacket(p)},
          {"source",
           llvm::json::Object{{"copies", std::move(sc)},
                              {"taker", src.taker ? llvm::json::Value(rule_json(*src.taker))
                                                  : llvm::json::Value(nullptr)}}}};
      if (compiled) {
        for (uint32_t i : hwf.copies) {
          llvm::json::Object c = rule_json(source_of(i));
          c["hardware_rule"] = static_cast<int64_t>(i);
          c["priority"] = static_cast<int64_t>(decoded[i].priority);
          hc.push_back(std::move(c));
        }
        llvm::json::Value taker = nullptr;
        if (hwf.taker) {
          llvm::json::Object c = rule_json(source_of(*hwf.taker));
          c["hardware_rule"] = static_cast<int64_t>(*hwf.taker);
          c["priority"] = static_cast<int64_t>(decoded[*hwf.taker].priority);
          c["multicast_table"] = multicast_table(*hwf.taker);
          taker = std::move(c);
        }
        result["compiled"] = llvm::json::Object{
            {"target", t->profile->name}, {"copies", std::move(hc)}, {"taker", std::move(taker)}};
        result["agree"] = agree;
      } else {
        result["compiled"] = nullptr;
      }
      results.push_back(std::move(result));
      continue;
    }
    out << "packet " << (k + 1) << ": " << analysis::FormatPacket(p) << "\n";
    for (uint32_t i : src.copies) {
      out << "  source:   copy by " << RuleWhere(sources, policy.rules[i]) << ": "
          << ActionsText(policy, policy.rules[i]) << "\n";
    }
    if (src.taker) {
      out << "  source:   taken by " << RuleWhere(sources, policy.rules[*src.taker]) << ": "
          << ActionsText(policy, policy.rules[*src.taker]) << "\n";
    } else {
      out << "  source:   " << nothing << "\n";
    }
    if (!compiled) {
      out << "  compiled: not available: 'flowc build' reports errors for " << t->profile->name
          << "\n";
      continue;
    }
    for (uint32_t i : hwf.copies) {
      out << "  " << t->profile->name << ":     copy by hardware rule " << i << " (priority "
          << decoded[i].priority << ", from " << ir::RuleTitle(policy.rules[source_of(i)]) << ")\n";
    }
    if (hwf.taker) {
      out << "  " << t->profile->name << ":     taken by hardware rule " << *hwf.taker << " ("
          << (multicast_table(*hwf.taker)
                  ? "multicast priority, after every other"
                  : "priority " + std::to_string(decoded[*hwf.taker].priority))
          << ", from " << ir::RuleTitle(policy.rules[source_of(*hwf.taker)]) << ")\n";
    } else {
      out << "  " << t->profile->name << ":     " << nothing << "\n";
    }
    out << "  agree:    " << (agree ? "yes" : "NO") << "\n";
  }
  if (json) {
    out << llvm::formatv("{0:2}", llvm::json::Value(llvm::json::Object{
                                      {"version", kVersion}, {"packets", std::move(results)}}))
        << "\n";
  }
  return all_agree ? kExitClean : kExitErrors;
}

/// --inject-fault: what a broken optimizer might do, for testing the proof.
void InjectFault(llvm::StringRef kind, target::HwPolicy &hw) {
  uint16_t last = 0; // the highest priority number of a normal rule
  for (const target::HwRuleInfo &info : hw.rules) {
    if (info.rule.type == emit::AttrType::kNormal) {
      last = std::max(last, info.rule.priority);
    }
  }
  for (size_t i = 0; i < hw.rules.size(); ++i) {
    emit::HwRule &r = hw.rules[i].rule;
    if (r.type != emit::AttrType::kNormal) {
      continue;
    }
    if (kind == "priority") {
      r.priority = 0;
    } else if (kind == "reverse") {
      r.priority = static_cast<uint16_t>(last - r.priority);
    } else if (kind == "drop-rule") {
      hw.rules.erase(hw.rules.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    } else if (kind == "mask") {
      // The lowest set mask bit of the last spec that matches anything.
      for (auto s = r.specs.rbegin(); s != r.specs.rend(); ++s) {
        size_t size = emit::GetLayout(s->kind).filter_size;
        auto last = std::find_if(s->mask.rend() - static_cast<std::ptrdiff_t>(size), s->mask.rend(),
                                 [](uint8_t b) { return b != 0; });
        if (last != s->mask.rend()) {
          *last &= static_cast<uint8_t>(*last - 1);
          size_t at = static_cast<size_t>(s->mask.rend() - last - 1);
          s->val[at] &= *last;
          break;
        }
      }
    }
  }
}

/// expand, legalize, emit. Returns an exit status when the build stops for
/// a reason other than diagnostics (a bad --cap, an unwritable output).
std::optional<int> Build(const CheckOptions &o, const ir::Policy &policy,
                         const llvm::SourceMgr &sources, diag::Engine &diags, PhaseTimer &timer,
                         llvm::raw_ostream &out, llvm::raw_ostream &err) {
  llvm::Expected<target::Target> t = target::MakeTarget(policy.target, o.caps);
  if (!t) {
    return Usage(err, llvm::toString(t.takeError()));
  }
  t->table_entries = o.table_entries;
  // The proof's source side (its expansion of the source and the index of
  // its rules) depends on the policy alone: it is made on a second thread
  // while the rules are compiled (the machines this runs on have at least
  // two cores), or later on this one if no thread can be had. The future
  // waits for it if the build stops first.
  std::future<verify::Source> proof_source;
  if (o.verify) {
    proof_source = std::async(std::launch::async | std::launch::deferred,
                              [&policy] { return verify::ExpandSource(policy); });
  }
  expand::Expanded expanded;
  target::HwPolicy hw;
  std::string fallback;
  {
    // The refiner holds the exact model only while priorities are assigned.
    opt::ExactRefiner refiner(o.optimize);
    Progress progress(err, o.progress, "fitting", "rules");
    hw = target::ExpandAndLegalize(
        policy, *t, o.expand, diags, expanded, &refiner,
        [&](uint64_t done, uint64_t total) { progress.Show(done, total); });
    progress.Finish();
    fallback = refiner.fallback();
  }
  timer.Done("expand+legalize+optimize");
  if (o.stats) {
    // Levels: the assignment puts each rule one level above the highest
    // earlier rule that competes with it for a packet with a different
    // outcome (a `pass` rule may share its level with a trapping rule after
    // it), so it uses exactly as many levels as the longest such chain
    // (docs/cli.md).
    // Budget fitting adds its pieces and copies to the expansion; they are
    // counted in the hardware rules and the fitting line, not here.
    err << "stats: " << policy.rules.size() << " source rule(s), " << hw.expanded
        << " after expansion, " << hw.rules.size() << " hardware rule(s) for " << t->profile->name
        << " (" << hw.removed << " left out: no packet reaches them"
        << (hw.redundant > 0 ? "; " + std::to_string(hw.redundant) +
                                   " left out: later rules do the same with their packets"
                             : std::string())
        << ")\n";
    err << "stats: " << hw.levels_used << " priority level(s) used of " << t->MaxPriority() + 1
        << "; the longest chain of rules that compete for a packet with different outcomes needs "
        << hw.levels_bound
        << (hw.exact_levels ? " (exact)"
                            : " (cubes that overlap; exact model not used: " + fallback + ")")
        << "\n";
    if (hw.copies > 0 || hw.split_from > 0 || hw.lowered > 0) {
      std::vector<std::string> how;
      if (hw.copies > 0) {
        how.push_back(std::to_string(hw.copies) +
                      " rule(s) were added for the packets a rule shares with a later one, at a "
                      "level above both");
      }
      if (hw.split_from > 0) {
        how.push_back(std::to_string(hw.split_from) + " rule(s) were split into " +
                      std::to_string(hw.split_into) +
                      " rule(s) disjoint from the rules before them");
      }
      if (hw.lowered > 0) {
        how.push_back(std::to_string(hw.lowered) +
                      " rule(s) placed before were moved up or split to let a later rule fit "
                      "below them");
      }
      err << "stats: to fit " << t->MaxPriority() + 1 << " levels, " << llvm::join(how, "; ")
          << " (+" << static_cast<int64_t>(hw.copies) + hw.split_into - hw.split_from
          << " rules)\n";
    }
    for (const target::HwPolicy::FitGoals &g : hw.fit_goals) {
      err << "stats: goal levels of budget fitting: " << g.layout;
      if (g.estimate > 0) {
        err << " (estimated to need about " << g.estimate << " copies)";
      }
      err << "\n";
    }
    if (hw.table_moves > 0 || hw.tables_reordered > 0) {
      err << "stats: to fit " << t->profile->name << "'s flow tables of " << t->TableEntries()
          << " entries, ";
      if (hw.tables_reordered > 0) {
        err << hw.tables_reordered << " table(s) get their rules most frequent match mask first"
            << (hw.table_moves > 0 ? " and " : "\n");
      }
      if (hw.table_moves > 0) {
        err << hw.table_moves << " rule(s) were moved to later priority levels\n";
      }
    }
  }
  if (diags.error_count() > 0) {
    return std::nullopt;
  }
  if (!o.inject_fault.empty()) {
    InjectFault(o.inject_fault, hw);
  }
  emit::OutputPolicy p;
  p.compiler = std::string("flowc ") + kVersion;
  p.target = t->profile->name.str();
  p.caps = t->CapChanges();
  p.input = o.input;
  for (const ir::Object &q : policy.queues) {
    p.queues.push_back(q.name);
  }
  for (const ir::Object &c : policy.counters) {
    p.counters.push_back(c.name);
  }
  for (const ir::Object &h : policy.handles) {
    p.handles.push_back(h.name);
  }
  for (const target::HwRuleInfo &r : hw.rules) {
    const ir::Rule &src = policy.rules[r.source];
    emit::OutputRule o_rule;
    o_rule.rule = r.rule;
    o_rule.bytes = emit::Encode(r.rule);
    // The post-emit verifier: the bytes decode to the same rule.
    llvm::Expected<emit::HwRule> back = emit::Decode(o_rule.bytes);
    if (!back) {
      err << "flowc: internal error: an emitted buffer does not decode: "
          << llvm::toString(back.takeError()) << "\n";
      return kExitErrors;
    }
    for (size_t i = 0; i < back->specs.size(); ++i) {
      emit::HwSpec expected = r.rule.specs[i];
      expected.binding = 0;
      if (!(back->specs[i] == expected)) {
        err << "flowc: internal error: spec " << i << " of an emitted buffer decodes differently\n";
        return kExitErrors;
      }
    }
    o_rule.egress = src.direction == ast::Direction::kEgress;
    o_rule.pass = src.pass;
    o_rule.queue_index = r.queue;
    if (r.queue) {
      o_rule.queue = policy.queues[*r.queue].name;
    }
    for (const emit::HwSpec &s : r.rule.specs) {
      o_rule.bindings.push_back(
          s.kind == emit::SpecKind::kActionCount    ? policy.counters[s.binding].name
          : s.kind == emit::SpecKind::kActionHandle ? policy.handles[s.binding].name
                                                    : std::string());
    }
    o_rule.source.rule = src.name.empty() ? ast::RuleKindName(src.kind).str() : src.name;
    if (src.range.isValid()) {
      unsigned buffer = sources.FindBufferContainingLoc(src.range.Start);
      o_rule.source.file = sources.getMemoryBuffer(buffer)->getBufferIdentifier().str();
      std::tie(o_rule.source.line, o_rule.source.column) =
          sources.getLineAndColumn(src.range.Start, buffer);
    }
    p.rules.push_back(std::move(o_rule));
  }
  timer.Done("emit");
  if (o.verify) {
    Progress progress(err, o.progress, "proving", "rule comparisons");
    verify::Options proof_options;
    proof_options.progress = [&](uint64_t done, uint64_t total) { progress.Show(done, total); };
    verify::Result proof = verify::Verify(policy, *t, p.rules, proof_options, proof_source.get());
    progress.Finish();
    timer.Done("verify");
    switch (proof.status) {
    case verify::Result::Status::kProved:
      if (o.stats) {
        err << "stats: proved equivalent to the source for every packet (" << proof.source_rules
            << " source expansion(s), " << proof.hardware_rules << " hardware rule(s))\n";
      }
      break;
    case verify::Result::Status::kFailed:
      err << "flowc: internal error: the compiled rules do not do what the source says\n";
      if (!proof.counterexample.empty()) {
        err << "  packet: " << proof.counterexample << "\n";
      }
      err << "  " << proof.detail << "\n";
      err << "please report this with the policy; --no-verify skips the proof\n";
      return kExitErrors;
    case verify::Result::Status::kUnproved:
      err << "flowc: warning: equivalence to the source not proved: " << proof.detail << "\n";
      break;
    }
  }
  std::string path = o.output;
  if (path.empty() && o.emit == CheckOptions::Emit::kFbin) {
    path = llvm::sys::path::stem(o.input).str() + ".fbin";
  }
  std::unique_ptr<llvm::raw_fd_ostream> file;
  if (!path.empty() && path != "-") {
    file = OpenOutput(path, err);
    if (!file) {
      return kExitUsage;
    }
  }
  llvm::raw_ostream &dest = file ? *file : out;
  switch (o.emit) {
  case CheckOptions::Emit::kFbin: {
    std::vector<uint8_t> bytes = emit::WriteFbin(p, RequiredCaps(*t, hw));
    dest.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    break;
  }
  case CheckOptions::Emit::kText:
    emit::WriteText(p, dest);
    break;
  case CheckOptions::Emit::kJson:
    emit::WriteJson(p, dest);
    break;
  case CheckOptions::Emit::kC: {
    std::vector<uint8_t> bytes = emit::WriteFbin(p, RequiredCaps(*t, hw));
    emit::WriteCHeader(p, bytes, emit::CIdentifier(llvm::sys::path::stem(o.input)), dest);
    break;
  }
  }
  if (file) {
    file->close();
    if (file->has_error()) {
      err << "flowc: error: cannot write '" << path << "': " << file->error().message() << "\n";
      file->clear_error();
      return kExitUsage;
    }
  }
  return std::nullopt;
}

int RunCheck(const CheckOptions &o, llvm::raw_ostream &out, llvm::raw_ostream &err) {
  PhaseTimer timer(o.time_phases || o.stats);
  llvm::SourceMgr sources;
  std::unique_ptr<diag::Consumer> consumer;
  // trace's --format is for its own output; its diagnostics are text.
  if (o.format == CheckOptions::Format::kText || o.command == "trace") {
    bool colors = o.color == CheckOptions::Color::kAlways ||
                  (o.color == CheckOptions::Color::kAuto && err.has_colors());
    consumer = std::make_unique<diag::TextConsumer>(sources, err, colors);
  } else {
    consumer = std::make_unique<diag::JsonConsumer>(sources, out,
                                                    o.format == CheckOptions::Format::kSarif
                                                        ? diag::JsonFlavor::kSarif
                                                        : diag::JsonFlavor::kPlain,
                                                    kVersion);
  }
  diag::Engine diags(sources, o.diag, *consumer);

  sema::Program program = sema::LoadProgram(o.input, o.sema, diags);
  timer.Done("load+parse");
  if (o.dump_ast && !program.modules.empty()) {
    ast::Dump(program.modules.back(), sources, out);
  }
  std::optional<int> stopped;
  if (program.root_readable && !diags.ShouldStop()) {
    ir::Policy policy = sema::Check(program, o.sema, diags);
    timer.Done("sema");
    if (o.dump_ir) {
      ir::Dump(policy, sources, out);
    }
    if (o.command == "trace" && diags.error_count() == 0) {
      stopped = Trace(o, policy, diags, out, err);
    } else if (o.command == "build" && diags.error_count() == 0) {
      stopped = Build(o, policy, sources, diags, timer, out, err);
    } else if (o.command == "check" && !diags.ShouldStop()) {
      stopped = CheckTarget(o, policy, diags, timer, err);
      // A root file without rules is a library checked on its own.
      if (!stopped && diags.error_count() == 0 && !program.modules.back().port_blocks.empty()) {
        analysis::ReportUnusedObjects(policy, program.modules.back().buffer_id, diags);
      }
      if (!stopped && diags.error_count() == 0 &&
          (diags.Enabled(diag::Kind::kShadowedRule) || diags.Enabled(diag::Kind::kPartlyShadowed) ||
           diags.Enabled(diag::Kind::kRedundantRule))) {
        analysis::Options analysis = o.analysis;
        if (!diags.Enabled(diag::Kind::kPartlyShadowed)) {
          analysis.partly_percent = 0;
        }
        analysis.redundant = diags.Enabled(diag::Kind::kRedundantRule);
        Progress progress(err, o.progress, "analysing", "rules");
        analysis.progress = [&](uint64_t done, uint64_t total) { progress.Show(done, total); };
        analysis::Stats stats = analysis::Analyze(policy, analysis, diags);
        progress.Finish();
        timer.Done("analysis");
        // Saying nothing would read as "no shadowed rules".
        if (stats.skipped) {
          err << "flowc: note: shadowed, mostly shadowed and redundant rules (FL9001, FL9003, "
                 "FL9004) were not looked for: the policy has "
              << (stats.expanded != 0 ? std::to_string(stats.expanded)
                                      : "more than " + std::to_string(analysis.max_rules))
              << " rules after expansion, over --analysis-limit=" << analysis.max_rules
              << " (0: no limit)\n";
        } else if (!stats.complete) {
          err << "flowc: note: the search for shadowed, mostly shadowed and redundant rules "
                 "(FL9001, FL9003, FL9004) stopped early (a rule over an expansion limit, or the "
                 "model over its BDD node limit): rules not reported on may still be shadowed or "
                 "redundant\n";
        }
        if (o.time_phases) {
          err << "analysis: " << stats.rules << " rule(s), " << stats.expanded
              << " ternary rule(s), " << stats.shadowed << " shadowed, " << stats.partly
              << " mostly shadowed, " << stats.redundant << " redundant"
              << (stats.skipped    ? ", skipped (over --analysis-limit)"
                  : stats.complete ? ""
                                   : ", stopped early (node limit)")
              << "\n";
        }
      }
    }
  }
  // Dumps go out before the diagnostics, so that 2>&1 does not interleave them.
  out.flush();
  diags.Finish();
  timer.Print(err);
  if (o.time_phases) {
    err << "parsed " << program.modules.size() << " file(s), " << program.rules_parsed
        << " rule(s); " << program.ll_fallbacks << " LL fallback(s)\n";
  }
  if (!program.root_readable) {
    return kExitUsage;
  }
  if (stopped) {
    return *stopped;
  }
  return diags.error_count() > 0 ? kExitErrors : kExitClean;
}

constexpr const char *kExplainHelp = R"(usage: flowc explain FLnnnn
       flowc explain --list

Prints the documentation of one diagnostic code (what it means, why, an
example and the fix), or lists every code with its name and summary.
)";

int Explain(llvm::ArrayRef<llvm::StringRef> args, llvm::raw_ostream &out, llvm::raw_ostream &err) {
  if (args.size() != 1) {
    return Usage(err, "'explain' takes one diagnostic code, such as FL3001, or --list");
  }
  if (args[0] == "-h" || args[0] == "--help") {
    out << kExplainHelp;
    return kExitClean;
  }
  if (args[0] == "--list") {
    for (const diag::KindInfo &k : diag::AllKinds()) {
      out << diag::CodeString(k.code) << "  " << llvm::left_justify(k.name, 22) << "  "
          << diag::SeverityName(k.default_severity) << "  " << k.summary << '\n';
    }
    return kExitClean;
  }
  std::optional<diag::Kind> kind = diag::FindKindByCode(args[0]);
  if (!kind) {
    // Accept the flag name too: `flowc explain undefined-name`.
    kind = diag::FindKindByName(args[0]);
  }
  if (!kind) {
    return Usage(err, "unknown diagnostic code '" + args[0] +
                          "'; 'flowc explain --list' shows them all");
  }
  const diag::KindInfo &info = diag::Info(*kind);
  llvm::StringRef text = ExplainText(diag::CodeString(info.code));
  if (text.empty()) {
    out << diag::CodeString(info.code) << ' ' << info.name << "\n\n" << info.summary << ".\n";
    return kExitClean;
  }
  out << text;
  return kExitClean;
}

int Targets(llvm::ArrayRef<llvm::StringRef> args, llvm::raw_ostream &out, llvm::raw_ostream &err) {
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
    out << kTargetsHelp;
    return kExitClean;
  }
  if (!args.empty()) {
    return Usage(err, "'targets' takes no arguments");
  }
  for (const target::Profile &p : target::AllProfiles()) {
    out << p.name << ": " << p.description << "\n";
    out << "  priorities 0.." << p.max_priority;
    if (p.max_priority_reduced != p.max_priority) {
      out << " (0.." << p.max_priority_reduced << " without prio16)";
    }
    out << "; at most " << p.max_specs << " specs per rule; egress " << (p.egress ? "yes" : "no")
        << "\n";
    if (p.table_entries != 0) {
      out << "  flow tables of " << p.table_entries << " entries (--table-entries), "
          << p.table_groups << " groups of " << p.table_entries / (p.table_groups + 1)
          << " by match mask, then single entries (verbs-facts §3.8)\n";
    }
    bool any = false;
    for (unsigned c = 0; c < target::kNumCaps; ++c) {
      const target::CapInfo &info = target::GetCapInfo(static_cast<target::Cap>(c));
      if ((p.caps & target::CapBit(info.cap)) == 0) {
        continue;
      }
      if (!any) {
        out << "  capabilities (all on unless --cap=-NAME):\n";
        any = true;
      }
      out << "    " << llvm::left_justify(info.name, 14) << ' ' << info.description << " ("
          << info.fact << ")\n";
    }
  }
  return kExitClean;
}

int Help(llvm::ArrayRef<llvm::StringRef> args, llvm::raw_ostream &out, llvm::raw_ostream &err) {
  if (args.empty()) {
    out << kUsage;
    return kExitClean;
  }
  if (args[0] == "check") {
    out << kCheckHelp;
    return kExitClean;
  }
  if (args[0] == "build") {
    out << kBuildHelp;
    return kExitClean;
  }
  if (args[0] == "trace") {
    out << kTraceHelp;
    return kExitClean;
  }
  if (args[0] == "targets") {
    out << kTargetsHelp;
    return kExitClean;
  }
  if (args[0] == "explain") {
    out << kExplainHelp;
    return kExitClean;
  }
  if (args[0] == "help" || args[0] == "version") {
    out << kUsage;
    return kExitClean;
  }
  return Usage(err, "no help for unknown command '" + args[0] + "'");
}

} // namespace

int Main(llvm::ArrayRef<llvm::StringRef> args, llvm::raw_ostream &out, llvm::raw_ostream &err) {
  if (args.empty()) {
    err << kUsage;
    return kExitUsage;
  }
  llvm::StringRef command = args[0];
  llvm::ArrayRef<llvm::StringRef> rest = args.drop_front();
  if (command == "--version" || command == "version") {
    out << "flowc " << kVersion << " (flowsteer)\n";
    return kExitClean;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    return Help(rest, out, err);
  }
  if (command == "targets") {
    return Targets(rest, out, err);
  }
  if (command == "check" || command == "build" || command == "trace") {
    CheckOptions options;
    options.command = command.str();
    if (std::optional<int> exit = ParseCheck(rest, options, out, err)) {
      return *exit;
    }
    return RunCheck(options, out, err);
  }
  if (command == "explain") {
    return Explain(rest, out, err);
  }
  static const llvm::StringRef kCommands[] = {"build",   "check", "explain", "help",
                                              "targets", "trace", "version"};
  llvm::StringRef guess = SuggestName(command, kCommands);
  return Usage(err, "unknown command '" + command + "'" +
                        (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

} // namespace flowc::driver
