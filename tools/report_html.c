// SPDX-License-Identifier: MIT
/*
 * report_html.c - `memvisor report`: a run JSON made into one HTML page.
 *
 * Design: the page is built from the run JSON alone (read with cJSON), so
 * any report, kept or sent, can be drawn later.  It needs the per-second
 * "series" (series.c, whose key tables it reads by) and shows, in order:
 *   - the host's free memory against minFree, over bands for the
 *     free-memory states (high >= 400% of minFree, clear >= 100%, soft >=
 *     64%, hard >= 32%, low below) and a strip with the state the
 *     scheduler was in; its axis leaves out the first sample (all free,
 *     before the guests ran), drawn at the top if higher;
 *   - for each VM, its memory by page state as stacked areas that add up
 *     to its memsize, with the scheduler's target (SZTGT) over them;
 *   - the reclaim rates of all VMs together (swap-out and -in, compression
 *     and decompression, balloon inflation and deflation, MB/s), and each
 *     VM's guest ops per second;
 *   - the end-of-run table, the columns of `memvisor run`'s.
 * Rates are a sample's count over the time since the sample before, so a
 * merged sample (a long run) shows the average over what it covers.  The
 * page is self-contained: inline CSS and SVG, no script, nothing fetched.
 * It is made in memory and written to a temporary file in the output's
 * directory, then renamed over the output, so a failure never leaves a
 * partial page and an earlier page stays until a complete one replaces it.
 *
 * Invariants: every text from the JSON is escaped; a JSON without a
 * complete series (every key, each array as long as "t") is refused with a
 * sentence naming what is missing, and nothing is written.
 *
 * Lock ordering: none; single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "memvisor.h"
#include "report_html.h"
#include "series.h"
#include "svg.h"

#define PLOT_W 1000.0
#define PLOT_H 300.0
/* Largest run JSON read, far above 2048 samples of many VMs. */
#define MAX_INPUT_BYTES (256u << 20)
#define MIB (1024.0 * 1024.0)

/* The series as read back, as doubles. */
struct rh_vm {
	const char *name;
	double memsz_pages;
	double *v[SV_NKEYS]; /* [n] each */
};

struct rh_series {
	size_t n, nvms;
	double page_size;
	double stride_s;
	double merges;
	double *t; /* [n], seconds */
	double *host[SH_NKEYS]; /* [n] each */
	struct rh_vm *vms;
};

static void rh_series_free(struct rh_series *s)
{
	free(s->t);
	for (size_t k = 0; k < SH_NKEYS; k++)
		free(s->host[k]);
	for (size_t i = 0; s->vms && i < s->nvms; i++)
		for (size_t k = 0; k < SV_NKEYS; k++)
			free(s->vms[i].v[k]);
	free(s->vms);
	memset(s, 0, sizeof(*s));
}

/* An array of n numbers at obj[key] (n == 0: any length, set in *n). */
static double *rh_numbers(const cJSON *obj, const char *key, size_t *n,
			  const char *where, char *err, size_t errlen)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key), *e;
	size_t len = 0, i = 0;
	double *v;

	if (cJSON_IsArray(a))
		len = (size_t)cJSON_GetArraySize(a);
	if (!cJSON_IsArray(a) || (*n && len != *n) || !len) {
		snprintf(err, errlen,
			 "%s%s is missing, or not an array of %zu numbers",
			 where, key, *n ? *n : 1);
		return NULL;
	}
	v = calloc(len, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cJSON_ArrayForEach(e, a)
	{
		if (!cJSON_IsNumber(e)) {
			snprintf(err, errlen, "%s%s[%zu] is not a number",
				 where, key, i);
			free(v);
			return NULL;
		}
		v[i++] = cJSON_GetNumberValue(e);
	}
	*n = len;
	return v;
}

