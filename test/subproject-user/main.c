/* A program outside iobound's tree that uses it as a user would: built
 * against the installed library (pkg-config) or as a Meson subproject.
 * Runs one batch and prints how long it took. */
#include <stdio.h>
#include <string.h>

#include <iobound.h>

int main(void) {
  /* The header and the library must be the same version. */
  char header[32];
  snprintf(header, sizeof(header), "%d.%d.%d", IOB_VERSION_MAJOR,
           IOB_VERSION_MINOR, IOB_VERSION_PATCH);
  if (strcmp(header, iob_version()) != 0) {
    fprintf(stderr, "header %s, library %s\n", header, iob_version());
    return 1;
  }

  iob_config config;
  iob_config_init(&config);
  config.style = &iob_style_loop;
  config.count = 10;
  config.duration_ms = 20;

  iob_batch *batch;
  int err = iob_run(&batch, &config);
  if (err != 0) {
    fprintf(stderr, "iob_run: %s\n", iob_strerror(err));
    return 1;
  }
  iob_report report;
  err = iob_batch_report(batch, &report);
  iob_batch_free(batch);
  if (err != 0 || report.failed != 0) {
    fprintf(stderr, "the batch failed\n");
    return 1;
  }
  printf("iobound %s: 10 waits of 20 ms took %.1f ms\n", iob_version(),
         (double)report.elapsed_ns / 1e6);
  return 0;
}
