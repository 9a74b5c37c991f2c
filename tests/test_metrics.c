// SPDX-License-Identifier: MIT
/*
 * test_metrics.c - `memvisor run --metrics`: the Prometheus text a snapshot
 * gives, checked by a parser of the exposition format written here (every
 * sample's family has HELP and TYPE before it, names and labels are valid,
 * label values escaped, counters end in _total, values parse as floats, no
 * series twice), which is itself shown to reject malformed text; the
 * address forms; the text read back (memvisor top); the server (503
 * before the first snapshot, the text after, /healthz, 404, a stuck
 * scraper blocking nothing); loopback by default; and a real run served on a
 * free port, with a port in use or a bad address refused with status 2
 * before any guest starts.
 *
 * HTTP is spoken over plain sockets here.  Every wait polls with a
 * deadline; none sleeps to let something happen.
 */

/* The endpoint and the snapshot are part of the command, not of a library
 * the Makefile links into tests, so they are compiled in here. */
#include "helper.h"
#include "../tools/metrics.c"
#include "../tools/snap.c"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#define STEP_MS 60000
#define POLL_MS 50
#define MB_PAGES(mb) ((uint64_t)(mb)*256)

/* ---- a parser of the text exposition format (version 0.0.4) ------------ */

#define MAX_FAMS 256
#define MAX_SAMPLES 4096

struct fam {
	char name[128];
	char type[16]; /* "" until its TYPE line */
	bool help;
	unsigned samples;
};

struct sample {
	char name[128];
	char labels[256]; /* unescaped, "k=v,k=v" in the order given */
	double value;
};

struct parsed {
	struct fam fams[MAX_FAMS];
	size_t nfams;
	struct sample samples[MAX_SAMPLES];
	size_t nsamples;
	char err[512];
};

__attribute__((format(printf, 3, 4))) static int
bad(struct parsed *p, unsigned line, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, sizeof(p->err), "line %u: %s", line, msg);
	return -1;
}