static int rh_series_read(const cJSON *root, struct rh_series *s, char *err,
			  size_t errlen)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "series");
	const cJSON *host, *vms, *v, *name, *memsz;
	char where[96];
	size_t i = 0;

	memset(s, 0, sizeof(*s));
	if (!cJSON_IsObject(o)) {
		snprintf(
			err, errlen,
			"no time series (\"series\"): it comes from `memvisor run --json` of a run that ran its guests, by this version or later");
		return -EINVAL;
	}
	s->page_size = cJSON_GetNumberValue(
		cJSON_GetObjectItemCaseSensitive(o, "page_size"));
	if (isnan(s->page_size) || s->page_size <= 0)
		s->page_size = MV_PAGE_SIZE;
	s->stride_s = cJSON_GetNumberValue(
		cJSON_GetObjectItemCaseSensitive(o, "stride_s"));
	s->merges = cJSON_GetNumberValue(
		cJSON_GetObjectItemCaseSensitive(o, "merges"));
	s->t = rh_numbers(o, "t", &s->n, "series.", err, errlen);
	if (!s->t)
		goto fail;
	host = cJSON_GetObjectItemCaseSensitive(o, "host");
	for (size_t k = 0; k < SH_NKEYS; k++) {
		s->host[k] = rh_numbers(host, series_host_keys[k].name, &s->n,
					"series.host.", err, errlen);
		if (!s->host[k])
			goto fail;
	}
	vms = cJSON_GetObjectItemCaseSensitive(o, "vms");
	if (!cJSON_IsArray(vms) || !cJSON_GetArraySize(vms)) {
		snprintf(err, errlen, "series.vms is missing or empty");
		goto fail;
	}
	s->nvms = (size_t)cJSON_GetArraySize(vms);
	s->vms = calloc(s->nvms, sizeof(*s->vms));
	if (!s->vms) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	cJSON_ArrayForEach(v, vms)
	{
		struct rh_vm *vm = &s->vms[i];

		snprintf(where, sizeof(where), "series.vms[%zu].", i);
		name = cJSON_GetObjectItemCaseSensitive(v, "name");
		memsz = cJSON_GetObjectItemCaseSensitive(v, "memsz_pages");
		if (!cJSON_IsString(name) || !cJSON_IsNumber(memsz) ||
		    cJSON_GetNumberValue(memsz) <= 0) {
			snprintf(err, errlen,
				 "%sname or %smemsz_pages is missing", where,
				 where);
			goto fail;
		}
		vm->name = cJSON_GetStringValue(name);
		vm->memsz_pages = cJSON_GetNumberValue(memsz);
		for (size_t k = 0; k < SV_NKEYS; k++) {
			vm->v[k] = rh_numbers(v, series_vm_keys[k].name, &s->n,
					      where, err, errlen);
			if (!vm->v[k])
				goto fail;
		}
		i++;
	}
	return 0;
fail:
	rh_series_free(s);
	return -EINVAL;
}

/* How the time axis is labelled: seconds, minutes or hours. */
struct rh_time {
	double div;
	const char *label;
};

static struct rh_time rh_time_unit(double tmax)
{
	if (tmax <= 600)
		return (struct rh_time){ 1, "time (s)" };
	if (tmax <= 10 * 3600)
		return (struct rh_time){ 60, "time (min)" };
	return (struct rh_time){ 3600, "time (h)" };
}

