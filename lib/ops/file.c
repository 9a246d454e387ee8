/* Files on disk: the kind iob_kind_file. An operation either does what
 * its input says (an iob_file_request: write, append or read a file the
 * application names) or, without one, what its target says (write a file
 * of its own and remove it, or read one the target prepared).
 *
 * Either way an operation is a short plan of system calls (open, statx,
 * writes or reads, fsync, close, rename, the directory's fsync, unlink),
 * made one at a time by next_call() and took(), which know nothing of
 * how a call is made. Three drivers make them:
 * - on a thread (the thread styles' run(), and the pool below), the
 *   blocking calls, one after another;
 * - on the loop styles where the kernel has io_uring, as requests on a
 *   ring of the batch's, one per loop, whose completions the loop hears
 *   through an eventfd: the disk I/O overlaps without a thread;
 * - on the loop styles otherwise (no liburing at build time, a kernel
 *   without io_uring or one that refuses it, IOBOUND_IO_URING=0), the
 *   whole plan as one job on libuv's thread pool, as the pool style runs
 *   an operation.
 *
 * The directory may be shared with other users (/tmp): a name someone
 * else can predict is a name they can plant a symbolic link or a FIFO at
 * first. So every file this kind creates under a name of its own (a
 * target's, an atomic write's temporary) gets 64 random bits in its name
 * and is created with O_EXCL | O_NOFOLLOW, and every open refuses a
 * symbolic link at the last component unless the request says
 * IOB_FILE_FOLLOW; a read opens with O_NONBLOCK and reads only a regular
 * file: it never follows a link nor waits on a FIFO. */
#define _GNU_SOURCE /* statx(), renameat2() */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iobound.h"
#include "target.h"

#ifdef IOB_HAVE_LIBURING
#include <liburing.h>
#include <sys/eventfd.h>
#endif

/* The most bytes one write or read moves: a file of 1 GiB is 1,024 of
 * them, and a target's operation never holds more than this. */
#define CHUNK ((size_t)1 << 20)
/* Room for "/iobound-read-PID-RANDOM-INDEX" after a target's directory. */
#define NAME_ROOM 64
/* The largest file a request writes or reads: 1 GiB. */
#define FILE_MAX ((uint64_t)IOB_FILE_SIZE_MAX_KIB * 1024)
#define ALL_FLAGS                                                              \
  (IOB_FILE_ATOMIC | IOB_FILE_FSYNC | IOB_FILE_NEW | IOB_FILE_FOLLOW |         \
   IOB_FILE_BORROW)

struct iob_file_target {
  iob__users users; /* first: see target.h */
  char *dir;
  char *pattern; /* chunk bytes to write, shared and read only */
  uint64_t size; /* bytes per file */
  size_t chunk;  /* min(size, CHUNK) */
  uint32_t files;
  iob_file_mode mode;
  bool fsync;
  uint64_t token; /* read mode: the random part of its files' names */
};

/* ---- names --------------------------------------------------------------- */

/* 64 bits no one else can predict. */
static int random_bits(uint64_t *out) {
  return uv_random(NULL, NULL, out, sizeof(*out), 0, NULL);
}

/* The name of a read target's file `index`. */
static void read_path(const iob_file_target *t, uint32_t index, char *out,
                      size_t size) {
  snprintf(out, size, "%s/iobound-read-%ld-%016" PRIx64 "-%" PRIu32, t->dir,
           (long)getpid(), t->token, index);
}

/* How a file is created under a name of our own: never one that exists,
 * never through a symbolic link (O_EXCL alone already refuses one;
 * O_NOFOLLOW says it twice). */
#define CREATE_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
/* How a file is opened to be read: not through a link, and without
 * waiting for a writer should someone have put a FIFO there. */
#define READ_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)

/* 0 for a regular file's mode; else why it is not one to read. */
static int regular(uint64_t mode) {
  if (S_ISREG(mode))
    return 0;
  return S_ISDIR(mode) ? UV_EISDIR : UV_EFTYPE;
}

static int sys_error(void) { return uv_translate_sys_error(errno); }

/* ---- the plan of an operation -------------------------------------------- */

typedef enum call_kind {
  C_NONE,
  C_OPEN,
  C_STAT, /* reading: what was opened is a regular file, and its size */
  C_MOVE, /* write or read a chunk; repeated */
  C_FSYNC,
  C_CLOSE,
  C_RENAME,   /* atomic: the temporary file takes the name */
  C_OPEN_DIR, /* atomic and fsync: the rename itself made durable */
  C_FSYNC_DIR,
  C_CLOSE_DIR,
  C_UNLINK,
} call_kind;

/* One system call, as a driver makes it. */
typedef struct call {
  call_kind what;
  bool reading;
  int fd;
  int flags; /* open: flags; rename: renameat2() flags */
  unsigned perm;
  const char *path, *to;
  void *buf;
  size_t len;
  uint64_t off;
} call;

