/*
 * fuzz_config.c - libFuzzer target: warden.conf from arbitrary bytes.
 * The config's directory does not exist, so rule globs find nothing.
 */
#include <glob.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Replaces glob(3) for the loader: an absolute rules.files pattern
 * walked this machine's file system (one input took seconds, and the
 * corpus grew such inputs until the run went ten times slower). Nothing
 * matches, as in the config's directory; test_config.c covers globs.
 */
int
glob(const char *pat, int flags, int (*errfunc)(const char *, int),
    glob_t *g)
{
	(void)pat;
	(void)flags;
	(void)errfunc;
	memset(g, 0, sizeof(*g));
	return GLOB_NOMATCH;
}

void
globfree(glob_t *g)
{
	(void)g;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c;
	struct diag d;
	char *buf;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	diag_init(&d);
	c = config_load_buf("/nonexistent/warden.conf", buf, size, &d);
	config_free(c);
	diag_fini(&d);
	free(buf);
	return 0;
}
