/* Error texts and names, version and style names. */
#include <string.h>

#include "internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *iob_version(void) {
  return STR(IOB_VERSION_MAJOR) "." STR(IOB_VERSION_MINOR) "." STR(
      IOB_VERSION_PATCH);
}

/* iobound's words for the codes it defines; libuv's for the rest. */
#define IOB_ERRORS(X)                                                        \
  X(IOB_EINVAL, "invalid argument")                                          \
  X(IOB_ENOMEM, "not enough memory")                                         \
  X(IOB_E2BIG, "too many operations for one batch")                          \
  X(IOB_ERANGE, "value out of range")                                        \
  X(IOB_ENOTSUP, "unknown concurrency style or kind of work")                \
  X(IOB_EBUSY, "batch already started or still running")                     \
  X(IOB_EALREADY, "too late: libuv's thread pool is already running")        \
  X(IOB_EAGAIN, "the system refused to create a thread")                     \
  X(IOB_ECANCELED, "operation cancelled")                                    \
  X(IOB_ETIMEDOUT, "operation timed out")                                   \
  X(IOB_EPERM, "called from a thread that does not run the batch's loop")    \
  X(IOB_EIO, "could not write the output")

const char *iob_strerror(int err) {
#define X(code, text)                                                        \
  if (err == code)                                                           \
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
#define X(code, text)                                                        \
  if (err == code)                                                           \
    return #code;
  IOB_ERRORS(X)
#undef X
  if (err == 0)
    return "OK";
  static _Thread_local char name[80];
  return uv_err_name_r(err, name, sizeof(name));
}

static const char *const style_names[IOB_STYLE_COUNT_] = {
    [IOB_STYLE_SEQUENTIAL] = "sequential",
    [IOB_STYLE_LOOP] = "loop",
    [IOB_STYLE_POOL] = "pool",
    [IOB_STYLE_THREADS] = "threads",
};

const char *iob_style_name(iob_style style) {
  return (unsigned)style < IOB_STYLE_COUNT_ ? style_names[style] : NULL;
}

/* The index of `name` among `n` names, or IOB_ENOTSUP. */
static int find_name(const char *const *names, int n, const char *name) {
  for (int k = 0; k < n; k++)
    if (strcmp(name, names[k]) == 0)
      return k;
  return IOB_ENOTSUP;
}

int iob_style_parse(const char *name, iob_style *style) {
  if (name == NULL || style == NULL)
    return IOB_EINVAL;
  int k = find_name(style_names, IOB_STYLE_COUNT_, name);
  if (k >= 0)
    *style = (iob_style)k;
  return k < 0 ? k : 0;
}

static const char *const work_names[IOB_WORK_COUNT_] = {
    [IOB_WORK_WAIT] = "wait",
    [IOB_WORK_CPU] = "cpu",
    [IOB_WORK_USER] = "user",
};

const char *iob_work_name(iob_work work) {
  return (unsigned)work < IOB_WORK_COUNT_ ? work_names[work] : NULL;
}

int iob_work_parse(const char *name, iob_work *work) {
  if (name == NULL || work == NULL)
    return IOB_EINVAL;
  int k = find_name(work_names, IOB_WORK_COUNT_, name);
  if (k >= 0)
    *work = (iob_work)k;
  return k < 0 ? k : 0;
}
