/* Files on disk: each operation writes a file of its own (open, write,
 * fsync if asked, close, remove) or reads one the target prepared (open,
 * read, close): the kind iob_kind_file.
 *
 * The directory may be shared with other users (/tmp): a name someone
 * else can predict is a name they can plant a symbolic link or a FIFO at
 * first. So a new file gets 64 random bits in its name and is created
 * with O_EXCL | O_NOFOLLOW (never a file that was there, never through a
 * link, whatever fs.protected_symlinks says), and a prepared file is
 * opened with O_NOFOLLOW | O_NONBLOCK and must be a regular file: an
 * open never blocks and never follows a link.
 *
 * On the loop styles an operation is a chain of uv_fs_t requests with
 * callbacks, one at a time, in its state. libuv has no asynchronous file
 * I/O on Linux (without io_uring): it runs each request on its thread
 * pool, so the loop style's files share the pool's threads with the pool
 * style and with every other uv_fs_*() call of the process
 * (docs/real-io.md, "Files on disk"). The operation settles once its last
 * request called back, so libuv is done with the state before the slot is
 * reused. On the thread styles the same steps with blocking POSIX calls. */
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

/* The most bytes one write or read moves: a file of 1 GiB is 1,024 of
 * them, and an operation in flight never holds more than this. */
#define CHUNK ((size_t)1 << 20)
/* Room for "/iobound-read-PID-RANDOM-INDEX" after the directory. */
#define NAME_ROOM 64

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

/* ---- names and steps ----------------------------------------------------- */

/* 64 bits no one else can predict. */
static int random_bits(uint64_t *out) {
  return uv_random(NULL, NULL, out, sizeof(*out), 0, NULL);
}

/* A name for a new file of a write operation: random, so that no one can
 * plant anything there first. 0, or the code of the random source. */
static int new_path(const iob_file_target *t, char *out, size_t size) {
  uint64_t r;
  int err = random_bits(&r);
  if (err == 0)
    snprintf(out, size, "%s/iobound-%ld-%016" PRIx64, t->dir, (long)getpid(),
             r);
  return err;
}

/* The name of a read target's file `index`. */
static void read_path(const iob_file_target *t, uint32_t index, char *out,
                      size_t size) {
  snprintf(out, size, "%s/iobound-read-%ld-%016" PRIx64 "-%" PRIu32, t->dir,
           (long)getpid(), t->token, index);
}

/* How a new file is created: never one that exists, never through a
 * symbolic link (O_EXCL alone already refuses one; O_NOFOLLOW says it
 * twice). */
#define CREATE_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
/* How a prepared file is opened: not through a link, and without waiting
 * for a writer should someone have put a FIFO there. */
#define READ_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)

/* 0 for a regular file's mode; else why it is not one to read. */
static int regular(uint64_t mode) {
  if (S_ISREG(mode))
    return 0;
  return S_ISDIR(mode) ? UV_EISDIR : UV_EFTYPE;
}

typedef enum step {
  STEP_OPEN,
  STEP_CHECK, /* read mode: what was opened is a regular file */
  STEP_MOVE, /* write or read a chunk */
  STEP_FSYNC,
  STEP_CLOSE,
  STEP_REMOVE,
} step;

static const char *step_verb(step s, iob_file_mode mode) {
  switch (s) {
  case STEP_OPEN:
  case STEP_CHECK:
    return "open";
  case STEP_MOVE:
    return mode == IOB_FILE_READ ? "read" : "write";
  case STEP_FSYNC:
    return "fsync";
  case STEP_CLOSE:
    return "close";
  default:
    return "remove";
  }
}

