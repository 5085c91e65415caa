// SPDX-License-Identifier: MIT
/*
 * The cpulist syntax ("0-3,8,10-11") in both directions, plus the few set
 * operations the config and topology code need. The same parser reads user
 * input (config keys, VZ_CPUS) strictly and sysfs files leniently (trailing
 * newline, empty node lists, CPUs beyond VZ_MAX_CPUS on huge machines).
 * Below both runtime/config and runtime/topo (util/cpuset.h).
 */
#include "util/cpuset.h"

#include <stdio.h>
#include <string.h>

#include <veloz/error.h>

/* Write a one-line reason into why (quoting the token at `at` for a "%s"
 * format, else printing v) and return VZ_EINVAL. */
static int fail(char *why, size_t why_len, const char *fmt, const char *at, unsigned long v)
{
	if (why && why_len) {
		char tok[24];
		size_t n = 0;

		/* quote at most a short token so the message stays one line */
		while (at && at[n] && at[n] != ',' && n < sizeof tok - 1) {
			tok[n] = at[n];
			n++;
		}
		tok[n] = '\0';
		if (strstr(fmt, "%s"))
			snprintf(why, why_len, fmt, tok);
		else
			snprintf(why, why_len, fmt, v);
	}
	return VZ_EINVAL;
}

/* First character of p that is not a blank or line end. */
static const char *skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* A decimal number at *pp; 0 or -1 when there is none. Saturates at a value
 * beyond any CPU so huge numbers give "beyond the maximum", not overflow. */
static int parse_num(const char **pp, unsigned long *out)
{
	const char *p = *pp;
	unsigned long v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		if (v < 100000000ul)
			v = v * 10 + (unsigned long)(*p - '0');
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

int vz__cpuset_parse(const char *s, unsigned flags, vz_cpuset *out, char *why, size_t why_len)
{
	const char *p;

	vz_cpuset_zero(out);
	if (why && why_len)
		why[0] = '\0';
	if (!s)
		return fail(why, why_len, "no CPU list", NULL, 0);
	p = skip_blank(s);
	if (*p == '\0') {
		if (flags & VZ__CPUSET_ALLOW_EMPTY)
			return 0;
		return fail(why, why_len, "empty CPU list", NULL, 0);
	}
	for (;;) {
		unsigned long lo, hi;

		p = skip_blank(p);
		if (parse_num(&p, &lo) < 0)
			return fail(why, why_len, "expected a CPU number at '%s'", p, 0);
		hi = lo;
		p = skip_blank(p);
		if (*p == '-') {
			p = skip_blank(p + 1);
			if (parse_num(&p, &hi) < 0)
				return fail(why, why_len, "expected the end of a range at '%s'", p,
					    0);
			if (hi < lo)
				return fail(why, why_len, "reversed range ending at %lu", NULL, hi);
			p = skip_blank(p);
		}
		if (hi >= VZ_MAX_CPUS && !(flags & VZ__CPUSET_IGNORE_HIGH))
			return fail(why, why_len, "CPU %lu is beyond the maximum 1023", NULL, hi);
		for (unsigned long c = lo; c <= hi && c < VZ_MAX_CPUS; c++)
			vz_cpuset_set(out, (unsigned)c);
		if (*p == '\0')
			return 0;
		if (*p != ',')
			return fail(why, why_len, "unexpected '%s' (expected ',' or '-')", p, 0);
		p = skip_blank(p + 1);
		if (*p == '\0')
			return fail(why, why_len, "trailing ','", NULL, 0);
	}
}

size_t vz__cpuset_format(const vz_cpuset *s, char *buf, size_t len)
{
	size_t need = 0;
	bool truncated = false;

	if (len)
		buf[0] = '\0';
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		unsigned end = c;
		char tok[32];
		int n;

		if (!vz_cpuset_has(s, c))
			continue;
		while (end + 1 < VZ_MAX_CPUS && vz_cpuset_has(s, end + 1))
			end++;
		if (end == c)
			n = snprintf(tok, sizeof tok, "%s%u", need ? "," : "", c);
		else
			n = snprintf(tok, sizeof tok, "%s%u-%u", need ? "," : "", c, end);
		if (!truncated && len && need + (size_t)n < len) {
			memcpy(buf + need, tok, (size_t)n + 1);
		} else if (!truncated && len) {
			/* keep what fits and mark the cut with "..." */
			size_t keep = need;

			while (keep > 0 && keep + 4 > len)
				keep--;
			if (keep + 4 <= len)
				memcpy(buf + keep, "...", 4);
			else
				buf[0] = '\0';
			truncated = true;
		}
		need += (size_t)n;
		c = end;
	}
	return need;
}

void vz__cpuset_and(vz_cpuset *a, const vz_cpuset *b)
{
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		a->bits[i] &= b->bits[i];
}

void vz__cpuset_or(vz_cpuset *a, const vz_cpuset *b)
{
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		a->bits[i] |= b->bits[i];
}

int vz__cpuset_first(const vz_cpuset *s)
{
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		if (s->bits[i])
			return (int)(i * 64 + (unsigned)__builtin_ctzll(s->bits[i]));
	return -1;
}

bool vz__cpuset_subset(const vz_cpuset *a, const vz_cpuset *b)
{
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		if (a->bits[i] & ~b->bits[i])
			return false;
	return true;
}
