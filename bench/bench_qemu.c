// SPDX-License-Identifier: MIT
/*
 * bench_qemu.c - `memvisor bench qemu`: boot time and the guest's own
 * memory workload of the project's test guest (build/guest: Debian's cloud
 * kernel, /init = guest/linux/mvguest.c) under QEMU, three ways side by
 * side in one run, round after round:
 *   ceiling   the same QEMU with no memory limit (in a cgroup without a
 *             limit, only to measure its peak);
 *   memvisor  QEMU with libmemvisor-preload.so whose agent connects to a
 *             daemon (mv_daemon_create) in this process; the daemon's host
 *             holds the budget, below the guest's RAM: the product's path;
 *   cgroup    the same QEMU in a memory cgroup limited to the same budget
 *             plus QEMU's own overhead (measured by the ceiling: its peak
 *             less its guest RAM), with kernel swap on a file, zswap in
 *             front of it where the kernel has it (bench_linux_sys.c's
 *             setup, recorded in a state file and undone on every exit,
 *             an interrupted or killed run's by the next run).
 *
 * Figures per guest: boot time (QEMU started to the first "MVGUEST" line
 * on its serial console), the guest program's own seconds and its page
 * checks per second (its verdict line), the verdict, guest RAM resident
 * (the Rss of QEMU's -m mapping, sampled), QEMU's peak RSS, the cgroup's
 * peak, bytes swapped, OOM kills; medians over --rounds and ratios of
 * memvisor to the ceiling and to the cgroup.
 *
 * Design: the configurations of a round run one after another (never at
 * once: they would share two CPUs) and the ceiling first, so that the
 * cgroup's allowance for QEMU's own memory comes from the same round.
 * QEMU starts through a two-line shell wrapper that joins the cgroup
 * before it execs QEMU, so every page QEMU touches is charged there.
 * Under TCG the CPU cost of emulating the guest dominates every figure:
 * the output says so.
 *
 * Invariants: every wait is bounded (--timeout per guest, QEMU stopped with
 * qemu_stop's bounded escalation); whatever the run changed outside this
 * process (swap, zswap, sysctls, cgroups) is undone before it returns, and
 * on SIGINT/SIGTERM the current guest is stopped and the same is undone.
 *
 * Lock ordering: none; one thread (the daemon has its own).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_linux.h"
#include "bench_qemu.h"
#include "memvisor.h"
#include "qemu.h"

#define MIB ((uint64_t)1 << 20)
#define BQ_POLL_MS 20
#define BQ_SAMPLE_MS 200
#define BQ_START_MS 30000 /* QEMU up and its QMP answering */
#define BQ_STOP_MS 10000
#define BQ_SWAPPINESS 60
/* cgroup allowance for QEMU's own memory when no ceiling measured it */
#define BQ_DEFAULT_OVERHEAD_MIB 64

static volatile sig_atomic_t bq_stop;

static const char *const config_names[BQ_NCONFIGS] = { "ceiling", "memvisor",
						       "cgroup" };

const char *bq_config_name(enum bq_config c)
{
	return c < BQ_NCONFIGS ? config_names[c] : "?";
}

uint64_t bq_budget_bytes(const struct bq_opts *o)
{
	if (o->budget_mib)
		return o->budget_mib * MIB;
	return o->memsize_mib * o->budget_pct / 100 * MIB;
}

static int bq_number(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || n < lo || n > hi)
		return -EINVAL;
	*v = n;
	return 0;
}

