// SPDX-License-Identifier: MIT
/*
 * test_live.c - `memvisor run --live`: the screen's text from a fixed
 * snapshot (host lines, columns that line up, sorting, help, lines cut at
 * the width, VMs that do not fit counted), rates from counter deltas, and
 * the real screen in a detached tmux session: it appears, a sort key
 * reorders the rows, `h` shows the help line, a resize is followed, `q`
 * ends the run with its table and exit 0, and ^C or SIGTERM ends it with
 * the terminal given back.  Without a terminal, or on one that cannot
 * place the cursor, --live is refused with status 2.  `memvisor top` shows a run serving --metrics and leaves it
 * running on `q`, and exits 2 when nothing serves metrics.
 *
 * The tmux tests run their own tmux server on a socket in a fresh
 * directory, and every wait polls `tmux capture-pane` (or a file) with a
 * deadline; none sleeps to let something happen.
 */

/* The screen's text and the snapshot are part of the command, not of a
 * library the Makefile links into tests, so they are compiled in here. */
#include "helper.h"
#include "../tools/live_view.c"
#include "../tools/snap.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* Longest a step may take on a loaded machine before it counts as hung. */
#define STEP_MS 60000
#define POLL_MS 50
#define MB_PAGES(mb) ((uint64_t)(mb)*256)

/* ---- the screen's text from a fixed snapshot ---------------------------- */

static void vm(struct snap *s, size_t i, const char *name, unsigned memsz_mb,
	       unsigned swcur_mb, double ops_s)
{
	struct snap_vm *v = &s->vms[i];

	snprintf(v->name, sizeof(v->name), "%s", name);
	v->have = true;
	v->st.memsz_pages = MB_PAGES(memsz_mb);
	v->st.state_pages[MV_PAGE_PRIVATE] = MB_PAGES(memsz_mb) / 2;
	v->st.state_pages[MV_PAGE_SHARED] = MB_PAGES(memsz_mb) / 8;
	v->st.swcur_pages = MB_PAGES(swcur_mb);
	v->st.shrd_pages = MB_PAGES(memsz_mb) / 8;
	v->st.zero_pages = MB_PAGES(3);
	v->st.mctlsz_pages = MB_PAGES(2);
	v->st.active_permille = 455;
	v->ops_s = ops_s;
}

/* Three VMs whose MEMSZ, SWCUR, OPS/s and name orders all differ. */
static int setup_snap(void **state)
{
	struct snap *s = calloc(1, sizeof(*s));

	if (!s || snap_init(s, 3))
		return -1;
	snprintf(s->scenario, sizeof(s->scenario), "fixed.ini");
	s->t_s = 12;
	s->duration_s = 60;
	s->host.memsize_pages = MB_PAGES(1024);
	s->host.consumed_pages = MB_PAGES(1000);
	s->host.free_pages = MB_PAGES(24);
	s->host.minfree_pages = MB_PAGES(48);
	s->host.state = MV_STATE_SOFT;
	s->host.share_frames = MB_PAGES(10);
	s->host.share_saved_pages = MB_PAGES(30);
	vm(s, 0, "db", 512, 1, 100);
	vm(s, 1, "web", 256, 64, 9000);
	vm(s, 2, "cache", 128, 16, 50);
	s->vms[0].st.mctlmax_pages = MB_PAGES(100); /* no driver */
	s->vms[1].st.mctlmax_pages = MB_PAGES(5);
	s->vms[1].st.balloon_driver = 1;
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

/* The text of the screen, lines joined with '\n'. */
static char *render(const struct snap *s, const struct live_view *v, int width,
		    int height, size_t *nlines)
{
	struct live_line *lines = calloc((size_t)height, sizeof(*lines));
	char *text = calloc((size_t)height, LIVE_MAX_COLS + 2);
	size_t n;

	assert_non_null(lines);
	assert_non_null(text);
	n = live_render(s, v, width, height, lines);
	for (size_t i = 0; i < n; i++) {
		strcat(text, lines[i].text);
		strcat(text, "\n");
	}
	if (nlines)
		*nlines = n;
	free(lines);
	return text;
}

/* The line that starts with prefix; fails if none. */
static const char *line_of(const char *text, const char *prefix)
{
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, prefix, strlen(prefix)))
			return p;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	fail_msg("no line starting '%s' in:\n%s", prefix, text);
	return NULL;
}

