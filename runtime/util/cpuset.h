/* SPDX-License-Identifier: MIT */
/*
 * CPU sets beyond what the public vz_cpuset offers (include/veloz/config.h):
 * the kernel's cpulist syntax in both directions and a few set operations,
 * for the config loader, the topology code, registry.c's overlap warning
 * and the tools.
 *
 * Layering: the bottom of the configuration and topology code. It includes
 * only the public header, so runtime/config and runtime/topo both depend on
 * it and it depends on neither (config_int.h and topo.h say the rest).
 */
#ifndef VZ_UTIL_CPUSET_H
#define VZ_UTIL_CPUSET_H

#include <stdbool.h>
#include <stddef.h>

#include <veloz/config.h>

/* ---- cpuset syntax (cpuset.c) ---------------------------------------- */

#define VZ__CPUSET_ALLOW_EMPTY 1u /* "" (only blanks) is the empty set, not an error */
#define VZ__CPUSET_IGNORE_HIGH 2u /* CPUs >= VZ_MAX_CPUS are dropped, not an error */

/* Parse the kernel's cpulist syntax: comma-separated CPU numbers and
 * inclusive ranges "a-b", blanks allowed around every token ("0-3, 8,
 * 10-11"). Decimal only; no stride. Fills *out (cleared first). Returns 0,
 * or VZ_EINVAL with a one-line reason in why (may be NULL). Any thread. */
int vz__cpuset_parse(const char *s, unsigned flags, vz_cpuset *out, char *why, size_t why_len);

/* Write s in the same syntax, ranges collapsed ("0-3,8,10-11"; "" for the
 * empty set) into buf (always NUL-terminated when len > 0; truncated output
 * ends in "..."). Returns the length the full text needs (like snprintf). */
size_t vz__cpuset_format(const vz_cpuset *s, char *buf, size_t len);

/* a = a ∩ b; a = a ∪ b; lowest CPU of s or -1; a ⊆ b */
void vz__cpuset_and(vz_cpuset *a, const vz_cpuset *b);
void vz__cpuset_or(vz_cpuset *a, const vz_cpuset *b);
int vz__cpuset_first(const vz_cpuset *s);
bool vz__cpuset_subset(const vz_cpuset *a, const vz_cpuset *b);

#endif