int bq_parse_opts(int argc, char **argv, struct bq_opts *o, char *msg,
		  size_t len)
{
	static const struct option lo[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "memsize", required_argument, NULL, 'm' },
		{ "budget", required_argument, NULL, 'b' },
		{ "budget-pct", required_argument, NULL, 'p' },
		{ "fill-pct", required_argument, NULL, 'f' },
		{ "guest-rounds", required_argument, NULL, 'g' },
		{ "overhead", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "swapdir", required_argument, NULL, 's' },
		{ "preload", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-ceiling", no_argument, NULL, 'C' },
		{ "no-memvisor", no_argument, NULL, 'M' },
		{ "no-cgroup", no_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v = 0;
	int c;

	memset(o, 0, sizeof(*o));
	o->rounds = 1;
	o->memsize_mib = 256;
	o->budget_pct = 60;
	o->fill_pct = 75;
	o->guest_rounds = 3;
	o->timeout_s = 300;
	o->swapdir = "/var/tmp";
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		const char *name = optind > 1 ? argv[optind - 1] : "?";
		int bad = 0;

		switch (c) {
		case 'r':
			bad = bq_number(optarg, 1, BQ_MAX_ROUNDS, &v);
			o->rounds = (unsigned)v;
			break;
		case 'm':
			bad = bq_number(optarg, 64, 16384, &v);
			o->memsize_mib = v;
			break;
		case 'b':
			bad = bq_number(optarg, 16, 16384, &v);
			o->budget_mib = v;
			break;
		case 'p':
			bad = bq_number(optarg, 10, 100, &v);
			o->budget_pct = (unsigned)v;
			break;
		case 'f':
			bad = bq_number(optarg, 1, 95, &v);
			o->fill_pct = (unsigned)v;
			break;
		case 'g':
			bad = bq_number(optarg, 0, 100, &v);
			o->guest_rounds = (unsigned)v;
			break;
		case 'o':
			bad = bq_number(optarg, 1, 4096, &v);
			o->overhead_mib = v;
			break;
		case 't':
			bad = bq_number(optarg, 10, 3600, &v);
			o->timeout_s = (unsigned)v;
			break;
		case 's':
			o->swapdir = optarg;
			break;
		case 'P':
			o->preload = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'C':
			o->skip[BQ_CEILING] = true;
			break;
		case 'M':
			o->skip[BQ_MEMVISOR] = true;
			break;
		case 'G':
			o->skip[BQ_CGROUP] = true;
			break;
		case 'h':
			return 1;
		default:
			snprintf(msg, len,
				 "unknown option or missing value: %s", name);
			return -EINVAL;
		}
		if (bad) {
			snprintf(msg, len, "bad value for %s: %s", name,
				 optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(msg, len, "unexpected argument: %s", argv[optind]);
		return -EINVAL;
	}
	if (bq_budget_bytes(o) >= o->memsize_mib * MIB) {
		snprintf(msg, len,
			 "the budget (%" PRIu64
			 " MiB) must be below the guest's memory (%" PRIu64
			 " MiB)",
			 bq_budget_bytes(o) / MIB, o->memsize_mib);
		return -EINVAL;
	}
	if (o->skip[BQ_CEILING] && o->skip[BQ_MEMVISOR] && o->skip[BQ_CGROUP]) {
		snprintf(msg, len, "nothing left to run");
		return -EINVAL;
	}
	return 0;
}

/* ---- arithmetic and the report ---- */

static int bq_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double bq_median(double *v, unsigned n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), bq_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double bq_ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

#define BQ_FIELDS(X)   \
	X(boot_s)      \
	X(work_s)      \
	X(host_work_s) \
	X(checks_s)

#define BQ_COUNTS(X)         \
	X(pages)             \
	X(errors)            \
	X(checks)            \
	X(ram_peak_bytes)    \
	X(rss_peak_bytes)    \
	X(cgroup_peak_bytes) \
	X(frames_peak_bytes) \
	X(swapout_bytes)     \
	X(swapin_bytes)      \
	X(zip_pages)

void bq_summarize(const struct bq_run *runs, unsigned nrounds,
		  struct bq_summary *s)
{
	double v[BQ_MAX_ROUNDS];
	unsigned n = 0;

	memset(s, 0, sizeof(*s));
	s->all_ok = true;
	s->med.verdict_found = true;
	for (unsigned i = 0; i < nrounds && i < BQ_MAX_ROUNDS; i++) {
		if (!runs[i].ran)
			continue;
		n++;
		s->all_ok &= runs[i].ok;
		s->n_ok += runs[i].ok;
		s->finished += runs[i].verdict_found;
		s->med.verdict_found &= runs[i].verdict_found;
		s->oom_kills += runs[i].oom_kills;
		s->med.died |= runs[i].died;
	}
	s->n = n;
	s->med.verdict_found &= n > 0;
	s->med.ran = n > 0;
	s->med.ok = n > 0 && s->all_ok;
	s->med.oom_kills = s->oom_kills;
	/* times and throughput: of the guests that finished (a killed one
	 * has none); memory, swap and counts: of every guest that ran */
#define MED(f, cond)                                                \
	n = 0;                                                      \
	for (unsigned i = 0; i < nrounds && i < BQ_MAX_ROUNDS; i++) \
		if (runs[i].ran && (cond))                          \
			v[n++] = (double)runs[i].f;                 \
	s->med.f = (__typeof__(s->med.f))bq_median(v, n);
#define MED_DONE(f) MED(f, runs[i].verdict_found)
#define MED_ALL(f) MED(f, true)
	BQ_FIELDS(MED_DONE)
	BQ_COUNTS(MED_ALL)
#undef MED_ALL
#undef MED_DONE
#undef MED
}

static cJSON *bq_json_run(const struct bq_run *r)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddBoolToObject(o, "ran", r->ran);
	if (!r->ran) {
		cJSON_AddStringToObject(o, "why", r->why);
		return o;
	}
	cJSON_AddStringToObject(o, "verdict",
				!r->verdict_found ? "none" :
				r->ok		  ? "ok" :
						    "fail");
#define NUM(f) cJSON_AddNumberToObject(o, #f, (double)r->f);
	BQ_FIELDS(NUM)
	BQ_COUNTS(NUM)
#undef NUM
	cJSON_AddNumberToObject(o, "oom_kills", (double)r->oom_kills);
	cJSON_AddBoolToObject(o, "died", r->died);
	if (r->why[0])
		cJSON_AddStringToObject(o, "note", r->why);
	return o;
}

cJSON *bq_json(const struct bq_opts *o, uint64_t cgroup_limit,
	       const char *cgroup_kind, const struct bq_run runs[][BQ_NCONFIGS],
	       unsigned nrounds, const char *skip_why[BQ_NCONFIGS])
{
	cJSON *root = cJSON_CreateObject(), *cfgs, *ratios;
	struct bq_summary s[BQ_NCONFIGS];

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "bench", "qemu");
	cJSON_AddNumberToObject(root, "guest_mib", (double)o->memsize_mib);
	cJSON_AddNumberToObject(root, "budget_mib",
				(double)(bq_budget_bytes(o) / MIB));
	cJSON_AddNumberToObject(root, "cgroup_limit_mib",
				(double)(cgroup_limit / MIB));
	cJSON_AddStringToObject(root, "cgroup_swap", cgroup_kind);
	cJSON_AddNumberToObject(root, "fill_pct", o->fill_pct);
	cJSON_AddNumberToObject(root, "guest_rounds", o->guest_rounds);
	cJSON_AddNumberToObject(root, "rounds", nrounds);
	cJSON_AddStringToObject(
		root, "note",
		"under TCG the CPU cost of emulating the guest dominates boot and work times");
	cfgs = cJSON_AddObjectToObject(root, "configs");
	for (int c = 0; c < BQ_NCONFIGS; c++) {
		struct bq_run col[BQ_MAX_ROUNDS];
		cJSON *cj, *arr, *med;

		for (unsigned i = 0; i < nrounds && i < BQ_MAX_ROUNDS; i++)
			col[i] = runs[i][c];
		bq_summarize(col, nrounds, &s[c]);
		cj = cJSON_CreateObject();
		if (!cj || !cfgs)
			break;
		cJSON_AddItemToObject(cfgs, bq_config_name(c), cj);
		if (skip_why && skip_why[c]) {
			cJSON_AddFalseToObject(cj, "ran");
			cJSON_AddStringToObject(cj, "why", skip_why[c]);
			continue;
		}
		cJSON_AddNumberToObject(cj, "rounds_ran", s[c].n);
		cJSON_AddNumberToObject(cj, "rounds_finished", s[c].finished);
		cJSON_AddBoolToObject(cj, "all_ok", s[c].all_ok && s[c].n);
		med = bq_json_run(&s[c].med);
		if (med)
			cJSON_AddItemToObject(cj, "median", med);
		arr = cJSON_AddArrayToObject(cj, "runs");
		for (unsigned i = 0; arr && i < nrounds; i++)
			cJSON_AddItemToArray(arr, bq_json_run(&col[i]));
	}
	ratios = cJSON_AddObjectToObject(root, "ratios");
	for (int c = 0; ratios && c < BQ_NCONFIGS; c++) {
		char key[64];

		if (c == BQ_MEMVISOR || !s[c].finished ||
		    !s[BQ_MEMVISOR].finished)
			continue;
		/* memvisor / peer: times below 1 and throughput above 1 are
		 * memvisor ahead */
		snprintf(key, sizeof(key), "boot_vs_%s", bq_config_name(c));
		cJSON_AddNumberToObject(ratios, key,
					bq_ratio(s[BQ_MEMVISOR].med.boot_s,
						 s[c].med.boot_s));
		snprintf(key, sizeof(key), "work_vs_%s", bq_config_name(c));
		cJSON_AddNumberToObject(ratios, key,
					bq_ratio(s[BQ_MEMVISOR].med.work_s,
						 s[c].med.work_s));
		snprintf(key, sizeof(key), "checks_s_vs_%s", bq_config_name(c));
		cJSON_AddNumberToObject(ratios, key,
					bq_ratio(s[BQ_MEMVISOR].med.checks_s,
						 s[c].med.checks_s));
	}
	return root;
}

/* ---- sampling QEMU ---- */

uint64_t bq_smaps_ram_rss(const char *smaps, uint64_t size)
{
	const char *p = smaps;
	bool in = false;

	while (p && *p) {
		unsigned long long a, b, kb;
		const char *nl = strchr(p, '\n');

		/* a mapping's header: "start-end perms ..." in lower hex */
		if (p[strspn(p, "0123456789abcdef")] == '-' &&
		    sscanf(p, "%llx-%llx ", &a, &b) == 2) {
			in = b - a == size;
		} else if (in && sscanf(p, "Rss: %llu kB", &kb) == 1) {
			return (uint64_t)kb * 1024;
		}
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* The whole of a small file (/proc, the console) into a malloc'd string. */
static char *bq_slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap + 65536);

			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);

		if (!got)
			break;
		n += got;
	}
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static uint64_t bq_status_kb(pid_t pid, const char *key)
{
	char path[64], *text, *p;
	uint64_t v = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	text = bq_slurp(path);
	p = text ? strstr(text, key) : NULL;
	if (p)
		v = strtoull(p + strlen(key), NULL, 10);
	free(text);
	return v;
}