/* Where name's row is (its offset in text), or fails. */
static ptrdiff_t row_at(const char *text, const char *name)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "\n%-12s ", name);
	const char *p = strstr(text, prefix);

	if (!p)
		fail_msg("no row for VM %s in:\n%s", name, text);
	return p - text;
}

static void test_host_lines_show_the_snapshot_in_mb(void **state)
{
	struct live_view v = { .sort = LIVE_SORT_MEMSZ };
	char *text = render(*state, &v, 200, 40, NULL);

	assert_non_null(strstr(line_of(text, "memvisor fixed.ini"),
			       "12 of 60 s  3 VMs  sort MEMSZ"));
	assert_non_null(
		strstr(line_of(text, "PMEM  /MB:"),
		       "1024.0 total,    1000.0 consumed,      24.0 free"));
	assert_non_null(strstr(line_of(text, "FREE  /MB:"),
			       "48.0 minFree,     50% of minFree: soft state"));
	/* shared = saving + common */
	assert_non_null(
		strstr(line_of(text, "PSHARE/MB:"),
		       "40.0 shared,      10.0 common,        30.0 saving"));
	/* the VMs' 1 + 64 + 16 MB in swap files */
	assert_non_null(strstr(line_of(text, "SWAP  /MB:"), "81.0 curr"));
	/* max counts only VMs with a balloon driver: web's 5 MB */
	assert_non_null(
		strstr(line_of(text, "MEMCTL/MB:"),
		       "6.0 curr,         0.0 target,         5.0 max"));
	assert_non_null(line_of(text, "ZIP   /MB:"));
	free(text);
}

static void test_every_column_of_a_row_ends_under_its_name(void **state)
{
	static const char *names[] = {
		"MEMSZ", "GRANT",   "SZTGT",	"TCHD",	   "%ACTV",   "SHRD",
		"ZERO",	 "SHRDSVD", "MCTLSZ",	"MCTLTGT", "SWCUR",   "SWTGT",
		"SWR/s", "SWW/s",   "CACHEUSD", "ZIP/s",   "UNZIP/s", "OPS/s",
	};
	struct live_view v = { .sort = LIVE_SORT_MEMSZ };
	char *text = render(*state, &v, 300, 40, NULL);
	const char *hdr = line_of(text, "NAME "), *row = line_of(text, "db ");
	const char *end;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char word[16];
		size_t at;

		snprintf(word, sizeof(word), " %s", names[i]);
		end = strstr(hdr, word);
		assert_non_null(end);
		at = (size_t)(end - hdr) + strlen(word);
		/* the value's last character is right above nothing but a
		 * space or the end of the line */
		assert_true(row[at - 1] != ' ');
		assert_true(row[at] == ' ' || row[at] == '\n');
	}
	/* db: 512 MB, GRANT = private + shared = 320 MB, %ACTV 45.5 -> 46 */
	assert_non_null(strstr(row, "   512.0    320.0"));
	assert_non_null(strstr(row, "    46 "));
	free(text);
}

static void test_rows_are_sorted_by_memsz_largest_first(void **state)
{
	struct live_view v = { .sort = LIVE_SORT_MEMSZ };
	char *text = render(*state, &v, 200, 40, NULL);

	assert_true(row_at(text, "db") < row_at(text, "web"));
	assert_true(row_at(text, "web") < row_at(text, "cache"));
	free(text);
}

