/*
 * catalog.h - golden images, versions, per-server replicas and specs.
 */
#ifndef BIC_CATALOG_H
#define BIC_CATALOG_H

#include "json.h"

#endif
