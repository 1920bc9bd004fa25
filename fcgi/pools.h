/*
 * pools.h - platform groups (desktop pools), managed desktops and the reconciler.
 */
#ifndef BIC_POOLS_H
#define BIC_POOLS_H

#include "json.h"

#endif
