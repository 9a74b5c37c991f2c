// SPDX-License-Identifier: MIT
/*
 * run.c - `memvisor run`: a scenario from start to verdict.
 *
 * Design: everything that can be refused is refused before anything runs:
 * the arguments, the kernel (mv_check_system), the scenario, and the JSON
 * path, which is opened up front so that a typo does not cost a whole run.
 * Then the host, the VMs and their workloads are started in that order and
 * torn down in reverse by one goto ladder, whatever step failed.  SIGINT and
 * SIGTERM are blocked before the first thread exists, so every library and
 * guest thread inherits the mask and the main thread alone takes them, in
 * sigtimedwait(), which is also its one-second clock: an interrupted run
 * still stops the guests, verifies every page and reports.  Rates come from
 * differences of the library's cumulative counters: the last second for the
 * live line, the whole timed run for the final table.  The final stats are
 * taken when the timed run ends, before the verification, whose read-back
 * of every page would otherwise show up as swap-in traffic; they are
 * printed after the teardown, so that the verdict is the last line even
 * when destroying VMs is slow.  With --json - the JSON owns stdout and
 * everything meant for people goes to stderr, so the output can be piped.
 *
 * Invariants: a workload is stopped before its VM is destroyed, and every
 * VM before the host; the exit status is 0 only when every workload was
 * verified with zero integrity errors.
 *
 * Lock ordering: none; the main thread only reads snapshots from the
 * library and the guests.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "memvisor.h"
#include "report.h"
#include "run.h"
#include "scenario.h"

#define EXIT_INTEGRITY 1
#define EXIT_BAD_INPUT 2
#define EXIT_ENGINE_BUG 3

/* The live line's columns; the header is printed with the same widths. */
#define LIVE_HDR \
	"%5s %-5s %7s %7s %8s %7s %7s %7s %8s %6s %6s %6s %7s %9s %9s\n"
#define LIVE_FMT \
	"%4.0fs %-5s %7.1f %7.1f %8.1f %7.1f %7.1f %7.1f %8.1f %6.1f %6.1f %6.1f %7.1f %9.0f %9llu\n"

struct options {
	const char *scenario; /* file, or NULL for the embedded default */
	unsigned duration_s; /* 0: the scenario's */
	const char *json; /* report path, "-" for stdout, NULL for none */
	bool quiet; /* no live lines */
};

/* One VM and its guest workload. */
struct vm_run {
	const struct sc_vm *cfg; /* its [vm NAME] section */
	mv_vm *vm; /* NULL until created */
	struct mvg_workload *w; /* NULL until started, and once verified */
	struct mv_vm_stats start; /* when the timed run began */
	struct mv_vm_stats last; /* at the previous live line */
	uint64_t last_ops; /* guest ops at the previous live line */
	bool error_shown; /* its first integrity error was printed */
};

struct run {
	struct options opt; /* from the command line */
	struct scenario sc; /* what runs */
	struct mv_host_config cfg; /* the host as created */
	mv_host *host; /* NULL until created */
	struct vm_run *vms; /* sc.nvms of them */
	FILE *json; /* opened before the run */
	FILE *out; /* for people: stdout, or stderr when the JSON goes there */
	sigset_t stop_signals; /* SIGINT, SIGTERM: end the timed run early */
	sigset_t old_mask; /* the mask before they were blocked */
	struct timespec t0; /* the timed run began */
	struct run_result res; /* filled at the end, printed after teardown */
	char host_msg[512]; /* the host message last shown */
	atomic_bool watch_stop; /* tells lost_page_watch to end */
};

