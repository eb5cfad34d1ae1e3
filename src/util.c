/*
 * util.c - bounded string copies, strict number parsing, saturating math.
 * Threads: pure functions. Errors: -1 on bad input, never aborts.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

int
str_copy(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n;

	if (dstlen == 0)
		return srclen > 0;
	n = srclen < dstlen - 1 ? srclen : dstlen - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return n < srclen;
}

int
str_lower(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i, n;

	if (dstlen == 0)
		return srclen > 0;
	n = srclen < dstlen - 1 ? srclen : dstlen - 1;
	for (i = 0; i < n; i++)
		dst[i] = (char)lower((unsigned char)src[i]);
	dst[n] = '\0';
	return n < srclen;
}

int
str_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

int
str_to_ll(const char *s, long long min, long long max, long long *out)
{
	const char *p = s;
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	if (*p == '-') {
		if (min >= 0)
			return -1;
		p++;
	}
	/* strtoll accepts leading spaces and '+'; we do not. */
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int64_t
i64_mul_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_mul_overflow(a, b, &r))
		return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
	return r;
}

int64_t
i64_add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b < 0 ? INT64_MIN : INT64_MAX;
	return r;
}
