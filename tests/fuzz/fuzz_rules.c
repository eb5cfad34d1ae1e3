/*
 * fuzz_rules.c - libFuzzer target: rule files from arbitrary bytes.
 * Must never crash, leak or hang; errors are expected and ignored.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rules_opts ro = { MODE_ENFORCE, ONERR_ACCEPT };
	struct ruleset *rs;
	struct diag d;
	char *buf;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	diag_init(&d);
	/* basedir is a directory with nothing in it: file: lists fail. */
	rs = rules_load_buf("fuzz.rules", "/nonexistent", buf, size, &ro, &d);
	rules_unref(rs);
	diag_fini(&d);
	free(buf);
	return 0;
}