void run_usage(FILE *out)
{
	fprintf(out,
		"usage: memvisor run [SCENARIO] [--duration S] [--json FILE] [--quiet]\n"
		"  SCENARIO         an INI scenario file (default: the embedded one,\n"
		"                   3 VMs with 768 MB on a 512 MB host for 60 s)\n"
		"  -d, --duration S run the workloads for S seconds instead\n"
		"  -j, --json FILE  write the final stats as JSON to FILE (-: stdout,\n"
		"                   and the rest goes to stderr)\n"
		"  -q, --quiet      no live line every second\n"
		"exit status: 0 all pages verified, 1 integrity errors, 2 bad input or system,\n"
		"             3 the engine lost a page (a bug; the run is aborted)\n");
}

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static double mb(uint64_t bytes)
{
	return (double)bytes / (1 << 20);
}

static int parse_args(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	char *end;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":d:j:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end ||
			    errno || !v || v > SCENARIO_MAX_DURATION_S) {
				fprintf(stderr,
					"memvisor run: bad --duration '%s' (expected whole seconds from 1 to %u)\n",
					optarg, SCENARIO_MAX_DURATION_S);
				return EXIT_BAD_INPUT;
			}
			o->duration_s = (unsigned)v;
			break;
		case 'j':
			o->json = optarg;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			run_usage(stdout);
			return -1;
		case ':':
			fprintf(stderr, "memvisor run: %s needs a value\n",
				argv[optind - 1]);
			run_usage(stderr);
			return EXIT_BAD_INPUT;
		default:
			fprintf(stderr, "memvisor run: unknown option '%s'\n",
				argv[optind - 1]);
			run_usage(stderr);
			return EXIT_BAD_INPUT;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr,
			"memvisor run: one scenario at a time ('%s' and '%s' given)\n",
			argv[optind], argv[optind + 1]);
		return EXIT_BAD_INPUT;
	}
	o->scenario = optind < argc ? argv[optind] : NULL;
	return 0;
}

/* "FILE:LINE: " for messages about what a scenario line asked for. */
static void where(const struct run *r, int line, char *buf, size_t len)
{
	if (line > 0)
		snprintf(buf, len, "%s:%d: ", r->sc.source, line);
	else
		snprintf(buf, len, "%s: ", r->sc.source);
}

static void lib_error(const struct run *r, int line, const char *what, int err)
{
	char at[PATH_MAX + 16], msg[512];

	/* with no host: why mv_host_create() failed */
	mv_host_errmsg_copy(r->host, msg, sizeof(msg));
	where(r, line, at, sizeof(at));
	fprintf(stderr, "memvisor: %s%s: %s\n", at, what, mv_strerror(err));
	/* The library's sentence says what to do; it gets its own line. */
	if (msg[0])
		fprintf(stderr, "memvisor: %s\n", msg);
}

/* The host's log callback (its own thread): each event once, repeats of
 * the last one left out. */
static void host_log(void *arg, enum mv_log_level level, const char *msg)
{
	struct run *r = arg;

	if (!strcmp(msg, r->host_msg))
		return;
	snprintf(r->host_msg, sizeof(r->host_msg), "%s", msg);
	fprintf(stderr, "memvisor: host%s: %s\n",
		level == MV_LOG_ERROR ? " error" : "", msg);
}

static int start_host(struct run *r)
{
	char what[64];
	int err;

	mv_host_config_init(&r->cfg);
	r->cfg.memsize_bytes = r->sc.host.memsize;
	if (r->sc.host.swapdir)
		r->cfg.swapdir = r->sc.host.swapdir;
	r->cfg.settings = r->sc.settings;
	r->cfg.log = host_log;
	r->cfg.log_arg = r;
	err = mv_host_create(&r->cfg, &r->host);
	if (err) {
		r->host = NULL;
		snprintf(what, sizeof(what), "cannot create the host");
		lib_error(r, r->sc.host.line, what, err);
	}
	return err;
}