/* Say what failed, where: "cannot open /x/y: permission denied". */
static void explain(iob_op *op, int status, step s, const char *path) {
  const iob_file_target *t = op->target;
  char text[IOB_FILE_DIR_MAX + NAME_ROOM + 96];
  snprintf(text, sizeof(text), "cannot %s %s: %s", step_verb(s, t->mode), path,
           uv_strerror(status));
  iob_op_set_message(op, text);
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

static int sys_error(void) { return uv_translate_sys_error(errno); }

/* Write `t->size` bytes to the file open as `fd` and fsync it if the
 * target says so, asking `op` (if not NULL) between chunks whether to
 * stop. 0, or the code and in *failed the step that failed. */
static int write_file(const iob_file_target *t, iob_op *op, int fd,
                      step *failed) {
  int err = 0;
  uint64_t done = 0;
  *failed = STEP_MOVE;
  while (err == 0 && done < t->size) {
    if (op != NULL && (err = iob_op_stopping(op)) != 0)
      break;
    size_t want =
        t->size - done < t->chunk ? (size_t)(t->size - done) : t->chunk;
    ssize_t n = pwrite(fd, t->pattern, want, (off_t)done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      err = sys_error();
    else if (n == 0)
      err = UV_EIO;
    else
      done += (uint64_t)n;
  }
  if (err == 0 && t->fsync) {
    *failed = STEP_FSYNC;
    if (fsync(fd) != 0)
      err = sys_error();
  }
  return err;
}

/* Read the file open as `fd` to its end (at most t->size bytes), asking
 * `op` between chunks whether to stop; *got receives the bytes read. */
static int read_file(const iob_file_target *t, iob_op *op, int fd, char *buf,
                     uint64_t *got) {
  *got = 0;
  while (*got < t->size) {
    int stop = iob_op_stopping(op);
    if (stop != 0)
      return stop;
    size_t want =
        t->size - *got < t->chunk ? (size_t)(t->size - *got) : t->chunk;
    ssize_t n = pread(fd, buf, want, (off_t)*got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return sys_error();
    if (n == 0)
      break; /* shorter than it should be: the value says so */
    *got += (uint64_t)n;
  }
  return 0;
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
 * files that exist. On error, what was written is removed. */
static int prepare(const iob_file_target *t) {
  char path[IOB_FILE_DIR_MAX + NAME_ROOM];
  for (uint32_t k = 0; k < t->files; k++) {
    read_path(t, k, path, sizeof(path));
    int fd = open(path, CREATE_FLAGS, 0600);
    if (fd < 0) {
      int err = sys_error();
      remove_prepared(t, k);
      return err;
    }
    step failed;
    int err = write_file(t, NULL, fd, &failed);
    if (close(fd) != 0 && err == 0)
      err = sys_error();
    if (err != 0) {
      remove_prepared(t, k + 1);
      return err;
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

static int file_check(const iob_config *config) {
  return config->target != NULL ? 0 : IOB_EINVAL;
}

/* ---- on the loop: a chain of uv_fs_t requests ---------------------------- */

typedef struct file_op {
  uv_fs_t req;
  iob_op *op;
  char *buf;     /* read mode: a chunk of its own */
  uv_file fd;    /* -1: not open */
  uint64_t done; /* bytes written or read */
  int status;    /* the first failure, or 0 */
  step at;       /* the request in flight */
  bool opened;   /* the open was asked for */
  bool created;  /* write mode: the file exists, to be removed */
  bool stopping; /* told to stop: go straight to close and remove */
  char path[IOB_FILE_DIR_MAX + NAME_ROOM];
} file_op;

static void on_fs(uv_fs_t *req);

static void settle(file_op *f) {
  free(f->buf);
  f->buf = NULL;
  if (f->status == 0) {
    iob_op_set_value(f->op, f->done);
  }
  iob_op_done(f->op, f->status); /* may end the batch */
}

/* Record the first failure, and say why unless it is our own cancel. */
static void fail(file_op *f, int status, step s) {
  if (f->status != 0)
    return;
  f->status = status;
  if (!(f->stopping && status == UV_ECANCELED))
    explain(f->op, status, s, f->path);
}

/* Issue the next request, or settle when none is left. */
static void next(file_op *f) {
  const iob_file_target *t = f->op->target;
  uv_loop_t *loop = iob_batch_loop(f->op->batch);
  bool going = f->status == 0 && !f->stopping;
  for (;;) {
    int err;
    if (going && !f->opened) {
      f->at = STEP_OPEN;
      f->opened = true; /* asked for: never again */
      int flags = t->mode == IOB_FILE_READ ? READ_FLAGS : CREATE_FLAGS;
      err = uv_fs_open(loop, &f->req, f->path, flags, 0600, on_fs);
    } else if (going && t->mode == IOB_FILE_READ && f->at < STEP_CHECK) {
      f->at = STEP_CHECK;
      err = uv_fs_fstat(loop, &f->req, f->fd, on_fs);
    } else if (going && f->done < t->size && f->at <= STEP_MOVE) {
      f->at = STEP_MOVE;
      size_t want =
          t->size - f->done < t->chunk ? (size_t)(t->size - f->done) : t->chunk;
      uv_buf_t buf = uv_buf_init(t->mode == IOB_FILE_READ ? f->buf : t->pattern,
                                 (unsigned)want);
      err = t->mode == IOB_FILE_READ ? uv_fs_read(loop, &f->req, f->fd, &buf, 1,
                                                  (int64_t)f->done, on_fs)
                                     : uv_fs_write(loop, &f->req, f->fd, &buf,
                                                   1, (int64_t)f->done, on_fs);
    } else if (going && t->fsync && t->mode == IOB_FILE_WRITE &&
               f->at < STEP_FSYNC) {
      f->at = STEP_FSYNC;
      err = uv_fs_fsync(loop, &f->req, f->fd, on_fs);
    } else if (f->fd >= 0) {
      f->at = STEP_CLOSE;
      err = uv_fs_close(loop, &f->req, f->fd, on_fs);
    } else if (f->created) {
      f->at = STEP_REMOVE;
      err = uv_fs_unlink(loop, &f->req, f->path, on_fs);
    } else {
      settle(f);
      return;
    }
    if (err == 0)
      return; /* on_fs() goes on */
    /* Refused at once: nothing is in flight; take the way out. */
    fail(f, err, f->at);
    going = false;
    if (f->at == STEP_CLOSE)
      f->fd = -1;
    if (f->at == STEP_REMOVE)
      f->created = false;
  }
}

static void on_fs(uv_fs_t *req) {
  file_op *f = req->data;
  ssize_t result = req->result;
  uint64_t mode = req->statbuf.st_mode; /* STEP_CHECK's answer */
  uv_fs_req_cleanup(req);
  if (result < 0) {
    fail(f, (int)result, f->at);
    if (f->at == STEP_CLOSE)
      f->fd = -1; /* closed all the same: never close it twice */
    if (f->at == STEP_REMOVE)
      f->created = false;
    next(f);
    return;
  }
  switch (f->at) {
  case STEP_OPEN:
    f->fd = (uv_file)result;
    f->created =
        ((const iob_file_target *)f->op->target)->mode == IOB_FILE_WRITE;
    break;
  case STEP_CHECK:
    if (regular(mode) != 0)
      fail(f, regular(mode), STEP_CHECK);
    break;
  case STEP_MOVE:
    if (result == 0) { /* a read at the end, or a write that wrote nothing */
      const iob_file_target *t = f->op->target;
      if (t->mode == IOB_FILE_WRITE)
        fail(f, UV_EIO, STEP_MOVE);
      else
        f->at = STEP_FSYNC; /* the end of a short file: done reading */
    }
    f->done += (uint64_t)result;
    break;
  case STEP_CLOSE:
    f->fd = -1;
    break;
  case STEP_REMOVE:
    f->created = false;
    break;
  default:
    break;
  }
  next(f);
}

static int file_start(iob_op *op) {
  const iob_file_target *t = op->target;
  file_op *f = op->state;
  f->op = op;
  f->fd = -1;
  f->req.data = f;
  if (t->mode == IOB_FILE_READ) {
    f->buf = malloc(t->chunk);
    if (f->buf == NULL)
      return IOB_ENOMEM;
    read_path(t, op->index % t->files, f->path, sizeof(f->path));
  } else {
    int err = new_path(t, f->path, sizeof(f->path));
    if (err != 0)
      return err;
  }
  next(f);
  return 0;
}

/* A request still queued on the pool is taken off it (its callback says
 * UV_ECANCELED); one that runs cannot be stopped, and the chain goes
 * straight to close and remove when it calls back. */
static void file_stop(iob_op *op) {
  file_op *f = op->state;
  f->stopping = true;
  if (f->at < STEP_CLOSE)
    uv_cancel((uv_req_t *)&f->req);
}

/* ---- on a thread: blocking calls ----------------------------------------- */

static int file_run(iob_op *op) {
  const iob_file_target *t = op->target;
  char path[IOB_FILE_DIR_MAX + NAME_ROOM];
  bool reading = t->mode == IOB_FILE_READ;
  int err = 0;
  if (reading)
    read_path(t, op->index % t->files, path, sizeof(path));
  else if ((err = new_path(t, path, sizeof(path))) != 0)
    return err;
  char *buf = NULL;
  if (reading && (buf = malloc(t->chunk)) == NULL)
    return IOB_ENOMEM;

  int fd = open(path, reading ? READ_FLAGS : CREATE_FLAGS, 0600);
  err = fd < 0 ? sys_error() : 0;
  struct stat st;
  if (err == 0 && reading)
    err = fstat(fd, &st) != 0 ? sys_error() : regular(st.st_mode);
  if (err != 0) {
    explain(op, err, STEP_OPEN, path);
    if (fd >= 0)
      close(fd);
    free(buf);
    return err;
  }
  step failed = STEP_MOVE;
  uint64_t got = t->size;
  err = reading ? read_file(t, op, fd, buf, &got)
                    : write_file(t, op, fd, &failed);
  free(buf);
  if (close(fd) != 0 && err == 0) {
    err = sys_error();
    failed = STEP_CLOSE;
  }
  if (!reading && unlink(path) != 0 && err == 0) {
    err = sys_error();
    failed = STEP_REMOVE;
  }
  if (err == 0)
    iob_op_set_value(op, got);
  else if (err != IOB_ECANCELED && err != IOB_ETIMEDOUT)
    explain(op, err, failed, path);
  return err;
}

const iob_kind iob_kind_file = {
    .name = "file",
    .op_size = sizeof(file_op),
    .check = file_check,
    .start = file_start,
    .run = file_run,
    .stop = file_stop,
    .open = iob__target_open,
    .close = iob__target_close,
};