/* What an operation does, set by start() or run(), then where it is. */
typedef struct file_op {
  iob_op *op;
  /* the plan */
  char *path;        /* the file opened (an atomic write's temporary) */
  const char *final; /* atomic: the name it takes; else NULL */
  char *dir;         /* atomic and fsync: the directory to fsync */
  int open_flags;
  unsigned perm;
  int rename_flags;
  const char *src; /* writing: the bytes, from src[done % wrap] */
  uint64_t wrap;
  uint64_t size;      /* writing: the bytes; reading: the most */
  bool reading, keep; /* keep: read into memory, handed back */
  bool check;         /* opened a name that may exist: a regular file? */
  bool fsync;
  bool remove;  /* a target's file: removed once written */
  bool unowned; /* created under a name of ours: removed on failure */
  /* where it is */
  call_kind at; /* the call in flight, or the last made */
  int fd, dir_fd;
  uint64_t done;
  bool eof, created;
  bool committed;      /* an atomic write's file took its name: no going back */
  int status;          /* the first failure, or 0 */
  call_kind failed_at; /* and the call that failed */
  char *buf;
  size_t cap;
  struct statx stx;
  /* the drivers' */
  uv_work_t work;
  char path_room[IOB_FILE_DIR_MAX + NAME_ROOM];
} file_op;

/* Why the operation must stop now, or 0 (a target preparing its files
 * has no operation). */
static int stopping(const file_op *f) {
  return f->op != NULL ? iob_op_stopping(f->op) : 0;
}

static void fail(file_op *f, int status, call_kind at) {
  if (f->status != 0)
    return;
  f->status = status;
  f->failed_at = at;
}

/* Reading into memory: room for the next read, growing the buffer as the
 * file turns out longer than its size said (a file being written, or in
 * /proc), never past size + 1 (the extra byte tells a file too large from
 * one of exactly the most). 0, or the code to fail with. */
static int room_to_read(file_op *f) {
  if (f->done < f->cap)
    return 0;
  uint64_t most = f->size + 1;
  if (f->cap >= most)
    return UV_EFBIG;
  uint64_t want = f->cap < 4096 ? 4096 : (uint64_t)f->cap * 2;
  if (want > most)
    want = most;
  char *grown = realloc(f->buf, (size_t)want + 1); /* + the NUL */
  if (grown == NULL)
    return IOB_ENOMEM;
  f->buf = grown;
  f->cap = (size_t)want;
  return 0;
}

/* The next read or write, or false when there is none. */
static bool next_move(file_op *f, call *c) {
  if (f->reading && !f->keep) { /* a target's: a chunk at a time, dropped */
    if (f->eof || f->done >= f->size)
      return false;
    uint64_t n = f->size - f->done;
    c->buf = f->buf;
    c->len = (size_t)(n < f->cap ? n : f->cap);
  } else if (f->reading) {
    if (f->eof)
      return false;
    int err = room_to_read(f);
    if (err != 0) {
      fail(f, err, C_MOVE);
      return false;
    }
    uint64_t n = f->cap - f->done;
    c->buf = f->buf + f->done;
    c->len = (size_t)(n < CHUNK ? n : CHUNK);
  } else {
    if (f->done >= f->size)
      return false;
    uint64_t at = f->done % f->wrap, n = f->size - f->done;
    if (n > f->wrap - at)
      n = f->wrap - at;
    c->buf = (void *)(uintptr_t)(f->src + at);
    c->len = (size_t)(n < CHUNK ? n : CHUNK);
  }
  c->what = C_MOVE;
  c->reading = f->reading;
  c->fd = f->fd;
  c->off = f->done;
  return true;
}

/* The call to make next, in *c, or false when the plan is done. Once a
 * call failed or a stop came, only what cleans up is left: close what is
 * open, remove what was created under a name of ours. */