static void test_sort_keys_pick_their_columns(void **state)
{
	size_t order[3];

	assert_int_equal(live_sort_for_key('M'), LIVE_SORT_MEMSZ);
	assert_int_equal(live_sort_for_key('s'), LIVE_SORT_SWCUR);
	assert_int_equal(live_sort_for_key('G'), LIVE_SORT_GRANT);
	assert_int_equal(live_sort_for_key('O'), LIVE_SORT_OPS);
	assert_int_equal(live_sort_for_key('N'), LIVE_SORT_NAME);
	assert_int_equal(live_sort_for_key('x'), -1);
	assert_int_equal(live_sort_for_key('q'), -1);
	assert_int_equal(live_sort_for_key('h'), -1);
	live_order(*state, LIVE_SORT_SWCUR, order);
	assert_int_equal(order[0], 1); /* web 64 */
	assert_int_equal(order[1], 2); /* cache 16 */
	assert_int_equal(order[2], 0); /* db 1 */
	live_order(*state, LIVE_SORT_OPS, order);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 0);
	assert_int_equal(order[2], 2);
	live_order(*state, LIVE_SORT_NAME, order);
	assert_int_equal(order[0], 2); /* cache */
	assert_int_equal(order[1], 0); /* db */
	assert_int_equal(order[2], 1); /* web */
}

static void test_equal_values_are_ordered_by_name(void **state)
{
	struct snap *s = *state;
	size_t order[3];

	for (size_t i = 0; i < 3; i++)
		s->vms[i].st.mctlsz_pages = 7;
	live_order(s, LIVE_SORT_MCTLSZ, order);
	assert_int_equal(order[0], 2);
	assert_int_equal(order[1], 0);
	assert_int_equal(order[2], 1);
}

static void test_title_names_the_sort_and_rows_follow_it(void **state)
{
	struct live_view v = { .sort = LIVE_SORT_NAME };
	char *text = render(*state, &v, 200, 40, NULL);

	assert_non_null(strstr(text, "sort NAME"));
	assert_true(row_at(text, "cache") < row_at(text, "db"));
	assert_true(row_at(text, "db") < row_at(text, "web"));
	free(text);
}

/*
 * A long scenario path in the title: whole on a screen wide enough for it,
 * else its end behind "...", from a '/', with the rest of the title still
 * there; top's view names itself before it.
 */
static void
test_title_shows_the_whole_name_or_its_end_when_too_narrow(void **state)
{
	struct snap *s = *state;
	struct live_view v = { .sort = LIVE_SORT_MEMSZ };
	struct live_line lines[2];
	char path[200], want[300];
	const char *t = lines[0].text;

	snprintf(path, sizeof(path), "%s",
		 "/home/someone/experiments/2026-12-06/memory-overcommit/"
		 "long-running-comparisons/against-the-kernel-swap-file/"
		 "second-series/scenarios/kvstore-eight-vms.ini");
	assert_true(strlen(path) > 128);
	snprintf(s->scenario, sizeof(s->scenario), "%s", path);
	snprintf(s->origin, sizeof(s->origin), "top 127.0.0.1:9100");
	/* wide: all of it */
	assert_int_equal(live_render(s, &v, 300, 1, lines), 1);
	snprintf(want, sizeof(want),
		 "memvisor top 127.0.0.1:9100 %s  12 of 60 s", path);
	assert_int_equal(strncmp(t, want, strlen(want)), 0);
	assert_non_null(strstr(t, "(h help, q quit)"));
	/* 120 columns: the end of the path, and the whole rest of the title */
	assert_int_equal(live_render(s, &v, 120, 1, lines), 1);
	assert_true(strlen(t) <= 120);
	assert_true(strlen(t) > 100);
	assert_int_equal(strncmp(t, "memvisor top 127.0.0.1:9100 .../", 32), 0);
	assert_non_null(
		strstr(t, "/scenarios/kvstore-eight-vms.ini  12 of 60 s"));
	assert_null(strstr(t, "/home/someone"));
	assert_non_null(strstr(t, "sort MEMSZ  (h help, q quit)"));
	/* too narrow for the rest: the file's name stays, the line is cut */
	assert_int_equal(live_render(s, &v, 60, 1, lines), 1);
	assert_true(strlen(t) <= 60);
	assert_non_null(strstr(t, "/kvstore-eight-vms.ini"));
	/* the run's own view: no origin, a short name as it is */
	s->origin[0] = '\0';
	snprintf(s->scenario, sizeof(s->scenario), "fixed.ini");
	assert_int_equal(live_render(s, &v, 80, 1, lines), 1);
	assert_int_equal(strncmp(t, "memvisor fixed.ini  12 of 60 s", 30), 0);
}