static double bq_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bq_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- one guest ---- */

struct bq_ctx {
	struct bq_opts o;
	char dir[PATH_MAX];
	char preload[PATH_MAX];
	char append[256];
	uint64_t budget, overhead, cgroup_limit;
	bool have_cgroup; /* a memory controller and root */
	enum bl_config swap_kind; /* BL_ZSWAP where the kernel has it */
	const char *skip_why[BQ_NCONFIGS];
	char skip_buf[BQ_NCONFIGS][BQ_MSG];
	FILE *out;
};

static const char *bq_cgroup_kind(const struct bq_ctx *x)
{
	return x->swap_kind == BL_ZSWAP ? "swap file + zswap" : "swap file";
}

/* A script that puts itself into the cgroup and becomes QEMU. */
static int bq_wrapper(const struct bq_ctx *x, const struct bl_cgroup *cg,
		      char *path, size_t len)
{
	const char *bin = getenv("MEMVISOR_QEMU");
	FILE *f;

	if (!bin || !*bin)
		bin = "qemu-system-x86_64";
	if (strchr(bin, '\'') || strchr(cg->path, '\''))
		return -EINVAL;
	snprintf(path, len, "%.3000s/qemu-in-cgroup.sh", x->dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"#!/bin/sh\necho $$ > '%s/cgroup.procs' || exit 97\nexec '%s' \"$@\"\n",
		cg->path, bin);
	if (fclose(f))
		return -EIO;
	return chmod(path, 0700) ? -errno : 0;
}

