// libflowrt for C++: RAII owners of policies and installations over the C API of flowrt.h.
#ifndef FLOWRT_FLOWRT_HPP
#define FLOWRT_FLOWRT_HPP

// Errors are exceptions of type flowrt::Error carrying the C API's errno, rule index and
// message. Header-only: link with libflowrt as for C. The thread-safety rules of flowrt.h
// apply to the objects here.

#include "flowrt/flowrt.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace flowrt {

/// A failed libflowrt call: what() is the C API's message.
class Error : public std::runtime_error {
public:
  explicit Error(const flowrt_error &e)
      : std::runtime_error(e.message), errnum_(e.errnum), rule_(e.rule) {}
  /// The positive errno of the failure.
  int errnum() const { return errnum_; }
  /// The index of the rule involved, or FLOWRT_NO_RULE.
  std::uint32_t rule() const { return rule_; }

private:
  int errnum_;
  std::uint32_t rule_;
};

namespace detail {
inline void Check(int rc, const flowrt_error &e) {
  if (rc != 0) {
    throw Error(e);
  }
}
} // namespace detail

/// An opened compiled policy (flowrt_policy_open()); movable, not copyable.
class Policy {
public:
  /// Opens the .fbin file at `path`; throws Error.
  static Policy Open(const std::string &path) {
    flowrt_error e;
    flowrt_policy *p = flowrt_policy_open(path.c_str(), &e);
    if (p == nullptr) {
      throw Error(e);
    }
    return Policy(p);
  }
  /// Opens a compiled policy from memory (copied); throws Error.
  static Policy FromMemory(const void *data, std::size_t size) {
    flowrt_error e;
    flowrt_policy *p = flowrt_policy_open_mem(data, size, &e);
    if (p == nullptr) {
      throw Error(e);
    }
    return Policy(p);
  }

  Policy(Policy &&other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  Policy &operator=(Policy &&other) noexcept {
    if (this != &other) {
      flowrt_policy_close(p_);
      p_ = std::exchange(other.p_, nullptr);
    }
    return *this;
  }
  Policy(const Policy &) = delete;
  Policy &operator=(const Policy &) = delete;
  ~Policy() { flowrt_policy_close(p_); }

  /// The target profile: "mlx5", "mlx4" or "generic".
  std::string Target() const { return flowrt_policy_target(p_); }
  /// The number of hardware rules.
  std::uint32_t NumRules() const { return flowrt_policy_num_rules(p_); }
  /// The number of symbols of `kind`.
  std::uint32_t NumSymbols(flowrt_symbol_kind kind) const {
    return flowrt_policy_num_symbols(p_, kind);
  }
  /// The name of symbol `index` of `kind`; throws std::out_of_range past the end.
  std::string Symbol(flowrt_symbol_kind kind, std::uint32_t index) const {
    const char *name = flowrt_policy_symbol(p_, kind, index);
    if (name == nullptr) {
      throw std::out_of_range("no such symbol");
    }
    return name;
  }

  /// Binds queue `name` to `qp`; throws Error.
  void BindQueue(const std::string &name, ibv_qp *qp) {
    flowrt_error e;
    detail::Check(flowrt_bind_queue(p_, name.c_str(), qp, &e), e);
  }
  /// Binds counter `name` to a counters object the caller attached; throws Error.
  void BindCounters(const std::string &name, ibv_counters *counters) {
    flowrt_error e;
    detail::Check(flowrt_bind_counters(p_, name.c_str(), counters, &e), e);
  }
  /// Binds handle `name` to a flow action; throws Error.
  void BindHandle(const std::string &name, ibv_flow_action *action) {
    flowrt_error e;
    detail::Check(flowrt_bind_handle(p_, name.c_str(), action, &e), e);
  }
  /// Binds the QP that rules with no queue are created on; throws Error.
  void BindAnchor(ibv_qp *qp) {
    flowrt_error e;
    detail::Check(flowrt_bind_anchor(p_, qp, &e), e);
  }
  /// Checks the device of `context` (flowrt_check_device()); throws Error.
  void CheckDevice(ibv_context *context) const {
    flowrt_error e;
    detail::Check(flowrt_check_device(context, p_, &e), e);
  }

  /// The C handle, for calls this wrapper does not cover.
  flowrt_policy *get() const { return p_; }

private:
  explicit Policy(flowrt_policy *p) : p_(p) {}
  flowrt_policy *p_;
};

/// An installed policy (flowrt_install()); uninstalled when destroyed. The Policy objects it
/// uses must outlive it (or be replaced by Update()).
class Installation {
public:
  /// Installs `policy` on the device of `context`, all or nothing; throws Error.
  Installation(ibv_context *context, Policy &policy, const flowrt_install_attr *attr = nullptr) {
    flowrt_error e;
    inst_ = flowrt_install(context, policy.get(), attr, &e);
    if (inst_ == nullptr) {
      throw Error(e);
    }
  }
  Installation(Installation &&other) noexcept : inst_(std::exchange(other.inst_, nullptr)) {}
  Installation &operator=(Installation &&other) noexcept {
    if (this != &other) {
      flowrt_uninstall(inst_, nullptr);
      inst_ = std::exchange(other.inst_, nullptr);
    }
    return *this;
  }
  Installation(const Installation &) = delete;
  Installation &operator=(const Installation &) = delete;
  /// Uninstalls; errors are dropped (call Uninstall() to see them).
  ~Installation() { flowrt_uninstall(inst_, nullptr); }

  /// Replaces the policy make-before-break (flowrt_update()); throws Error, and then the old
  /// policy is still installed.
  void Update(Policy &next, unsigned flags = 0) {
    flowrt_error e;
    detail::Check(flowrt_update(inst_, next.get(), flags, &e), e);
  }
  /// Packets and bytes of counter `name`; throws Error.
  std::pair<std::uint64_t, std::uint64_t> ReadCounter(const std::string &name) {
    flowrt_error e;
    std::uint64_t packets = 0, bytes = 0;
    detail::Check(flowrt_read_counter(inst_, name.c_str(), &packets, &bytes, &e), e);
    return {packets, bytes};
  }
  /// The number of flows installed.
  std::uint32_t NumFlows() const {
    return inst_ != nullptr ? flowrt_installation_num_flows(inst_) : 0;
  }
  /// Uninstalls now; throws Error (everything is removed either way).
  void Uninstall() {
    flowrt_error e;
    int rc = flowrt_uninstall(std::exchange(inst_, nullptr), &e);
    detail::Check(rc, e);
  }

private:
  flowrt_installation *inst_;
};

} // namespace flowrt

#endif // FLOWRT_FLOWRT_HPP
