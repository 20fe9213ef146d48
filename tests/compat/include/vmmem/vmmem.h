/*
 * libvmmem - one safe, fast way to reach a virtual machine's memory.
 *
 * Umbrella header.  Start with map.h (building a map and accessing it),
 * then slice.h, dirty.h, config.h, registry.h; provider.h is for plugins.
 */
#ifndef VMMEM_VMMEM_H
#define VMMEM_VMMEM_H

#include "address.h"
#include "common.h"
#include "config.h"
#include "dirty.h"
#include "endian.h"
#include "map.h"
#include "provider.h"
#include "registry.h"
#include "slice.h"
#include "space.h"
#include "vhost.h"
#include "iommu.h"
#include "fast.h"

VMMEM_BEGIN_DECLS

VMMEM_END_DECLS

#endif
