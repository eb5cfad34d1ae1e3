/*
 * testutil.h - what every cmocka unit test includes: cmocka itself and
 * helpers for temporary files (removed by the test that made them).
 */
#ifndef WARDEN_TESTUTIL_H
#define WARDEN_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* Makes a fresh directory under $TMPDIR; the path goes into buf. */
static inline void
tu_mkdtemp(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");

	snprintf(buf, len, "%s/warden-test.XXXXXX", t != NULL ? t : "/tmp");
	assert_non_null(mkdtemp(buf));
}

/* Writes len bytes (or strlen when len is (size_t)-1) to dir/name. */
static inline void
tu_write(const char *dir, const char *name, const char *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	if (len == (size_t)-1)
		len = strlen(data);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Removes dir and the plain files directly inside it. */
static inline void
tu_rmtree(const char *dir)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

#endif