/* A metric name at *s, [a-zA-Z_:][a-zA-Z0-9_:]*; its length, 0 if none. */
static size_t metric_name(const char *s)
{
	size_t n = 0;

	if (!(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return 0;
	while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == ':')
		n++;
	return n;
}

/* A label name, [a-zA-Z_][a-zA-Z0-9_]*. */
static size_t label_name(const char *s)
{
	size_t n = 0;

	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	while (isalnum((unsigned char)s[n]) || s[n] == '_')
		n++;
	return n;
}

static struct fam *find_fam(struct parsed *p, const char *name)
{
	for (size_t i = 0; i < p->nfams; i++)
		if (!strcmp(p->fams[i].name, name))
			return &p->fams[i];
	return NULL;
}

static struct fam *get_fam(struct parsed *p, const char *name)
{
	struct fam *f = find_fam(p, name);

	if (f || p->nfams == MAX_FAMS)
		return f;
	f = &p->fams[p->nfams++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	return f;
}

static bool parse_float(const char *tok, double *v)
{
	char *end;

	if (!strcmp(tok, "NaN")) {
		*v = NAN;
		return true;
	}
	if (!strcmp(tok, "+Inf") || !strcmp(tok, "-Inf")) {
		*v = tok[0] == '+' ? INFINITY : -INFINITY;
		return true;
	}
	if (!*tok || isspace((unsigned char)*tok))
		return false;
	errno = 0;
	*v = strtod(tok, &end);
	/* strtod also takes "inf", "nan", hex: the format does not */
	return !*end && !errno && !strpbrk(tok, "xXiInN");
}

/* "# HELP name text" or "# TYPE name type"; other comments pass. */
static int parse_comment(struct parsed *p, unsigned ln, const char *l)
{
	static const char *types[] = { "counter", "gauge", "histogram",
				       "summary", "untyped" };
	char name[128];
	bool help = !strncmp(l, "# HELP ", 7), type = !strncmp(l, "# TYPE ", 7);
	size_t n;
	struct fam *f;
	const char *rest;

	if (!help && !type)
		return 0;
	n = metric_name(l + 7);
	if (!n || n >= sizeof(name))
		return bad(p, ln, "bad metric name in '%s'", l);
	memcpy(name, l + 7, n);
	name[n] = '\0';
	rest = l + 7 + n;
	f = get_fam(p, name);
	if (!f)
		return bad(p, ln, "too many families");
	if (f->samples)
		return bad(p, ln, "%s of %s after its samples",
			   help ? "HELP" : "TYPE", name);
	if (help) {
		if (f->help)
			return bad(p, ln, "a second HELP for %s", name);
		if (*rest != ' ' || !rest[1])
			return bad(p, ln, "HELP for %s without text", name);
		for (const char *c = rest + 1; *c; c++)
			if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
				return bad(p, ln, "bad escape in HELP of %s",
					   name);
			else if (*c == '\\')
				c++;
		f->help = true;
		return 0;
	}
	if (f->type[0])
		return bad(p, ln, "a second TYPE for %s", name);
	if (*rest != ' ')
		return bad(p, ln, "TYPE for %s without a type", name);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(rest + 1, types[i]))
			snprintf(f->type, sizeof(f->type), "%s", types[i]);
	if (!f->type[0])
		return bad(p, ln, "unknown type '%s' for %s", rest + 1, name);
	return 0;
}

/* The labels at *s ('{' ... '}'), unescaped into out; past the '}'. */
static const char *parse_labels(struct parsed *p, unsigned ln, const char *s,
				char *out, size_t len)
{
	char seen[16][64];
	size_t nseen = 0, o = 0, n;

	out[0] = '\0';
	s++;
	while (*s != '}') {
		n = label_name(s);
		if (!n || n >= sizeof(seen[0])) {
			bad(p, ln, "bad label name at '%s'", s);
			return NULL;
		}
		if (s[0] == '_' && s[1] == '_') {
			bad(p, ln, "reserved label name at '%s'", s);
			return NULL;
		}
		for (size_t i = 0; i < nseen; i++)
			if (strlen(seen[i]) == n && !strncmp(seen[i], s, n)) {
				bad(p, ln, "label %.*s twice", (int)n, s);
				return NULL;
			}
		if (nseen < 16) {
			memcpy(seen[nseen], s, n);
			seen[nseen++][n] = '\0';
		}
		if (o)
			out[o < len - 1 ? o++ : o] = ',';
		for (size_t i = 0; i < n && o < len - 1; i++)
			out[o++] = s[i];
		if (o < len - 1)
			out[o++] = '=';
		s += n;
		if (s[0] != '=' || s[1] != '"') {
			bad(p, ln, "label without =\"value\" at '%s'", s);
			return NULL;
		}
		for (s += 2; *s != '"'; s++) {
			char c = *s;

			if (!c || c == '\n') {
				bad(p, ln, "unterminated label value");
				return NULL;
			}
			if (c == '\\') {
				s++;
				if (*s == 'n')
					c = '\n';
				else if (*s == '\\' || *s == '"')
					c = *s;
				else {
					bad(p, ln,
					    "bad escape \\%c in a label value",
					    *s ? *s : '0');
					return NULL;
				}
			}
			if (o < len - 1)
				out[o++] = c;
		}
		s++;
		if (*s == ',')
			s++;
		else if (*s != '}') {
			bad(p, ln, "expected , or } at '%s'", s);
			return NULL;
		}
	}
	out[o] = '\0';
	return s + 1;
}

static int parse_sample(struct parsed *p, unsigned ln, const char *l,
			struct fam **cur)
{
	struct sample *sm;
	char tok[64], fname[128];
	const char *s, *sp;
	size_t n = metric_name(l);
	struct fam *f;

	if (!n || n >= sizeof(sm->name))
		return bad(p, ln, "bad metric name in '%s'", l);
	if (p->nsamples == MAX_SAMPLES)
		return bad(p, ln, "too many samples");
	sm = &p->samples[p->nsamples];
	memcpy(sm->name, l, n);
	sm->name[n] = '\0';
	s = l + n;
	sm->labels[0] = '\0';
	if (*s == '{') {
		s = parse_labels(p, ln, s, sm->labels, sizeof(sm->labels));
		if (!s)
			return -1;
	}
	if (*s != ' ')
		return bad(p, ln, "no value after %s", sm->name);
	s++;
	sp = strchr(s, ' ');
	n = sp ? (size_t)(sp - s) : strlen(s);
	if (n >= sizeof(tok))
		return bad(p, ln, "value too long");
	memcpy(tok, s, n);
	tok[n] = '\0';
	if (!parse_float(tok, &sm->value))
		return bad(p, ln, "value '%s' of %s is not a float", tok,
			   sm->name);
	if (sp) {
		char *end;

		errno = 0;
		(void)strtoll(sp + 1, &end, 10);
		if (*end || errno || sp[1] == '\0')
			return bad(p, ln, "bad timestamp after %s", sm->name);
	}
	/* its family: the name itself, or without a histogram's or a
	 * summary's suffix */
	snprintf(fname, sizeof(fname), "%s", sm->name);
	f = find_fam(p, fname);
	if (!f) {
		static const char *sfx[] = { "_bucket", "_sum", "_count" };

		for (size_t i = 0; !f && i < 3; i++) {
			size_t fl = strlen(fname), sl = strlen(sfx[i]);

			if (fl > sl && !strcmp(fname + fl - sl, sfx[i])) {
				fname[fl - sl] = '\0';
				f = find_fam(p, fname);
				if (f && strcmp(f->type, "histogram") &&
				    strcmp(f->type, "summary"))
					f = NULL;
				snprintf(fname, sizeof(fname), "%s", sm->name);
			}
		}
	}
	if (!f || !f->type[0])
		return bad(p, ln, "sample %s has no TYPE before it", sm->name);
	if (!f->help)
		return bad(p, ln, "sample %s has no HELP before it", sm->name);
	if (*cur && *cur != f && f->samples)
		return bad(p, ln, "samples of %s are not together", f->name);
	if (!strcmp(f->type, "counter") &&
	    (strlen(sm->name) < 6 ||
	     strcmp(sm->name + strlen(sm->name) - 6, "_total")))
		return bad(p, ln, "counter %s does not end in _total",
			   sm->name);
	if (strcmp(f->type, "counter") && strlen(sm->name) > 6 &&
	    !strcmp(sm->name + strlen(sm->name) - 6, "_total"))
		return bad(p, ln, "%s %s ends in _total", f->type, sm->name);
	for (size_t i = 0; i < p->nsamples; i++)
		if (!strcmp(p->samples[i].name, sm->name) &&
		    !strcmp(p->samples[i].labels, sm->labels))
			return bad(p, ln, "series %s{%s} twice", sm->name,
				   sm->labels);
	f->samples++;
	*cur = f;
	p->nsamples++;
	return 0;
}

/* 0 if text is a valid exposition, else -1 with p->err saying why. */
static int parse_exposition(const char *text, struct parsed *p)
{
	struct fam *cur = NULL;
	unsigned ln = 0;
	char line[1024];
	const char *s = text, *nl;
	size_t n;

	memset(p, 0, sizeof(*p));
	if (!*text)
		return bad(p, 0, "empty");
	while (*s) {
		ln++;
		nl = strchr(s, '\n');
		if (!nl)
			return bad(p, ln, "the last line has no newline");
		n = (size_t)(nl - s);
		if (n >= sizeof(line))
			return bad(p, ln, "line too long");
		memcpy(line, s, n);
		line[n] = '\0';
		s = nl + 1;
		if (!n)
			continue;
		if (line[0] == '#') {
			if (parse_comment(p, ln, line))
				return -1;
			continue;
		}
		if (parse_sample(p, ln, line, &cur))
			return -1;
	}
	for (size_t i = 0; i < p->nfams; i++)
		if (!p->fams[i].type[0] || !p->fams[i].help)
			return bad(p, ln, "family %s lacks HELP or TYPE",
				   p->fams[i].name);
	return 0;
}

/* The value of name{labels}; fails the test if there is none. */
static double value_of(const struct parsed *p, const char *name,
		       const char *labels)
{
	for (size_t i = 0; i < p->nsamples; i++)
		if (!strcmp(p->samples[i].name, name) &&
		    !strcmp(p->samples[i].labels, labels))
			return p->samples[i].value;
	fail_msg("no sample %s{%s}", name, labels);
	return 0;
}

static const char *type_of(struct parsed *p, const char *family)
{
	struct fam *f = find_fam(p, family);

	if (!f)
		fail_msg("no family %s", family);
	return f->type;
}

static char *format(const struct snap *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(metrics_format(s, f), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* ---- the text from a fixed snapshot ------------------------------------ */

static int setup_snap(void **state)
{
	struct snap *s = calloc(1, sizeof(*s));

	if (!s || snap_init(s, 2))
		return -1;
	s->t_s = 5;
	s->duration_s = 60;
	s->host.memsize_pages = MB_PAGES(512);
	s->host.free_pages = MB_PAGES(12);
	s->host.state = MV_STATE_HARD;
	s->host.balances = 40;
	s->host.balances_early = 11;
	snprintf(s->vms[0].name, sizeof(s->vms[0].name), "db");
	snprintf(s->vms[1].name, sizeof(s->vms[1].name), "web");
	for (size_t i = 0; i < 2; i++) {
		s->vms[i].have = true;
		s->vms[i].st.consumed_pages = MB_PAGES(100 * (i + 1));
		s->vms[i].st.swapin_pages = 1000 + i;
		s->vms[i].st.state_pages[MV_PAGE_ZERO] = 7;
		s->vms[i].ops = 424242;
	}
	*state = s;
	return 0;
}

static int teardown_snap(void **state)
{
	struct snap *s = *state;

	snap_free(s);
	free(s);
	return 0;
}

static struct parsed parsed; /* large: not on the stack */

static void test_parser_rejects_malformed_expositions(void **state)
{
	static const char *const bad_texts[] = {
		/* a sample with no HELP */
		"# TYPE a gauge\na 1\n",
		/* a sample with no TYPE */
		"# HELP a x\na 1\n",
		/* a counter not named _total */
		"# HELP a x\n# TYPE a counter\na 1\n",
		/* a gauge named _total */
		"# HELP a_total x\n# TYPE a_total gauge\na_total 1\n",
		/* a value that is not a float */
		"# HELP a x\n# TYPE a gauge\na one\n",
		"# HELP a x\n# TYPE a gauge\na 0x10\n",
		/* an unescaped quote, a bad escape, no quotes */
		"# HELP a x\n# TYPE a gauge\na{vm=\"a\"b\"} 1\n",
		"# HELP a x\n# TYPE a gauge\na{vm=\"a\\tb\"} 1\n",
		"# HELP a x\n# TYPE a gauge\na{vm=db} 1\n",
		/* a bad name */
		"# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",
		/* a family's samples apart */
		"# HELP a x\n# TYPE a gauge\na{v=\"1\"} 1\n"
		"# HELP b x\n# TYPE b gauge\nb 1\na{v=\"2\"} 1\n",
		/* the same series twice */
		"# HELP a x\n# TYPE a gauge\na 1\na 2\n",
		/* TYPE after the samples, a second TYPE */
		"# HELP a x\na 1\n# TYPE a gauge\n",
		"# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n",
		/* no newline at the end */
		"# HELP a x\n# TYPE a gauge\na 1",
	};
	static const char good[] =
		"# HELP a_total x \\\\ y\n# TYPE a_total counter\n"
		"a_total{vm=\"d\\\"b\\\\\\n\",x=\"\"} 1e3 17\n"
		"# HELP g x\n# TYPE g gauge\ng +Inf\n";

	(void)state;
	for (size_t i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++)
		if (!parse_exposition(bad_texts[i], &parsed))
			fail_msg("the parser took malformed text %zu:\n%s", i,
				 bad_texts[i]);
	if (parse_exposition(good, &parsed))
		fail_msg("the parser refused good text: %s", parsed.err);
	assert_float_equal(value_of(&parsed, "a_total", "vm=d\"b\\\n,x="), 1000,
			   0);
}

static void test_every_family_has_help_and_type_and_parses(void **state)
{
	char *text = format(*state);

	if (parse_exposition(text, &parsed))
		fail_msg("%s in:\n%s", parsed.err, text);
	assert_true(parsed.nfams > 40);
	/* each VM's consumed bytes */
	assert_float_equal(value_of(&parsed, "memvisor_vm_consumed_bytes",
				    "vm=db"),
			   100.0 * (1 << 20), 0);
	assert_float_equal(value_of(&parsed, "memvisor_vm_consumed_bytes",
				    "vm=web"),
			   200.0 * (1 << 20), 0);
	assert_float_equal(value_of(&parsed, "memvisor_host_free_bytes", ""),
			   12.0 * (1 << 20), 0);
	assert_float_equal(value_of(&parsed, "memvisor_host_state", ""), 3, 0);
	assert_float_equal(
		value_of(&parsed, "memvisor_host_balances_total", ""), 40, 0);
	assert_float_equal(value_of(&parsed,
				    "memvisor_host_early_balances_total", ""),
			   11, 0);
	assert_float_equal(value_of(&parsed, "memvisor_vm_pages",
				    "vm=web,state=zero"),
			   7, 0);
	assert_float_equal(value_of(&parsed, "memvisor_vm_guest_ops_total",
				    "vm=db"),
			   424242, 0);
	free(text);
}

static void test_counters_end_in_total_and_gauges_do_not(void **state)
{
	char *text = format(*state);

	assert_int_equal(parse_exposition(text, &parsed), 0);
	assert_string_equal(type_of(&parsed, "memvisor_vm_swapin_pages_total"),
			    "counter");
	assert_float_equal(value_of(&parsed, "memvisor_vm_swapin_pages_total",
				    "vm=web"),
			   1001, 0);
	assert_string_equal(type_of(&parsed, "memvisor_host_free_bytes"),
			    "gauge");
	for (size_t i = 0; i < parsed.nfams; i++) {
		size_t n = strlen(parsed.fams[i].name);
		bool total = n > 6 &&
			     !strcmp(parsed.fams[i].name + n - 6, "_total");

		assert_int_equal(total,
				 !strcmp(parsed.fams[i].type, "counter"));
	}
	free(text);
}

static void test_vm_names_are_escaped_in_label_values(void **state)
{
	struct snap *s = *state;
	char *text;

	snprintf(s->vms[0].name, sizeof(s->vms[0].name), "a\"b\\c\nd");
	text = format(s);
	if (parse_exposition(text, &parsed))
		fail_msg("%s in:\n%s", parsed.err, text);
	assert_non_null(strstr(text, "{vm=\"a\\\"b\\\\c\\nd\"}"));
	assert_float_equal(value_of(&parsed, "memvisor_vm_consumed_bytes",
				    "vm=a\"b\\c\nd"),
			   100.0 * (1 << 20), 0);
	free(text);
}

/* memvisor top reads the text back: what it shows is what was served */
static void test_the_text_reads_back_into_the_same_snapshot(void **state)
{
	struct snap *s = *state, back;
	char *text;

	snprintf(s->scenario, sizeof(s->scenario), "odd \"name\" \\ here");
	snprintf(s->vms[1].name, sizeof(s->vms[1].name), "w{e} b\"");
	s->vms[0].st.state_pages[MV_PAGE_PRIVATE] = 300;
	s->vms[0].st.state_pages[MV_PAGE_SHARED] = 20;
	s->vms[0].st.active_permille = 455;
	s->vms[0].st.balloon_driver = 1;
	s->vms[1].st.zip_used_bytes = 12345;
	s->vms[1].integrity_errors = 2;
	s->host.share_saved_pages = 77;
	s->host.reclaim_pages = 99;
	text = format(s);
	snap_init(&back, 0);
	assert_int_equal(metrics_read(text, &back), 0);
	assert_string_equal(back.scenario, s->scenario);
	assert_float_equal(back.t_s, 5, 0);
	assert_int_equal(back.duration_s, 60);
	assert_int_equal(back.host.memsize_pages, s->host.memsize_pages);
	assert_int_equal(back.host.free_pages, s->host.free_pages);
	assert_int_equal(back.host.state, MV_STATE_HARD);
	assert_int_equal(back.host.share_saved_pages, 77);
	assert_int_equal(back.host.reclaim_pages, 99);
	assert_int_equal(back.nvms, 2);
	assert_string_equal(back.vms[0].name, "db");
	assert_string_equal(back.vms[1].name, "w{e} b\"");
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(back.vms[i].st.consumed_pages,
				 s->vms[i].st.consumed_pages);
		assert_int_equal(back.vms[i].st.swapin_pages,
				 s->vms[i].st.swapin_pages);
		assert_int_equal(back.vms[i].ops, s->vms[i].ops);
		assert_memory_equal(back.vms[i].st.state_pages,
				    s->vms[i].st.state_pages,
				    sizeof(s->vms[i].st.state_pages));
	}
	assert_int_equal(snap_grant_pages(&back.vms[0].st), 320);
	assert_int_equal(back.vms[0].st.active_permille, 455);
	assert_int_equal(back.vms[0].st.balloon_driver, 1);
	assert_int_equal(back.vms[1].st.zip_used_bytes, 12345);
	assert_int_equal(back.vms[1].integrity_errors, 2);
	assert_int_equal(metrics_read("hello world\n", &back), -EINVAL);
	snap_free(&back);
	free(text);
}

static void test_addresses_default_to_loopback(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	static const char *const refused[] = { "",	    ":",
					       "abc",	    "99999",
					       "9100x",	    "localhost:9100",
					       "1.2.3:80",  "[::1]",
					       "[::1]9100", "-1",
					       "1.2.3.4:" };
	char err[256], addr[64];
	socklen_t len;

	(void)state;
	assert_int_equal(
		metrics_parse_addr("9100", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(in->sin_family, AF_INET);
	assert_int_equal(ntohs(in->sin_port), 9100);
	inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
	assert_string_equal(addr, "127.0.0.1");
	assert_int_equal(
		metrics_parse_addr(":9101", &ss, &len, err, sizeof(err)), 0);
	inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
	assert_string_equal(addr, "127.0.0.1");
	assert_int_equal(ntohs(in->sin_port), 9101);
	assert_int_equal(metrics_parse_addr("0.0.0.0:80", &ss, &len, err,
					    sizeof(err)),
			 0);
	inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
	assert_string_equal(addr, "0.0.0.0");
	assert_int_equal(metrics_parse_addr("[::1]:9102", &ss, &len, err,
					    sizeof(err)),
			 0);
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 9102);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		if (!metrics_parse_addr(refused[i], &ss, &len, err,
					sizeof(err)))
			fail_msg("'%s' was taken as an address", refused[i]);
		assert_non_null(strstr(err, "--metrics"));
	}
}

/* ---- HTTP over a plain socket ------------------------------------------- */

/* GET path from 127.0.0.1:port; the status (0 if no answer), the body in
 * *body (the caller frees). */
static int http_get(unsigned port, const char *path, char **body)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { 10, 0 };
	size_t cap = 1 << 20, n = 0;
	char *buf = calloc(1, cap), req[256], *sep;
	int fd, status = 0;
	ssize_t got;

	assert_non_null(buf);
	*body = NULL;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		free(buf);
		return 0;
	}
	snprintf(
		req, sizeof(req),
		"GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
		path);
	assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	while (n < cap - 1 && (got = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)got;
	close(fd);
	buf[n] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	sep = strstr(buf, "\r\n\r\n");
	*body = strdup(sep ? sep + 4 : "");
	free(buf);
	return status;
}

static unsigned url_port(const char *url)
{
	const char *colon = strrchr(url, ':');

	assert_non_null(colon);
	return (unsigned)atoi(colon + 1);
}

/* Whether /proc/net/tcp has a socket listening on addr (as the kernel
 * writes it, e.g. 0100007F for 127.0.0.1) and port. */
static bool listening_on(const char *addr, unsigned port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512], want[32];
	bool found = false;

	assert_non_null(f);
	snprintf(want, sizeof(want), "%s:%04X", addr, port);
	while (fgets(line, sizeof(line), f)) {
		char local[64], remote[64], st[8];

		if (sscanf(line, "%*d: %63s %63s %7s", local, remote, st) ==
			    3 &&
		    !strcmp(local, want) && !strcmp(st, "0A"))
			found = true;
	}
	fclose(f);
	return found;
}