static double rh_max(const double *v, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

/* Bands and strip colours of the free-memory states, high to low. */
static const char *const state_names[] = { "high", "clear", "soft", "hard",
					   "low" };
static const char *const band_colors[] = { "#dbeef8", "#e2f2dc", "#fbf1c7",
					   "#fbdcc0", "#f6c9c9" };
static const char *const strip_colors[] = { "#6baed6", "#74c476", "#f2c94c",
					    "#f39c4a", "#e05a5a" };
/* A band's lower edge, as a fraction of minFree. */
static const double band_floor[] = { 4.0, 1.0, 0.64, 0.32, 0.0 };

static void rh_free_plot(FILE *out, const struct rh_series *s, const double *x,
			 const struct rh_time *tu, double *tmp)
{
	double minfree = rh_max(s->host[SH_MINFREE], s->n) * s->page_size / MIB;
	double ymax, top;
	struct svg_plot p;
	const char *labels[7], *colors[7];
	bool line[7] = { true, true };
	char text[5][48];

	for (size_t i = 0; i < s->n; i++)
		tmp[i] = s->host[SH_FREE][i] * s->page_size / MIB;
	/* The first sample (t = 0, before the guests touched their memory)
	 * would squash the rest: the axis is for the run, and a value above
	 * it is drawn at its top. */
	ymax = svg_nice_max(fmax(s->n > 1 ? rh_max(tmp + 1, s->n - 1) : tmp[0],
				 4.6 * minfree),
			    6);
	for (size_t i = 0; i < s->n; i++)
		tmp[i] = fmin(tmp[i], ymax);
	svg_plot_init(&p, PLOT_W, PLOT_H, x[s->n - 1], ymax);
	svg_begin(out, &p, "host-free",
		  "Host: free memory against minFree, by free-memory state",
		  tu->label, "MB");
	top = ymax;
	for (int b = 0; b < 5; b++) {
		svg_band(out, &p, band_floor[b] * minfree, top, band_colors[b],
			 state_names[b]);
		top = band_floor[b] * minfree;
	}
	/* the state the scheduler was in (with its hysteresis), as a strip
	 * above the data area */
	fprintf(out,
		"<text class=\"strip\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">state</text>\n",
		p.left - 6, p.top - 8);
	for (size_t i = 0; i < s->n; i++) {
		double x0 = svg_map(&p.x, i ? x[i - 1] : 0);
		double x1 = svg_map(&p.x, x[i]);
		int st = (int)s->host[SH_STATE][i];

		if (st < 0 || st > 4)
			continue;
		fprintf(out,
			"<rect class=\"state\" data-state=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"8\" fill=\"%s\"/>\n",
			state_names[st], x0, p.top - 16, fmax(x1 - x0, 0.5),
			strip_colors[st]);
	}
	svg_line(out, &p, s->n, x, tmp, "#1f4e96", 2.2, false, "free");
	for (size_t i = 0; i < s->n; i++)
		tmp[i] = s->host[SH_MINFREE][i] * s->page_size / MIB;
	svg_line(out, &p, s->n, x, tmp, "#222", 1.5, true, "minFree");
	labels[0] = "free";
	colors[0] = "#1f4e96";
	labels[1] = "minFree";
	colors[1] = "#222";
	for (int b = 0; b < 5; b++) {
		if (b < 4)
			snprintf(text[b], sizeof(text[b]), "%s (>= %.0f%%)",
				 state_names[b], band_floor[b] * 100);
		else
			snprintf(text[b], sizeof(text[b]), "%s (< 32%%)",
				 state_names[b]);
		labels[2 + b] = text[b];
		colors[2 + b] = strip_colors[b];
	}
	svg_legend(out, &p, 7, labels, colors, line);
	svg_end(out, &p);
}

/* A count per second of sample i, in MB when pages. */
static double rh_rate(const struct rh_series *s, double count, size_t i,
		      bool pages)
{
	double dt = s->t[i] - (i ? s->t[i - 1] : 0);

	if (!(dt > 0))
		return 0;
	return (pages ? count * s->page_size / MIB : count) / dt;
}

enum { R_SWAPOUT, R_SWAPIN, R_ZIP, R_UNZIP, R_INFLATE, R_DEFLATE, R_N };

static void rh_reclaim_plot(FILE *out, const struct rh_series *s,
			    const double *x, const struct rh_time *tu,
			    double *rates)
{
	static const char *const labels[R_N] = {
		"swap-out",   "swap-in",	 "compress",
		"decompress", "balloon inflate", "balloon deflate",
	};
	static const char *const colors[R_N] = { "#d62728", "#ff9896",
						 "#7b4fa0", "#c5a3dd",
						 "#2a8c3c", "#98df8a" };
	static const bool line[R_N] = { true, true, true, true, true, true };
	static const int keys[4] = { SV_SWAPOUT, SV_SWAPIN, SV_ZIP, SV_UNZIP };
	double ymax = 0;
	struct svg_plot p;

	for (size_t i = 0; i < s->n; i++) {
		for (int r = 0; r < R_N; r++)
			rates[r * s->n + i] = 0;
		for (size_t v = 0; v < s->nvms; v++) {
			const struct rh_vm *vm = &s->vms[v];
			double d = i ? vm->v[SV_MCTLSZ][i] -
						   vm->v[SV_MCTLSZ][i - 1] :
				       0;

			for (int r = 0; r < 4; r++)
				rates[r * s->n + i] +=
					rh_rate(s, vm->v[keys[r]][i], i, true);
			rates[R_INFLATE * s->n + i] +=
				rh_rate(s, d > 0 ? d : 0, i, true);
			rates[R_DEFLATE * s->n + i] +=
				rh_rate(s, d < 0 ? -d : 0, i, true);
		}
		for (int r = 0; r < R_N; r++)
			ymax = fmax(ymax, rates[r * s->n + i]);
	}
	svg_plot_init(&p, PLOT_W, PLOT_H, x[s->n - 1], svg_nice_max(ymax, 6));
	svg_begin(out, &p, "reclaim",
		  "Reclaim: swapping, compression and ballooning, all VMs",
		  tu->label, "MB/s");
	for (int r = 0; r < R_N; r++)
		svg_line(out, &p, s->n, x, rates + r * s->n, colors[r], 1.8,
			 false, labels[r]);
	svg_legend(out, &p, R_N, labels, colors, line);
	svg_end(out, &p);
}

static const char *const vm_colors[] = { "#1f77b4", "#ff7f0e", "#2ca02c",
					 "#d62728", "#9467bd", "#8c564b",
					 "#e377c2", "#7f7f7f", "#bcbd22",
					 "#17becf" };
#define NVM_COLORS (sizeof(vm_colors) / sizeof(vm_colors[0]))

static int rh_ops_plot(FILE *out, const struct rh_series *s, const double *x,
		       const struct rh_time *tu, double *ops)
{
	const char **labels = calloc(s->nvms, sizeof(*labels));
	const char **colors = calloc(s->nvms, sizeof(*colors));
	bool *line = calloc(s->nvms, sizeof(*line));
	double ymax = 0;
	struct svg_plot p;

	if (!labels || !colors || !line) {
		free(labels);
		free(colors);
		free(line);
		return -ENOMEM;
	}
	for (size_t v = 0; v < s->nvms; v++)
		for (size_t i = 0; i < s->n; i++)
			ymax = fmax(ymax, rh_rate(s, s->vms[v].v[SV_OPS][i], i,
						  false));
	svg_plot_init(&p, PLOT_W, PLOT_H, x[s->n - 1], svg_nice_max(ymax, 6));
	svg_begin(out, &p, "ops", "Guest work: ops per second, by VM",
		  tu->label, "ops/s");
	for (size_t v = 0; v < s->nvms; v++) {
		for (size_t i = 0; i < s->n; i++)
			ops[i] = rh_rate(s, s->vms[v].v[SV_OPS][i], i, false);
		labels[v] = s->vms[v].name;
		colors[v] = vm_colors[v % NVM_COLORS];
		line[v] = true;
		svg_line(out, &p, s->n, x, ops, colors[v], 1.8, false,
			 labels[v]);
	}
	svg_legend(out, &p, s->nvms, labels, colors, line);
	svg_end(out, &p);
	free(labels);
	free(colors);
	free(line);
	return 0;
}

/* The layers of a VM's plot, bottom to top: what holds machine memory
 * first, then what reclamation took, then what needs none. */
static const int layer_state[MV_PAGE_NSTATES] = {
	MV_PAGE_PRIVATE, MV_PAGE_SHARED,    MV_PAGE_SAMPLED, MV_PAGE_COMPRESSED,
	MV_PAGE_SWAPPED, MV_PAGE_BALLOONED, MV_PAGE_ZERO,    MV_PAGE_UNTOUCHED,
};
static const char *const layer_colors[MV_PAGE_NSTATES] = {
	"#4e79a7", "#59a14f", "#edc948", "#b07aa1",
	"#e15759", "#f28e2b", "#a0cbe8", "#ececec",
};

static void rh_vm_plot(FILE *out, const struct rh_series *s, size_t v,
		       const double *x, const struct rh_time *tu, double *lo,
		       double *hi)
{
	const struct rh_vm *vm = &s->vms[v];
	double memsz_mb = vm->memsz_pages * s->page_size / MIB;
	const char *labels[MV_PAGE_NSTATES + 1], *colors[MV_PAGE_NSTATES + 1];
	bool line[MV_PAGE_NSTATES + 1] = { false };
	char id[48], title[160];
	struct svg_plot p;

	snprintf(id, sizeof(id), "vm-%zu", v);
	snprintf(title, sizeof(title),
		 "VM %s: memory by page state (MEMSZ %.1f MB)", vm->name,
		 memsz_mb);
	svg_plot_init(&p, PLOT_W, PLOT_H, x[s->n - 1],
		      svg_nice_max(memsz_mb, 6));
	svg_begin(out, &p, id, title, tu->label, "MB");
	for (size_t i = 0; i < s->n; i++)
		lo[i] = 0;
	for (int l = 0; l < MV_PAGE_NSTATES; l++) {
		int st = layer_state[l];

		for (size_t i = 0; i < s->n; i++)
			hi[i] = lo[i] +
				vm->v[SV_STATE + st][i] * s->page_size / MIB;
		svg_area(out, &p, s->n, x, lo, hi, layer_colors[l],
			 mv_page_state_name(st));
		memcpy(lo, hi, s->n * sizeof(*lo));
		/* the legend lists them top to bottom, as they are stacked */
		labels[MV_PAGE_NSTATES - 1 - l] = mv_page_state_name(st);
		colors[MV_PAGE_NSTATES - 1 - l] = layer_colors[l];
	}
	for (size_t i = 0; i < s->n; i++)
		hi[i] = vm->v[SV_SZTGT][i] * s->page_size / MIB;
	svg_line(out, &p, s->n, x, hi, "#111", 1.6, true, "SZTGT");
	labels[MV_PAGE_NSTATES] = "SZTGT (target)";
	colors[MV_PAGE_NSTATES] = "#111";
	line[MV_PAGE_NSTATES] = true;
	svg_legend(out, &p, MV_PAGE_NSTATES + 1, labels, colors, line);
	svg_end(out, &p);
}

/* The end-of-run table: `memvisor run`'s columns, from "vms". */
static const struct {
	const char *head, *key;
	int decimals;
} columns[] = {
	{ "MEMSZ", "memsz_mb", 1 },
	{ "SZTGT", "sztgt_mb", 1 },
	{ "CONSUMED", "consumed_mb", 1 },
	{ "TCHD", "tchd_mb", 1 },
	{ "%ACTV", "actv_pct", 0 },
	{ "SHRD", "shrd_mb", 1 },
	{ "ZERO", "zero_mb", 1 },
	{ "SHRDSVD", "shrdsvd_mb", 1 },
	{ "LPAGE", "lpage_mb", 1 },
	{ "MCTLSZ", "mctlsz_mb", 1 },
	{ "MCTLTGT", "mctltgt_mb", 1 },
	{ "SWCUR", "swcur_mb", 1 },
	{ "SWTGT", "swtgt_mb", 1 },
	{ "CACHEUSD", "cacheusd_mb", 1 },
	{ "SWR/s", "swr_s", 1 },
	{ "SWW/s", "sww_s", 1 },
	{ "ZIP/s", "zip_s", 1 },
	{ "UNZIP/s", "unzip_s", 1 },
	{ "OPS/s", "ops_s", 0 },
	{ "INTEGRITY", "integrity_errors", 0 },
};

static void rh_table(FILE *out, const cJSON *root)
{
	const cJSON *vms = cJSON_GetObjectItemCaseSensitive(root, "vms"), *v;

	fputs("<div style=\"overflow-x:auto\"><table class=\"end\">\n<thead><tr><th>NAME</th>",
	      out);
	for (size_t c = 0; c < sizeof(columns) / sizeof(columns[0]); c++)
		fprintf(out, "<th>%s</th>", columns[c].head);
	fputs("</tr></thead>\n<tbody>\n", out);
	cJSON_ArrayForEach(v, vms)
	{
		const char *name = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(v, "name"));

		fputs("<tr><td class=\"name\">", out);
		svg_escape(out, name ? name : "?");
		fputs("</td>", out);
		for (size_t c = 0; c < sizeof(columns) / sizeof(columns[0]);
		     c++) {
			const cJSON *n = cJSON_GetObjectItemCaseSensitive(
				v, columns[c].key);

			if (cJSON_IsNumber(n))
				fprintf(out, "<td>%.*f</td>",
					columns[c].decimals,
					cJSON_GetNumberValue(n));
			else
				fputs("<td>-</td>", out);
		}
		fputs("</tr>\n", out);
	}
	fputs("</tbody>\n</table></div>\n", out);
}