static bool next_call(file_op *f, call *c) {
  /* A stop ends the plan, unless the file already took its name: what
   * is left then (the directory's fsync) makes it last. */
  if (f->status == 0 && !f->committed && stopping(f) != 0)
    f->status = stopping(f); /* no message: the record says why */
  bool going = f->status == 0;
  memset(c, 0, sizeof(*c));
  c->fd = f->fd;
  if (going && f->at < C_OPEN) {
    *c = (call){.what = C_OPEN,
                .path = f->path,
                .flags = f->open_flags,
                .perm = f->perm,
                .fd = -1};
  } else if (going && f->check && f->at < C_STAT) {
    c->what = C_STAT;
  } else if (going && f->at <= C_MOVE && next_move(f, c)) {
    /* c is set */
  } else if (f->status == 0 && f->fsync && f->at < C_FSYNC) {
    c->what = C_FSYNC;
  } else if (f->fd >= 0) {
    c->what = C_CLOSE;
  } else if (f->status == 0 && f->final != NULL && f->at < C_RENAME) {
    *c = (call){.what = C_RENAME,
                .path = f->path,
                .to = f->final,
                .flags = f->rename_flags,
                .fd = -1};
  } else if (f->status == 0 && f->dir != NULL && f->at < C_OPEN_DIR) {
    *c = (call){.what = C_OPEN_DIR,
                .path = f->dir,
                .fd = -1,
                .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC};
  } else if (f->dir_fd >= 0) {
    c->what = f->status == 0 && f->at < C_FSYNC_DIR ? C_FSYNC_DIR : C_CLOSE_DIR;
    c->fd = f->dir_fd;
  } else if (f->created && (f->remove || f->status != 0)) {
    *c = (call){.what = C_UNLINK, .path = f->path, .fd = -1};
  } else {
    return false;
  }
  f->at = c->what;
  if (c->what == C_CLOSE || c->what == C_CLOSE_DIR) { /* never twice */
    if (c->what == C_CLOSE)
      f->fd = -1;
    else
      f->dir_fd = -1;
  }
  if (c->what == C_UNLINK)
    f->created = false; /* never twice, whatever it says */
  return true;
}

/* What a call returned: >= 0, or a libuv code. */
static void took(file_op *f, const call *c, int64_t result) {
  if (result < 0) {
    fail(f, (int)result, c->what);
    return;
  }
  switch (c->what) {
  case C_OPEN:
    f->fd = (int)result;
    f->created = f->unowned;
    break;
  case C_OPEN_DIR:
    f->dir_fd = (int)result;
    break;
  case C_RENAME:
    f->created = false; /* under its final name: the application's now */
    f->committed = true;
    break;
  case C_STAT: {
    /* The size is only a first guess: /proc says 0 and /sys 4096 whatever
     * they hold, so a file is too large only once more than the most was
     * read (room_to_read()). */
    int err = regular(f->stx.stx_mode);
    /* Opened without waiting, in case it was a FIFO; a regular file's
     * calls must wait for the disk (io_uring would say EAGAIN). */
    if (err == 0 && fcntl(f->fd, F_SETFL, f->open_flags & O_APPEND) != 0)
      err = sys_error();
    if (err != 0)
      fail(f, err, C_STAT);
    else if (f->keep && f->buf == NULL) { /* room for it all, and the end */
      uint64_t guess = f->stx.stx_size < f->size ? f->stx.stx_size : f->size;
      f->cap = (size_t)guess + 1;
      if ((f->buf = malloc(f->cap + 1)) == NULL)
        fail(f, IOB_ENOMEM, C_STAT);
    }
    break;
  }
  case C_MOVE:
    if (result == 0 && !c->reading)
      fail(f, UV_EIO, C_MOVE); /* a write that wrote nothing */
    f->eof = result == 0;
    f->done += (uint64_t)result;
    break;
  default:
    break;
  }
}

/* ---- the blocking driver ------------------------------------------------- */

static int64_t sys_result(int64_t r) { return r < 0 ? sys_error() : r; }

static int64_t make_blocking(file_op *f, const call *c) {
  int64_t r;
  do {
    switch (c->what) {
    case C_OPEN:
    case C_OPEN_DIR:
      r = sys_result(open(c->path, c->flags, c->perm));
      break;
    case C_STAT:
      r = sys_result(
          statx(c->fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &f->stx));
      break;
    case C_MOVE:
      r = sys_result(c->reading ? pread(c->fd, c->buf, c->len, (off_t)c->off)
                                : pwrite(c->fd, c->buf, c->len, (off_t)c->off));
      break;
    case C_FSYNC:
    case C_FSYNC_DIR:
      r = sys_result(fsync(c->fd));
      break;
    case C_CLOSE:
    case C_CLOSE_DIR:
      return sys_result(close(c->fd)); /* never again, even on EINTR */
    case C_RENAME:
      r = sys_result(renameat2(AT_FDCWD, c->path, AT_FDCWD, c->to, c->flags));
      break;
    default:
      r = sys_result(unlink(c->path));
      break;
    }
  } while (r == UV_EINTR);
  return r;
}

static void run_blocking(file_op *f) {
  call c;
  while (next_call(f, &c))
    took(f, &c, make_blocking(f, &c));
}

/* ---- what an operation hands back ---------------------------------------- */

static const char *verb(call_kind at, bool reading) {
  switch (at) {
  case C_OPEN:
  case C_STAT:
    return "open";
  case C_MOVE:
    return reading ? "read" : "write";
  case C_FSYNC:
    return "fsync";
  case C_CLOSE:
    return "close";
  case C_RENAME:
    return "rename";
  case C_OPEN_DIR:
  case C_FSYNC_DIR:
  case C_CLOSE_DIR:
    return "fsync the directory of";
  default:
    return "remove";
  }
}