static void test_help_line_lists_the_keys_instead_of_the_message(void **state)
{
	struct live_view v = { .sort = LIVE_SORT_MEMSZ, .help = false };
	char *text;

	snprintf(v.msg, sizeof(v.msg), "host: swapping started");
	text = render(*state, &v, 200, 40, NULL);
	assert_non_null(strstr(text, "host: swapping started"));
	assert_null(strstr(text, "q end the run"));
	free(text);
	v.help = true;
	text = render(*state, &v, 200, 40, NULL);
	assert_null(strstr(text, "host: swapping started"));
	assert_non_null(strstr(text, "S SWCUR"));
	assert_non_null(strstr(text, "O OPS/s"));
	assert_non_null(strstr(text, "N NAME"));
	assert_non_null(strstr(text, "h/? help"));
	assert_non_null(strstr(text, "q end the run"));
	free(text);
}

static void test_lines_are_cut_at_the_screen_width(void **state)
{
	struct live_view v = { .sort = LIVE_SORT_MEMSZ, .help = true };
	struct live_line lines[40];
	size_t n = live_render(*state, &v, 37, 40, lines);

	assert_true(n > 10);
	for (size_t i = 0; i < n; i++)
		assert_true(strlen(lines[i].text) <= 37);
	assert_int_equal(strncmp(lines[1].text, "PMEM  /MB:", 10), 0);
}

static void test_vms_that_do_not_fit_are_counted_on_the_last_line(void **state)
{
	struct live_view v = { .sort = LIVE_SORT_MEMSZ };
	size_t n;
	char *text = render(*state, &v, 200, 11, &n);

	/* 9 lines before the rows: 2 rows left, one VM and the count */
	assert_int_equal(n, 11);
	assert_non_null(strstr(text, "\ndb "));
	assert_null(strstr(text, "\nweb "));
	assert_non_null(strstr(text, "... 2 more VMs"));
	free(text);
	text = render(*state, &v, 200, 12, &n);
	assert_int_equal(n, 12);
	assert_non_null(strstr(text, "\ncache "));
	assert_null(strstr(text, "more VM"));
	free(text);
}

static void test_header_bar_and_title_have_their_attributes(void **state)
{
	struct live_view v = { .sort = LIVE_SORT_MEMSZ };
	struct live_line lines[20];
	size_t n = live_render(*state, &v, 200, 20, lines);

	assert_true(n >= 12);
	assert_int_equal(lines[0].attr, LIVE_TITLE);
	assert_int_equal(lines[7].attr, LIVE_NOTE);
	assert_int_equal(lines[8].attr, LIVE_HEADER);
	assert_int_equal(strncmp(lines[8].text, "NAME", 4), 0);
	assert_int_equal(lines[9].attr, LIVE_TEXT);
}

static void test_rates_are_counter_deltas_over_the_time_between(void **state)
{
	struct snap_vm v = { .have = false };
	struct mv_vm_stats st = { .name = "a" };

	(void)state;
	st.swapin_pages = 1000;
	st.swapout_pages = 100;
	snap_vm_update(&v, &st, 5000, 0, 1.0);
	/* the first snapshot has nothing to differ from */
	assert_true(v.swr_mb_s == 0 && v.ops_s == 0);
	st.swapin_pages += 512; /* 2 MB */
	st.swapout_pages += 256; /* 1 MB */
	st.zip_pages += 1024; /* 4 MB */
	snap_vm_update(&v, &st, 5000 + 3000, 0, 3.0);
	assert_float_equal(v.swr_mb_s, 1.0, 1e-9);
	assert_float_equal(v.sww_mb_s, 0.5, 1e-9);
	assert_float_equal(v.zip_mb_s, 2.0, 1e-9);
	assert_float_equal(v.ops_s, 1500.0, 1e-9);
	assert_string_equal(v.name, "a");
}

/* ---- the real screen, in tmux ------------------------------------------- */

