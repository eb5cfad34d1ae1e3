/*
 * fuzz_match.c - libFuzzer target: pattern and CIDR compilation and
 * matching, address parsing. The input is "PATTERN\nVALUE"; byte 0
 * chooses pattern set or CIDR list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct match_src src = { "fuzz", 1, "/nonexistent" };
	struct match_set *set;
	struct match_cidr *cidr;
	struct match_ip ip;
	struct diag d;
	char *buf, *val, out[64];
	size_t vlen;

	if (size < 1 || (buf = malloc(size)) == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	val = strchr(buf, '\n');
	if (val != NULL)
		*val++ = '\0';
	else
		val = buf;
	vlen = strlen(val);
	diag_init(&d);
	if (data[0] & 1) {
		if ((set = match_set_new()) != NULL) {
			if (match_set_add(set, buf, &src, &d) == 0)
				(void)match_set_test(set, val, vlen);
			match_set_free(set);
		}
	} else if ((cidr = match_cidr_new()) != NULL) {
		if (match_cidr_add(cidr, buf, &src, &d) == 0) {
			match_cidr_compile(cidr);
			if (match_ip_parse(val, vlen, &ip) == 0) {
				(void)match_cidr_test(cidr, &ip);
				match_ip_mask(&ip, data[0] >> 1);
				match_ip_format(&ip, out, sizeof(out));
			}
		}
		match_cidr_free(cidr);
	}
	diag_fini(&d);
	free(buf);
	return 0;
}