static void test_server_answers_503_until_the_first_snapshot(void **state)
{
	struct metrics *m;
	char err[256], *body;
	unsigned port;

	assert_int_equal(metrics_start("0", &m, err, sizeof(err)), 0);
	port = url_port(metrics_url(m));
	assert_true(port > 0);
	assert_int_equal(http_get(port, "/metrics", &body), 503);
	free(body);
	assert_int_equal(http_get(port, "/healthz", &body), 200);
	assert_string_equal(body, "ok\n");
	free(body);
	metrics_publish(m, *state);
	assert_int_equal(http_get(port, "/metrics", &body), 200);
	if (parse_exposition(body, &parsed))
		fail_msg("%s", parsed.err);
	assert_float_equal(value_of(&parsed, "memvisor_vm_consumed_bytes",
				    "vm=db"),
			   100.0 * (1 << 20), 0);
	free(body);
	assert_int_equal(http_get(port, "/nothing", &body), 404);
	free(body);
	metrics_stop(m);
	/* stopped: nobody listens there any more */
	assert_int_equal(http_get(port, "/healthz", &body), 0);
}

/* A scraper that sends half a request and waits holds no lock the run
 * loop needs, nor the server: publishing and other scrapes go on. */
static void test_a_stuck_scraper_blocks_neither_publish_nor_others(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct snap *s = *state;
	struct metrics *m;
	char err[256], *body;
	uint64_t t0;
	unsigned port;
	int fd;

	assert_int_equal(metrics_start("0", &m, err, sizeof(err)), 0);
	port = url_port(metrics_url(m));
	metrics_publish(m, s);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, "GET /met", 8), 8);
	t0 = th_now_ms();
	for (int i = 0; i < 100; i++) {
		s->host.free_pages = (uint64_t)i;
		metrics_publish(m, s);
	}
	/* a hundred publishes are a matter of milliseconds, even on a
	 * loaded machine; a lock held by the stuck scrape would be the 10 s
	 * of its timeout */
	assert_true(th_now_ms() - t0 < 5000);
	assert_int_equal(http_get(port, "/metrics", &body), 200);
	assert_int_equal(parse_exposition(body, &parsed), 0);
	assert_float_equal(value_of(&parsed, "memvisor_host_free_bytes", ""),
			   99.0 * MV_PAGE_SIZE, 0);
	free(body);
	close(fd);
	metrics_stop(m);
}