struct fixture {
	char dir[TH_DIR_LEN]; /* scratch: socket, scenario, swap, status */
	char bin[PATH_MAX + 16]; /* the memvisor command */
	char sock[TH_SOCK_LEN]; /* the tmux server's socket */
	char status[TH_PATH_LEN]; /* memvisor's exit status, from the shell */
	char out[TH_PATH_LEN]; /* for runs without tmux */
	bool server; /* a tmux server was started */
	pid_t pid; /* a run started without tmux, or 0 */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	th_memvisor_bin(f->bin, sizeof(f->bin));
	if (th_scratch_dir(f->dir, sizeof(f->dir), "live")) {
		free(f);
		return -1;
	}
	th_socket_path(f->sock, sizeof(f->sock), f->dir, "tmux.sock");
	snprintf(f->status, sizeof(f->status), "%s/status", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out.txt", f->dir);
	*state = f;
	return 0;
}

/* Runs a shell command line; returns its output (the caller frees). */
__attribute__((format(printf, 1, 2))) static char *sh(const char *fmt, ...)
{
	char *cmd, *buf = calloc(1, 1 << 16);
	size_t n = 0, got;
	va_list ap;
	FILE *p;

	assert_non_null(buf);
	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n < (1 << 16) - 1 &&
	       (got = fread(buf + n, 1, (1 << 16) - 1 - n, p)) > 0)
		n += got;
	pclose(p);
	free(cmd);
	return buf;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *out;

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	if (f->server) {
		out = sh("tmux -S '%s' kill-server 2>&1", f->sock);
		free(out);
	}
	out = sh("rm -rf '%s'", f->dir);
	free(out);
	unlink(f->sock); /* when it was not in dir (th_socket_path) */
	free(f);
	return th_teardown(state); /* th_socket_path's directory, if any */
}

static void put_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* A scenario file in the fixture's directory, its swap files there too. */
static void scenario(struct fixture *f, const char *body, char *path,
		     size_t len)
{
	char *text;

	assert_true((size_t)snprintf(path, len, "%s/live.ini", f->dir) < len);
	assert_true(asprintf(&text, "[host]\nswapdir = %s/swap\n%s", f->dir,
			     body) > 0);
	put_file(path, text);
	free(text);
}

/*
 * `memvisor run INI --live` in a detached tmux session of cols x rows.
 * The shell traps (not ignores) SIGINT, so that a ^C reaches memvisor
 * with its default disposition and the shell outlives it to write the
 * exit status; then the pane stays, for its content to be read.
 */
static void start_pane(struct fixture *f, const char *env, const char *args,
		       int width, int height)
{
	char *out;

	out = sh(
		"env -u TMUX tmux -S '%s' -f /dev/null new-session -d -s live -x %d -y %d "
		"\"trap true INT TERM; %s'%s' %s; "
		"echo \\$? > '%s'; exec sleep 3600\" 2>&1; echo rc=$?",
		f->sock, width, height, env, f->bin, args, f->status);
	f->server = true;
	if (!strstr(out, "rc=0"))
		fail_msg("tmux new-session failed (is tmux installed?): %s",
			 out);
	free(out);
}

static void start_live(struct fixture *f, const char *ini, int width,
		       int height)
{
	char args[TH_PATH_LEN + 32];

	snprintf(args, sizeof(args), "run '%s' --live", ini);
	start_pane(f, "", args, width, height);
}

/* The pane as it shows now (history: with what scrolled off). */
static char *pane(struct fixture *f, bool history)
{
	return sh("tmux -S '%s' capture-pane -p -t live %s 2>&1", f->sock,
		  history ? "-S -" : "");
}

/* Waits until the pane shows every one of the NULL-terminated strings;
 * returns the pane's text then. */
static char *wait_pane(struct fixture *f, ...)
{
	uint64_t until = th_now_ms() + STEP_MS;
	const char *what;
	char *text;
	va_list ap;
	bool all;

	for (;;) {
		text = pane(f, false);
		all = true;
		va_start(ap, f);
		while ((what = va_arg(ap, const char *)))
			if (!strstr(text, what))
				all = false;
		va_end(ap);
		if (all)
			return text;
		if (th_now_ms() > until)
			fail_msg(
				"the pane did not show what was awaited in %d ms:\n%s",
				STEP_MS, text);
		free(text);
		th_nap_ms(POLL_MS);
	}
}

