// Opening compiled policies and binding their symbols to verbs objects.
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int flowrt_fail(struct flowrt_error *err, int errnum, uint32_t rule, const char *fmt, ...) {
  if (err != NULL) {
    err->errnum = errnum;
    err->rule = rule;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  errno = errnum;
  return -errnum;
}

uint16_t flowrt_load16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t flowrt_load32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static const enum flowrt_fbin_table kTableOf[4] = {
    [FLOWRT_QUEUE] = FLOWRT_FBIN_QUEUES,
    [FLOWRT_COUNTER] = FLOWRT_FBIN_COUNTERS,
    [FLOWRT_HANDLE] = FLOWRT_FBIN_HANDLES,
};

static const char *const kKindName[4] = {
    [FLOWRT_QUEUE] = "queue", [FLOWRT_COUNTER] = "counter", [FLOWRT_HANDLE] = "handle"};

static bool valid_kind(enum flowrt_symbol_kind kind) {
  return kind == FLOWRT_QUEUE || kind == FLOWRT_COUNTER || kind == FLOWRT_HANDLE;
}

// Takes ownership of `data` (malloc'd) whatever happens.
static struct flowrt_policy *open_owned(unsigned char *data, size_t size, const char *what,
                                        struct flowrt_error *err) {
  struct flowrt_policy *p = calloc(1, sizeof *p);
  if (p == NULL) {
    free(data);
    flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "%s: out of memory", what);
    return NULL;
  }
  p->data = data;
  p->size = size;
  char why[256];
  int rc = flowrt_fbin_open(data, size, &p->fbin, why, sizeof why);
  if (rc != 0) {
    flowrt_fail(err, -rc, FLOWRT_NO_RULE, "%s: not a valid compiled policy: %s", what, why);
    flowrt_policy_close(p);
    return NULL;
  }
  p->num_rules = flowrt_fbin_count(&p->fbin, FLOWRT_FBIN_RULES);
  for (int k = FLOWRT_QUEUE; k <= FLOWRT_HANDLE; ++k) {
    p->num_symbols[k] = flowrt_fbin_count(&p->fbin, kTableOf[k]);
  }
  // calloc(0) may return NULL; ask for one element at least.
  p->queues = calloc(p->num_symbols[FLOWRT_QUEUE] + 1, sizeof *p->queues);
  p->counters = calloc(p->num_symbols[FLOWRT_COUNTER] + 1, sizeof *p->counters);
  p->handles = calloc(p->num_symbols[FLOWRT_HANDLE] + 1, sizeof *p->handles);
  if (p->queues == NULL || p->counters == NULL || p->handles == NULL) {
    flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "%s: out of memory", what);
    flowrt_policy_close(p);
    return NULL;
  }
  return p;
}

struct flowrt_policy *flowrt_policy_open(const char *path, struct flowrt_error *err) {
  if (path == NULL) {
    flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "no policy file given");
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    flowrt_fail(err, e, FLOWRT_NO_RULE, "%s: cannot open: %s", path, strerror(e));
    return NULL;
  }
  size_t cap = 1 << 16, size = 0;
  unsigned char *data = malloc(cap);
  while (data != NULL) {
    size += fread(data + size, 1, cap - size, f);
    if (size < cap) {
      break;
    }
    unsigned char *grown = cap <= SIZE_MAX / 2 ? realloc(data, cap * 2) : NULL;
    if (grown == NULL) {
      free(data);
      data = NULL;
      break;
    }
    data = grown;
    cap *= 2;
  }
  int read_error = data != NULL && ferror(f);
  fclose(f);
  if (data == NULL) {
    flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "%s: out of memory", path);
    return NULL;
  }
  if (read_error) {
    free(data);
    flowrt_fail(err, EIO, FLOWRT_NO_RULE, "%s: read error", path);
    return NULL;
  }
  return open_owned(data, size, path, err);
}

struct flowrt_policy *flowrt_policy_open_mem(const void *data, size_t size,
                                             struct flowrt_error *err) {
  if (data == NULL && size > 0) {
    flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "policy data is NULL");
    return NULL;
  }
  unsigned char *copy = malloc(size > 0 ? size : 1);
  if (copy == NULL) {
    flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "policy in memory: out of memory");
    return NULL;
  }
  if (size > 0) {
    memcpy(copy, data, size);
  }
  return open_owned(copy, size, "policy in memory", err);
}