static void test_server_listens_on_loopback_only_by_default(void **state)
{
	struct metrics *m;
	char err[256];
	unsigned port;

	(void)state;
	assert_int_equal(metrics_start(":0", &m, err, sizeof(err)), 0);
	assert_non_null(strstr(metrics_url(m), "http://127.0.0.1:"));
	port = url_port(metrics_url(m));
	assert_true(listening_on("0100007F", port));
	assert_false(listening_on("00000000", port));
	metrics_stop(m);
}

static void test_port_in_use_is_a_clear_error(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	struct metrics *m = NULL;
	char err[256], arg[32];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(arg, sizeof(arg), "127.0.0.1:%u", ntohs(a.sin_port));
	assert_int_equal(metrics_start(arg, &m, err, sizeof(err)), -1);
	assert_null(m);
	assert_non_null(strstr(err, "in use"));
	close(fd);
}

/* ---- a real run --------------------------------------------------------- */

static int setup(void **state)
{
	return th_cmd_setup(state, "metrics");
}

static void start(struct th_cmd *f, const char *ini, const char *metrics)
{
	char run[] = "run", opt[] = "--metrics", js[] = "--json";
	char *argv[] = { f->bin,	  run, (char *)ini, opt,
			 (char *)metrics, js,  f->json,	    NULL };

	f->pid = th_spawnv(f->bin, f->out, argv);
}