static int start_vms(struct run *r)
{
	struct mv_vm_config cfg;
	char what[MV_NAME_MAX + 32];
	int err;

	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		v->cfg = &r->sc.vms[i];
		mv_vm_config_init(&cfg);
		snprintf(cfg.name, sizeof(cfg.name), "%s", v->cfg->name);
		cfg.memsize_bytes = v->cfg->memsize;
		cfg.image_path = v->cfg->image;
		memcpy(cfg.salt, v->cfg->salt, sizeof(cfg.salt));
		cfg.shares = scenario_vm_shares(v->cfg);
		cfg.reservation_bytes = v->cfg->reservation;
		cfg.limit_bytes = v->cfg->limit;
		err = mv_vm_create(r->host, &cfg, &v->vm);
		if (err) {
			v->vm = NULL;
			snprintf(what, sizeof(what), "cannot create VM %s",
				 v->cfg->name);
			lib_error(r, v->cfg->line, what, err);
			return err;
		}
		err = mv_vm_balloon_set_target(v->vm, v->cfg->balloon_target);
		if (err) {
			snprintf(what, sizeof(what),
				 "cannot set VM %s's balloon target",
				 v->cfg->name);
			lib_error(r, v->cfg->line, what, err);
			return err;
		}
	}
	return 0;
}

static int start_workloads(struct run *r)
{
	struct mvg_config cfg;
	char at[PATH_MAX + 16];
	int err;

	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		memset(&cfg, 0, sizeof(cfg));
		cfg.kind = v->cfg->workload;
		cfg.mem = mv_vm_mem(v->vm);
		cfg.memsize = mv_vm_memsize(v->vm);
		cfg.threads = v->cfg->threads;
		cfg.image_path = v->cfg->image;
		cfg.seed = v->cfg->seed;
		cfg.zipf_s = v->cfg->zipf_s;
		cfg.kv_text = v->cfg->kv_text;
		cfg.think_us = v->cfg->think_us;
		cfg.balloon_vm = v->cfg->balloon ? v->vm : NULL;
		cfg.burst_pct = v->cfg->burst_pct;
		cfg.burst_keep_pct = v->cfg->burst_keep_pct;
		cfg.burst_idle_ms = v->cfg->burst_idle_ms;
		err = mvg_start(&cfg, &v->w);
		if (err) {
			v->w = NULL;
			where(r, v->cfg->line, at, sizeof(at));
			fprintf(stderr,
				"memvisor: %scannot start the %s workload on VM %s: %s\n",
				at, mvg_kind_name(cfg.kind), v->cfg->name,
				strerror(-err));
			return err;
		}
	}
	return 0;
}

static void print_summary(const struct run *r)
{
	const struct scenario *sc = &r->sc;
	uint64_t total = scenario_vm_memsize_total(sc);

	fprintf(r->out,
		"memvisor run: %s: %zu VM%s with %.1f MB of guest memory on a %.1f MB host (%.0f%%), minFree %.1f MB, %u s\n",
		sc->source, sc->nvms, sc->nvms == 1 ? "" : "s", mb(total),
		mb(sc->host.memsize),
		100.0 * (double)total / (double)sc->host.memsize,
		mb(mv_minfree_bytes(sc->host.memsize)), sc->host.duration_s);
	for (size_t i = 0; i < sc->nvms; i++) {
		const struct sc_vm *vm = &sc->vms[i];

		fprintf(r->out, "  vm %-16s %8.1f MB  %-8s %2u thread%s",
			vm->name, mb(vm->memsize), mvg_kind_name(vm->workload),
			vm->threads, vm->threads == 1 ? "" : "s");
		fprintf(r->out, "  %llu shares",
			(unsigned long long)scenario_vm_shares(vm));
		if (vm->reservation)
			fprintf(r->out, "  reservation %.1f MB",
				mb(vm->reservation));
		if (vm->limit)
			fprintf(r->out, "  limit %.1f MB", mb(vm->limit));
		if (vm->balloon)
			fprintf(r->out, "  balloon driver");
		if (vm->balloon_target)
			fprintf(r->out, "  balloon target %.1f MB",
				mb(vm->balloon_target));
		if (vm->image)
			fprintf(r->out, "  image %s", vm->image);
		fprintf(r->out, "\n");
	}
	for (size_t i = 0; i < sc->nadvanced; i++)
		fprintf(r->out, "  [advanced] %s = %s\n", sc->advanced[i].name,
			sc->advanced[i].value);
	fprintf(r->out, "  swap files in %s\n", r->cfg.swapdir);
	if (!r->opt.quiet)
		fprintf(r->out, "\n" LIVE_HDR, "TIME", "STATE", "FREE",
			"MINFREE", "CONSUMED", "SHRDSVD", "MCTLSZ", "SWCUR",
			"CACHEUSD", "SWR/s", "SWW/s", "ZIP/s", "UNZIP/s",
			"OPS/s", "INTEGRITY");
	fflush(r->out);
}

