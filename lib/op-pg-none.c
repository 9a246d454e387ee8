/* Built without libpq (meson setup -Dpostgres=disabled, or no libpq-dev):
 * the PostgreSQL operations exist and say they are not supported. */
#include <stddef.h>

#include "iobound.h"

int iob_pg_available(void) { return 0; }

int iob_pg_target_create(iob_pg_target **target, const char *conninfo,
                         const char *query) {
  if (target != NULL)
    *target = NULL;
  return IOB_ENOTSUP;
}

void iob_pg_target_destroy(iob_pg_target *target) {}

int iob_pg_use(iob_config *config, iob_pg_target *target) {
  return IOB_ENOTSUP;
}

const char *iob_pg_error(const iob_pg_target *target, uint32_t index) {
  return NULL;
}