/* Say what failed, where, and what would help when a word can:
 * "cannot open /x/y: permission denied". */
static void explain(file_op *f) {
  const char *hint = "";
  if (f->status == UV_ELOOP && f->failed_at == C_OPEN)
    hint = " (a symbolic link: IOB_FILE_FOLLOW follows one)";
  else if (f->status == UV_EAGAIN && f->failed_at == C_OPEN)
    hint = " (a lease on it, held by another process: try again)";
  else if (f->status == UV_ENXIO && f->failed_at == C_OPEN)
    hint = " (a FIFO no one reads)";
  else if (f->status == UV_EFBIG)
    hint = f->keep ? " (over max_read)" : "";
  /* An atomic write is named by the application's path; the temporary
   * it failed on, after it. */
  bool temporary = f->final != NULL && f->failed_at < C_RENAME;
  const char *name = f->final != NULL && f->failed_at < C_OPEN_DIR  ? f->final
                     : f->dir != NULL && f->failed_at >= C_OPEN_DIR ? f->dir
                                                                    : f->path;
  size_t size = strlen(name) + strlen(f->path) + 160;
  char *text = malloc(size);
  if (text == NULL)
    return;
  snprintf(text, size, "cannot %s %s%s%s%s: %s%s",
           verb(f->failed_at, f->reading), name,
           temporary ? " (its temporary " : "", temporary ? f->path : "",
           temporary ? ")" : "", uv_strerror(f->status), hint);
  iob_op_set_message(f->op, text);
  free(text);
}

/* The operation's outcome, from what its calls did; 0 or its status. */
static int outcome(file_op *f) {
  iob_op *op = f->op;
  if (f->status == 0 && f->keep) {
    iob_file_result *r = malloc(sizeof(*r));
    if (r == NULL || iob_op_set_result(op, r) != 0) {
      free(r);
      f->status = IOB_ENOMEM;
      return f->status;
    }
    f->buf[f->done] = '\0';
    *r = (iob_file_result){.data = f->buf, .len = (size_t)f->done};
    f->buf = NULL;
  }
  if (f->status == 0)
    iob_op_set_value(op, f->done);
  else if (f->status != IOB_ECANCELED && f->status != IOB_ETIMEDOUT)
    explain(f);
  /* Stopped too late to undo: the record will say the stop's reason, so
   * the message says what happened all the same. */
  if (f->status == 0 && f->committed && stopping(f) != 0) {
    size_t size = strlen(f->final) + 64;
    char *text = malloc(size);
    if (text != NULL) {
      snprintf(text, size, "replaced %s before the stop", f->final);
      iob_op_set_message(op, text);
      free(text);
    }
  }
  return f->status;
}

/* ---- plans: the target's, and a request's --------------------------------- */

/* A target's operation `op`: write a file of its own under a random name
 * and remove it, or read file i % files. */
static int plan_target(file_op *f, const iob_file_target *t) {
  f->path = f->path_room;
  f->reading = t->mode == IOB_FILE_READ;
  f->size = t->size;
  if (f->reading) {
    read_path(t, f->op->index % t->files, f->path, sizeof(f->path_room));
    f->open_flags = READ_FLAGS;
    f->check = true;
    f->cap = t->chunk;
    f->buf = malloc(t->chunk);
    return f->buf != NULL ? 0 : IOB_ENOMEM;
  }
  uint64_t r;
  int err = random_bits(&r);
  if (err != 0)
    return err;
  snprintf(f->path, sizeof(f->path_room), "%s/iobound-%ld-%016" PRIx64, t->dir,
           (long)getpid(), r);
  f->open_flags = CREATE_FLAGS;
  f->perm = 0600;
  f->src = t->pattern;
  f->wrap = t->chunk;
  f->fsync = t->fsync;
  f->remove = f->unowned = true;
  return 0;
}

/* An atomic write's temporary: ".iobound-RANDOM" beside the final name,
 * so that the rename stays in one file system; and with fsync, the
 * directory to fsync after it. */
static int plan_atomic(file_op *f, const iob_file_request *r) {
  const char *slash = strrchr(r->path, '/');
  size_t dir_len = slash == NULL      ? 1
                   : slash == r->path ? 1
                                      : (size_t)(slash - r->path);
  const char *dir = slash == NULL ? "." : r->path;
  f->final = r->path; /* first: cleanup() frees the temporary's name */
  uint64_t bits;
  int err = random_bits(&bits);
  if (err != 0)
    return err;
  size_t size = dir_len + 32;
  if ((f->path = malloc(size)) == NULL)
    return IOB_ENOMEM;
  snprintf(f->path, size, "%.*s/.iobound-%016" PRIx64, (int)dir_len, dir, bits);
  if (r->flags & IOB_FILE_FSYNC) {
    if ((f->dir = malloc(dir_len + 1)) == NULL)
      return IOB_ENOMEM;
    memcpy(f->dir, dir, dir_len);
    f->dir[dir_len] = '\0';
  }
  f->open_flags = CREATE_FLAGS;
  f->rename_flags = r->flags & IOB_FILE_NEW ? RENAME_NOREPLACE : 0;
  f->unowned = true;
  return 0;
}