static void bq_host_log(void *arg, enum mv_log_level level, const char *line)
{
	FILE *f = arg;

	(void)level;
	if (f)
		fprintf(f, "%s\n", line);
}

static void bq_scan_console(const char *path, double t0, struct bq_run *r,
			    double *first, double *verdict)
{
	char *text = bq_slurp(path);

	if (text) {
		double now = bq_now();

		if (*first < 0 && strstr(text, "MVGUEST "))
			*first = now;
		if (*verdict < 0 && strstr(text, "MVGUEST verdict="))
			*verdict = now;
	}
	free(text);
	(void)t0;
	(void)r;
}

static void bq_sample(struct qemu_vm *vm, uint64_t ram, mv_daemon *d,
		      struct bq_run *r)
{
	char path[64], *smaps;
	struct mv_vm_stats st;
	pid_t pid = qemu_pid(vm);
	uint64_t v;

	snprintf(path, sizeof(path), "/proc/%ld/smaps", (long)pid);
	smaps = bq_slurp(path);
	v = smaps ? bq_smaps_ram_rss(smaps, ram) : 0;
	free(smaps);
	if (v > r->ram_peak_bytes)
		r->ram_peak_bytes = v;
	v = bq_status_kb(pid, "VmHWM:") * 1024;
	if (v > r->rss_peak_bytes)
		r->rss_peak_bytes = v;
	if (d && !mv_daemon_vm_stats(d, "bench", &st)) {
		if (st.consumed_pages * 4096 > r->frames_peak_bytes)
			r->frames_peak_bytes = st.consumed_pages * 4096;
		r->swapout_bytes = st.swapout_pages * 4096;
		r->swapin_bytes = st.swapin_pages * 4096;
		r->zip_pages = st.zip_pages;
	}
}

