/* Achieved rate against the rate asked, one batch, loop style, waits of 0 ms. */
#include <stdio.h>
#include <stdlib.h>
#include "iobound.h"
static void done(iob_batch *b, int st) { (void)b; (void)st; }
int main(int argc, char **argv) {
  double per = atof(argv[1]); uint32_t burst = atoi(argv[2]); uint32_t n = atoi(argv[3]);
  const iob_style *style = iob_style_find(argc > 4 ? argv[4] : "loop");
  uv_loop_t loop; uv_loop_init(&loop);
  iob_rate *rate; iob_rate_create(&rate, per, burst);
  iob_config c; iob_config_init(&c); c.style = style; c.count = n; c.duration_ms = 0; c.rate = rate;
  iob_batch *b; iob_batch_create(&b, &c);
  uint64_t t0 = uv_hrtime();
  iob_batch_start(b, &loop, done);
  uv_run(&loop, UV_RUN_DEFAULT);
  double s = (uv_hrtime() - t0) / 1e9;
  printf("rate %g burst %u: %u ops in %.3f s = %.0f/s (expected about %.3f s)\n", per, burst, n, s, n / s, (n - burst) / per);
  iob_batch_free(b); uv_loop_close(&loop); iob_rate_free(rate);
}
