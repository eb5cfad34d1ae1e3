/*
 * match_file.c - the files behind pattern, CIDR and owner lists
 * (DESIGN.md §4b): reading a whole file safely, warning about loose
 * permissions, and splitting a file: list into lines.
 * Owns: open/read/stat of list, rule and config files; path resolution
 * against the rule file's directory; FILE:LINE of each list line.
 * Not: what a line means (the callers' per-line functions), logging.
 * Threads: called while loading only; no shared state, reentrant libc
 * (getpwuid_r, getgrgid_r, strerror_r).
 * Errors: match_read_file puts a reason in the caller's buffer; list
 * loading adds FILE:LINE diags and goes on after a bad line.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "match_int.h"
#include "util.h"

static void
set_err(char *err, size_t errlen, const char *what, int e)
{
	char eb[128];

	if (err == NULL || errlen == 0)
		return;
	if (e != 0)
		snprintf(err, errlen, "%s: %s", what,
		    strerror_r(e, eb, sizeof(eb)));
	else
		snprintf(err, errlen, "%s", what);
}

/*
 * Debian gives each user a group of their own and umask 002: a file
 * writable by its owner's own, member-less group is the owner's alone.
 */
static int
private_group(uid_t uid, gid_t gid)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char pbuf[2048], gbuf[4096];

	if (getpwuid_r(uid, &pw, pbuf, sizeof(pbuf), &pwr) != 0 ||
	    pwr == NULL || pw.pw_gid != gid ||
	    getgrgid_r(gid, &gr, gbuf, sizeof(gbuf), &grr) != 0 || grr == NULL)
		return 0;
	return strcmp(gr.gr_name, pw.pw_name) == 0 &&
	    (gr.gr_mem == NULL || gr.gr_mem[0] == NULL);
}

void
match_file_perms(const char *path, int secret, struct diag *d)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return;
	if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) &&
	    !private_group(st.st_uid, st.st_gid)))
		diag_warn(d, path, 0, "writable by %s (mode %04o): whoever "
		    "can write it sets the mail policy",
		    st.st_mode & S_IWOTH ? "everyone" : "its group",
		    (unsigned)(st.st_mode & 07777));
	if (secret && (st.st_mode & S_IROTH))
		diag_warn(d, path, 0, "holds a password or key_secret and is "
		    "readable by everyone (mode %04o): chmod o-r",
		    (unsigned)(st.st_mode & 07777));
}

char *
match_read_file(const char *path, size_t max, size_t *len_out, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL, *nul, what[64];
	size_t n = 0, size;
	ssize_t r;
	int fd;

	if (len_out != NULL)
		*len_out = 0;
	/* O_NONBLOCK: a FIFO must not hang the load before fstat sees it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		set_err(err, errlen, "cannot open", errno);
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		set_err(err, errlen, "cannot stat", errno);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "not a regular file", 0);
		goto fail;
	}
	if ((uintmax_t)st.st_size > max) {
		snprintf(what, sizeof(what), "larger than %zu bytes", max);
		set_err(err, errlen, what, 0);
		goto fail;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size + 1)) == NULL) {
		set_err(err, errlen, "out of memory", 0);
		goto fail;
	}
	/* A file that shrinks meanwhile ends early; one that grows is cut. */
	while (n < size) {
		r = read(fd, buf + n, size - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			set_err(err, errlen, "cannot read", errno);
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if ((nul = memchr(buf, '\0', n)) != NULL) {
		snprintf(what, sizeof(what), "binary file (NUL byte at offset "
		    "%zu)", (size_t)(nul - buf));
		set_err(err, errlen, what, 0);
		goto fail;
	}
	buf[n] = '\0';
	(void)close(fd);
	if (len_out != NULL)
		*len_out = n;
	return buf;
fail:
	free(buf);
	(void)close(fd);
	return NULL;
}

/* path relative to src->basedir unless absolute; 0, or -1 if too long. */
static int
path_resolve(char *buf, size_t len, const char *path,
    const struct match_src *src)
{
	int n;

	if (path[0] == '/' || src->basedir == NULL || src->basedir[0] == '\0')
		n = snprintf(buf, len, "%s", path);
	else
		n = snprintf(buf, len, "%s/%s", src->basedir, path);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
match_list_load(const char *path, const struct match_src *src, struct diag *d,
    int (*fn)(void *, const char *, size_t, const struct match_src *,
    struct diag *), void *arg)
{
	struct match_src lsrc;
	char full[PATH_MAX], err[192];
	char *buf;
	const char *p, *e, *nl;
	size_t len;
	int r = 0, lineno = 0;

	if (path[0] == '\0' || path_resolve(full, sizeof(full), path, src)) {
		diag_err(d, src->file, src->line, "file:%.200s: bad path",
		    path);
		return -1;
	}
	buf = match_read_file(full, MATCH_FILE_MAX, &len, err, sizeof(err));
	if (buf == NULL) {
		diag_err(d, src->file, src->line, "%s: %s", full, err);
		return -1;
	}
	match_file_perms(full, 0, d);
	lsrc.file = full;
	lsrc.basedir = src->basedir;
	for (p = buf; p < buf + len; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(buf + len - p))) == NULL)
			nl = buf + len;
		for (e = nl; e > p && match_is_blank((unsigned char)e[-1]); e--)
			;
		while (p < e && match_is_blank((unsigned char)*p))
			p++;
		if (p == e || *p == '#')
			continue;
		lsrc.line = lineno;
		if (fn(arg, p, (size_t)(e - p), &lsrc, d) == -1)
			r = -1;
	}
	free(buf);
	return r;
}
