/* Error texts and names, and the version. */
#include <string.h>

#include "internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *iob_version(void) {
  return STR(IOB_VERSION_MAJOR) "." STR(IOB_VERSION_MINOR) "." STR(
      IOB_VERSION_PATCH);
}

/* Words for the codes iobound defines. An operation's status may be any
 * of them for its own reasons (a query's IOB_EIO, a socket's
 * IOB_ETIMEDOUT), so each text is true for the code wherever it came
 * from; what a code means for one iobound call is that call's
 * documentation. Where libuv's own text would not do (it speaks of
 * sockets: "operation not supported on socket"), a plainer one. Other
 * codes get libuv's words. */
#define IOB_ERRORS(X)                                                          \
  X(IOB_EINVAL, "invalid argument")                                            \
  X(IOB_ENOMEM, "not enough memory")                                           \
  X(IOB_E2BIG, "too many or too large")                                        \
  X(IOB_ERANGE, "value out of range")                                          \
  X(IOB_ENOTSUP, "operation not supported")                                    \
  X(IOB_EBUSY, "resource busy")                                                \
  X(IOB_EALREADY, "already in progress")                                       \
  X(IOB_EAGAIN, "resource temporarily unavailable")                            \
  X(IOB_ECANCELED, "operation canceled")                                       \
  X(IOB_ETIMEDOUT, "timed out")                                                \
  X(IOB_EPERM, "operation not permitted")                                      \
  X(IOB_EIO, "input/output error")                                             \
  X(IOB_ESHUTDOWN, "shut down or closed: nothing more is taken")               \
  X(IOB_EBREAKER, "a circuit breaker is open: the call was not made")          \
  X(IOB_ENODATA, "nothing to measure: no operations")

const char *iob_strerror(int err) {
#define X(code, text)                                                          \
  if (err == code)                                                             \
    return text;
  IOB_ERRORS(X)
#undef X
  if (err == 0)
    return "success";
  /* uv_strerror() allocates a new string for codes it does not know, on
   * every call; the _r form writes into a buffer of ours instead. */
  static _Thread_local char text[80];
  return uv_strerror_r(err, text, sizeof(text));
}

const char *iob_err_name(int err) {
#define X(code, text)                                                          \
  if (err == code)                                                             \
    return #code;
  IOB_ERRORS(X)
#undef X
  if (err == 0)
    return "OK";
  static _Thread_local char name[80];
  return uv_err_name_r(err, name, sizeof(name));
}
