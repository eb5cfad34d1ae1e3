/*
 * lcfg.c - libconfig helpers: strict types, FILE:LINE diagnostics,
 * unknown keys. libconfig itself stops at the first syntax error; the
 * semantic checks built on these helpers report every problem.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lcfg.h"

const char *
lcfg_file(const config_setting_t *s, const char *deflt)
{
	const char *f = s != NULL ? config_setting_source_file(s) : NULL;

	return f != NULL ? f : deflt;
}

int
lcfg_line(const config_setting_t *s)
{
	return s != NULL ? (int)config_setting_source_line(s) : 0;
}

const char *
lcfg_type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	case CONFIG_TYPE_GROUP:
		return "a group";
	default:
		return "nothing";
	}
}

/*
 * libconfig's bison parser recurses once per nesting level and its
 * config_destroy recurses too; a hostile 1 MB "((((..." would use a
 * deep stack. Count brackets outside strings and comments up front.
 */
static int
nest_depth(const char *buf, size_t len, int *line_out, int *nul_line_out)
{
	int depth = 0, max = 0, line = 1;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (c == '\n')
			line++;
		else if (c == '"') {
			for (i++; i < len && buf[i] != '"'; i++) {
				/*
				 * libconfig drops a "\x00" escape without a
				 * word: the text would silently differ from
				 * what was written (DESIGN.md §3: no NUL).
				 */
				if (buf[i] == '\\' && i + 3 < len &&
				    buf[i + 1] == 'x' && buf[i + 2] == '0' &&
				    buf[i + 3] == '0' && *nul_line_out == 0)
					*nul_line_out = line;
				if (buf[i] == '\\' && i + 1 < len)
					i++;
				else if (buf[i] == '\n')
					line++;
			}
		} else if (c == '#' || (c == '/' && i + 1 < len &&
		    buf[i + 1] == '/')) {
			while (i + 1 < len && buf[i + 1] != '\n')
				i++;
		} else if (c == '/' && i + 1 < len && buf[i + 1] == '*') {
			for (i += 2; i + 1 < len &&
			    !(buf[i] == '*' && buf[i + 1] == '/'); i++)
				if (buf[i] == '\n')
					line++;
			i++;
		} else if (c == '(' || c == '[' || c == '{') {
			if (++depth > max) {
				max = depth;
				if (max > LCFG_NEST_MAX) {
					*line_out = line;
					return max;
				}
			}
		} else if (c == ')' || c == ']' || c == '}')
			depth--;
	}
	return max;
}

int
lcfg_parse(config_t *cfg, const char *file, const char *basedir,
    const char *buf, size_t len, struct diag *d)
{
	const char *ef;
	int line = 0, nul_line = 0;

	if (memchr(buf, '\0', len) != NULL) {
		diag_err(d, file, 0, "binary file (NUL byte), not a "
		    "configuration file");
		return -1;
	}
	if (nest_depth(buf, len, &line, &nul_line) > LCFG_NEST_MAX) {
		diag_err(d, file, line, "nested deeper than %d levels",
		    LCFG_NEST_MAX);
		return -1;
	}
	if (nul_line > 0) {
		diag_err(d, file, nul_line, "\\x00 in a string: NUL is not "
		    "allowed in text");
		return -1;
	}
	config_set_options(cfg, 0);	/* no silent int/float conversion */
	if (basedir != NULL)
		config_set_include_dir(cfg, basedir);
	if (config_read_string(cfg, buf) != CONFIG_TRUE) {
		ef = config_error_file(cfg);
		diag_err(d, ef != NULL ? ef : file, config_error_line(cfg),
		    "%s", config_error_text(cfg));
		return -1;
	}
	return 0;
}

int
lcfg_check_keys(const config_setting_t *group, const char *const *allowed,
    const char *file, const char *what, struct diag *d)
{
	const config_setting_t *m;
	const char *name;
	int i, j, bad = 0, found;

	for (i = 0; (m = config_setting_get_elem(group, i)) != NULL; i++) {
		name = config_setting_name(m);
		if (name == NULL)
			continue;
		for (found = 0, j = 0; allowed[j] != NULL && !found; j++)
			found = strcmp(allowed[j], name) == 0;
		if (!found) {
			diag_err(d, lcfg_file(m, file), lcfg_line(m),
			    "%s: unknown key '%s'", what, name);
			bad++;
		}
	}
	return bad;
}