static double rh_num(const cJSON *o, const char *key)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(n) ? cJSON_GetNumberValue(n) : NAN;
}

static const char css[] =
	"body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
	"margin:24px auto;max-width:1180px;color:#222;background:#fafafa}"
	"h1{font-size:22px;margin:0 0 4px}"
	"h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}"
	"p{margin:4px 0}.meta{color:#555;font-size:14px}"
	".verdict{font-weight:600;padding:6px 10px;border-radius:4px;display:inline-block;margin-top:8px}"
	".ok{background:#e2f2dc;color:#1d5e20}.bad{background:#f6c9c9;color:#7a1010}"
	"svg.plot{display:block;margin:10px 0;width:100%;height:auto;background:#fff;border:1px solid #ddd;border-radius:4px}"
	"svg.plot text{font-size:12px;font-family:inherit}"
	"svg.plot .title{font-size:14px;font-weight:600}"
	"svg.plot .axislabel{fill:#444}"
	"table.end{border-collapse:collapse;font-size:11px;background:#fff;font-variant-numeric:tabular-nums}"
	"table.end th,table.end td{border:1px solid #ddd;padding:2px 4px;text-align:right}"
	"table.end th{background:#f0f0f0}table.end td.name{text-align:left;font-weight:600}"
	"footer{margin-top:24px;color:#777;font-size:12px}";

