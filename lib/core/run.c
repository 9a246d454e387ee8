/* The blocking way in: a batch run to its end on a private loop. */
#include "internal.h"

static void on_done(iob_batch *batch, int status) {
  (void)batch;
  (void)status;
}

int iob_run(iob_batch **batch, const iob_config *config) {
  if (batch != NULL && config != NULL && config->open) {
    *batch = NULL;
    return IOB_EINVAL; /* it would wait for a close that cannot come */
  }
  int err = iob_batch_create(batch, config);
  if (err != 0)
    return err;
  uv_loop_t loop;
  err = uv_loop_init(&loop);
  if (err == 0) {
    err = iob_batch_start(*batch, &loop, on_done);
    if (err == 0)
      uv_run(&loop, UV_RUN_DEFAULT);
    /* The batch leaves nothing behind, so this cannot find a handle. */
    uv_loop_close(&loop);
  }
  if (err != 0) {
    iob_batch_free(*batch);
    *batch = NULL;
  }
  return err;
}