static void keys(struct fixture *f, const char *k)
{
	free(sh("tmux -S '%s' send-keys -t live %s", f->sock, k));
}

/* Waits for the shell in the pane to record memvisor's exit status. */
static int wait_status(struct fixture *f)
{
	uint64_t until = th_now_ms() + STEP_MS;
	char *text;
	int st;

	for (;;) {
		text = th_slurp(f->status);
		if (strchr(text, '\n')) {
			st = atoi(text);
			free(text);
			return st;
		}
		free(text);
		if (th_now_ms() > until) {
			text = pane(f, true);
			fail_msg("memvisor still running after %d ms:\n%s",
				 STEP_MS, text);
		}
		th_nap_ms(POLL_MS);
	}
}

static int alternate_screen_on(struct fixture *f)
{
	char *out = sh("tmux -S '%s' display-message -p -t live "
		       "'#{alternate_on}'",
		       f->sock);
	int on = atoi(out);

	free(out);
	return on;
}

/* Two VMs whose MEMSZ order is not their name order, running until
 * stopped. */
static const char two_vms[] = "memsize = 64M\nduration = 600\n"
			      "[vm zeta]\nmemsize = 24M\nworkload = random\n"
			      "[vm alpha]\nmemsize = 8M\nworkload = idle\n";

static void test_live_screen_sorts_shows_help_and_q_ends_the_run(void **state)
{
	struct fixture *f = *state;
	char ini[TH_PATH_LEN], *text;

	scenario(f, two_vms, ini, sizeof(ini));
	start_live(f, ini, 200, 40);
	/* the panel, with both VMs: by MEMSZ, zeta first */
	text = wait_pane(f, "sort MEMSZ", "PMEM  /MB:", "NAME ", "\nzeta ",
			 "\nalpha ", NULL);
	assert_true(strstr(text, "\nzeta ") < strstr(text, "\nalpha "));
	assert_int_equal(alternate_screen_on(f), 1);
	free(text);
	keys(f, "N");
	text = wait_pane(f, "sort NAME", "\nzeta ", "\nalpha ", NULL);
	assert_true(strstr(text, "\nalpha ") < strstr(text, "\nzeta "));
	assert_null(strstr(text, "q end the run"));
	free(text);
	keys(f, "h");
	free(wait_pane(f, "q end the run", "S SWCUR", NULL));
	keys(f, "q");
	assert_int_equal(wait_status(f), 0);
	/* the terminal is back, and the run ended as a run does */
	assert_int_equal(alternate_screen_on(f), 0);
	text = pane(f, true);
	assert_non_null(strstr(text, "ended from the live screen"));
	assert_non_null(strstr(text, "reading back every page"));
	assert_non_null(strstr(text, "INTEGRITY"));
	assert_non_null(strstr(text, "OK: every page read back as written"));
	/* no live line went to the terminal under the screen */
	assert_null(strstr(text, "MINFREE"));
	free(text);
}

static void test_live_screen_follows_a_resize(void **state)
{
	struct fixture *f = *state;
	char ini[TH_PATH_LEN], *text, *body = NULL, name[48];
	size_t len = 0;
	FILE *m = open_memstream(&body, &len);

	assert_non_null(m);
	fputs("memsize = 128M\nduration = 600\n", m);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name),
			 "[vm v%d]\nmemsize = 4M\nworkload = idle\n", i);
		fputs(name, m);
	}
	assert_int_equal(fclose(m), 0);
	scenario(f, body, ini, sizeof(ini));
	free(body);
	start_live(f, ini, 200, 40);
	text = wait_pane(f, "NAME ", "\nv0 ", "\nv7 ", NULL);
	assert_null(strstr(text, "more VM"));
	free(text);
	/* 14 rows: 9 above the table, 4 VMs, and the count of the rest */
	free(sh("tmux -S '%s' resize-window -t live -x 70 -y 14", f->sock));
	text = wait_pane(f, "... 4 more VMs", NULL);
	assert_null(strstr(text, "\nv7 "));
	free(text);
	keys(f, "q");
	assert_int_equal(wait_status(f), 0);
}