/* Waits for "metrics: URL" in the output; returns the port. */
static unsigned wait_url(struct th_cmd *f)
{
	uint64_t until = th_now_ms() + STEP_MS;
	char *text, *at;
	unsigned port;
	int status;

	for (;;) {
		text = th_slurp(f->out);
		at = strstr(text, "metrics: http://127.0.0.1:");
		if (at && strchr(at, '\n')) {
			port = (unsigned)atoi(
				at + strlen("metrics: http://127.0.0.1:"));
			free(text);
			return port;
		}
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = 0;
			fail_msg("memvisor ended before serving metrics:\n%s",
				 text);
		}
		free(text);
		if (th_now_ms() > until)
			fail_msg("no metrics URL in %d ms", STEP_MS);
		th_nap_ms(POLL_MS);
	}
}

static int wait_exit(struct th_cmd *f)
{
	return th_wait_exit(&f->pid, f->out, STEP_MS);
}

static const char two_vms[] = "memsize = 64M\nduration = 600\n"
			      "[vm db]\nmemsize = 16M\nworkload = random\n"
			      "[vm web]\nmemsize = 8M\nworkload = idle\n";

static void test_run_serves_every_vm_on_a_free_loopback_port(void **state)
{
	struct th_cmd *f = *state;
	uint64_t until = th_now_ms() + STEP_MS;
	char ini[TH_PATH_LEN], *body = NULL;
	unsigned port;
	int st;

	th_cmd_scenario(f, "m.ini", two_vms, ini, sizeof(ini));
	start(f, ini, "0");
	port = wait_url(f);
	assert_true(listening_on("0100007F", port));
	/* 503 until the timed run publishes; then both VMs, consuming */
	for (;;) {
		st = http_get(port, "/metrics", &body);
		if (st == 200) {
			if (parse_exposition(body, &parsed))
				fail_msg("%s in:\n%s", parsed.err, body);
			if (value_of(&parsed, "memvisor_vm_consumed_bytes",
				     "vm=db") > 0)
				break;
		} else {
			assert_int_equal(st, 503);
		}
		free(body);
		if (th_now_ms() > until)
			fail_msg("no consumed memory for VM db in %d ms",
				 STEP_MS);
		th_nap_ms(POLL_MS);
	}
	assert_true(value_of(&parsed, "memvisor_vm_memsize_bytes", "vm=web") ==
		    8 << 20);
	(void)value_of(&parsed, "memvisor_vm_consumed_bytes", "vm=web");
	assert_true(value_of(&parsed, "memvisor_host_memory_bytes", "") ==
		    64 << 20);
	free(body);
	assert_int_equal(http_get(port, "/healthz", &body), 200);
	assert_string_equal(body, "ok\n");
	free(body);
	kill(f->pid, SIGINT);
	assert_int_equal(wait_exit(f), 4);
	/* the server ended with the run */
	assert_int_equal(http_get(port, "/healthz", &body), 0);
}