static int plan_request(file_op *f, const iob_file_request *r) {
  int nofollow = r->flags & IOB_FILE_FOLLOW ? 0 : O_NOFOLLOW;
  f->perm = r->permissions != 0 ? r->permissions : 0666;
  f->fsync = r->flags & IOB_FILE_FSYNC;
  if (r->mode == IOB_FILE_READ) {
    f->path = (char *)(uintptr_t)r->path;
    f->open_flags = (READ_FLAGS & ~O_NOFOLLOW) | nofollow;
    f->reading = f->keep = f->check = true;
    f->fsync = false;
    f->size = r->max_read != 0 ? r->max_read : IOB_FILE_READ_DEFAULT;
    return 0;
  }
  f->src = r->data;
  f->size = f->wrap = r->len;
  if (r->flags & IOB_FILE_ATOMIC)
    return plan_atomic(f, r);
  f->path = (char *)(uintptr_t)r->path;
  /* A name that may exist might be a FIFO: opened without waiting for a
   * reader, then checked. A new one cannot be. */
  bool new = r->flags &IOB_FILE_NEW;
  f->check = !new;
  f->unowned = new; /* made by its O_EXCL: removed if the write fails */
  f->open_flags = O_WRONLY | O_CREAT | O_CLOEXEC | nofollow |
                  (new ? O_EXCL : O_NONBLOCK) |
                  (r->mode == IOB_FILE_APPEND ? O_APPEND : O_TRUNC);
  return 0;
}

static int plan(file_op *f, iob_op *op) {
  memset(f, 0, offsetof(file_op, path_room));
  f->op = op;
  f->fd = f->dir_fd = -1;
  if (op->input != NULL)
    return plan_request(f, op->input);
  if (op->target == NULL) {
    iob_op_set_message(op, "a file operation needs an iob_file_request or a "
                           "target");
    return IOB_EINVAL;
  }
  return plan_target(f, op->target);
}

/* What plan() and the calls left: never a file descriptor (the plan
 * closes them), but memory. */
static void cleanup(iob_op *op) {
  file_op *f = op->state;
  if (f->path != f->path_room && f->final != NULL)
    free(f->path);
  free(f->dir);
  free(f->buf);
  f->path = f->dir = f->buf = NULL;
}

/* ---- the target ---------------------------------------------------------- */

void iob_file_options_init(iob_file_options *options) {
  if (options == NULL)
    return;
  memset(options, 0, sizeof(*options));
  options->size_kib = 64;
  options->mode = IOB_FILE_WRITE;
  options->files = 1;
}

/* Remove the files a read target prepared: the first `n`. */
static void remove_prepared(const iob_file_target *t, uint32_t n) {
  char path[IOB_FILE_DIR_MAX + NAME_ROOM];
  for (uint32_t k = 0; k < n; k++) {
    read_path(t, k, path, sizeof(path));
    unlink(path);
  }
}

/* Read mode: write the target's files now, so that operations read
 * files that exist, with the blocking driver. On error, what was written
 * is removed. */
static int prepare(const iob_file_target *t) {
  for (uint32_t k = 0; k < t->files; k++) {
    file_op f = {.fd = -1,
                 .dir_fd = -1,
                 .src = t->pattern,
                 .wrap = t->chunk,
                 .size = t->size,
                 .fsync = t->fsync,
                 .unowned = true,
                 .open_flags = CREATE_FLAGS,
                 .perm = 0600};
    f.path = f.path_room;
    read_path(t, k, f.path, sizeof(f.path_room));
    call c;
    while (next_call(&f, &c))
      took(&f, &c, make_blocking(&f, &c));
    if (f.status != 0) { /* the plan removed this one */
      remove_prepared(t, k);
      return f.status;
    }
  }
  return 0;
}

/* Free what the target holds; its files removed. */
static void target_free(void *p) {
  iob_file_target *target = p;
  if (target->mode == IOB_FILE_READ)
    remove_prepared(target, target->files);
  free(target->pattern);
  free(target->dir);
  free(target);
}

int iob_file_target_destroy(iob_file_target *target) {
  return iob__target_destroy(target, target_free);
}

