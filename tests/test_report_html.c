// SPDX-License-Identifier: MIT
/*
 * test_report_html.c - the run's time series (series.c), the plot
 * arithmetic (svg.c) and `memvisor report` (report_html.c): ticks and
 * labels are round, the series keeps every count through merging and stays
 * bounded, the page has one SVG per plot, each VM's stacked areas add up
 * to its memsize at every point (read back from the drawn coordinates),
 * the free-memory bands sit at 400/100/64/32% of minFree, the end table
 * has a row per VM, bad input is refused with exit status 2 and no page,
 * and a tiny real run's JSON has a sample per second whose states add up.
 *
 * The fixture JSON is written by the run's own writer (report.c) from a
 * series fed with made-up stats, so the reader and the writer are tested
 * against each other.  The real run is the built command, spawned, with
 * its output polled with a deadline.
 */

/* The report tools are part of the command, not of a library the Makefile
 * links into tests, so they are compiled in here, as test_report.c does. */
#include "helper.h"
#include "../tools/files.c"
#include "../tools/report.c"
#include "../tools/report_html.c"
#include "../tools/scenario.c"
#include "../tools/series.c"
#include "../tools/svg.c"

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#define NTICKS 10
#define STEP_MS 120000
#define POLL_MS 20

struct fixture {
	struct scenario sc;
	struct vm_result vms[2];
	struct run_result res;
	struct series series;
	char dir[TH_DIR_LEN]; /* a fresh scratch directory */
	char json[TH_PATH_LEN]; /* dir/run.json */
	char html[TH_PATH_LEN]; /* dir/run.html */
};

/* The made-up stats of VM i at tick j; the states add up to memsz. */
static void vm_tick(struct mv_vm_stats *st, size_t i, unsigned j)
{
	uint64_t memsz = i ? 2048 : 1024, used = 0;

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", i ? "b" : "a");
	st->memsz_pages = memsz;
	st->state_pages[MV_PAGE_PRIVATE] = 200 + 30 * j + 100 * i;
	st->state_pages[MV_PAGE_SHARED] = 40 + 5 * j;
	st->state_pages[MV_PAGE_ZERO] = 100 + i * 50;
	st->state_pages[MV_PAGE_BALLOONED] = i ? 20 * j : 0;
	st->state_pages[MV_PAGE_COMPRESSED] = 10 + j;
	st->state_pages[MV_PAGE_SWAPPED] = 15 * j;
	st->state_pages[MV_PAGE_SAMPLED] = j % 3;
	for (int s = 0; s < MV_PAGE_NSTATES; s++)
		used += st->state_pages[s];
	st->state_pages[MV_PAGE_UNTOUCHED] = memsz - used;
	st->consumed_pages = st->state_pages[MV_PAGE_PRIVATE] + 10;
	st->sztgt_pages = memsz - 50 * j;
	st->mctlsz_pages = st->state_pages[MV_PAGE_BALLOONED];
	st->mctltgt_pages = st->mctlsz_pages + 10;
	st->swcur_pages = st->state_pages[MV_PAGE_SWAPPED];
	st->swapout_pages = 40ull * j * j; /* cumulative, growing */
	st->swapin_pages = 20ull * j * j;
	st->zip_pages = 100ull * j;
	st->unzip_pages = 90ull * j;
	st->zip_used_bytes = 4096ull * j;
}

static void host_tick(struct mv_host_stats *h, unsigned j)
{
	memset(h, 0, sizeof(*h));
	h->memsize_pages = 3000;
	h->minfree_pages = 180;
	h->free_pages = j < 9 ? 2800 - 300 * j : 100;
	h->consumed_pages = h->memsize_pages - h->free_pages;
	h->state = h->free_pages >= 720 ? MV_STATE_HIGH :
		   h->free_pages >= 180 ? MV_STATE_CLEAR :
					  MV_STATE_SOFT;
	h->reclaim_pages = 60ull * j;
}

/* Feeds ticks [from, to) of the made-up run into s. */
static void feed(struct series *s, unsigned from, unsigned to)
{
	struct mv_host_stats h;
	struct mv_vm_stats st;

	for (unsigned j = from; j < to; j++) {
		host_tick(&h, j);
		series_begin(s, j, &h);
		for (size_t i = 0; i < s->nvms; i++) {
			vm_tick(&st, i, j);
			series_vm(s, i, &st, 1000ull * j * (i + 1));
		}
		series_end(s);
	}
}

