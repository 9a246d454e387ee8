/* What the libFuzzer harnesses share: fuzz input made into C strings of
 * their exact size (so AddressSanitizer sees a read one byte past the
 * end), and checks that say which invariant an input broke before they
 * abort (libFuzzer then keeps the input as a crash artifact). */
#ifndef IOB_FUZZ_H
#define IOB_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Abort with the condition and a message when an invariant is broken. */
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: invariant broken: %s\n  ", __FILE__, __LINE__,   \
              #cond);                                                          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* A NUL-terminated copy of `len` bytes, in a block of exactly len + 1. */
static inline char *fuzz_strndup(const void *bytes, size_t len) {
  char *s = malloc(len + 1);
  FUZZ_CHECK(s != NULL, "out of memory");
  memcpy(s, bytes, len);
  s[len] = '\0';
  return s;
}

/* IOB_FUZZ_STRICT=1 adds the checks of what issue 11 asks to be fixed and
 * is not yet: an error message never echoes control bytes. */
static inline bool fuzz_strict(void) {
  static int strict = -1;
  if (strict < 0) {
    const char *v = getenv("IOB_FUZZ_STRICT");
    strict = v != NULL && strcmp(v, "1") == 0;
  }
  return strict == 1;
}

/* Whether `s` holds no control byte (below 0x20, or 0x7f). */
static inline bool fuzz_printable(const char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return false;
  return true;
}

/* Check an error message written into a buffer of `size` bytes: not
 * empty, ended within the buffer, and if `printable`, free of control
 * bytes. */
static inline void fuzz_check_message(const char *error, size_t size,
                                      bool printable) {
  FUZZ_CHECK(memchr(error, '\0', size) != NULL,
             "the message is not ended within its %zu bytes", size);
  FUZZ_CHECK(error[0] != '\0', "a refusal without a message");
  if (printable)
    FUZZ_CHECK(fuzz_printable(error), "the message echoes control bytes: %s",
               error);
}

/* The same message written into a buffer of `small` bytes: what fits of
 * the whole one, ended. */
static inline void fuzz_check_truncated(const char *whole, const char *cut,
                                        size_t small) {
  size_t want = strlen(whole) < small - 1 ? strlen(whole) : small - 1;
  FUZZ_CHECK(strlen(cut) == want && strncmp(whole, cut, want) == 0,
             "in %zu bytes the message is '%s', not the start of '%s'", small,
             cut, whole);
}

#endif
