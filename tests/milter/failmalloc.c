/*
 * failmalloc.c - an LD_PRELOAD for tests/milter (t_oom): malloc of a
 * size within [FAILMALLOC_MIN, FAILMALLOC_MAX] returns NULL while the
 * file FAILMALLOC_ARM exists. Out of memory exactly where a test wants
 * it, with no test hook in warden. Only malloc: what warden's callbacks
 * allocate there (milter.c scratch_take) goes through it.
 * Build: cc -shared -fPIC -O2 -o failmalloc.so failmalloc.c
 * Not for sanitizer or valgrind runs: both replace malloc themselves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

void	*__libc_malloc(size_t);

static size_t
env_size(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? (size_t)strtoull(v, NULL, 10) : 0;
}

static int
armed(size_t n)
{
	const char *arm = getenv("FAILMALLOC_ARM");
	int e = errno, r;

	if (arm == NULL || n < env_size("FAILMALLOC_MIN") ||
	    n > env_size("FAILMALLOC_MAX"))
		return 0;
	r = access(arm, F_OK) == 0;
	errno = e;		/* a malloc that succeeds leaves errno alone */
	return r;
}

void *
malloc(size_t n)
{
	if (armed(n)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}