static void test_ctrl_c_on_the_live_screen_gives_the_terminal_back(void **state)
{
	struct fixture *f = *state;
	char ini[TH_PATH_LEN], *text;

	scenario(f, two_vms, ini, sizeof(ini));
	start_live(f, ini, 200, 40);
	free(wait_pane(f, "PMEM  /MB:", "\nzeta ", NULL));
	keys(f, "C-c");
	/* interrupted: exit 4, every page still verified */
	assert_int_equal(wait_status(f), 4);
	assert_int_equal(alternate_screen_on(f), 0);
	text = pane(f, true);
	assert_non_null(strstr(text, "stopping the guests early"));
	assert_non_null(strstr(text, "every page read back as written"));
	free(text);
}

/* memvisor with args (NULL-terminated), not in tmux: output to f->out. */
static void spawn(struct fixture *f, ...)
{
	va_list ap;

	va_start(ap, f);
	f->pid = th_spawn_va(f->bin, f->out, ap);
	va_end(ap);
}

/* Waits for the spawned command to end; its exit status. */
static int wait_spawned(struct fixture *f)
{
	return th_wait_exit(&f->pid, f->out, STEP_MS);
}

/* Waits for the spawned command's output to hold what; returns it. */
static char *wait_output(struct fixture *f, const char *what)
{
	uint64_t until = th_now_ms() + STEP_MS;
	char *text;

	for (;;) {
		text = th_slurp(f->out);
		if (strstr(text, what))
			return text;
		if (th_now_ms() > until)
			fail_msg("no '%s' in %d ms:\n%s", what, STEP_MS, text);
		free(text);
		th_nap_ms(POLL_MS);
	}
}

/* The pid of the command the pane's shell runs (its only child). */
static pid_t pane_child(struct fixture *f)
{
	char *out = sh("tmux -S '%s' display-message -p -t live "
		       "'#{pane_pid}'",
		       f->sock);
	char path[64], *text;
	int shell = atoi(out);
	pid_t child;

	free(out);
	assert_true(shell > 0);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", shell, shell);
	text = th_slurp(path);
	child = (pid_t)atoi(text);
	free(text);
	assert_true(child > 0);
	return child;
}

static void
test_sigterm_on_the_live_screen_gives_the_terminal_back(void **state)
{
	struct fixture *f = *state;
	char ini[TH_PATH_LEN], *text;

	scenario(f, two_vms, ini, sizeof(ini));
	start_live(f, ini, 200, 40);
	free(wait_pane(f, "PMEM  /MB:", "\nzeta ", NULL));
	assert_int_equal(kill(pane_child(f), SIGTERM), 0);
	assert_int_equal(wait_status(f), 4);
	assert_int_equal(alternate_screen_on(f), 0);
	text = pane(f, true);
	assert_non_null(strstr(text, "Terminated: stopping the guests early"));
	assert_non_null(strstr(text, "every page read back as written"));
	free(text);
}

static void test_live_without_a_terminal_is_refused_with_status_2(void **state)
{
	struct fixture *f = *state;
	char run[] = "run", live[] = "--live";
	char *text;

	spawn(f, run, live, NULL);
	assert_int_equal(wait_spawned(f), 2);
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "--live needs a terminal"));
	free(text);
}

static void
test_live_on_a_terminal_that_cannot_place_the_cursor_exits_2(void **state)
{
	struct fixture *f = *state;
	char ini[TH_PATH_LEN], args[TH_PATH_LEN + 32], *text;

	scenario(f, two_vms, ini, sizeof(ini));
	snprintf(args, sizeof(args), "run '%s' --live", ini);
	start_pane(f, "TERM=dumb ", args, 100, 20);
	assert_int_equal(wait_status(f), 2);
	text = pane(f, true);
	assert_non_null(strstr(text, "cannot place the cursor"));
	free(text);
}

