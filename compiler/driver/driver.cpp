// The flowc command line. Options are parsed by hand: the surface is small,
// and exit statuses and messages stay exactly as docs/cli.md says
// (docs/architecture.md, "Command line").
#include "compiler/driver/driver.h"

#include <chrono>
#include <optional>

#include "compiler/base/suggest.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/driver/explain.h"
#include "compiler/sema/sema.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Process.h"

namespace flowc::driver {
namespace {

constexpr const char *kVersion = FLOWSTEER_VERSION;

constexpr const char *kUsage = R"(usage: flowc <command> [options] [args]

Commands:
  check POLICY.flow    check a policy: syntax, names, types, values, rules
  explain FLnnnn       show the documentation of a diagnostic code
  help [COMMAND]       show help for flowc or one command
  version              print the version (also --version)

Run 'flowc help check' for the options of a command.
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

Exit status: 0 clean, 1 errors were reported, 2 bad invocation or unreadable input.
)";

struct CheckOptions {
  std::string input;
  enum class Format { kText, kJson, kSarif } format = Format::kText;
  enum class Color { kAuto, kAlways, kNever } color = Color::kAuto;
  sema::Options sema;
  diag::Options diag;
  bool dump_ast = false;
  bool dump_ir = false;
  bool time_phases = false;
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
        return Usage(err, "'check' takes one policy file; got '" + o.input + "' and '" + a + "'");
      }
      o.input = a.str();
      continue;
    }
    if (a == "--") {
      only_inputs = true;
    } else if (a == "-h" || a == "--help") {
      out << kCheckHelp;
      return kExitClean;
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
      return Usage(err, "unknown option '" + a + "' for 'check'");
    }
  }
  if (o.input.empty()) {
    return Usage(err, "'check' needs a policy file");
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

int RunCheck(const CheckOptions &o, llvm::raw_ostream &out, llvm::raw_ostream &err) {
  PhaseTimer timer(o.time_phases);
  llvm::SourceMgr sources;
  std::unique_ptr<diag::Consumer> consumer;
  if (o.format == CheckOptions::Format::kText) {
    bool colors = o.color == CheckOptions::Color::kAlways ||
                  (o.color == CheckOptions::Color::kAuto && err.has_colors());
    consumer = std::make_unique<diag::TextConsumer>(sources, err, colors);
  } else {
    consumer = std::make_unique<diag::JsonConsumer>(
        sources, out,
        o.format == CheckOptions::Format::kSarif ? diag::JsonFlavor::kSarif
                                                 : diag::JsonFlavor::kPlain,
        kVersion);
  }
  diag::Engine diags(sources, o.diag, *consumer);

  sema::Program program = sema::LoadProgram(o.input, o.sema, diags);
  timer.Done("load+parse");
  if (o.dump_ast && !program.modules.empty()) {
    ast::Dump(program.modules.back(), sources, out);
  }
  if (program.root_readable && !diags.ShouldStop()) {
    ir::Policy policy = sema::Check(program, o.sema, diags);
    timer.Done("sema");
    if (o.dump_ir) {
      ir::Dump(policy, sources, out);
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

int Help(llvm::ArrayRef<llvm::StringRef> args, llvm::raw_ostream &out, llvm::raw_ostream &err) {
  if (args.empty()) {
    out << kUsage;
    return kExitClean;
  }
  if (args[0] == "check") {
    out << kCheckHelp;
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
  if (command == "check") {
    CheckOptions options;
    if (std::optional<int> exit = ParseCheck(rest, options, out, err)) {
      return *exit;
    }
    return RunCheck(options, out, err);
  }
  if (command == "explain") {
    return Explain(rest, out, err);
  }
  static const llvm::StringRef kCommands[] = {"check", "explain", "help", "version"};
  llvm::StringRef guess = SuggestName(command, kCommands);
  return Usage(err, "unknown command '" + command + "'" +
                        (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

} // namespace flowc::driver