static void rh_head(FILE *out, const cJSON *root, const struct rh_series *s)
{
	const cJSON *host = cJSON_GetObjectItemCaseSensitive(root, "host");
	const char *scenario = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(root, "scenario"));
	const char *error = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(root, "error"));
	double status = rh_num(root, "exit_status");
	double guest = 0, memsize = rh_num(host, "memsize_mb");

	for (size_t i = 0; i < s->nvms; i++)
		guest += s->vms[i].memsz_pages * s->page_size / MIB;
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width\">\n"
	      "<title>memvisor report: ",
	      out);
	svg_escape(out, scenario ? scenario : "?");
	fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
	fputs("<h1>memvisor report: ", out);
	svg_escape(out, scenario ? scenario : "?");
	fprintf(out,
		"</h1>\n<p class=\"meta\">%zu VM%s with %.1f MB of guest memory",
		s->nvms, s->nvms == 1 ? "" : "s", guest);
	if (!isnan(memsize) && memsize > 0)
		fprintf(out, " on a %.1f MB host (%.0f%%), minFree %.1f MB",
			memsize, 100 * guest / memsize,
			rh_num(host, "minfree_mb"));
	if (!isnan(rh_num(root, "duration_s")))
		fprintf(out, ", %.1f s", rh_num(root, "duration_s"));
	fputs("</p>\n", out);
	if (status == 0) {
		fputs("<p class=\"verdict ok\">OK: every page read back as written</p>\n",
		      out);
	} else {
		fprintf(out, "<p class=\"verdict bad\">exit status %.0f: ",
			isnan(status) ? -1 : status);
		svg_escape(out, error ? error : "(no error given)");
		fputs("</p>\n", out);
	}
}

