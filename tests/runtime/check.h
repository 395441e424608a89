/* The check macros of the runtime's C tests: count every check, print each
 * failure with its location, and let main() report the totals. */
#ifndef FLOWRT_TESTS_RUNTIME_CHECK_H
#define FLOWRT_TESTS_RUNTIME_CHECK_H

#include <stdarg.h>
#include <stdio.h>

/// How many checks ran and how many failed; main() prints and returns them.
static unsigned checks;
static unsigned failures;

/// Counts one check; on failure prints `what` at file:line, and the
/// printf-style `format` (if not NULL) as context.
static void check_at(int ok, const char *file, int line, const char *what, const char *format,
                     ...) {
  ++checks;
  if (ok) {
    return;
  }
  ++failures;
  fprintf(stderr, "%s:%d: check failed: %s", file, line, what);
  if (format != NULL) {
    va_list args;
    va_start(args, format);
    fputs(" (", stderr);
    vfprintf(stderr, format, args);
    fputs(")", stderr);
    va_end(args);
  }
  fputc('\n', stderr);
}

/// Checks `cond`; on failure prints it with its location.
#define CHECK(cond) check_at((cond) != 0, __FILE__, __LINE__, #cond, NULL)
/// Checks `cond`; on failure also prints a printf-style context.
#define CHECKF(cond, ...) check_at((cond) != 0, __FILE__, __LINE__, #cond, __VA_ARGS__)

#endif /* FLOWRT_TESTS_RUNTIME_CHECK_H */