int iob_file_target_create(iob_file_target **target, const char *directory,
                           const iob_file_options *options) {
  if (target == NULL)
    return IOB_EINVAL;
  *target = NULL;
  iob_file_options o;
  iob_file_options_init(&o);
  if (options != NULL)
    o = *options;
  if (directory == NULL || directory[0] == '\0' ||
      (o.mode != IOB_FILE_WRITE && o.mode != IOB_FILE_READ))
    return IOB_EINVAL;
  if (o.size_kib == 0 || o.size_kib > IOB_FILE_SIZE_MAX_KIB ||
      (o.mode == IOB_FILE_READ &&
       (o.files == 0 || o.files > IOB_FILE_FILES_MAX)))
    return IOB_ERANGE;
  if (strlen(directory) > IOB_FILE_DIR_MAX)
    return UV_ENAMETOOLONG;
  struct stat st;
  if (stat(directory, &st) != 0)
    return sys_error();
  if (!S_ISDIR(st.st_mode))
    return UV_ENOTDIR;

  iob_file_target *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return IOB_ENOMEM;
  t->size = (uint64_t)o.size_kib * 1024;
  t->chunk = t->size < CHUNK ? (size_t)t->size : CHUNK;
  t->mode = o.mode;
  t->fsync = o.fsync != 0;
  t->files = o.mode == IOB_FILE_READ ? o.files : 0;
  t->dir = strdup(directory);
  t->pattern = malloc(t->chunk);
  if (t->dir == NULL || t->pattern == NULL) {
    target_free(t);
    return IOB_ENOMEM;
  }
  /* Not zeros, which a file system might store as a hole. */
  for (size_t k = 0; k < t->chunk; k++)
    t->pattern[k] = (char)('a' + k % 26);
  if (t->mode == IOB_FILE_READ) {
    int err = random_bits(&t->token);
    if (err == 0)
      err = prepare(t);
    if (err != 0) {
      t->files = 0; /* prepare() removed what it wrote */
      target_free(t);
      return err;
    }
  }
  *target = t;
  return 0;
}

/* ---- requests: checked and copied at submit ------------------------------- */

static int request_check(const iob_file_request *r) {
  if (r->path == NULL || r->path[0] == '\0' || (r->flags & ~ALL_FLAGS) != 0 ||
      r->permissions > 07777)
    return IOB_EINVAL;
  if (r->mode != IOB_FILE_WRITE && r->mode != IOB_FILE_APPEND &&
      r->mode != IOB_FILE_READ)
    return IOB_EINVAL;
  bool reading = r->mode == IOB_FILE_READ;
  if ((reading && (r->flags & ~IOB_FILE_FOLLOW) != 0) ||
      (r->mode == IOB_FILE_APPEND && (r->flags & IOB_FILE_ATOMIC)) ||
      (r->flags & IOB_FILE_ATOMIC && r->flags & IOB_FILE_FOLLOW) ||
      (!reading && r->data == NULL && r->len != 0))
    return IOB_EINVAL;
  if (strlen(r->path) >= IOB_FILE_PATH_MAX)
    return UV_ENAMETOOLONG;
  if ((!reading && r->len > FILE_MAX) || (reading && r->max_read > FILE_MAX))
    return IOB_ERANGE;
  return 0;
}

/* One block: the request, its path, its bytes (unless borrowed). */
static int request_copy(const void *input, void **copy) {
  const iob_file_request *r = input;
  *copy = NULL;
  if (r == NULL)
    return IOB_EINVAL;
  int err = request_check(r);
  if (err != 0)
    return err;
  size_t path = strlen(r->path) + 1;
  size_t data =
      r->mode != IOB_FILE_READ && !(r->flags & IOB_FILE_BORROW) ? r->len : 0;
  iob_file_request *c = malloc(sizeof(*c) + path + data);
  if (c == NULL)
    return IOB_ENOMEM;
  *c = *r;
  char *room = (char *)(c + 1);
  c->path = memcpy(room, r->path, path);
  if (data != 0)
    c->data = memcpy(room + path, r->data, data);
  *copy = c;
  return 0;
}

static void result_free(void *p) {
  iob_file_result *r = p;
  if (r != NULL)
    free(r->data);
  free(r);
}

/* A batch that is not open runs its target's plan: it needs one. An open
 * batch's operations may carry requests instead (one with neither fails
 * alone: plan()). */
static int file_check(const iob_config *config) {
  return config->target != NULL || config->open ? 0 : IOB_EINVAL;
}

/* ---- on a thread ---------------------------------------------------------- */

static int file_run(iob_op *op) {
  file_op *f = op->state;
  int err = plan(f, op);
  if (err != 0)
    return err;
  run_blocking(f);
  return outcome(f);
}

/* ---- on the loop: a ring of the batch's, or libuv's pool ------------------ */

#ifdef IOB_HAVE_LIBURING
/* Every file operation of a batch on one loop shares a ring. Calls are
 * queued as they come and handed to the kernel together, in one system
 * call, before the loop next waits (a prepare handle); the eventfd the
 * ring signals wakes the loop for their completions. */
typedef struct ring {
  struct io_uring uring;
  uv_poll_t poll;
  uv_prepare_t flush;
  int event_fd;
  uint32_t in_flight, unsent;
  int open_handles;
} ring;

