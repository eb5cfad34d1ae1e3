/*
 * diag.c - collects configuration errors and warnings and prints them as
 * "FILE:LINE: message". Threads: one diag per load. Errors: none; when
 * memory or DIAG_MAX runs out, entries are counted but not kept.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

void
diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
diag_fini(struct diag *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void
diag_add(struct diag *d, enum diag_sev sev, const char *file, int line,
    const char *fmt, ...)
{
	struct diag_entry *e, *nv;
	va_list ap;
	size_t ncap;

	if (sev == DIAG_ERROR)
		d->errors++;
	else
		d->warnings++;
	if (d->n >= DIAG_MAX) {
		d->dropped++;
		return;
	}
	if (d->n == d->cap) {
		ncap = d->cap ? d->cap * 2 : 16;
		if ((nv = realloc(d->v, ncap * sizeof(*nv))) == NULL) {
			d->dropped++;
			return;
		}
		d->v = nv;
		d->cap = ncap;
	}
	e = &d->v[d->n++];
	e->sev = sev;
	e->line = line;
	str_copy(e->file, sizeof(e->file), file ? file : "",
	    file ? strlen(file) : 0);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

const char *
diag_format(const struct diag *d, size_t i, char *buf, size_t len)
{
	const struct diag_entry *e = &d->v[i];
	const char *sev = e->sev == DIAG_WARNING ? "warning: " : "";

	if (e->file[0] != '\0' && e->line > 0)
		snprintf(buf, len, "%s:%d: %s%s", e->file, e->line, sev, e->msg);
	else if (e->file[0] != '\0')
		snprintf(buf, len, "%s: %s%s", e->file, sev, e->msg);
	else
		snprintf(buf, len, "warden: %s%s", sev, e->msg);
	return buf;
}

void
diag_print(const struct diag *d, FILE *f)
{
	char buf[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	size_t i;

	for (i = 0; i < d->n; i++)
		fprintf(f, "%s\n", diag_format(d, i, buf, sizeof(buf)));
	if (d->dropped > 0)
		fprintf(f, "warden: %zu more diagnostics not shown\n",
		    d->dropped);
}