static int setup(void **state)
{
	static const char text[] = "[host]\nmemsize = 12000K\n"
				   "[vm a]\nmemsize = 4M\n"
				   "[vm b]\nmemsize = 8M\nworkload = random\n";
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	if (!f ||
	    scenario_load_string(text, "x<y>&z.ini", &f->sc, err, sizeof(err)))
		return -1;
	if (th_scratch_dir(f->dir, sizeof(f->dir), "html"))
		return -1;
	snprintf(f->json, sizeof(f->json), "%s/run.json", f->dir);
	snprintf(f->html, sizeof(f->html), "%s/run.html", f->dir);
	if (series_init(&f->series, 2, 0))
		return -1;
	feed(&f->series, 0, NTICKS);
	f->res.sc = &f->sc;
	f->res.swapdir = "/tmp";
	f->res.have_stats = true;
	f->res.duration_s = NTICKS - 1;
	f->res.vms = f->vms;
	f->res.series = &f->series;
	f->res.error = "";
	f->res.host.memsize_pages = 3000;
	f->res.host.minfree_pages = 180;
	for (size_t i = 0; i < f->sc.nvms; i++) {
		f->vms[i].vm = &f->sc.vms[i];
		f->vms[i].verified = true;
		vm_tick(&f->vms[i].st, i, NTICKS - 1);
		f->vms[i].ops_s = 1234 * (double)(i + 1);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[TH_DIR_LEN + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", f->dir);
	series_free(&f->series);
	scenario_free(&f->sc);
	free(f);
	return 0;
}

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len;

	if (rh_slurp(path, &text, &len))
		fail_msg("cannot read %s", path);
	return text;
}

/* Entries of dir other than . and .. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* The fixture's run JSON, by report.c, then its page; the page's text. */
static char *make_page(struct fixture *f)
{
	struct report_target t;
	char err[1024];

	if (report_json_prepare(f->json, &t, err, sizeof(err)) ||
	    report_write_json(&t, &f->res, err, sizeof(err)))
		fail_msg("%s", err);
	report_json_target_free(&t);
	if (report_html_file(f->json, f->html, err, sizeof(err)))
		fail_msg("%s", err);
	return slurp(f->html);
}

static int count(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* The text of the <svg> with id (a copy: free() it). */
static char *plot(const char *page, const char *id)
{
	char key[64];
	const char *start, *end;

	snprintf(key, sizeof(key), "id=\"%s\"", id);
	start = strstr(page, key);
	if (!start)
		fail_msg("no plot %s in the page", id);
	end = strstr(start, "</svg>");
	assert_non_null(end);
	return strndup(start, (size_t)(end - start));
}

/* The points of the area called name in svg: top edge (n points, left to
 * right), then bottom edge (n points, right to left).  Returns 2n. */
static size_t area_points(const char *svg, const char *name, double *px,
			  double *py, size_t max)
{
	char key[64];
	const char *p;
	size_t k = 0;
	int used;

	snprintf(key, sizeof(key), "class=\"area\" data-name=\"%s\"", name);
	p = strstr(svg, key);
	if (!p)
		fail_msg("no area %s", name);
	p = strstr(p, " d=\"M");
	assert_non_null(p);
	p += 5;
	while (k < max && sscanf(p, "%lf,%lf%n", &px[k], &py[k], &used) == 2) {
		k++;
		p += used;
		if (strncmp(p, " L", 2))
			break;
		p += 2;
	}
	assert_true(!strncmp(p, " Z\"", 3));
	return k;
}

static void test_tick_steps_are_round_and_cover_the_span(void **state)
{
	char buf[32];

	(void)state;
	assert_true(svg_tick_step(100, 6) == 20);
	assert_true(svg_tick_step(768, 6) == 200);
	assert_true(svg_tick_step(60, 10) == 10);
	assert_true(svg_tick_step(7, 10) == 1);
	assert_true(fabs(svg_tick_step(0.9, 6) - 0.2) < 1e-12);
	assert_true(svg_tick_step(0, 6) == 1);
	assert_true(svg_nice_max(768, 6) == 800);
	assert_true(svg_nice_max(40, 6) == 40);
	assert_true(svg_nice_max(41, 6) == 50);
	assert_true(svg_nice_max(0, 6) == 1);
	svg_tick_label(1500000, 500000, buf, sizeof(buf));
	assert_string_equal(buf, "1.5M");
	svg_tick_label(250000, 50000, buf, sizeof(buf));
	assert_string_equal(buf, "250k");
	svg_tick_label(0.5, 0.5, buf, sizeof(buf));
	assert_string_equal(buf, "0.5");
	svg_tick_label(12, 2, buf, sizeof(buf));
	assert_string_equal(buf, "12");
	svg_tick_label(0, 0.2, buf, sizeof(buf));
	assert_string_equal(buf, "0");
	svg_tick_label(0, 5000, buf, sizeof(buf));
	assert_string_equal(buf, "0");
}

static void test_scale_maps_data_to_pixels_and_back(void **state)
{
	struct svg_plot p;

	(void)state;
	svg_plot_init(&p, 1000, 300, 60, 800);
	assert_true(svg_map(&p.x, 0) == p.left);
	assert_true(svg_map(&p.x, 60) == p.right);
	/* y grows upwards: 0 at the bottom of the data area */
	assert_true(svg_map(&p.y, 0) == p.bottom);
	assert_true(svg_map(&p.y, 800) == p.top);
	assert_true(fabs(svg_unmap(&p.y, svg_map(&p.y, 123.4)) - 123.4) < 1e-9);
	assert_true(fabs(svg_map(&p.x, 30) - (p.left + p.right) / 2) < 1e-9);
}

static void test_area_is_top_edge_then_bottom_edge_reversed(void **state)
{
	static const double x[3] = { 0, 1, 2 }, lo[3] = { 0, 10, 20 },
			    hi[3] = { 50, 60, 70 };
	double px[8], py[8];
	struct svg_plot p;
	char *text = NULL;
	size_t len, k;
	FILE *mem = open_memstream(&text, &len);

	(void)state;
	assert_non_null(mem);
	svg_plot_init(&p, 1000, 300, 2, 100);
	svg_area(mem, &p, 3, x, lo, hi, "#000", "layer");
	assert_int_equal(fclose(mem), 0);
	k = area_points(text, "layer", px, py, 8);
	assert_int_equal(k, 6);
	for (size_t i = 0; i < 3; i++) {
		assert_true(fabs(px[i] - svg_map(&p.x, x[i])) < 0.06);
		assert_true(fabs(py[i] - svg_map(&p.y, hi[i])) < 0.06);
		assert_true(fabs(px[5 - i] - svg_map(&p.x, x[i])) < 0.06);
		assert_true(fabs(py[5 - i] - svg_map(&p.y, lo[i])) < 0.06);
	}
	free(text);
}

static void
test_series_has_a_sample_per_tick_and_counts_per_second(void **state)
{
	struct fixture *f = *state;
	const struct series *s = &f->series;

	assert_int_equal(series_samples(s), NTICKS);
	assert_int_equal(s->merges, 0);
	for (size_t j = 0; j < NTICKS; j++) {
		assert_true(s->t[j] == (double)j);
		/* swapout is 40 j^2 cumulative: 40 (2j - 1) in tick j */
		assert_int_equal(vm_at(s, 0, j)[SV_SWAPOUT],
				 j ? 40 * (2 * j - 1) : 0);
		assert_int_equal(vm_at(s, 1, j)[SV_OPS], j ? 2000 : 0);
		assert_int_equal(host_at(s, j)[SH_FREE],
				 j < 9 ? 2800 - 300 * j : 100);
	}
}

static void test_series_merges_pairs_and_keeps_every_count(void **state)
{
	struct series s;
	uint64_t swapout = 0, ops = 0, sum;
	size_t n;

	(void)state;
	assert_int_equal(series_init(&s, 2, 8), 0);
	feed(&s, 0, 101);
	n = series_samples(&s);
	assert_true(n >= 4 && n <= 8);
	assert_true(s.merges >= 4);
	assert_int_equal(s.stride, 1u << s.merges);
	for (size_t j = 0; j < s.n; j++) {
		swapout += vm_at(&s, 0, j)[SV_SWAPOUT];
		ops += vm_at(&s, 1, j)[SV_OPS];
		if (j)
			assert_true(s.t[j] > s.t[j - 1]);
		for (size_t i = 0; i < 2; i++) {
			sum = 0;
			for (int k = 0; k < MV_PAGE_NSTATES; k++)
				sum += vm_at(&s, i, j)[SV_STATE + k];
			assert_int_equal(sum, s.memsz[i]);
		}
	}
	if (s.pend_ticks) {
		swapout += s.pend_vm[SV_SWAPOUT];
		ops += s.pend_vm[SV_NKEYS + SV_OPS];
		assert_true(s.pend_t == 100);
	} else {
		assert_true(s.t[s.n - 1] == 100);
	}
	/* nothing lost: the counts add up to the last tick's totals */
	assert_int_equal(swapout, 40 * 100 * 100);
	assert_int_equal(ops, 2000 * 100);
	series_free(&s);
}

static void test_a_week_of_seconds_stays_bounded(void **state)
{
	const unsigned week = 7 * 24 * 3600;
	struct mv_host_stats h;
	struct mv_vm_stats st[2];
	struct series s;
	uint64_t swapout = 0;
	cJSON *root;
	char *text;

	(void)state;
	assert_int_equal(series_init(&s, 2, 0), 0);
	host_tick(&h, 0);
	for (unsigned j = 0; j <= week; j++) {
		series_begin(&s, j, &h);
		for (size_t i = 0; i < 2; i++) {
			if (j % 64 == 0)
				vm_tick(&st[i], i, j % 9);
			st[i].swapout_pages = 40ull * j;
			series_vm(&s, i, &st[i], j);
		}
		series_end(&s);
	}
	assert_true(series_samples(&s) >= SERIES_MAX_SAMPLES / 2);
	assert_true(series_samples(&s) <= SERIES_MAX_SAMPLES);
	assert_int_equal(s.stride, 512);
	for (size_t j = 0; j < s.n; j++)
		swapout += vm_at(&s, 1, j)[SV_SWAPOUT];
	if (s.pend_ticks)
		swapout += s.pend_vm[SV_NKEYS + SV_SWAPOUT];
	assert_int_equal(swapout, 40ull * week);
	root = cJSON_CreateObject();
	assert_int_equal(series_to_json(&s, root), 0);
	text = cJSON_Print(root);
	assert_non_null(text);
	/* some hundred KB per VM, not a week of seconds */
	assert_true(strlen(text) < 512 * 1024);
	cJSON_free(text);
	cJSON_Delete(root);
	series_free(&s);
}

static void test_page_has_one_svg_per_plot(void **state)
{
	struct fixture *f = *state;
	char *page = make_page(f);

	assert_int_equal(count(page, "<svg "), 3 + 2);
	assert_int_equal(count(page, "</svg>"), 3 + 2);
	assert_non_null(strstr(page, "id=\"host-free\""));
	assert_non_null(strstr(page, "id=\"reclaim\""));
	assert_non_null(strstr(page, "id=\"ops\""));
	assert_non_null(strstr(page, "id=\"vm-0\""));
	assert_non_null(strstr(page, "id=\"vm-1\""));
	/* self-contained: nothing fetched, no script */
	assert_null(strstr(page, "<script"));
	assert_null(strstr(page, "src="));
	assert_null(strstr(page, "<link"));
	free(page);
}

static void test_stacked_areas_add_up_to_memsize_at_every_point(void **state)
{
	struct fixture *f = *state;
	char *page = make_page(f), *svg, id[8];
	double px[64], py[64], prev_top[NTICKS];
	struct mv_vm_stats st;
	struct svg_plot p;

	for (size_t i = 0; i < 2; i++) {
		double memsz_mb = (i ? 2048 : 1024) * 4096.0 / MIB;

		snprintf(id, sizeof(id), "vm-%zu", i);
		svg = plot(page, id);
		svg_plot_init(&p, PLOT_W, PLOT_H, NTICKS - 1,
			      svg_nice_max(memsz_mb, 6));
		for (size_t j = 0; j < NTICKS; j++)
			prev_top[j] = p.bottom;
		for (int l = 0; l < MV_PAGE_NSTATES; l++) {
			int s = layer_state[l];
			size_t k = area_points(svg, mv_page_state_name(s), px,
					       py, 64);

			assert_int_equal(k, 2 * NTICKS);
			for (size_t j = 0; j < NTICKS; j++) {
				double top = py[j], bottom = py[k - 1 - j];
				double mb = svg_unmap(&p.y, top) -
					    svg_unmap(&p.y, bottom);

				vm_tick(&st, i, (unsigned)j);
				/* on the layer below, no gap, no overlap */
				assert_true(fabs(bottom - prev_top[j]) < 0.06);
				/* as thick as the state's pages, within
				 * the drawing's 0.1 pixel */
				assert_true(fabs(mb - st.state_pages[s] *
							      4096.0 / MIB) <
					    0.2 * p.y.d1 / (p.bottom - p.top));
				prev_top[j] = top;
			}
		}
		/* the top of the stack is memsize, at every point */
		for (size_t j = 0; j < NTICKS; j++)
			assert_true(
				fabs(svg_unmap(&p.y, prev_top[j]) - memsz_mb) <
				0.1 * p.y.d1 / (p.bottom - p.top));
		assert_non_null(strstr(svg, "data-name=\"SZTGT\""));
		free(svg);
	}
	free(page);
}

static void test_free_memory_plot_has_the_state_bands(void **state)
{
	struct fixture *f = *state;
	char *page = make_page(f), *svg = plot(page, "host-free"), key[64];
	static const double floor_pct[5] = { 400, 100, 64, 32, 0 };
	double minfree_mb = 180 * 4096.0 / MIB, y, h;
	const char *r;
	struct svg_plot p;

	svg_plot_init(&p, PLOT_W, PLOT_H, NTICKS - 1,
		      /* the axis leaves out the first sample */
		      svg_nice_max(fmax(2500 * 4096.0 / MIB, 4.6 * minfree_mb),
				   6));
	for (int b = 0; b < 5; b++) {
		snprintf(key, sizeof(key), "class=\"band\" data-name=\"%s\"",
			 state_names[b]);
		r = strstr(svg, key);
		if (!r)
			fail_msg("no %s band", state_names[b]);
		r = strstr(r, " y=\"");
		assert_non_null(r);
		assert_int_equal(
			sscanf(r, " y=\"%lf\" width=\"%*f\" height=\"%lf\"", &y,
			       &h),
			2);
		/* its lower edge at its share of minFree */
		assert_true(fabs(svg_unmap(&p.y, y + h) -
				 floor_pct[b] / 100 * minfree_mb) <
			    0.1 * p.y.d1 / (p.bottom - p.top));
	}
	assert_non_null(strstr(svg, "data-name=\"free\""));
	assert_non_null(strstr(svg, "data-name=\"minFree\""));
	/* the scheduler's state strip: the made-up run goes from high to
	 * soft */
	assert_non_null(strstr(svg, "data-state=\"high\""));
	assert_non_null(strstr(svg, "data-state=\"soft\""));
	free(svg);
	free(page);
}

static void test_page_has_the_end_table_rows_and_escapes_text(void **state)
{
	struct fixture *f = *state;
	char *page = make_page(f);

	assert_non_null(strstr(page, "<th>SHRDSVD</th>"));
	assert_non_null(strstr(page, "<th>INTEGRITY</th>"));
	/* VM a: MEMSZ 4.0, SZTGT 1024 - 450 pages = 2.2 MB ... OPS/s 1234 */
	assert_non_null(strstr(
		page, "<tr><td class=\"name\">a</td><td>4.0</td><td>2.2</td>"));
	assert_non_null(strstr(page, "<td>1234</td><td>0</td></tr>"));
	assert_non_null(
		strstr(page, "<tr><td class=\"name\">b</td><td>8.0</td>"));
	assert_non_null(strstr(page, "<td>2468</td><td>0</td></tr>"));
	assert_int_equal(count(page, "<tr><td class=\"name\">"), 2);
	/* the scenario's name, escaped */
	assert_non_null(strstr(page, "x&lt;y&gt;&amp;z.ini"));
	assert_null(strstr(page, "x<y>"));
	free(page);
}

/* report_html_main() as `memvisor report ARGS...`; its exit status. */
static int command(const char *in, const char *out)
{
	char a0[] = "report", o[] = "-o";
	char *argv[5] = { a0, (char *)in, NULL, NULL, NULL };

	if (out) {
		argv[2] = o;
		argv[3] = (char *)out;
	}
	return report_html_main(out ? 4 : 2, argv);
}

static void test_missing_input_exits_2_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	char in[TH_PATH_LEN], err[512];

	snprintf(in, sizeof(in), "%s/nonesuch.json", f->dir);
	assert_int_equal(report_html_file(in, f->html, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "nonesuch.json"));
	assert_int_equal(command(in, f->html), 2);
	assert_int_equal(entries(f->dir), 0);
}

static void test_text_that_is_not_json_exits_2(void **state)
{
	struct fixture *f = *state;
	char err[512];

	th_put(f->json, "TIME STATE FREE\n  1s high 12.0\n");
	assert_int_equal(report_html_file(f->json, f->html, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "not a run JSON"));
	assert_int_equal(command(f->json, f->html), 2);
	assert_int_equal(entries(f->dir), 1); /* the input alone */
}

static void
test_json_without_the_series_exits_2_and_keeps_the_old_page(void **state)
{
	struct fixture *f = *state;
	char err[512], *text;

	th_put(f->html, "earlier page");
	/* a run that never got to run its guests has no series */
	th_put(f->json, "{\"scenario\": \"x.ini\", \"exit_status\": 2, "
			"\"error\": \"cannot create the host\"}");
	assert_int_equal(report_html_file(f->json, f->html, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "no time series"));
	assert_int_equal(command(f->json, f->html), 2);
	text = slurp(f->html);
	assert_string_equal(text, "earlier page");
	free(text);
	assert_int_equal(entries(f->dir), 2); /* no temporary file left */
}

static void test_truncated_series_is_refused_naming_the_key(void **state)
{
	struct fixture *f = *state;
	cJSON *root, *vm;
	char err[512], *text;
	char *page = make_page(f);

	free(page);
	text = slurp(f->json);
	root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	vm = cJSON_GetArrayItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(root, "series"), "vms"),
		1);
	cJSON_DeleteItemFromArray(cJSON_GetObjectItem(vm, "swapped_pages"), 0);
	text = cJSON_Print(root);
	cJSON_Delete(root);
	th_put(f->json, text);
	cJSON_free(text);
	assert_int_equal(report_html_file(f->json, f->html, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "series.vms[1].swapped_pages"));
}