#define RING_ENTRIES 256

/* The calls a ring must make, all since Linux 5.11. */
static const int ring_ops[] = {
    IORING_OP_OPENAT, IORING_OP_STATX, IORING_OP_READ,     IORING_OP_WRITE,
    IORING_OP_FSYNC,  IORING_OP_CLOSE, IORING_OP_RENAMEAT, IORING_OP_UNLINKAT,
};

static bool ring_supports_all(struct io_uring *u) {
  struct io_uring_probe *p = io_uring_get_probe_ring(u);
  bool all = p != NULL;
  for (size_t k = 0; all && k < sizeof(ring_ops) / sizeof(ring_ops[0]); k++)
    all = io_uring_opcode_supported(p, ring_ops[k]);
  io_uring_free_probe(p);
  return all;
}

static void ring_on_closed(uv_handle_t *h) {
  ring *r = h->data;
  if (--r->open_handles > 0)
    return;
  io_uring_queue_exit(&r->uring);
  close(r->event_fd);
  free(r);
}

static void ring_free(ring *r) {
  r->open_handles = 2;
  uv_close((uv_handle_t *)&r->poll, ring_on_closed);
  uv_close((uv_handle_t *)&r->flush, ring_on_closed);
}

static void ring_send(ring *r) {
  if (r->unsent == 0)
    return;
  int n = io_uring_submit(&r->uring);
  /* Refused for now (EAGAIN, EBUSY: its completions are full): they go
   * with the next flush, after the loop reaped what is there. */
  if (n > 0)
    r->unsent -= (uint32_t)n < r->unsent ? (uint32_t)n : r->unsent;
}

static void ring_on_flush(uv_prepare_t *h) { ring_send(h->data); }

static void drive_ring(file_op *f);

static void ring_on_event(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  ring *r = h->data;
  uint64_t count;
  while (read(r->event_fd, &count, sizeof(count)) < 0 && errno == EINTR)
    ;
  struct io_uring_cqe *cqe;
  while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
    file_op *f = io_uring_cqe_get_data(cqe);
    int64_t res = cqe->res;
    io_uring_cqe_seen(&r->uring, cqe);
    if (--r->in_flight == 0)
      uv_unref((uv_handle_t *)&r->poll);
    call c = {.what = f->at, .reading = f->reading};
    took(f, &c, res);
    drive_ring(f);
  }
}

/* 0 with a ring on `loop`, or the code of what refused it. */
static int ring_make(ring **out, uv_loop_t *loop) {
  ring *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return IOB_ENOMEM;
  int err = io_uring_queue_init(RING_ENTRIES, &r->uring, 0);
  if (err != 0) {
    free(r);
    return err;
  }
  err = ring_supports_all(&r->uring) ? 0 : UV_ENOSYS;
  r->event_fd = err ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (err == 0 && r->event_fd < 0)
    err = sys_error();
  if (err == 0)
    err = io_uring_register_eventfd(&r->uring, r->event_fd);
  if (err == 0)
    err = uv_poll_init(loop, &r->poll, r->event_fd);
  if (err != 0) {
    if (r->event_fd >= 0)
      close(r->event_fd);
    io_uring_queue_exit(&r->uring);
    free(r);
    return err;
  }
  uv_prepare_init(loop, &r->flush); /* cannot fail */
  r->poll.data = r->flush.data = r;
  uv_poll_start(&r->poll, UV_READABLE, ring_on_event);
  uv_prepare_start(&r->flush, ring_on_flush);
  /* Neither keeps the loop alive: an operation's call in flight does. */
  uv_unref((uv_handle_t *)&r->poll);
  uv_unref((uv_handle_t *)&r->flush);
  *out = r;
  return 0;
}

static void ring_prep(struct io_uring_sqe *s, file_op *f, const call *c) {
  switch (c->what) {
  case C_OPEN:
  case C_OPEN_DIR:
    io_uring_prep_openat(s, AT_FDCWD, c->path, c->flags, c->perm);
    break;
  case C_STAT:
    io_uring_prep_statx(s, c->fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE,
                        &f->stx);
    break;
  case C_MOVE:
    if (c->reading)
      io_uring_prep_read(s, c->fd, c->buf, (unsigned)c->len, c->off);
    else
      io_uring_prep_write(s, c->fd, c->buf, (unsigned)c->len, c->off);
    break;
  case C_FSYNC:
  case C_FSYNC_DIR:
    io_uring_prep_fsync(s, c->fd, 0);
    break;
  case C_CLOSE:
  case C_CLOSE_DIR:
    io_uring_prep_close(s, c->fd);
    break;
  case C_RENAME:
    io_uring_prep_renameat(s, AT_FDCWD, c->path, AT_FDCWD, c->to,
                           (unsigned)c->flags);
    break;
  default:
    io_uring_prep_unlinkat(s, AT_FDCWD, c->path, 0);
    break;
  }
}
#else
typedef struct ring ring;
#endif

