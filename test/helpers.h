/* The name the test files used before the shared helper library: it is
 * all in common.h now (built once as test/common.c). */
#ifndef IOB_TEST_HELPERS_H
#define IOB_TEST_HELPERS_H

#include "common.h"

#endif
