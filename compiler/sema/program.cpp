// Loading a program: the root file and its imports, depth first.
#include <map>
#include <set>

#include "compiler/parse/parse.h"
#include "compiler/sema/loader.h"
#include "compiler/sema/sema.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

namespace flowc::sema {
namespace {

class ProgramLoader {
public:
  ProgramLoader(const Options &options, diag::Engine &diags)
      : options_(options), diags_(diags), search_path_(StdlibSearchPath(options)) {}

  Program Load(llvm::StringRef root) {
    Loaded loaded = LoadSource(root, llvm::SMRange(), diags_);
    if (loaded.failure == LoadFailure::kUnreadable) {
      program_.root_readable = false;
      return std::move(program_);
    }
    if (loaded.failure == LoadFailure::kNone) {
      Visit(Canonical(root), loaded.buffer_id);
    }
    return std::move(program_);
  }

private:
  static std::string Canonical(llvm::StringRef path) {
    llvm::SmallString<256> real;
    if (!llvm::sys::fs::real_path(path, real)) {
      return std::string(real);
    }
    return path.str();
  }

  /// Parses one loaded file, then its imports, then appends it.
  void Visit(const std::string &key, unsigned buffer_id) {
    parse::Stats stats;
    unsigned errors_before = diags_.error_count();
    ast::Module module = parse::Parse(buffer_id, diags_, {}, &stats);
    if (module.order.empty() && diags_.error_count() == errors_before) {
      // Nothing but whitespace and comments: almost always a truncated or
      // wrong file, so say so rather than accept an empty policy.
      const llvm::MemoryBuffer *mb = diags_.sources().getMemoryBuffer(buffer_id);
      diags_.Report(diag::Kind::kEmptyFile, llvm::SMLoc::getFromPointer(mb->getBufferStart()),
                    "'" + mb->getBufferIdentifier() + "' has no declarations; a policy "
                    "declares queues and rules, a library constants or templates");
    }
    program_.rules_parsed += stats.rules;
    program_.ll_fallbacks += stats.ll_fallbacks;
    in_progress_.push_back({key, nullptr});
    std::map<std::string, llvm::SMRange> imported_here;
    for (const ast::ImportDecl &imp : module.imports) {
      if (diags_.ShouldStop()) {
        break;
      }
      in_progress_.back().second = &imp;
      std::string path = Resolve(imp, module.path);
      if (path.empty()) {
        continue;
      }
      std::string target = Canonical(path);
      auto [first, inserted] = imported_here.try_emplace(target, imp.path_range);
      if (!inserted) {
        diags_.Report(diag::Kind::kDuplicateImport, imp.path_range.Start,
                      "'" + imp.path + "' is imported twice")
            .Range(imp.path_range)
            .AddNote(first->second.Start, "first imported here", first->second);
        continue;
      }
      auto cycle = llvm::find_if(in_progress_, [&](auto &e) { return e.first == target; });
      if (cycle != in_progress_.end()) {
        auto d = diags_.Report(diag::Kind::kImportCycle, imp.path_range.Start,
                               CycleMessage(imp.path, in_progress_.end() - cycle));
        d.Range(imp.path_range);
        // The other imports of the cycle, in the order they are followed.
        for (auto it = cycle; it != in_progress_.end(); ++it) {
          const ast::ImportDecl *step = it->second;
          if (step != nullptr && step != &imp) {
            d.AddNote(step->path_range.Start, "which imports '" + step->path + "' here",
                      step->path_range);
          }
        }
        continue;
      }
      if (done_.count(target) != 0) {
        continue;
      }
      Loaded loaded = LoadSource(path, imp.path_range, diags_);
      if (loaded.failure != LoadFailure::kNone) {
        done_.insert(target);
        continue;
      }
      Visit(target, loaded.buffer_id);
    }
    in_progress_.pop_back();
    done_.insert(key);
    program_.modules.push_back(std::move(module));
  }

  /// How a cycle of `length` files that an import of `path` closes reads.
  static std::string CycleMessage(const std::string &path, ptrdiff_t length) {
    if (length == 1) {
      return "import cycle: this file imports itself";
    }
    if (length == 2) {
      return "import cycle: '" + path + "' imports this file back";
    }
    return "import cycle: '" + path + "' leads back to this file (a cycle of " +
           std::to_string(length) + " files)";
  }

  /// The file an import names, or "" after reporting that it is missing.
  std::string Resolve(const ast::ImportDecl &imp, llvm::StringRef importer) {
    if (!imp.is_module) {
      llvm::SmallString<256> path;
      if (llvm::sys::path::is_absolute(imp.path)) {
        path = imp.path;
      } else {
        path = llvm::sys::path::parent_path(importer);
        llvm::sys::path::append(path, imp.path);
      }
      if (!llvm::sys::fs::exists(path)) {
        diags_.Report(diag::Kind::kImportNotFound, imp.path_range.Start,
                      "cannot find imported file '" + imp.path + "'")
            .Range(imp.path_range)
            .AddNote(imp.path_range.Start, "looked for '" + path + "'");
        return "";
      }
      return std::string(path);
    }
    // std.proto -> std/proto.flow in each stdlib directory.
    llvm::SmallString<128> relative;
    llvm::SmallVector<llvm::StringRef, 4> parts;
    llvm::StringRef(imp.path).split(parts, '.');
    for (llvm::StringRef p : parts) {
      llvm::sys::path::append(relative, p);
    }
    relative += ".flow";
    for (const std::string &dir : search_path_) {
      llvm::SmallString<256> candidate(dir);
      llvm::sys::path::append(candidate, relative);
      if (llvm::sys::fs::exists(candidate)) {
        return std::string(candidate);
      }
    }
    auto d = diags_.Report(diag::Kind::kImportNotFound, imp.path_range.Start,
                           "cannot find module '" + imp.path + "'");
    d.Range(imp.path_range);
    std::string searched;
    for (const std::string &dir : search_path_) {
      searched += (searched.empty() ? "" : ", ") + dir;
    }
    d.AddNote(imp.path_range.Start, "looked for '" + relative + "' in " +
                                        (searched.empty() ? std::string("no directories") : searched) +
                                        "; use --stdlib-dir to add one");
    return "";
  }

  const Options &options_;
  diag::Engine &diags_;
  std::vector<std::string> search_path_;
  Program program_;
  /// Files being visited, with where each imports the next.
  std::vector<std::pair<std::string, const ast::ImportDecl *>> in_progress_;
  std::set<std::string> done_;
};

} // namespace

std::vector<std::string> StdlibSearchPath(const Options &options) {
  std::vector<std::string> dirs = options.stdlib_dirs;
  if (options.default_stdlib_dirs) {
    for (const char *dir : {FLOWSTEER_INSTALLED_STDLIB, FLOWSTEER_SOURCE_STDLIB}) {
      if (llvm::sys::fs::is_directory(dir)) {
        dirs.push_back(dir);
      }
    }
  }
  return dirs;
}

Program LoadProgram(llvm::StringRef root_path, const Options &options, diag::Engine &diags) {
  return ProgramLoader(options, diags).Load(root_path);
}

} // namespace flowc::sema