int report_html_write(const cJSON *root, FILE *out, char *err, size_t errlen)
{
	struct rh_series s;
	struct rh_time tu;
	double *x, *a, *b, *rates;
	const cJSON *host;
	int ret;

	ret = rh_series_read(root, &s, err, errlen);
	if (ret)
		return ret;
	x = calloc(s.n, sizeof(*x));
	a = calloc(s.n, sizeof(*a));
	b = calloc(s.n, sizeof(*b));
	rates = calloc(s.n * R_N, sizeof(*rates));
	if (!x || !a || !b || !rates) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	tu = rh_time_unit(s.t[s.n - 1]);
	for (size_t i = 0; i < s.n; i++)
		x[i] = s.t[i] / tu.div;
	rh_head(out, root, &s);
	fputs("<h2>Host</h2>\n", out);
	rh_free_plot(out, &s, x, &tu, a);
	fputs("<h2>VMs</h2>\n", out);
	for (size_t v = 0; v < s.nvms; v++)
		rh_vm_plot(out, &s, v, x, &tu, a, b);
	fputs("<h2>Reclaim and work</h2>\n", out);
	rh_reclaim_plot(out, &s, x, &tu, rates);
	if (rh_ops_plot(out, &s, x, &tu, a)) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	fputs("<h2>End of the run</h2>\n", out);
	rh_table(out, root);
	host = cJSON_GetObjectItemCaseSensitive(root, "host");
	fprintf(out,
		"<p class=\"meta\">(sizes in MB, rates in MB/s, averaged over the run) host: memsize %.1f MB, consumed %.1f MB, free %.1f MB, minFree %.1f MB, state ",
		rh_num(host, "memsize_mb"), rh_num(host, "consumed_mb"),
		rh_num(host, "free_mb"), rh_num(host, "minfree_mb"));
	svg_escape(out, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
				host, "state")));
	fprintf(out,
		"; sharing saved %.1f MB; %.1f MB reclaimed</p>\n"
		"<footer>%zu samples of %.0f s each (merged %.0f times), made by memvisor report</footer>\n"
		"</body>\n</html>\n",
		rh_num(host, "shrdsvd_mb"), rh_num(host, "reclaimed_mb"), s.n,
		isnan(s.stride_s) ? 1 : s.stride_s,
		isnan(s.merges) ? 0 : s.merges);
