// flowc: the Flow policy compiler.
#include <vector>

#include "compiler/driver/driver.h"
#include "llvm/Support/InitLLVM.h"

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  std::vector<llvm::StringRef> args(argv + 1, argv + argc);
  return flowc::driver::Main(args, llvm::outs(), llvm::errs());
}