static void test_top_shows_a_run_serving_metrics_and_q_leaves_it(void **state)
{
	struct fixture *f = *state;
	char ini[TH_PATH_LEN], run[] = "run", opt[] = "--metrics",
			       port0[] = "0";
	char args[64], title[TH_PATH_LEN + 8], far[TH_PATH_LEN], *text, *at;
	unsigned port;

	/* the scenario deep in directories: its path is longer than the
	 * title used to show (80 bytes), and the screen has room for all */
	scenario(f, two_vms, far, sizeof(far));
	assert_true((size_t)snprintf(ini, sizeof(ini), "%s/%s", f->dir,
				     "a-directory-whose-name-is-long-enough-"
				     "to-make-the-scenario-path-long") <
		    sizeof(ini) - 16);
	assert_int_equal(mkdir(ini, 0700), 0);
	strcat(ini, "/two-vms.ini");
	assert_int_equal(rename(far, ini), 0);
	assert_true(strlen(ini) > 100);
	snprintf(title, sizeof(title), " %s  ", ini);
	spawn(f, run, ini, opt, port0, NULL);
	text = wait_output(f, "/metrics (and /healthz)");
	at = strstr(text, "metrics: http://127.0.0.1:");
	assert_non_null(at);
	port = (unsigned)atoi(at + strlen("metrics: http://127.0.0.1:"));
	free(text);
	snprintf(args, sizeof(args), "top %u", port);
	start_pane(f, "", args, 300, 40);
	snprintf(args, sizeof(args), "memvisor top :%u ", port);
	text = wait_pane(f, args, title, "PMEM  /MB:", "\nzeta ", "\nalpha ",
			 NULL);
	assert_true(strstr(text, "\nzeta ") < strstr(text, "\nalpha "));
	free(text);
	keys(f, "N");
	text = wait_pane(f, "sort NAME", NULL);
	assert_true(strstr(text, "\nalpha ") < strstr(text, "\nzeta "));
	free(text);
	keys(f, "q");
	assert_int_equal(wait_status(f), 0);
	assert_int_equal(alternate_screen_on(f), 0);
	/* leaving top left the run alone */
	assert_int_equal(waitpid(f->pid, NULL, WNOHANG), 0);
	kill(f->pid, SIGINT);
	assert_int_equal(wait_spawned(f), 4);
}

static void test_top_with_no_metrics_at_the_port_exits_2(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char top[] = "top", port[16], *text;

	/* a port that takes connections and never answers */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	spawn(f, top, port, NULL);
	assert_int_equal(wait_spawned(f), 2);
	close(fd);
	text = th_slurp(f->out);
	assert_non_null(strstr(text, "memvisor top: no metrics at"));
	assert_non_null(strstr(text, "--metrics"));
	free(text);
}

int main(void)
{
#define S(name) cmocka_unit_test_setup_teardown(name, setup_snap, teardown_snap)
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		S(test_host_lines_show_the_snapshot_in_mb),
		S(test_every_column_of_a_row_ends_under_its_name),
		S(test_rows_are_sorted_by_memsz_largest_first),
		S(test_sort_keys_pick_their_columns),
		S(test_equal_values_are_ordered_by_name),
		S(test_title_names_the_sort_and_rows_follow_it),
		S(test_title_shows_the_whole_name_or_its_end_when_too_narrow),
		S(test_help_line_lists_the_keys_instead_of_the_message),
		S(test_lines_are_cut_at_the_screen_width),
		S(test_vms_that_do_not_fit_are_counted_on_the_last_line),
		S(test_header_bar_and_title_have_their_attributes),
		S(test_rates_are_counter_deltas_over_the_time_between),
		T(test_live_screen_sorts_shows_help_and_q_ends_the_run),
		T(test_live_screen_follows_a_resize),
		T(test_ctrl_c_on_the_live_screen_gives_the_terminal_back),
		T(test_sigterm_on_the_live_screen_gives_the_terminal_back),
		T(test_live_without_a_terminal_is_refused_with_status_2),
		T(test_live_on_a_terminal_that_cannot_place_the_cursor_exits_2),
		T(test_top_shows_a_run_serving_metrics_and_q_leaves_it),
		T(test_top_with_no_metrics_at_the_port_exits_2),
	};
#undef S
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
