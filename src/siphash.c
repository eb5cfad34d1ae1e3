/*
 * siphash.c - SipHash-2-4 written from "SipHash: a fast short-input PRF"
 * (Aumasson, Bernstein; INDOCRYPT 2012): 2 compression rounds per 8-byte
 * word, 4 finalisation rounds, 64-bit output.
 * Owns: the arithmetic. Not: key management (callers draw random keys).
 * Threads: pure function on the caller's buffers.
 * Errors: none. Portable: words are assembled byte by byte, so neither
 * host endianness nor the alignment of data matters.
 */
#include "siphash.h"

#define ROTL64(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))

/* The paper's "SipRound": three ARX half-rounds over the four words. */
#define SIPROUND(v0, v1, v2, v3) do {					\
	(v0) += (v1); (v1) = ROTL64((v1), 13); (v1) ^= (v0);		\
	(v0) = ROTL64((v0), 32);					\
	(v2) += (v3); (v3) = ROTL64((v3), 16); (v3) ^= (v2);		\
	(v0) += (v3); (v3) = ROTL64((v3), 21); (v3) ^= (v0);		\
	(v2) += (v1); (v1) = ROTL64((v1), 17); (v1) ^= (v2);		\
	(v2) = ROTL64((v2), 32);					\
} while (0)

static uint64_t
load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 |
	    (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	    (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	    (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

uint64_t
siphash24(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	/* The initial constants spell "somepseudorandomlygeneratedbytes". */
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t m, last;
	size_t i, left;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(in + i);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	/*
	 * The last word holds the 0..7 remaining bytes and, in its top
	 * byte, the message length mod 256; so messages that differ only
	 * by trailing zero bytes still hash apart.
	 */
	last = (uint64_t)(len & 0xff) << 56;
	left = len - i;
	while (left > 0) {
		left--;
		last |= (uint64_t)in[i + left] << (8 * left);
	}
	v3 ^= last;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= last;

	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}