/* What the live line adds up over the VMs: counts for the last second,
 * levels as they are now. */
struct totals {
	uint64_t swin_pages, swout_pages; /* swapped in / out */
	uint64_t zip_pages, unzip_pages; /* compressed / decompressed */
	uint64_t mctlsz_pages; /* in balloons */
	uint64_t swcur_pages; /* in swap files */
	uint64_t cacheusd_bytes; /* held by compression caches */
	uint64_t ops; /* guest ops */
	uint64_t integrity_errors; /* since the start */
};

static void add_vm(struct vm_run *v, struct totals *t)
{
	struct mv_vm_stats st;
	struct mvg_stats g;

	if (mv_vm_stats(v->vm, &st))
		st = v->last;
	mvg_get_stats(v->w, &g);
	t->swin_pages += st.swapin_pages - v->last.swapin_pages;
	t->swout_pages += st.swapout_pages - v->last.swapout_pages;
	t->zip_pages += st.zip_pages - v->last.zip_pages;
	t->unzip_pages += st.unzip_pages - v->last.unzip_pages;
	t->mctlsz_pages += st.mctlsz_pages;
	t->swcur_pages += st.swcur_pages;
	t->cacheusd_bytes += st.zip_used_bytes;
	t->ops += g.ops - v->last_ops;
	t->integrity_errors += g.integrity_errors;
	v->last = st;
	v->last_ops = g.ops;
	/* Shown the moment it is seen, not only in the final table. */
	if (g.integrity_errors && !v->error_shown) {
		fprintf(stderr, "memvisor: INTEGRITY ERROR in VM %s: %s\n",
			v->cfg->name, g.first_error);
		v->error_shown = true;
	}
}

/* One live line: the host, then the VMs' totals over the last second. */
static void live_line(struct run *r, double t, double dt)
{
	struct totals tot = { 0 };
	struct mv_host_stats h;

	for (size_t i = 0; i < r->sc.nvms; i++)
		add_vm(&r->vms[i], &tot);
	if (r->opt.quiet || mv_host_stats(r->host, &h))
		return;
	fprintf(r->out, LIVE_FMT, t, mv_mem_state_name(h.state),
		pages_mb(h.free_pages), pages_mb(h.minfree_pages),
		pages_mb(h.consumed_pages), pages_mb(h.share_saved_pages),
		pages_mb(tot.mctlsz_pages), pages_mb(tot.swcur_pages),
		mb(tot.cacheusd_bytes), pages_mb(tot.swin_pages) / dt,
		pages_mb(tot.swout_pages) / dt, pages_mb(tot.zip_pages) / dt,
		pages_mb(tot.unzip_pages) / dt, (double)tot.ops / dt,
		(unsigned long long)tot.integrity_errors);
	fflush(r->out);
}

/* The timed run.  Returns true if a signal ended it early. */
static bool watch(struct run *r)
{
	unsigned duration = r->sc.host.duration_s, tick = 0;
	double t, prev = 0, left;
	struct timespec timeout;
	int sig;

	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		mv_vm_stats(v->vm, &v->start);
		v->last = v->start;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	while (tick < duration) {
		left = tick + 1 - since(&r->t0);
		if (left > 0) {
			timeout.tv_sec = (time_t)left;
			timeout.tv_nsec =
				(long)((left - (double)timeout.tv_sec) * 1e9);
			sig = sigtimedwait(&r->stop_signals, NULL, &timeout);
			if (sig > 0) {
				fprintf(stderr,
					"\nmemvisor: %s: stopping the guests early\n",
					strsignal(sig));
				return true;
			}
			if (errno == EINTR)
				continue;
		}
		tick++;
		t = since(&r->t0);
		live_line(r, tick, t - prev);
		prev = t;
	}
	return false;
}