/* The kind's state for a batch on one loop: a ring, or none (the pool). */
typedef struct shared {
  ring *ring;
} shared;

/* What a loop style's operations use now: "io_uring", or "pool" where
 * there is no ring to be had or IOBOUND_IO_URING=0 says not to. */
static bool ring_wanted(void) {
  const char *env = getenv("IOBOUND_IO_URING");
  return env == NULL || strcmp(env, "0") != 0;
}

static void settle(file_op *f) { iob_op_done(f->op, outcome(f)); }

#ifdef IOB_HAVE_LIBURING
/* The next call on the ring, or settle once there is none. A call the
 * ring has no room for waits for the calls before it to be sent. */
static void drive_ring(file_op *f) {
  ring *r = ((shared *)f->op->shared)->ring;
  call c;
  if (!next_call(f, &c)) {
    settle(f);
    return;
  }
  struct io_uring_sqe *s = io_uring_get_sqe(&r->uring);
  if (s == NULL) {
    io_uring_submit(&r->uring);
    r->unsent = 0;
    s = io_uring_get_sqe(&r->uring);
  }
  if (s == NULL) { /* cannot happen: the submit emptied the queue */
    took(f, &c, UV_EAGAIN);
    drive_ring(f);
    return;
  }
  ring_prep(s, f, &c);
  io_uring_sqe_set_data(s, f);
  r->unsent++;
  if (r->in_flight++ == 0)
    uv_ref((uv_handle_t *)&r->poll);
}
#endif

static void pool_work(uv_work_t *w) { run_blocking(w->data); }

static void pool_done(uv_work_t *w, int status) {
  file_op *f = w->data;
  if (status != 0) /* taken off the queue before it ran: nothing was done */
    fail(f, status, C_NONE);
  settle(f);
}

static int file_start(iob_op *op) {
  file_op *f = op->state;
  int err = plan(f, op);
  if (err != 0)
    return err;
  const shared *s = op->shared;
#ifdef IOB_HAVE_LIBURING
  if (s != NULL && s->ring != NULL) {
    drive_ring(f);
    return 0;
  }
#else
  (void)s;
#endif
  f->work.data = f;
  return uv_queue_work(iob_batch_loop(op->batch), &f->work, pool_work,
                       pool_done);
}

/* A plan still queued on the pool is taken off it (its callback says
 * UV_ECANCELED). One that runs, or a call on the ring, cannot be stopped:
 * the plan notices the stop before its next call, closes what it opened
 * and removes what it created. */
static void file_stop(iob_op *op) {
  file_op *f = op->state;
  const shared *s = op->shared;
  if (s == NULL || s->ring == NULL)
    uv_cancel((uv_req_t *)&f->work);
}

/* A ring for the batch on this loop, when the loop styles run it and the
 * kernel has one to give; the pool otherwise. */
static int file_open(iob_batch *batch, const void *target, void *arg) {
  shared *s = arg;
  const iob_config *c = iob_batch_config(batch);
  bool loop = !(iob_style_flags(c->style) & IOB_STYLE_ON_THREADS);
#ifdef IOB_HAVE_LIBURING
  if (loop && ring_wanted() && ring_make(&s->ring, iob_batch_loop(batch)) != 0)
    s->ring = NULL; /* refused: the pool it is */
#else
  (void)s;
  (void)loop;
#endif
  if (target != NULL)
    iob__target_hold(target);
  return 0;
}

static void file_close(iob_batch *batch, const void *target, void *arg) {
  (void)batch;
  shared *s = arg;
#ifdef IOB_HAVE_LIBURING
  if (s->ring != NULL)
    ring_free(s->ring);
#endif
  s->ring = NULL;
  if (target != NULL)
    iob__target_release(target);
}

const char *iob_file_engine(void) {
#ifdef IOB_HAVE_LIBURING
  static _Atomic int known; /* 0: not yet; 1: a ring is had; 2: not */
  if (!ring_wanted())
    return "pool";
  if (known == 0) {
    struct io_uring u;
    bool ok = io_uring_queue_init(2, &u, 0) == 0;
    if (ok) {
      ok = ring_supports_all(&u);
      io_uring_queue_exit(&u);
    }
    known = ok ? 1 : 2;
  }
  return known == 1 ? "io_uring" : "pool";
#else
  return "pool";
#endif
}

const iob_kind iob_kind_file = {
    .name = "file",
    .op_size = sizeof(file_op),
    .check = file_check,
    .start = file_start,
    .run = file_run,
    .stop = file_stop,
    .cleanup = cleanup,
    .free_result = result_free,
    .batch_size = sizeof(shared),
    .open = file_open,
    .close = file_close,
    .input_copy = request_copy,
    .input_free = free,
};
