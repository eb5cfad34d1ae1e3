/*
 * util.h - small string and number helpers shared by every module.
 * Owns: bounded copies, strict number parsing, ASCII case folding.
 * Threads: pure functions on caller buffers.
 * Errors: -1 on bad input; never aborts on input.
 */
#ifndef WARDEN_UTIL_H
#define WARDEN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Copies at most dstlen-1 bytes of src (srclen bytes, NUL or not) into dst
 * and NUL-terminates. Returns 1 when src had to be truncated, else 0.
 */
int	str_copy(char *dst, size_t dstlen, const char *src, size_t srclen);

/* ASCII lower-casing into dst (same bound rules as str_copy). */
int	str_lower(char *dst, size_t dstlen, const char *src, size_t srclen);

/* ASCII case-insensitive equality of two counted strings. */
int	str_ieq(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Parses the whole of s (no sign unless min < 0, no spaces, no trailing
 * text) as a decimal integer within [min, max]. Returns 0 and stores it
 * in *out, or -1.
 */
int	str_to_ll(const char *s, long long min, long long max,
	    long long *out) WARN_UNUSED;

/* Saturating helpers for the rate arithmetic. */
int64_t	i64_mul_sat(int64_t a, int64_t b);
int64_t	i64_add_sat(int64_t a, int64_t b);

#endif