static void test_unwritable_output_exits_2_and_leaves_no_file(void **state)
{
	struct fixture *f = *state;
	char out[TH_PATH_LEN], err[512];
	char *page = make_page(f);

	free(page);
	snprintf(out, sizeof(out), "%s/no/such/dir/r.html", f->dir);
	assert_int_equal(report_html_file(f->json, out, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "cannot write"));
	assert_int_equal(command(f->json, out), 2);
	/* a directory as the output: the rename fails, nothing is left */
	assert_int_equal(command(f->json, f->dir), 2);
	assert_int_equal(entries(f->dir), 2); /* run.json, run.html */
}

static void test_default_output_is_beside_the_input(void **state)
{
	struct fixture *f = *state;
	char *page = make_page(f);

	free(page);
	assert_int_equal(unlink(f->html), 0);
	assert_int_equal(command(f->json, NULL), 0);
	assert_int_equal(access(f->html, R_OK), 0);
}

/* Runs the built memvisor with args; its exit status, within STEP_MS. */
static int spawn_memvisor(const char *out, const char *const *args)
{
	posix_spawn_file_actions_t fa;
	char self[PATH_MAX], bin[PATH_MAX + 16], *argv[12];
	uint64_t until = th_now_ms() + STEP_MS;
	struct timespec nap = { 0, POLL_MS * 1000000L };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int status, k = 0;
	pid_t pid;

	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0'; /* build/tests/x -> build/memvisor */
	snprintf(bin, sizeof(bin), "%s/../memvisor", self);
	argv[k++] = bin;
	while (k < 11 && args[k - 1])
		argv[k] = (char *)args[k - 1], k++;
	argv[k] = NULL;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_addopen(
				 &fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
				 0644),
			 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
	assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (th_now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("memvisor %s still running after %d ms",
				 args[0], STEP_MS);
		}
		nanosleep(&nap, NULL);
	}
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_real_run_has_a_sample_per_second_that_adds_up(void **state)
{
	struct fixture *f = *state;
	char ini[TH_PATH_LEN], out[TH_PATH_LEN], *text, *page;
	const cJSON *series, *t, *vms, *vm;
	cJSON *root;
	double n, memsz, sum;

	snprintf(ini, sizeof(ini), "%s/tiny.ini", f->dir);
	snprintf(out, sizeof(out), "%s/out.txt", f->dir);
	assert_true(
		asprintf(&text,
			 "[host]\nmemsize = 24M\nduration = 3\nswapdir = %s\n"
			 "[vm r]\nmemsize = 16M\nworkload = random\n"
			 "[vm i]\nmemsize = 16M\nworkload = idle\n",
			 f->dir) > 0);
	th_put(ini, text);
	free(text);
	if (spawn_memvisor(out, (const char *[]){ "run", ini, "--json", f->json,
						  "--quiet", NULL })) {
		text = slurp(out);
		fail_msg("memvisor run failed:\n%s", text);
	}
	text = slurp(f->json);
	root = cJSON_Parse(text);
	free(text);
	assert_non_null(root);
	series = cJSON_GetObjectItem(root, "series");
	assert_non_null(series);
	t = cJSON_GetObjectItem(series, "t");
	n = cJSON_GetArraySize(t);
	/* 3 s: a sample at 0 and one a second, give or take one */
	assert_true(n >= 3 && n <= 5);
	assert_true(cJSON_GetArrayItem(t, 0)->valuedouble == 0);
	for (int j = 1; j < n; j++) {
		double dt = cJSON_GetArrayItem(t, j)->valuedouble -
			    cJSON_GetArrayItem(t, j - 1)->valuedouble;

		assert_true(dt > 0.5 && dt < 2.5);
	}
	vms = cJSON_GetObjectItem(series, "vms");
	assert_int_equal(cJSON_GetArraySize(vms), 2);
	cJSON_ArrayForEach(vm, vms)
	{
		memsz = cJSON_GetObjectItem(vm, "memsz_pages")->valuedouble;
		assert_true(memsz == 16 * 256);
		for (int j = 0; j < n; j++) {
			sum = 0;
			for (int k = 0; k < MV_PAGE_NSTATES; k++)
				sum += cJSON_GetArrayItem(
					       cJSON_GetObjectItem(
						       vm,
						       series_vm_keys[SV_STATE +
								      k]
							       .name),
					       j)
					       ->valuedouble;
			assert_true(sum == memsz);
		}
	}
	cJSON_Delete(root);
	/* and the command makes its page */
	assert_int_equal(spawn_memvisor(out, (const char *[]){ "report",
							       f->json, "-o",
							       f->html, NULL }),
			 0);
	page = slurp(f->html);
	assert_int_equal(count(page, "<svg "), 3 + 2);
	free(page);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_tick_steps_are_round_and_cover_the_span),
		T(test_scale_maps_data_to_pixels_and_back),
		T(test_area_is_top_edge_then_bottom_edge_reversed),
		T(test_series_has_a_sample_per_tick_and_counts_per_second),
		T(test_series_merges_pairs_and_keeps_every_count),
		T(test_a_week_of_seconds_stays_bounded),
		T(test_page_has_one_svg_per_plot),
		T(test_stacked_areas_add_up_to_memsize_at_every_point),
		T(test_free_memory_plot_has_the_state_bands),
		T(test_page_has_the_end_table_rows_and_escapes_text),
		T(test_missing_input_exits_2_and_writes_nothing),
		T(test_text_that_is_not_json_exits_2),
		T(test_json_without_the_series_exits_2_and_keeps_the_old_page),
		T(test_truncated_series_is_refused_naming_the_key),
		T(test_unwritable_output_exits_2_and_leaves_no_file),
		T(test_default_output_is_beside_the_input),
		T(test_real_run_has_a_sample_per_second_that_adds_up),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