out:
	free(x);
	free(a);
	free(b);
	free(rates);
	rh_series_free(&s);
	return ret;
}

/* text to path, whole or not at all: a temporary file beside it, synced,
 * then renamed over it. */
static int rh_replace(const char *path, const char *text, size_t len)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	mode_t mask;
	int ret;

	dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	mask = umask(0);
	umask(mask);
	ret = file_replace(slash == path ? "/" : dir, path, ".memvisor-html",
			   0666 & ~mask, text, len);
	free(dir);
	return ret;
}

/* The whole file at path, NUL-terminated (free() it). */
static int rh_slurp(const char *path, char **text, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0, got;
	char *buf = NULL, *nb;
	int ret = 0;

	if (!fp)
		return -errno;
	for (;;) {
		nb = realloc(buf, cap + 1);
		if (!nb) {
			ret = -ENOMEM;
			break;
		}
		buf = nb;
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
		if (ferror(fp)) {
			ret = -EIO;
			break;
		}
		if (n < cap)
			break;
		if (cap >= MAX_INPUT_BYTES) {
			ret = -EFBIG;
			break;
		}
		cap *= 2;
	}
	fclose(fp);
	if (ret) {
		free(buf);
		return ret;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

int report_html_file(const char *in, const char *out, char *err, size_t errlen)
{
	char *text = NULL, *page = NULL, why[512];
	size_t len = 0, page_len = 0;
	struct stat st;
	cJSON *root;
	FILE *mem;
	int ret;

	if (!stat(in, &st) && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen,
			 "%s: is a directory (expected a run JSON)", in);
		return -EISDIR;
	}
	ret = rh_slurp(in, &text, &len);
	if (ret) {
		snprintf(err, errlen, "cannot read %s: %s", in, strerror(-ret));
		return ret;
	}
	root = cJSON_ParseWithLength(text, len);
	if (!root || !cJSON_IsObject(root)) {
		const char *at = root ? NULL : cJSON_GetErrorPtr();
		char near[24] = "";

		/* what follows the error, on one line */
		for (size_t i = 0; at && at[i] && i < sizeof(near) - 1; i++)
			near[i] = (unsigned char)at[i] < ' ' ? ' ' : at[i];
		snprintf(err, errlen,
			 "%s is not a run JSON (not a JSON object%s%s%s)", in,
			 near[0] ? "; the error is near '" : "", near,
			 near[0] ? "'" : "");
		cJSON_Delete(root);
		free(text);
		return -EINVAL;
	}
	free(text);
	mem = open_memstream(&page, &page_len);
	if (!mem) {
		cJSON_Delete(root);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = report_html_write(root, mem, why, sizeof(why));
	cJSON_Delete(root);
	if (fclose(mem) && !ret) {
		ret = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
	}
	if (ret) {
		snprintf(err, errlen, "%s: %s; no report written", in, why);
		free(page);
		return ret;
	}
	if (!strcmp(out, "-"))
		ret = fwrite(page, 1, page_len, stdout) != page_len ||
				      fflush(stdout) ?
			      -EIO :
			      0;
	else
		ret = rh_replace(out, page, page_len);
	if (ret)
		snprintf(err, errlen, "cannot write %s: %s%s", out,
			 strerror(-ret),
			 strcmp(out, "-") ?
				 " (any earlier file there is unchanged)" :
				 "");
	free(page);
	return ret;
}

void report_html_usage(FILE *out)
{
	fprintf(out,
		"usage: memvisor report RUN.json [-o FILE]\n"
		"  RUN.json         a report of `memvisor run --json RUN.json`\n"
		"  -o, --output F   the HTML page (default: RUN.html beside RUN.json;\n"
		"                   -: standard output); replaced whole or not at all\n"
		"one self-contained HTML file: plots of the host's free memory and\n"
		"states, reclaim rates, ops/s, each VM's memory by page state, and the\n"
		"end-of-run table; see docs/REPORT.md\n"
		"exit status: 0 written; 2 bad input (no such file, not a run JSON,\n"
		"no time series) or an output that cannot be written\n");
}

int report_html_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *in, *out = NULL;
	char *def = NULL, err[1024];
	size_t len;
	int c, ret;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'h':
			report_html_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "memvisor report: %s needs a value\n",
				argv[optind - 1]);
			report_html_usage(stderr);
			return 2;
		default:
			fprintf(stderr,
				"memvisor report: unknown option '%s'\n",
				argv[optind - 1]);
			report_html_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "memvisor report: %s\n",
			argc == optind ? "which run JSON? (none given)" :
					 "one run JSON at a time");
		report_html_usage(stderr);
		return 2;
	}
	in = argv[optind];
	if (!out) {
		len = strlen(in);
		if (len > 5 && !strcmp(in + len - 5, ".json"))
			len -= 5;
		if (asprintf(&def, "%.*s.html", (int)len, in) < 0) {
			fprintf(stderr, "memvisor report: out of memory\n");
			return 2;
		}
		out = def;
	}
	ret = report_html_file(in, out, err, sizeof(err));
	if (ret)
		fprintf(stderr, "memvisor report: %s\n", err);
	else if (strcmp(out, "-"))
		printf("memvisor report: wrote %s\n", out);
	free(def);
	return ret ? 2 : 0;
}