void flowrt_policy_close(struct flowrt_policy *policy) {
  if (policy == NULL) {
    return;
  }
  free(policy->queues);
  free(policy->counters);
  free(policy->handles);
  free(policy->floating);
  free(policy->data);
  free(policy);
}

const char *flowrt_policy_target(const struct flowrt_policy *policy) {
  return policy->fbin.profile;
}

const char *flowrt_policy_capabilities(const struct flowrt_policy *policy) {
  return policy->fbin.capabilities;
}

const struct flowrt_fbin *flowrt_policy_fbin(const struct flowrt_policy *policy) {
  return &policy->fbin;
}

uint32_t flowrt_policy_num_rules(const struct flowrt_policy *policy) {
  return policy->num_rules;
}

uint32_t flowrt_policy_num_symbols(const struct flowrt_policy *policy,
                                   enum flowrt_symbol_kind kind) {
  return valid_kind(kind) ? policy->num_symbols[kind] : 0;
}

const char *flowrt_policy_symbol(const struct flowrt_policy *policy, enum flowrt_symbol_kind kind,
                                 uint32_t index) {
  return valid_kind(kind) ? flowrt_fbin_symbol(&policy->fbin, kTableOf[kind], index) : NULL;
}

int flowrt_policy_describe_rule(const struct flowrt_policy *policy, uint32_t index, char *buf,
                                size_t len) {
  struct flowrt_fbin_rule r;
  if (flowrt_fbin_rule(&policy->fbin, index, &r) != 0) {
    return snprintf(buf, len, "rule %u", index);
  }
  const char *file = r.file[0] != '\0' ? r.file : "<unknown>";
  if (r.name[0] != '\0') {
    return snprintf(buf, len, "rule %u '%s' (%s:%u:%u)", index, r.name, file, r.line, r.column);
  }
  return snprintf(buf, len, "rule %u (%s:%u:%u)", index, file, r.line, r.column);
}

// Finds `name` among the symbols of `kind`; on failure says what `name` is instead.
static int find_symbol(const struct flowrt_policy *p, enum flowrt_symbol_kind kind,
                       const char *name, uint32_t *index, struct flowrt_error *err) {
  if (name == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "no %s name given", kKindName[kind]);
  }
  if (flowrt_fbin_find_symbol(&p->fbin, kTableOf[kind], name, index) == 0) {
    return 0;
  }
  for (int other = FLOWRT_QUEUE; other <= FLOWRT_HANDLE; ++other) {
    uint32_t i;
    if (other != (int)kind && flowrt_fbin_find_symbol(&p->fbin, kTableOf[other], name, &i) == 0) {
      return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "'%s' is a %s of the policy, not a %s", name,
                         kKindName[other], kKindName[kind]);
    }
  }
  return flowrt_fail(err, ENOENT, FLOWRT_NO_RULE, "the policy declares no %s '%s'", kKindName[kind],
                     name);
}

int flowrt_bind_queue(struct flowrt_policy *policy, const char *name, struct ibv_qp *qp,
                      struct flowrt_error *err) {
  uint32_t i;
  int rc = find_symbol(policy, FLOWRT_QUEUE, name, &i, err);
  if (rc != 0) {
    return rc;
  }
  if (qp == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "queue '%s': the QP is NULL", name);
  }
  policy->queues[i] = qp;
  return 0;
}

int flowrt_bind_counters(struct flowrt_policy *policy, const char *name,
                         struct ibv_counters *counters, struct flowrt_error *err) {
  uint32_t i;
  int rc = find_symbol(policy, FLOWRT_COUNTER, name, &i, err);
  if (rc != 0) {
    return rc;
  }
  if (counters == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "counter '%s': the counters object is NULL",
                       name);
  }
  policy->counters[i] = counters;
  return 0;
}

int flowrt_bind_handle(struct flowrt_policy *policy, const char *name,
                       struct ibv_flow_action *action, struct flowrt_error *err) {
  uint32_t i;
  int rc = find_symbol(policy, FLOWRT_HANDLE, name, &i, err);
  if (rc != 0) {
    return rc;
  }
  if (action == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "handle '%s': the flow action is NULL", name);
  }
  policy->handles[i] = action;
  return 0;
}

int flowrt_bind_anchor(struct flowrt_policy *policy, struct ibv_qp *qp, struct flowrt_error *err) {
  if (qp == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "the anchor QP is NULL");
  }
  policy->anchor = qp;
  return 0;
}