static int bq_run_one(struct bq_ctx *x, enum bq_config c, struct bq_run *r)
{
	char console[PATH_MAX], qmp[PATH_MAX], sock[PATH_MAX],
		agent_log[PATH_MAX], wrapper[PATH_MAX], err[BQ_MSG] = "";
	struct qemu_config cfg = { 0 };
	struct bl_cgroup cg = { 0 };
	struct bl_swap sw = { 0 };
	struct qemu_vm *vm = NULL;
	mv_host *host = NULL;
	mv_daemon *d = NULL;
	FILE *hlog = NULL;
	uint64_t in0 = 0, out0 = 0, in1 = 0, out1 = 0;
	uint64_t ram = x->o.memsize_mib * MIB;
	double t0, first = -1, verdict_t = -1, last_sample = 0;
	struct qemu_verdict v;
	int ret = 0, status = 0;

	memset(r, 0, sizeof(*r));
	snprintf(console, sizeof(console), "%.3000s/%s.console", x->dir,
		 bq_config_name(c));
	snprintf(qmp, sizeof(qmp), "%.3000s/%s.qmp", x->dir, bq_config_name(c));
	snprintf(sock, sizeof(sock), "%.3000s/memvisor.sock", x->dir);
	snprintf(agent_log, sizeof(agent_log), "%.3000s/agent.log", x->dir);
	unlink(console);
	cfg.name = "bench";
	cfg.memsize = ram;
	cfg.append = x->append;
	cfg.console_path = console;
	cfg.qmp_path = qmp;

	if (c == BQ_CGROUP) {
		ret = bl_swap_setup(&sw, x->swap_kind, x->dir, ram, err,
				    sizeof(err));
	}
	if (!ret && x->have_cgroup) {
		ret = bl_cgroup_create(&cg,
				       c == BQ_CGROUP ? x->cgroup_limit : 0,
				       BQ_SWAPPINESS, err, sizeof(err));
		if (!ret &&
		    (ret = bq_wrapper(x, &cg, wrapper, sizeof(wrapper))))
			snprintf(err, sizeof(err),
				 "cannot write the cgroup wrapper: %s",
				 strerror(-ret));
		if (!ret)
			cfg.binary = wrapper;
	}
	if (!ret && c == BQ_MEMVISOR) {
		struct mv_host_config hc;
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%.3000s/daemon.log", x->dir);
		hlog = fopen(path, "we");
		mv_host_config_init(&hc);
		hc.memsize_bytes = x->budget;
		hc.swapdir = x->dir;
		hc.log = bq_host_log;
		hc.log_arg = hlog;
		ret = mv_host_create(&hc, &host);
		if (ret)
			mv_host_errmsg_copy(NULL, err, sizeof(err));
		if (!ret && (ret = mv_daemon_create(host, sock, &d)))
			snprintf(err, sizeof(err), "mv_daemon_create: %s",
				 mv_host_errmsg(host));
		cfg.preload = x->preload;
		cfg.agent_socket = sock;
		cfg.swapdir = x->dir;
		cfg.agent_log = agent_log;
	}
	bl_vmstat_swap(&in0, &out0);
	t0 = bq_now();
	if (!ret)
		ret = qemu_start(&cfg, BQ_START_MS, &vm, err, sizeof(err));
	while (!ret && !bq_stop && qemu_running(vm)) {
		double now = bq_now();

		if (now - t0 > x->o.timeout_s) {
			snprintf(err, sizeof(err),
				 "the guest did not power off within %u s",
				 x->o.timeout_s);
			break;
		}
		bq_scan_console(console, t0, r, &first, &verdict_t);
		if (now - last_sample >= BQ_SAMPLE_MS / 1000.0) {
			bq_sample(vm, ram, d, r);
			last_sample = now;
		}
		bq_sleep_ms(BQ_POLL_MS);
	}
	if (vm) {
		bq_scan_console(console, t0, r, &first, &verdict_t);
		if (qemu_running(vm))
			qemu_stop(vm, BQ_STOP_MS);
		qemu_wait(vm, BQ_STOP_MS, &status);
		qemu_destroy(vm);
		r->died = WIFSIGNALED(status);
	}
	bl_vmstat_swap(&in1, &out1);
	if (cg.path[0]) {
		r->cgroup_peak_bytes = bl_cgroup_peak(&cg);
		r->oom_kills = bl_cgroup_oom_kills(&cg);
		bl_cgroup_destroy(&cg);
	}
	if (c != BQ_MEMVISOR) {
		/* system wide: nothing else of this run swaps meanwhile */
		r->swapin_bytes = (in1 - in0) * 4096;
		r->swapout_bytes = (out1 - out0) * 4096;
	}
	if (d)
		mv_daemon_destroy(d);
	if (host)
		mv_host_destroy(host);
	if (hlog)
		fclose(hlog);
	bl_state_undo(stderr);
	(void)sw;
	if (vm && !qemu_read_verdict(console, &v) && v.found) {
		r->verdict_found = true;
		r->ok = v.ok && !v.errors;
		r->pages = v.pages;
		r->errors = v.errors;
		r->checks = v.checks;
		r->work_s = v.secs;
		r->checks_s = v.secs > 0 ? (double)v.checks / v.secs : 0;
	}
	if (first >= 0)
		r->boot_s = first - t0;
	if (first >= 0 && verdict_t >= 0)
		r->host_work_s = verdict_t - first;
	if (ret) {
		snprintf(r->why, sizeof(r->why), "%s", err);
		return ret;
	}
	r->ran = true;
	if (bq_stop)
		snprintf(r->why, sizeof(r->why), "interrupted");
	else if (err[0])
		snprintf(r->why, sizeof(r->why), "%s", err);
	else if (!r->verdict_found)
		snprintf(r->why, sizeof(r->why),
			 "no verdict line: the guest did not finish (%s)",
			 r->died ? "QEMU killed" : "see its console");
	return 0;
}