int
lcfg_get_string(const config_setting_t *g, const char *name,
    const char **out, const char *file, const char *what, struct diag *d)
{
	const config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		diag_err(d, lcfg_file(s, file), lcfg_line(s),
		    "%s%s: must be a string, not %s", what, name,
		    lcfg_type_name(s));
		return -1;
	}
	*out = config_setting_get_string(s);
	return 1;
}

int
lcfg_get_int(const config_setting_t *g, const char *name, long long min,
    long long max, long long *out, const char *file, const char *what,
    struct diag *d)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	long long v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		diag_err(d, lcfg_file(s, file), lcfg_line(s),
		    "%s%s: must be an integer, not %s", what, name,
		    lcfg_type_name(s));
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		diag_err(d, lcfg_file(s, file), lcfg_line(s),
		    "%s%s: %lld not in %lld..%lld", what, name, v, min, max);
		return -1;
	}
	*out = v;
	return 1;
}

int
lcfg_get_bool(const config_setting_t *g, const char *name, int *out,
    const char *file, const char *what, struct diag *d)
{
	const config_setting_t *s = config_setting_get_member(g, name);

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		diag_err(d, lcfg_file(s, file), lcfg_line(s),
		    "%s%s: must be true or false, not %s", what, name,
		    lcfg_type_name(s));
		return -1;
	}
	*out = config_setting_get_bool(s);
	return 1;
}

int
lcfg_get_choice(const config_setting_t *g, const char *name,
    int (*lookup)(const char *), const char *choices, int *out,
    const char *file, const char *what, struct diag *d)
{
	const config_setting_t *s;
	const char *v;
	int got, x;

	got = lcfg_get_string(g, name, &v, file, what, d);
	if (got <= 0)
		return got;
	if ((x = lookup(v)) < 0) {
		s = config_setting_get_member(g, name);
		diag_err(d, lcfg_file(s, file), lcfg_line(s),
		    "%s%s: \"%s\" is not one of %s", what, name, v, choices);
		return -1;
	}
	*out = x;
	return 1;
}

static size_t
append(char *buf, size_t len, size_t at, const char *s)
{
	size_t n = strlen(s);

	if (at + 1 >= len)
		return at;
	if (n > len - 1 - at)
		n = len - 1 - at;
	memcpy(buf + at, s, n);
	buf[at + n] = '\0';
	return at + n;
}

void
lcfg_text(const config_setting_t *s, char *buf, size_t len)
{
	const config_setting_t *e;
	char tmp[64];
	size_t at = 0;
	int i;

	if (len == 0)
		return;
	buf[0] = '\0';
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(tmp, sizeof(tmp), "%lld",
		    (long long)config_setting_get_int64(s));
		append(buf, len, 0, tmp);
		break;
	case CONFIG_TYPE_BOOL:
		append(buf, len, 0, config_setting_get_bool(s) ? "true" :
		    "false");
		break;
	case CONFIG_TYPE_FLOAT:
		snprintf(tmp, sizeof(tmp), "%g", config_setting_get_float(s));
		append(buf, len, 0, tmp);
		break;
	case CONFIG_TYPE_STRING:
		at = append(buf, len, at, "\"");
		at = append(buf, len, at, config_setting_get_string(s));
		append(buf, len, at, "\"");
		break;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		at = append(buf, len, at, "[");
		for (i = 0; (e = config_setting_get_elem(s, i)) != NULL; i++) {
			if (i > 0)
				at = append(buf, len, at, ", ");
			/* Each element straight into buf: no cut of its own. */
			lcfg_text(e, buf + at, len - at);
			at += strlen(buf + at);
		}
		append(buf, len, at, "]");
		break;
	default:
		append(buf, len, 0, "{...}");
		break;
	}
}