static void test_run_with_its_port_in_use_exits_2_before_guests(void **state)
{
	struct th_cmd *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char ini[TH_PATH_LEN], port[16], *text;
	cJSON *root;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	th_cmd_scenario(f, "m.ini", two_vms, ini, sizeof(ini));
	start(f, ini, port);
	assert_int_equal(wait_exit(f), 2);
	close(fd);
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "in use"));
	/* no guest ran: the summary of the run never came */
	assert_null(strstr(text, "VMs with"));
	free(text);
	text = th_slurp(f->json);
	root = cJSON_Parse(text);
	assert_non_null(root);
	assert_non_null(
		strstr(cJSON_GetStringValue(cJSON_GetObjectItem(root, "error")),
		       "--metrics"));
	cJSON_Delete(root);
	free(text);
}

static void test_run_with_a_bad_address_exits_2(void **state)
{
	struct th_cmd *f = *state;
	char ini[TH_PATH_LEN], *text;

	th_cmd_scenario(f, "m.ini", two_vms, ini, sizeof(ini));
	start(f, ini, "nowhere:9100");
	assert_int_equal(wait_exit(f), 2);
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "not a numeric address"));
	assert_null(strstr(text, "VMs with"));
	free(text);
}

int main(void)
{
#define S(name) cmocka_unit_test_setup_teardown(name, setup_snap, teardown_snap)
#define T(name) cmocka_unit_test_setup_teardown(name, setup, th_cmd_teardown)
	const struct CMUnitTest tests[] = {
		S(test_parser_rejects_malformed_expositions),
		S(test_every_family_has_help_and_type_and_parses),
		S(test_counters_end_in_total_and_gauges_do_not),
		S(test_vm_names_are_escaped_in_label_values),
		S(test_the_text_reads_back_into_the_same_snapshot),
		S(test_addresses_default_to_loopback),
		S(test_server_answers_503_until_the_first_snapshot),
		S(test_a_stuck_scraper_blocks_neither_publish_nor_others),
		S(test_server_listens_on_loopback_only_by_default),
		S(test_port_in_use_is_a_clear_error),
		T(test_run_serves_every_vm_on_a_free_loopback_port),
		T(test_run_with_its_port_in_use_exits_2_before_guests),
		T(test_run_with_a_bad_address_exits_2),
	};
#undef S
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