/* ---- the command ---- */

static void bq_usage(FILE *f)
{
	fprintf(f,
		"usage: memvisor bench qemu [--rounds N] [--memsize MIB] [--budget MIB | --budget-pct P]\n"
		"         [--fill-pct P] [--guest-rounds N] [--overhead MIB] [--timeout S] [--swapdir DIR]\n"
		"         [--preload PATH] [--no-ceiling] [--no-memvisor] [--no-cgroup] [--json]\n"
		"  The test guest (build/guest) under QEMU three ways, one after another each round:\n"
		"  ceiling (no limit), memvisor (libmemvisor-preload.so, its agent under a daemon in\n"
		"  this process whose host holds the budget), cgroup (a memory cgroup limited to the\n"
		"  budget plus QEMU's own overhead, kernel swap on a file with zswap where available).\n"
		"  Root for the cgroup peer; run it under the bench lock.\n"
		"  --rounds N       rounds; figures are medians (default 1, at most %d)\n"
		"  --memsize MIB    the guest's RAM (default 256)\n"
		"  --budget MIB     machine memory for the guest (default --budget-pct 60 of it)\n"
		"  --fill-pct P     mvguest.fill_pct: guest memory the program fills (default 75)\n"
		"  --guest-rounds N mvguest.rounds: free and refill rounds (default 3)\n"
		"  --overhead MIB   the cgroup's allowance for QEMU itself (default: the ceiling's\n"
		"                   peak less its guest RAM, same round; %d without a ceiling)\n"
		"  --timeout S      one guest, start to power-off (default 300)\n"
		"  --swapdir DIR    parent of the work directory (default /var/tmp)\n"
		"  --preload PATH   libmemvisor-preload.so (default: beside this binary, or\n"
		"                   $MEMVISOR_PRELOAD); QEMU: $MEMVISOR_QEMU, accel $MEMVISOR_QEMU_ACCEL\n",
		BQ_MAX_ROUNDS, BQ_DEFAULT_OVERHEAD_MIB);
}

/* Does a live process other than this one own the state file? */
static bool bq_owner_alive(void)
{
	char line[128];
	long pid = 0;
	FILE *f = fopen(bl_state_path, "re");

	if (!f)
		return false;
	if (fgets(line, sizeof(line), f) && !strncmp(line, "owner\t", 6))
		pid = strtol(line + 6, NULL, 10);
	fclose(f);
	return pid > 0 && pid != getpid() && !kill((pid_t)pid, 0);
}

static void bq_on_signal(int sig)
{
	(void)sig;
	bq_stop = 1;
}