/* The end-of-run stats, taken before the verification disturbs them. */
static void collect(struct run *r, bool interrupted)
{
	struct run_result *res = &r->res;
	struct mvg_stats g;

	res->sc = &r->sc;
	res->swapdir = r->cfg.swapdir;
	res->interrupted = interrupted;
	res->duration_s = since(&r->t0);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_result *v = &res->vms[i];
		struct vm_run *vr = &r->vms[i];
		double in, out;

		v->vm = vr->cfg;
		if (mv_vm_stats(vr->vm, &v->st))
			v->st = vr->last;
		mvg_get_stats(vr->w, &g);
		v->ops = g.ops;
		in = pages_mb(v->st.swapin_pages - vr->start.swapin_pages);
		out = pages_mb(v->st.swapout_pages - vr->start.swapout_pages);
		v->swr_mb_s = in / res->duration_s;
		v->sww_mb_s = out / res->duration_s;
		v->zip_mb_s = pages_mb(v->st.zip_pages - vr->start.zip_pages) /
			      res->duration_s;
		v->unzip_mb_s =
			pages_mb(v->st.unzip_pages - vr->start.unzip_pages) /
			res->duration_s;
		v->ops_s = (double)v->ops / res->duration_s;
		v->cow_s = (double)(v->st.cow_breaks - vr->start.cow_breaks) /
			   res->duration_s;
		v->scan_s = (double)(v->st.share_scanned_pages -
				     vr->start.share_scanned_pages) /
			    res->duration_s;
	}
	mv_host_stats(r->host, &res->host);
}

/* Stops each workload and has it read back everything it wrote. */
static void verify(struct run *r)
{
	struct run_result *res = &r->res;
	struct timespec t;

	/* A second Ctrl-C now ends the process instead of waiting. */
	pthread_sigmask(SIG_SETMASK, &r->old_mask, NULL);
	if (!r->opt.quiet)
		fprintf(r->out,
			"\nstopping the guests and reading back every page they wrote:\n");
	fflush(r->out);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_result *v = &res->vms[i];

		clock_gettime(CLOCK_MONOTONIC, &t);
		v->verify_err = mvg_stop_and_verify(r->vms[i].w, &v->guest);
		r->vms[i].w = NULL;
		res->integrity_errors += v->guest.integrity_errors;
		if (v->verify_err)
			res->verify_failures++;
		if (!r->opt.quiet)
			fprintf(r->out,
				"  %-16s read back in %5.1f s: %llu integrity errors (%llu page checks in the whole run)\n",
				v->vm->name, since(&t),
				(unsigned long long)v->guest.integrity_errors,
				(unsigned long long)v->guest.pages_verified);
		fflush(r->out);
	}
}

/* The table and the JSON report; returns the exit status. */
static int report(struct run *r)
{
	struct run_result *res = &r->res;
	char err[PATH_MAX + 64];

	report_print(r->out, res);
	fflush(r->out);
	if (r->json &&
	    report_write_json(r->json, r->opt.json, res, err, sizeof(err))) {
		fprintf(stderr, "memvisor: %s\n", err);
		return res->integrity_errors ? EXIT_INTEGRITY : EXIT_BAD_INPUT;
	}
	return res->integrity_errors || res->verify_failures ? EXIT_INTEGRITY :
							       0;
}

