/*
 * fuzz_config.c - libFuzzer target: warden.conf from arbitrary bytes.
 * The config's directory does not exist, so rule globs find nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
