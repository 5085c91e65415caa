/* SPDX-License-Identifier: MIT */
/*
 * Constants shared by the cross-shard files of this directory (private to
 * them; the prototypes the rest of the core calls are in core/core.h).
 */
#ifndef VZ_CORE_XSHARD_H
#define VZ_CORE_XSHARD_H

#define DRAIN_CHUNK    64u  /* pointers popped per ring access */
#define DRAIN_PER_RING 256u /* per ring per turn, then the next ring */

#endif