static int load_scenario(struct run *r)
{
	char err[PATH_MAX + 512];
	int ret;

	if (r->opt.scenario)
		ret = scenario_load_file(r->opt.scenario, &r->sc, err,
					 sizeof(err));
	else
		ret = scenario_load_default(&r->sc, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "memvisor: %s\n", err);
		return ret;
	}
	if (r->opt.duration_s)
		r->sc.host.duration_s = r->opt.duration_s;
	return 0;
}

static int open_json(struct run *r)
{
	if (!r->opt.json)
		return 0;
	r->json = strcmp(r->opt.json, "-") ? fopen(r->opt.json, "w") : stdout;
	if (!r->json) {
		fprintf(stderr, "memvisor: cannot write %s: %s\n", r->opt.json,
			strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * A guest thread touching a page the engine lost (mv_host_stats'
 * lost_pages) can never proceed, nor be joined: the run could only hang.
 * This thread notices and ends the process with a clear message instead.
 */
static void *lost_page_watch(void *arg)
{
	struct run *r = arg;
	struct timespec ts = { 0, 500000000L };
	struct mv_host_stats hs;

	while (!atomic_load(&r->watch_stop)) {
		mv_host_stats(r->host, &hs);
		if (hs.lost_pages) {
			fprintf(stderr,
				"memvisor: engine bug: %llu guest page(s) lost: %s\nmemvisor: a guest thread is stuck on it; aborting the run\n",
				(unsigned long long)hs.lost_pages,
				mv_host_errmsg(r->host)); /* a thread's copy */
			_exit(EXIT_ENGINE_BUG);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int run_main(int argc, char **argv)
{
	struct run r = { .json = NULL };
	char msg[512];
	int status = EXIT_BAD_INPUT, ret;
	bool done = false, watching;
	pthread_t watcher;

	ret = parse_args(&r.opt, argc, argv);
	if (ret)
		return ret < 0 ? 0 : ret;
	r.out = r.opt.json && !strcmp(r.opt.json, "-") ? stderr : stdout;
	if (mv_check_system(msg, sizeof(msg))) {
		fprintf(stderr, "memvisor: %s\n", msg);
		return EXIT_BAD_INPUT;
	}
	if (load_scenario(&r))
		return EXIT_BAD_INPUT;
	r.vms = calloc(r.sc.nvms, sizeof(*r.vms));
	r.res.vms = calloc(r.sc.nvms, sizeof(*r.res.vms));
	if (!r.vms || !r.res.vms) {
		fprintf(stderr, "memvisor: out of memory\n");
		goto out_scenario;
	}
	if (open_json(&r))
		goto out_vms_array;
	sigemptyset(&r.stop_signals);
	sigaddset(&r.stop_signals, SIGINT);
	sigaddset(&r.stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &r.stop_signals, &r.old_mask);
	if (start_host(&r))
		goto out_signals;
	if (start_vms(&r))
		goto out_vms;
	if (start_workloads(&r))
		goto out_workloads;
	print_summary(&r);
	watching = !pthread_create(&watcher, NULL, lost_page_watch, &r);
	collect(&r, watch(&r));
	verify(&r);
	done = true;
	if (watching) {
		atomic_store(&r.watch_stop, true);
		pthread_join(watcher, NULL);
	}
out_workloads:
	for (size_t i = 0; i < r.sc.nvms; i++)
		if (r.vms[i].w)
			mvg_stop(r.vms[i].w);
out_vms:
	if (done && !r.opt.quiet)
		fprintf(r.out, "shutting down the VMs...\n");
	fflush(r.out);
	for (size_t i = r.sc.nvms; i-- > 0;)
		if (r.vms[i].vm)
			mv_vm_destroy(r.vms[i].vm);
	mv_host_destroy(r.host);
out_signals:
	pthread_sigmask(SIG_SETMASK, &r.old_mask, NULL);
	/* After the teardown, so the verdict is the last thing printed. */
	if (done)
		status = report(&r);
	if (r.json && r.json != stdout)
		fclose(r.json);
out_vms_array:
	free(r.res.vms);
	free(r.vms);
out_scenario:
	scenario_free(&r.sc);
	return status;
}