static void bq_find_preload(struct bq_ctx *x)
{
	char exe[PATH_MAX];
	const char *env = getenv("MEMVISOR_PRELOAD");
	ssize_t n;

	if (x->o.preload) {
		snprintf(x->preload, sizeof(x->preload), "%s", x->o.preload);
		return;
	}
	if (env && *env) {
		snprintf(x->preload, sizeof(x->preload), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	if (strrchr(exe, '/'))
		*strrchr(exe, '/') = '\0';
	snprintf(x->preload, sizeof(x->preload),
		 "%.3000s/libmemvisor-preload.so", exe);
}

static void bq_skip(struct bq_ctx *x, enum bq_config c, const char *fmt,
		    const char *a)
{
	snprintf(x->skip_buf[c], BQ_MSG, fmt, a);
	x->skip_why[c] = x->skip_buf[c];
}

static void bq_probe(struct bq_ctx *x)
{
	char msg[BL_MSG], k[PATH_MAX], i[PATH_MAX];

	for (int c = 0; c < BQ_NCONFIGS; c++)
		if (x->o.skip[c])
			bq_skip(x, c, "%s", "not asked for");
	if (qemu_guest_paths(k, sizeof(k), i, sizeof(i)) || access(k, R_OK) ||
	    access(i, R_OK)) {
		for (int c = 0; c < BQ_NCONFIGS; c++)
			bq_skip(x, c, "no test guest at %.400s (make guest)",
				k);
		return;
	}
	if (!x->skip_why[BQ_MEMVISOR] && access(x->preload, R_OK))
		bq_skip(x, BQ_MEMVISOR, "no preload library at %.400s",
			x->preload);
	x->have_cgroup = !bl_cgroup_probe(msg, sizeof(msg)) && !geteuid();
	x->swap_kind = BL_ZSWAP;
	if (bl_swap_probe(BL_ZSWAP, msg, sizeof(msg)))
		x->swap_kind = BL_SWAP;
	if (!x->skip_why[BQ_CGROUP] &&
	    (!x->have_cgroup || bl_swap_probe(x->swap_kind, msg, sizeof(msg))))
		bq_skip(x, BQ_CGROUP, "%s",
			geteuid() ? "needs root (cgroup, swapon)" : msg);
}

static void bq_print(struct bq_ctx *x, struct bq_run runs[][BQ_NCONFIGS],
		     unsigned nrounds)
{
	struct bq_summary s[BQ_NCONFIGS];
	FILE *f = stdout;

	fprintf(f, "%-10s %7s %7s %7s %10s %-8s %8s %8s %8s %8s %8s %4s\n",
		"config", "boot s", "work s", "host s", "checks/s", "verdict",
		"RAM MiB", "RSS MiB", "cg MiB", "swout MiB", "swin MiB", "OOM");
	for (int c = 0; c < BQ_NCONFIGS; c++) {
		struct bq_run col[BQ_MAX_ROUNDS];
		const struct bq_run *m = &s[c].med;

		for (unsigned i = 0; i < nrounds; i++)
			col[i] = runs[i][c];
		bq_summarize(col, nrounds, &s[c]);
		char verdict[32];

		if (x->skip_why[c] || !s[c].n) {
			fprintf(f, "%-10s not run: %s\n", bq_config_name(c),
				x->skip_why[c] ? x->skip_why[c] : col[0].why);
			continue;
		}
		if (s[c].all_ok)
			snprintf(verdict, sizeof(verdict), "ok");
		else
			snprintf(verdict, sizeof(verdict), "%u/%u ok",
				 s[c].n_ok, s[c].n);
		fprintf(f,
			"%-10s %7.2f %7.1f %7.1f %10.0f %-8s %8.0f %8.0f %8.0f %8.0f %8.0f %4" PRIu64
			"\n",
			bq_config_name(c), m->boot_s, m->work_s, m->host_work_s,
			m->checks_s, verdict, (double)m->ram_peak_bytes / MIB,
			(double)m->rss_peak_bytes / MIB,
			(double)m->cgroup_peak_bytes / MIB,
			(double)m->swapout_bytes / MIB,
			(double)m->swapin_bytes / MIB, s[c].oom_kills);
		for (unsigned i = 0; i < nrounds; i++)
			if (col[i].why[0])
				fprintf(f, "  %s round %u: %s\n",
					bq_config_name(c), i + 1, col[i].why);
	}
	if (s[BQ_MEMVISOR].n) {
		fprintf(f,
			"  memvisor: %.0f MiB peak frames by its own count, %" PRIu64
			" pages compressed\n",
			(double)s[BQ_MEMVISOR].med.frames_peak_bytes / MIB,
			s[BQ_MEMVISOR].med.zip_pages);
		for (int c = 0; c < BQ_NCONFIGS; c++)
			if (c != BQ_MEMVISOR && s[c].finished &&
			    s[BQ_MEMVISOR].finished && !x->skip_why[c])
				fprintf(f,
					"  memvisor vs %s: boot %.2fx, work time %.2fx, checks/s %.2fx\n",
					bq_config_name(c),
					bq_ratio(s[BQ_MEMVISOR].med.boot_s,
						 s[c].med.boot_s),
					bq_ratio(s[BQ_MEMVISOR].med.work_s,
						 s[c].med.work_s),
					bq_ratio(s[BQ_MEMVISOR].med.checks_s,
						 s[c].med.checks_s));
	}
}

int bench_qemu_main(int argc, char **argv)
{
	static struct bq_run runs[BQ_MAX_ROUNDS][BQ_NCONFIGS];
	struct sigaction sa = { .sa_handler = bq_on_signal };
	struct bq_ctx x;
	char msg[BQ_MSG];
	struct utsname u;
	double load = 0;
	int ret, failed = 0;
	unsigned nrounds = 0;

	memset(&x, 0, sizeof(x));
	memset(runs, 0, sizeof(runs));
	ret = bq_parse_opts(argc, argv, &x.o, msg, sizeof(msg));
	if (ret == 1) {
		bq_usage(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "memvisor bench qemu: %s\n", msg);
		bq_usage(stderr);
		return 2;
	}
	x.out = x.o.json ? stderr : stdout;
	snprintf(bl_state_path, sizeof(bl_state_path), "%s",
		 access("/run", W_OK) ? "/var/tmp/memvisor-bench-qemu.state" :
					"/run/memvisor-bench-qemu.state");
	/* a killed run's swap, zswap, sysctls and cgroups; not a live one's */
	if (bq_owner_alive()) {
		fprintf(stderr,
			"memvisor bench qemu: another one is running (%s)\n",
			bl_state_path);
		return 1;
	}
	ret = bl_state_undo(stderr);
	if (ret > 0)
		fprintf(x.out, "undid %d change%s a killed bench qemu left\n",
			ret, ret == 1 ? "" : "s");
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	snprintf(x.dir, sizeof(x.dir), "%.3000s/memvisor-bench-qemu",
		 x.o.swapdir);
	mkdir(x.o.swapdir, 0700);
	if (mkdir(x.dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "memvisor bench qemu: cannot make %s: %s\n",
			x.dir, strerror(errno));
		return 1;
	}
	x.budget = bq_budget_bytes(&x.o);
	snprintf(
		x.append, sizeof(x.append),
		"console=ttyS0 quiet panic=-1 mvguest.fill_pct=%u mvguest.rounds=%u",
		x.o.fill_pct, x.o.guest_rounds);
	bq_find_preload(&x);
	bq_probe(&x);
	uname(&u);
	getloadavg(&load, 1);
	fprintf(x.out,
		"memvisor bench qemu: Linux %s, %ld CPUs, load %.2f; a %" PRIu64
		" MiB guest (fill %u%%, %u guest rounds), budget %" PRIu64
		" MiB, %u round%s\n",
		u.release, sysconf(_SC_NPROCESSORS_ONLN), load, x.o.memsize_mib,
		x.o.fill_pct, x.o.guest_rounds, x.budget / MIB, x.o.rounds,
		x.o.rounds == 1 ? "" : "s");
	fprintf(x.out,
		"  accel %s: under TCG the CPU cost of emulating the guest dominates boot and work times,\n"
		"  so differences in memory management show only where the guest waits for its memory\n"
		"  cgroup peer: %s, %s\n",
		getenv("MEMVISOR_QEMU_ACCEL") ? getenv("MEMVISOR_QEMU_ACCEL") :
						"tcg",
		bq_cgroup_kind(&x), bl_zswap_note());
	for (unsigned i = 0; i < x.o.rounds && !bq_stop; i++) {
		for (int c = 0; c < BQ_NCONFIGS && !bq_stop; c++) {
			struct bq_run *r = &runs[i][c];

			if (x.skip_why[c])
				continue;
			if (c == BQ_CGROUP) {
				x.overhead = x.o.overhead_mib * MIB;
				if (!x.overhead && runs[i][BQ_CEILING].ran &&
				    runs[i][BQ_CEILING].cgroup_peak_bytes >
					    runs[i][BQ_CEILING].ram_peak_bytes)
					x.overhead =
						runs[i][BQ_CEILING]
							.cgroup_peak_bytes -
						runs[i][BQ_CEILING]
							.ram_peak_bytes;
				if (!x.overhead)
					x.overhead =
						BQ_DEFAULT_OVERHEAD_MIB * MIB;
				x.cgroup_limit = x.budget + x.overhead;
			}
			fprintf(x.out, "  round %u: %s ...\n", i + 1,
				bq_config_name(c));
			fflush(x.out);
			/* a cgroup guest the kernel OOM-killed is a result
			 * of the peer, reported; anything else that did not
			 * verify is a failure */
			if (bq_run_one(&x, c, r))
				failed = 1;
			else if (!r->ok && (r->verdict_found ||
					    c != BQ_CGROUP || !r->oom_kills))
				failed = 1;
		}
		nrounds = i + 1;
	}
	bl_state_undo(stderr);
	if (x.o.json) {
		cJSON *root = bq_json(&x.o, x.cgroup_limit, bq_cgroup_kind(&x),
				      (const struct bq_run(*)[BQ_NCONFIGS])runs,
				      nrounds, x.skip_why);
		char *text;

		if (root && bq_stop)
			cJSON_AddTrueToObject(root, "interrupted");
		text = root ? cJSON_Print(root) : NULL;
		if (text)
			printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(root);
	} else {
		if (x.cgroup_limit)
			printf("cgroup limit %" PRIu64 " MiB = budget %" PRIu64
			       " + QEMU's own %" PRIu64 " MiB\n",
			       x.cgroup_limit / MIB, x.budget / MIB,
			       (x.cgroup_limit - x.budget) / MIB);
		bq_print(&x, runs, nrounds);
	}
	if (bq_stop) {
		fprintf(stderr,
			"memvisor bench qemu: interrupted; everything it set is undone\n");
		return 4;
	}
	return failed;
}
