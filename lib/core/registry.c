/* The styles and the kinds built into the library, by name: every lookup
 * and list reads these tables, so a new style or kind is one line here
 * (besides its file, its line in lib/meson.build and its declaration in
 * iobound.h and lib/iobound.map). */
#include <string.h>

#include "internal.h"

static const iob_style *const styles[] = {
    &iob_style_sequential, &iob_style_loop,    &iob_style_pool,
    &iob_style_threads,    &iob_style_workers, &iob_style_loops,
};

static const iob_kind *const kinds[] = {
    &iob_kind_wait, &iob_kind_cpu,  &iob_kind_mixed,
    &iob_kind_tcp,  &iob_kind_file,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const iob_style *iob_style_at(size_t position) {
  return position < COUNT(styles) ? styles[position] : NULL;
}

const iob_style *iob_style_find(const char *name) {
  for (size_t k = 0; name != NULL && k < COUNT(styles); k++)
    if (strcmp(styles[k]->name, name) == 0)
      return styles[k];
  return NULL;
}

const char *iob_style_name(const iob_style *style) {
  return style ? style->name : NULL;
}

unsigned iob_style_flags(const iob_style *style) {
  return style ? style->flags : 0;
}

const iob_kind *iob_kind_at(size_t position) {
  return position < COUNT(kinds) ? kinds[position] : NULL;
}

const iob_kind *iob_kind_find(const char *name) {
  for (size_t k = 0; name != NULL && k < COUNT(kinds); k++)
    if (strcmp(kinds[k]->name, name) == 0)
      return kinds[k];
  return NULL;
}
