// SPDX-License-Identifier: MIT
/*
 * bench_linux.c - `memvisor bench linux`: memvisor against Linux's own
 * overcommit on the same guest workloads and the same budget.
 *
 * Design: a case is a scenario (the embedded default, or one made here:
 * N kvstore VMs at 150%, the text-valued kvstore pair).  Each case runs
 * once with no memory limit at all (the ceiling, which also measures the
 * harness's own memory: the workloads' state outside guest memory, stacks
 * and page tables, which memvisor keeps outside its budget), then
 * --rounds rounds, each running every configuration once: memvisor
 * (`memvisor run` on the scenario), and the VMs as processes in a memory
 * cgroup limited to the budget plus that overhead with kernel swap on a
 * file, with zswap in front of it, and with zram as the only swap.  The
 * order of the configurations rotates from round to round, so that none
 * always runs first or last on a machine whose load drifts.  Figures are
 * medians over the rounds; ratios are of medians.  The peers' setup and
 * cleanup are bench_linux_sys.c's, the runs bench_linux_vm.c's.
 *
 * memvisor side: kvstore cases run ESX's defaults with what the Linux
 * side has no counterpart for switched off (bench_host_config()'s
 * conventions): the share scanner (the peer runs no KSM) and large pages
 * (the peer's THP is left as the machine has it, here madvise: not
 * used); active-memory sampling stays on, as Linux's LRU aging does.  The
 * default scenario runs with its own settings, as users run it.
 *
 * memvisor runs each VM of a kvstore case in a process of its own (vmm =
 * process: the VM, its guest threads and memvisor's agent, joined to the
 * run's daemon), as the Linux peer runs one process per VM and as real
 * VMMs do: VMs sharing one process share one address space, and each
 * page reclaim moves out of any of them flushes the TLBs of every CPU that
 * process runs on.  --vmm threads runs them as guest threads of one
 * process instead.  The default case runs its own scenario, as is.
 *
 * Both sides pin a kvstore case's VMs alike, as VM hosts pin vCPUs: VM i
 * gets cpus = the (i mod n)th of the n CPUs this process may run on in
 * the case's scenario, which `memvisor run` applies to the VM's process
 * (--vmm threads: its guest threads) and bl_run_linux to the VM's whole
 * process (the ceiling
 * included); --no-pin leaves every VM unpinned on both sides.
 *
 * Invariants: a configuration that cannot run here is skipped with the
 * reason (what the kernel lacks), never silently; whatever ends the
 * command, every change it made to the system is undone (the state file
 * of bench_linux_sys.c); a SIGINT or SIGTERM stops the current run, the
 * report covers what finished.
 *
 * Lock ordering: none; one thread (the VM processes are separate).
 */
#include <errno.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench_linux.h"
#include "genimage.h"
#include "scenario.h"

#define MIB ((uint64_t)1 << 20)
#define BL_DEFAULT_ROUNDS 2
#define BL_DEFAULT_DURATION_S 20
#define MAX_DURATION_S 3600
/* Beyond the measured overhead: what the kernel charges a cgroup that
 * the measurement does not see (slab, the processes' own text). */
#define OVERHEAD_SLACK (4 * MIB)
#define SWAPPINESS 60
#define ZRAM_SWAPPINESS 100

const char *bl_config_name(enum bl_config c)
{
	static const char *const names[BL_NCONFIGS] = { "memvisor", "swap",
							"zswap", "zram",
							"unconstrained" };

	return c < BL_NCONFIGS ? names[c] : "?";
}

static const char *config_label(enum bl_config c)
{
	static const char *const labels[BL_NCONFIGS] = {
		"memvisor", "cgroup + swap file", "cgroup + zswap",
		"cgroup + zram", "no limit (ceiling)"
	};

	return c < BL_NCONFIGS ? labels[c] : "?";
}

/* ---- arithmetic ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bl_median(const double *v, unsigned n)
{
	double s[BL_MAX_ROUNDS > BL_MAX_VMS ? BL_MAX_ROUNDS : BL_MAX_VMS];

	if (!n)
		return 0;
	if (n > sizeof(s) / sizeof(s[0]))
		n = sizeof(s) / sizeof(s[0]);
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

double bl_ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

void bl_run_totals(struct bl_run *r)
{
	r->total_ops_s = 0;
	r->worst_ops_s = r->nvms ? INFINITY : 0;
	r->integrity_errors = 0;
	for (unsigned i = 0; i < r->nvms; i++) {
		const struct bl_vm_result *v = &r->vms[i];
		double w = v->killed ? 0 : v->ops_s;

		r->total_ops_s += v->ops_s;
		if (w < r->worst_ops_s && !v->idle)
			r->worst_ops_s = w;
		r->integrity_errors += v->integrity_errors;
	}
	if (isinf(r->worst_ops_s))
		r->worst_ops_s = 0;
}

/* ---- cases ---- */

struct case_def {
	const char *name;
	unsigned nvms; /* 0: the embedded default scenario */
	uint64_t vm_bytes, host_bytes;
	bool text;
	bool hidden; /* for tests: not in the default set */
};

static const struct case_def cases[] = {
	{ "default", 0, 0, 0, false, false },
	{ "kvstore-2", 2, 384 * MIB, 512 * MIB, false, false },
	{ "kvstore-4", 4, 384 * MIB, 1024 * MIB, false, false },
	{ "kvstore-8", 8, 384 * MIB, 2048 * MIB, false, false },
	{ "kvstore-text", 2, 256 * MIB, 320 * MIB, true, false },
	/* a tiny kvstore pair at 150% for the end-to-end test */
	{ "tiny", 2, 24 * MIB, 32 * MIB, false, true },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static const struct case_def *case_find(const char *name)
{
	for (unsigned i = 0; i < NCASES; i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	return NULL;
}

/*
 * The scenario text of a made-up case, in a string to free(); NULL with
 * errno set.  pin: VM i gets cpus = the (i % n)th of the n CPUs this
 * process may run on (scenario_spread_cpu), which the Linux side then
 * gives the VM's process too (bl_run_linux).  process: each VM runs in a
 * process of its own (vmm = process), as the Linux peer's VMs do.
 */
static char *case_ini(const struct case_def *c, const char *swapdir, bool pin,
		      bool process)
{
	char *text = NULL, *vms = NULL, *t, cpus[32];

	for (unsigned i = 0; i < c->nvms; i++) {
		int cpu = pin ? scenario_spread_cpu(i) : -1;

		if (pin && cpu < 0) {
			free(vms);
			errno = -cpu;
			return NULL;
		}
		snprintf(cpus, sizeof(cpus), "cpus = %d\n", cpu);
		if (asprintf(
			    &t,
			    "%s[vm kv%u]\nmemsize = %" PRIu64
			    "M\nworkload = kvstore\n%sthreads = 1\nseed = %u\n%s%s\n",
			    vms ? vms : "", i + 1, c->vm_bytes / MIB,
			    c->text ? "kv_values = text\n" : "", i + 1,
			    pin ? cpus : "",
			    process ? "vmm = process\n" : "") < 0) {
			free(vms);
			errno = ENOMEM;
			return NULL;
		}
		free(vms);
		vms = t;
	}
	if (asprintf(&text,
		     "; memvisor bench linux, case %s\n[host]\nmemsize = %" PRIu64
		     "M\nswapdir = %s\n\n%s"
		     "[advanced]\n; the Linux peer runs no KSM and no THP\n"
		     "Mem.ShareScanGHz = 0\nMem.AllocGuestLargePage = 0\n",
		     c->name, c->host_bytes / MIB, swapdir, vms) < 0) {
		text = NULL;
		errno = ENOMEM;
	}
	free(vms);
	return text;
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: memvisor bench linux [--case NAME]... [--rounds N] [--duration S]\n"
		"                            [--swapdir DIR] [--json] [--no-pin]\n"
		"                            [--vmm process|threads] [--pause-damon]\n"
		"  The same guest workloads and budget under memvisor and in a memory cgroup\n"
		"  (budget + the harness's measured overhead) with kernel swap on a file,\n"
		"  zswap, and zram; each case also once with no limit (the ceiling).\n"
		"  Needs root; a peer this kernel cannot run is skipped with the reason.\n"
		"  --case NAME    default, kvstore-2, kvstore-4, kvstore-8, kvstore-text\n"
		"                 (repeat it; default: all of them; tiny: a test case)\n"
		"  --rounds N     rounds of every configuration, medians quoted (default %d)\n"
		"  --duration S   seconds per run (default %d)\n"
		"  --swapdir DIR  where the swap file and the work files go\n"
		"                 (default /var/tmp/memvisor, memvisor's own)\n"
		"  --json         {\"cases\": [...]} on stdout instead of the tables\n"
		"  --no-pin       do not pin the kvstore cases' VMs to CPUs (by default\n"
		"                 one CPU each, round-robin, on both sides, as VM hosts\n"
		"                 pin vCPUs; the default case keeps its own scenario)\n"
		"  --vmm process|threads\n"
		"                 memvisor runs the kvstore cases' VMs one process each\n"
		"                 (process, the default, as the Linux peer does) or as\n"
		"                 guest threads of one process (threads)\n"
		"  --pause-damon  switch the machine's DAMON monitors of physical addresses\n"
		"                 off for the runs and on again at the end (their\n"
		"                 reverse-map walks stall memvisor's page moves)\n"
		"  --no-memvisor  leave memvisor out; --no-linux: the Linux side and the ceiling\n",
		BL_DEFAULT_ROUNDS, BL_DEFAULT_DURATION_S);
}

static int num_arg(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int bl_parse_opts(int argc, char **argv, struct bl_opts *o, char *msg,
		  size_t len)
{
	static const struct option longopts[] = {
		{ "case", required_argument, NULL, 'c' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "swapdir", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-memvisor", no_argument, NULL, 'M' },
		{ "no-linux", no_argument, NULL, 'L' },
		{ "no-pin", no_argument, NULL, 'P' },
		{ "vmm", required_argument, NULL, 'V' },
		{ "pause-damon", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct bl_opts){ .rounds = BL_DEFAULT_ROUNDS,
			       .duration_s = BL_DEFAULT_DURATION_S,
			       .swapdir = "/var/tmp/memvisor" };
	optind = 0;
	opterr = 0;
	msg[0] = '\0';
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (!case_find(optarg)) {
				snprintf(
					msg, len,
					"unknown case %s (default, kvstore-2, kvstore-4, kvstore-8, kvstore-text, tiny)",
					optarg);
				return -EINVAL;
			}
			if (o->ncases ==
			    sizeof(o->cases) / sizeof(o->cases[0])) {
				snprintf(msg, len, "too many --case");
				return -EINVAL;
			}
			o->cases[o->ncases++] = optarg;
			break;
		case 'r':
			if (num_arg(optarg, 1, BL_MAX_ROUNDS, &o->rounds)) {
				snprintf(msg, len,
					 "--rounds wants a number from 1 to %d",
					 BL_MAX_ROUNDS);
				return -EINVAL;
			}
			break;
		case 'd':
			if (num_arg(optarg, 1, MAX_DURATION_S,
				    &o->duration_s)) {
				snprintf(
					msg, len,
					"--duration wants seconds from 1 to %d",
					MAX_DURATION_S);
				return -EINVAL;
			}
			break;
		case 's':
			o->swapdir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'M':
			o->no_memvisor = true;
			break;
		case 'L':
			o->no_linux = true;
			break;
		case 'D':
			o->pause_damon = true;
			break;
		case 'P':
			o->no_pin = true;
			break;
		case 'V':
			if (strcmp(optarg, "process") &&
			    strcmp(optarg, "threads")) {
				snprintf(
					msg, len,
					"--vmm wants process or threads, not %s",
					optarg);
				return -EINVAL;
			}
			o->vmm_threads = !strcmp(optarg, "threads");
			break;
		case 'h':
			return 1;
		default:
			snprintf(msg, len, "unknown option %s",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		snprintf(msg, len, "unexpected argument %s", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* ---- one case ---- */

struct case_result {
	const struct case_def *def;
	char desc[256];
	uint64_t budget, limit, overhead, guest_bytes;
	unsigned nvms;
	bool pinned; /* its VMs run on the cpus its scenario gives them */
	char vm_names[BL_MAX_VMS][32];
	/* runs[config][round]; the ceiling in round 0 only */
	struct bl_run runs[BL_NCONFIGS][BL_MAX_ROUNDS];
	unsigned nruns[BL_NCONFIGS];
	char skipped[BL_NCONFIGS][BL_MSG]; /* why a config did not run */
	/* medians over the rounds that ran */
	double total[BL_NCONFIGS], worst[BL_NCONFIGS];
	double vm[BL_NCONFIGS][BL_MAX_VMS];
	double in_mb[BL_NCONFIGS], out_mb[BL_NCONFIGS];
	double cpu_user[BL_NCONFIGS], cpu_sys[BL_NCONFIGS]; /* cores */
	double zram_mb; /* the most zram held outside the cgroup, a round */
	double zswap_mb; /* the same of zswap's pool (v1 cgroups) */
	double faults_s, alloc_waits_s, blocked_waits_s; /* memvisor's */
	/* ops/s in the runs' first and second halves; -1: not measured */
	double half[BL_NCONFIGS][2];
	uint64_t oom[BL_NCONFIGS], errors[BL_NCONFIGS];
	enum bl_config best, best_worst; /* by total; by worst VM */
	/* the same among the configurations that held nothing outside the
	 * cgroup's limit (within_budget) */
	enum bl_config best_in, best_worst_in;
};

struct ctx {
	struct bl_opts o;
	char dir[448]; /* the work directory */
	char skip[BL_NCONFIGS][BL_MSG]; /* peers this machine cannot run */
	FILE *out; /* progress lines: stderr with --json */
	unsigned damon_running; /* DAMON monitors of physical addresses */
	unsigned damon_paused; /* of those, switched off (--pause-damon) */
};

/* No OOM kill and no integrity error in any of its runs. */
static bool usable(const struct case_result *cr, enum bl_config c)
{
	return !cr->oom[c] && !cr->errors[c];
}

/* Memory c held outside the cgroup's limit (MiB): zram's compressed
 * pages (never charged to a cgroup), zswap's pool under a v1 cgroup
 * (charged under v2 only); nothing for the others. */
static double outside_mb(const struct case_result *cr, enum bl_config c)
{
	return c == BL_ZRAM ? cr->zram_mb : c == BL_ZSWAP ? cr->zswap_mb : 0;
}

/* Whether c kept to the budget: held nothing outside the cgroup's limit. */
static bool within_budget(const struct case_result *cr, enum bl_config c)
{
	return outside_mb(cr, c) <= 0;
}

/* The medians of c's halves over the runs that measured them; -1 none. */
static void half_medians(struct case_result *cr, enum bl_config c)
{
	double v[BL_MAX_ROUNDS];
	unsigned n;

	for (int h = 0; h < 2; h++) {
		n = 0;
		for (unsigned i = 0; i < cr->nruns[c]; i++) {
			const struct bl_run *r = &cr->runs[c][i];
			double x = h ? r->second_half_ops_s :
				       r->first_half_ops_s;

			if (r->ran && x >= 0)
				v[n++] = x;
		}
		cr->half[c][h] = n ? bl_median(v, n) : -1;
	}
}

static void medians(struct case_result *cr)
{
	double t[BL_MAX_ROUNDS], w[BL_MAX_ROUNDS], in[BL_MAX_ROUNDS],
		out[BL_MAX_ROUNDS], v[BL_MAX_ROUNDS], cu[BL_MAX_ROUNDS],
		cs[BL_MAX_ROUNDS];
	double best = -1, best_w = -1, best_in = -1, best_w_in = -1;

	cr->best = cr->best_worst = BL_NCONFIGS;
	cr->best_in = cr->best_worst_in = BL_NCONFIGS;
	for (int c = 0; c < BL_NCONFIGS; c++) {
		unsigned n = 0;

		cr->oom[c] = cr->errors[c] = 0;
		for (unsigned i = 0; i < cr->nruns[c]; i++) {
			const struct bl_run *r = &cr->runs[c][i];

			cr->oom[c] += r->oom_kills;
			if ((double)r->zram_peak_bytes / MIB > cr->zram_mb)
				cr->zram_mb = (double)r->zram_peak_bytes / MIB;
			if ((double)r->zswap_outside_bytes / MIB > cr->zswap_mb)
				cr->zswap_mb =
					(double)r->zswap_outside_bytes / MIB;
			cr->errors[c] += r->integrity_errors;
			if (!r->ran)
				continue;
			t[n] = r->total_ops_s;
			w[n] = r->worst_ops_s;
			in[n] = (double)r->swapin_bytes / MIB;
			out[n] = (double)r->swapout_bytes / MIB;
			cu[n] = r->cpu_user;
			cs[n] = r->cpu_sys;
			n++;
		}
		cr->total[c] = bl_median(t, n);
		cr->worst[c] = bl_median(w, n);
		cr->in_mb[c] = bl_median(in, n);
		cr->out_mb[c] = bl_median(out, n);
		cr->cpu_user[c] = bl_median(cu, n);
		cr->cpu_sys[c] = bl_median(cs, n);
		if (c == BL_MEMVISOR) {
			n = 0;
			for (unsigned i = 0; i < cr->nruns[c]; i++)
				if (cr->runs[c][i].ran)
					t[n++] = cr->runs[c][i].faults_s;
			cr->faults_s = bl_median(t, n);
			n = 0;
			for (unsigned i = 0; i < cr->nruns[c]; i++)
				if (cr->runs[c][i].ran)
					t[n++] = cr->runs[c][i].alloc_waits_s;
			cr->alloc_waits_s = bl_median(t, n);
			n = 0;
			for (unsigned i = 0; i < cr->nruns[c]; i++)
				if (cr->runs[c][i].ran)
					t[n++] = cr->runs[c][i].blocked_waits_s;
			cr->blocked_waits_s = bl_median(t, n);
		}
		half_medians(cr, c);
		for (unsigned k = 0; k < cr->nvms; k++) {
			unsigned m = 0;

			for (unsigned i = 0; i < cr->nruns[c]; i++)
				if (cr->runs[c][i].ran)
					v[m++] = cr->runs[c][i].vms[k].ops_s;
			cr->vm[c][k] = bl_median(v, m);
		}
		/* a run where the cgroup killed a VM is no peer: its survivors
		 * got the killed VM's memory */
		if (!bl_config_is_linux(c) || !n || !usable(cr, c))
			continue;
		if (cr->total[c] > best) {
			best = cr->total[c];
			cr->best = c;
		}
		if (cr->worst[c] > best_w) {
			best_w = cr->worst[c];
			cr->best_worst = c;
		}
		if (!within_budget(cr, c))
			continue;
		if (cr->total[c] > best_in) {
			best_in = cr->total[c];
			cr->best_in = c;
		}
		if (cr->worst[c] > best_w_in) {
			best_w_in = cr->worst[c];
			cr->best_worst_in = c;
		}
	}
}

/*
 * --pause-damon: the DAMON monitors of physical addresses off for the run
 * about to start, recorded in the state file, so that the configuration's
 * undo switches them on again (each configuration undoes its state file).
 */
static int damon_pause(struct ctx *x, char *msg, size_t len)
{
	unsigned paused;
	int ret;

	if (!x->o.pause_damon)
		return 0;
	ret = bl_damon_pause(&paused);
	if (ret)
		snprintf(msg, len, "cannot switch DAMON's kdamond off: %s",
			 strerror(-ret));
	else if (paused > x->damon_paused)
		x->damon_paused = paused;
	return ret;
}

/* Runs one configuration once; the result goes to cr->runs. */
static void run_config(struct ctx *x, struct case_result *cr,
		       const struct scenario *sc, const char *ini,
		       enum bl_config c)
{
	struct bl_run *r = &cr->runs[c][cr->nruns[c]++];
	struct bl_cgroup cg = { 0 };
	struct bl_swap sw = { .zram = -1 };
	char msg[BL_MSG] = "";
	uint64_t in0, out0, in1, out1;
	int ret = 0;

	fprintf(x->out, "  %-14s %-20s ", cr->def->name, config_label(c));
	fflush(x->out);
	if (c == BL_MEMVISOR) {
		ret = damon_pause(x, msg, sizeof(msg));
		if (!ret)
			ret = bl_run_memvisor(ini, x->dir, x->o.duration_s, r,
					      msg, sizeof(msg));
		bl_state_undo(stderr);
	} else {
		if (c != BL_CEILING)
			ret = bl_swap_setup(&sw, c, x->dir, cr->guest_bytes,
					    msg, sizeof(msg));
		if (!ret)
			ret = bl_cgroup_create(
				&cg, c == BL_CEILING ? 0 : cr->limit,
				c == BL_ZRAM ? ZRAM_SWAPPINESS : SWAPPINESS,
				msg, sizeof(msg));
		/* the ceiling needs no cgroup: without one it runs as is */
		if (ret && c == BL_CEILING) {
			bl_state_undo(stderr);
			cg.path[0] = '\0';
			ret = 0;
		}
		if (!ret)
			ret = damon_pause(x, msg, sizeof(msg));
		bl_vmstat_swap(&in0, &out0);
		if (!ret)
			ret = bl_run_linux(sc, cg.path[0] ? &cg : NULL,
					   x->o.duration_s, r, msg,
					   sizeof(msg));
		bl_vmstat_swap(&in1, &out1);
		if (cg.path[0])
			r->oom_kills = bl_cgroup_oom_kills(&cg);
		if (c == BL_ZRAM)
			r->zram_peak_bytes = bl_zram_peak(&sw);
		/* bl_run_linux's peak of zswap's pool under a v1 cgroup,
		 * which is not charged for it (measured: a 64 MiB cgroup
		 * held 63 MiB of pages and 15 MiB of pool); only zswap's
		 * runs have one */
		if (c != BL_ZSWAP)
			r->zswap_outside_bytes = 0;
		r->swapin_bytes = (in1 - in0) * 4096;
		r->swapout_bytes = (out1 - out0) * 4096;
		bl_state_undo(stderr);
	}
	if (ret) {
		r->ran = false;
		snprintf(r->why, sizeof(r->why), "%s", msg);
		fprintf(x->out, "failed: %s\n", msg);
		return;
	}
	fprintf(x->out, "%10.0f ops/s, worst VM %8.0f%s", r->total_ops_s,
		r->worst_ops_s, r->oom_kills ? ", OOM kills " : "");
	if (r->oom_kills)
		fprintf(x->out, "%" PRIu64, r->oom_kills);
	if (r->integrity_errors)
		fprintf(x->out, ", %" PRIu64 " INTEGRITY ERRORS (%s)",
			r->integrity_errors, msg);
	fprintf(x->out, "\n");
}

static int load_case(struct ctx *x, const struct case_def *d,
		     struct scenario *sc, char *ini_path, size_t len, char *msg,
		     size_t mlen)
{
	char *text;
	FILE *f;
	int ret;

	ini_path[0] = '\0';
	if (!d->nvms)
		return scenario_load_default(sc, msg, mlen);
	text = case_ini(d, x->dir, !x->o.no_pin, !x->o.vmm_threads);
	if (!text) {
		ret = -errno;
		snprintf(msg, mlen, "case %s: cannot make its scenario: %s",
			 d->name, strerror(errno));
		return ret;
	}
	snprintf(ini_path, len, "%s/%s.ini", x->dir, d->name);
	f = fopen(ini_path, "we");
	if (!f || fputs(text, f) == EOF || fclose(f)) {
		free(text);
		snprintf(msg, mlen, "cannot write %.900s", ini_path);
		return -EIO;
	}
	ret = scenario_load_string(text, ini_path, sc, msg, mlen);
	free(text);
	return ret;
}

static int run_case(struct ctx *x, struct case_result *cr)
{
	static const enum bl_config order[] = { BL_MEMVISOR, BL_SWAP, BL_ZSWAP,
						BL_ZRAM };
	char ini[PATH_MAX], msg[BL_MSG * 2];
	struct gen_images gi = { 0 };
	struct scenario sc;
	int ret;

	ret = load_case(x, cr->def, &sc, ini, sizeof(ini), msg, sizeof(msg));
	if (ret) {
		fprintf(stderr, "memvisor bench linux: %s\n", msg);
		return ret;
	}
	cr->budget = sc.host.memsize;
	cr->guest_bytes = scenario_vm_memsize_total(&sc);
	cr->nvms = (unsigned)(sc.nvms < BL_MAX_VMS ? sc.nvms : BL_MAX_VMS);
	for (unsigned i = 0; i < cr->nvms; i++) {
		snprintf(cr->vm_names[i], sizeof(cr->vm_names[i]), "%s",
			 sc.vms[i].name);
		cr->pinned |= sc.vms[i].ncpus != 0;
	}
	snprintf(cr->desc, sizeof(cr->desc),
		 "%u VMs%s, %.0f MiB of guest memory on %.0f MiB (%.0f%%)",
		 cr->nvms, cr->pinned ? " pinned to CPUs" : "",
		 (double)cr->guest_bytes / MIB, (double)cr->budget / MIB,
		 100.0 * (double)cr->guest_bytes / (double)cr->budget);
	fprintf(x->out, "case %s: %s, %u s per run\n", cr->def->name, cr->desc,
		x->o.duration_s);
	if (!x->o.no_linux) {
		ret = gen_images_make(&sc, &gi, x->dir, NULL, true, msg,
				      sizeof(msg));
		if (ret) {
			fprintf(stderr, "memvisor bench linux: %s\n", msg);
			goto out;
		}
		/* the ceiling first: it measures the harness's overhead */
		if (x->skip[BL_CEILING][0]) {
			snprintf(cr->skipped[BL_CEILING], BL_MSG, "%s",
				 x->skip[BL_CEILING]);
		} else {
			run_config(x, cr, &sc, ini, BL_CEILING);
			cr->overhead = cr->runs[BL_CEILING][0].overhead_bytes;
		}
	}
	cr->overhead = (cr->overhead + OVERHEAD_SLACK + MIB - 1) / MIB * MIB;
	cr->limit = cr->budget + cr->overhead;
	if (!x->o.no_linux)
		fprintf(x->out,
			"  cgroup limit: the budget %.0f MiB + the harness's own %.0f MiB (measured in the ceiling run, + %llu MiB slack)\n",
			(double)cr->budget / MIB, (double)cr->overhead / MIB,
			(unsigned long long)(OVERHEAD_SLACK / MIB));
	for (unsigned round = 0; round < x->o.rounds && !bl_stop; round++) {
		for (unsigned k = 0; k < 4 && !bl_stop; k++) {
			enum bl_config c = order[(k + round) % 4];

			if (c == BL_MEMVISOR ? x->o.no_memvisor : x->o.no_linux)
				continue;
			if (x->skip[c][0]) {
				snprintf(cr->skipped[c], BL_MSG, "%s",
					 x->skip[c]);
				continue;
			}
			run_config(x, cr, &sc, ini[0] ? ini : NULL, c);
		}
	}
	medians(cr);
out:
	gen_images_free(&gi);
	scenario_free(&sc);
	return ret;
}

/* ---- the report ---- */

static void fmt_ops(char *buf, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
}

static bool config_ran(const struct case_result *cr, enum bl_config c)
{
	for (unsigned i = 0; i < cr->nruns[c]; i++)
		if (cr->runs[c][i].ran)
			return true;
	return false;
}

/* CPU time (user + system) per guest operation, in microseconds. */
static double cpu_us_per_op(const struct case_result *cr, enum bl_config c)
{
	return bl_ratio((cr->cpu_user[c] + cr->cpu_sys[c]) * 1e6, cr->total[c]);
}

/* Why a configuration has no figures. */
static const char *not_run_why(const struct case_result *cr, enum bl_config c)
{
	if (cr->skipped[c][0])
		return cr->skipped[c];
	if (cr->nruns[c])
		return cr->runs[c][0].why;
	return bl_stop ? "interrupted before it ran" : "not asked for";
}

/* Each configuration's ops/s in the first half of its runs and the
 * second: warm-up and steady state. */
static void print_halves(const struct case_result *cr)
{
	char a[32], b[32];

	printf("  halves (ops/s, first half | second half):");
	for (int c = 0; c < BL_NCONFIGS; c++) {
		if (!config_ran(cr, c) || cr->half[c][0] < 0)
			continue;
		fmt_ops(a, sizeof(a), cr->half[c][0]);
		fmt_ops(b, sizeof(b), cr->half[c][1]);
		printf("  %s %s | %s", bl_config_name(c), a, b);
	}
	printf("\n");
}

/* The lowest and highest of c's runs (their totals, or their worst VMs);
 * false if none ran. */
static bool run_range(const struct case_result *cr, enum bl_config c,
		      bool worst, double *lo, double *hi)
{
	*lo = *hi = -1;
	for (unsigned i = 0; i < cr->nruns[c]; i++) {
		const struct bl_run *r = &cr->runs[c][i];
		double v = worst ? r->worst_ops_s : r->total_ops_s;

		if (!r->ran)
			continue;
		*lo = *lo < 0 || v < *lo ? v : *lo;
		*hi = v > *hi ? v : *hi;
	}
	return *lo >= 0;
}

/*
 * Run by run: whether every run of memvisor was above every run of peer p
 * (in its total, or its worst VM), every one below, or whether the two
 * ranges overlap, when a ratio of medians says less than the runs' spread
 * (on a busy machine the same configuration can vary by 15% and more from
 * one run to the next).  "none" where p is not a peer; the ranges into
 * m[2] and q[2] (lowest, highest) otherwise.
 */
static const char *runs_apart_ranges(const struct case_result *cr,
				     enum bl_config p, bool worst, double m[2],
				     double q[2])
{
	if (p >= BL_NCONFIGS ||
	    !run_range(cr, BL_MEMVISOR, worst, &m[0], &m[1]) ||
	    !run_range(cr, p, worst, &q[0], &q[1]))
		return "none";
	return m[0] > q[1] ? "above" : m[1] < q[0] ? "below" : "overlap";
}

static const char *runs_apart(const struct case_result *cr, enum bl_config p,
			      bool worst)
{
	double m[2], q[2];

	return runs_apart_ranges(cr, p, worst, m, q);
}

/* The ranges of memvisor's runs and of p's, and how they stand. */
static void print_runs_apart(const struct case_result *cr, enum bl_config p,
			     bool worst)
{
	char a[32], b[32], c[32], d[32];
	double m[2], q[2];
	const char *how = runs_apart_ranges(cr, p, worst, m, q);

	if (!strcmp(how, "none"))
		return;
	fmt_ops(a, sizeof(a), m[0]);
	fmt_ops(b, sizeof(b), m[1]);
	fmt_ops(c, sizeof(c), q[0]);
	fmt_ops(d, sizeof(d), q[1]);
	printf("  run by run, %s: memvisor %s-%s, %s %s-%s: %s\n",
	       worst ? "worst VM" : "total", a, b, bl_config_name(p), c, d,
	       how);
}

static void print_case(const struct ctx *x, const struct case_result *cr)
{
	char a[32], b[32];

	printf("\nmemvisor bench linux, case %s: %s; %u s per run, medians of %u rounds\n",
	       cr->def->name, cr->desc, x->o.duration_s, x->o.rounds);
	printf("  cgroup limit %.0f MiB = budget + %.0f MiB harness overhead\n",
	       (double)cr->limit / MIB, (double)cr->overhead / MIB);
	printf("  %-20s %10s %10s %9s %9s %5s %9s %9s %6s %5s %5s %7s\n",
	       "configuration", "total", "worst VM", "memvisor", "(worst)",
	       "OOM", "in MB", "out MB", "errors", "user", "sys", "us/op");
	for (int c = 0; c < BL_NCONFIGS; c++) {
		if (!config_ran(cr, c)) {
			const char *why = not_run_why(cr, c);

			printf("  %-20s skipped: %s\n", config_label(c), why);
			continue;
		}
		fmt_ops(a, sizeof(a), cr->total[c]);
		fmt_ops(b, sizeof(b), cr->worst[c]);
		printf("  %-20s %10s %10s ", config_label(c), a, b);
		if (!usable(cr, c))
			printf("*");
		if (c == BL_MEMVISOR || !config_ran(cr, BL_MEMVISOR))
			printf("%9s %9s", "-", "-");
		else
			printf("%8.2fx %8.2fx",
			       bl_ratio(cr->total[BL_MEMVISOR], cr->total[c]),
			       bl_ratio(cr->worst[BL_MEMVISOR], cr->worst[c]));
		printf(" %5" PRIu64 " %9.0f %9.0f %6" PRIu64
		       " %5.2f %5.2f %7.2f\n",
		       cr->oom[c], cr->in_mb[c], cr->out_mb[c], cr->errors[c],
		       cr->cpu_user[c], cr->cpu_sys[c], cpu_us_per_op(cr, c));
	}
	if (config_ran(cr, BL_MEMVISOR))
		printf("  memvisor served %.0f userfaultfd faults/s; %.0f/s waited for a free frame, %.0f/s were held in the low state\n",
		       cr->faults_s, cr->alloc_waits_s, cr->blocked_waits_s);
	if (config_ran(cr, BL_ZRAM))
		printf("  zram held up to %.0f MiB of compressed pages outside the cgroup's limit (the kernel does not charge them to it)\n",
		       cr->zram_mb);
	if (config_ran(cr, BL_ZSWAP) && cr->zswap_mb > 0)
		printf("  zswap held up to %.0f MiB of compressed pages outside the cgroup's limit (a v1 cgroup is not charged for them)\n",
		       cr->zswap_mb);
	printf("  per VM (ops/s):");
	for (unsigned k = 0; k < cr->nvms; k++) {
		printf("\n    %-8s", cr->vm_names[k]);
		for (int c = 0; c < BL_NCONFIGS; c++) {
			if (!config_ran(cr, c))
				continue;
			fmt_ops(a, sizeof(a), cr->vm[c][k]);
			printf("  %s %s", bl_config_name(c), a);
		}
	}
	printf("\n");
	print_halves(cr);
	if (cr->best < BL_NCONFIGS && config_ran(cr, BL_MEMVISOR)) {
		if (outside_mb(cr, cr->best) > 0)
			printf("  the best Linux, %s, ran with up to %.0f MiB of compressed pages beyond the budget (outside the cgroup's limit)\n",
			       bl_config_name(cr->best),
			       outside_mb(cr, cr->best));
		printf("  memvisor vs the best Linux without OOM kills (%s): %.2fx total, %.2fx worst VM (vs %s's); vs the ceiling %.2fx\n",
		       bl_config_name(cr->best),
		       bl_ratio(cr->total[BL_MEMVISOR], cr->total[cr->best]),
		       bl_ratio(cr->worst[BL_MEMVISOR],
				cr->worst[cr->best_worst]),
		       bl_config_name(cr->best_worst),
		       bl_ratio(cr->total[BL_MEMVISOR], cr->total[BL_CEILING]));
		print_runs_apart(cr, cr->best, false);
		print_runs_apart(cr, cr->best_worst, true);
		if (cr->half[BL_MEMVISOR][1] >= 0 && cr->half[cr->best][1] > 0)
			printf("  in the runs' second halves (the steady state): %.2fx %s's\n",
			       cr->half[BL_MEMVISOR][1] / cr->half[cr->best][1],
			       bl_config_name(cr->best));
		if (cr->best_in < BL_NCONFIGS &&
		    (cr->best_in != cr->best ||
		     cr->best_worst_in != cr->best_worst))
			printf("  within the budget (nothing held outside the cgroup's limit): vs %s %.2fx total, %.2fx worst VM (vs %s's)\n",
			       bl_config_name(cr->best_in),
			       bl_ratio(cr->total[BL_MEMVISOR],
					cr->total[cr->best_in]),
			       bl_ratio(cr->worst[BL_MEMVISOR],
					cr->worst[cr->best_worst_in]),
			       bl_config_name(cr->best_worst_in));
	} else if (config_ran(cr, BL_MEMVISOR))
		printf("  no Linux configuration ran without OOM kills and integrity errors: none is a usable peer; vs the ceiling %.2fx\n",
		       bl_ratio(cr->total[BL_MEMVISOR], cr->total[BL_CEILING]));
	for (int c = BL_SWAP; c <= BL_ZRAM; c++)
		if (config_ran(cr, c) && !usable(cr, c)) {
			printf("  *: OOM kills or integrity errors: not a usable peer (the survivors got the killed VMs' memory)\n");
			break;
		}
}

/* "memvisor's ratio over peer p's total / over peer pw's worst VM", or why
 * there is none. */
static void fmt_verdict(char *buf, size_t len, const struct case_result *cr,
			enum bl_config p, enum bl_config pw, bool *ahead)
{
	double t, w;

	*ahead = false;
	if (p >= BL_NCONFIGS) {
		snprintf(buf, len, "no usable peer");
		return;
	}
	t = bl_ratio(cr->total[BL_MEMVISOR], cr->total[p]);
	w = bl_ratio(cr->worst[BL_MEMVISOR], cr->worst[pw]);
	*ahead = t >= 1.0 && w >= 1.0;
	snprintf(buf, len, "%.2fx / %.2fx (%s)", t, w, bl_config_name(p));
}

/*
 * One line per case after all of them: memvisor against the best Linux
 * configuration without OOM kills (total / worst VM), in the second
 * halves, and against the best that held nothing outside the cgroup's
 * limit; then how many cases memvisor is at or above both.
 */
static void print_summary(FILE *f, const struct case_result *res, unsigned n)
{
	unsigned ahead = 0, ahead_in = 0, peers = 0, peers_in = 0, apart = 0;
	char a[32], b[32], v[64], vi[64], h[16], rr[32];
	bool up, up_in;

	fprintf(f,
		"\nsummary: memvisor's ratios over the best Linux, total / worst VM\n");
	fprintf(f, "  %-14s %-17s %-28s %-17s %-9s %s\n", "case", "memvisor",
		"vs the best Linux", "run by run", "2nd half",
		"vs the best within the budget");
	for (unsigned i = 0; i < n; i++) {
		const struct case_result *cr = &res[i];

		if (!config_ran(cr, BL_MEMVISOR))
			continue;
		fmt_ops(a, sizeof(a), cr->total[BL_MEMVISOR]);
		fmt_ops(b, sizeof(b), cr->worst[BL_MEMVISOR]);
		fmt_verdict(v, sizeof(v), cr, cr->best, cr->best_worst, &up);
		fmt_verdict(vi, sizeof(vi), cr, cr->best_in, cr->best_worst_in,
			    &up_in);
		snprintf(h, sizeof(h), "-");
		if (cr->best < BL_NCONFIGS && cr->half[BL_MEMVISOR][1] >= 0 &&
		    cr->half[cr->best][1] > 0)
			snprintf(h, sizeof(h), "%.2fx",
				 cr->half[BL_MEMVISOR][1] /
					 cr->half[cr->best][1]);
		snprintf(rr, sizeof(rr), "%s / %s",
			 runs_apart(cr, cr->best, false),
			 runs_apart(cr, cr->best_worst, true));
		fprintf(f, "  %-14s %8s / %-6s %-28s %-17s %-9s %s\n",
			cr->def->name, a, b, v, rr, h, vi);
		peers += cr->best < BL_NCONFIGS;
		peers_in += cr->best_in < BL_NCONFIGS;
		ahead += up;
		ahead_in += up_in;
		apart += !strcmp(runs_apart(cr, cr->best, false), "above") &&
			 !strcmp(runs_apart(cr, cr->best_worst, true), "above");
	}
	fprintf(f,
		"  at or above the best Linux in both: %u of the %u cases with a usable peer (above it in every run, in both: %u); within the budget: %u of %u\n",
		ahead, peers, apart, ahead_in, peers_in);
	fprintf(f,
		"  run by run: \"above\" every run of memvisor was above every run of the peer, \"below\" under, \"overlap\" the runs' ranges overlap (the ratio is within their spread)\n");
}

/* key: v, or null where v is negative (not measured). */
static void add_num_or_null(cJSON *o, const char *key, double v)
{
	if (v >= 0)
		cJSON_AddNumberToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

static cJSON *json_case(const struct ctx *x, const struct case_result *cr)
{
	cJSON *o = cJSON_CreateObject(), *cfgs, *co, *arr, *vo;
	const char *best = cr->best < BL_NCONFIGS ? bl_config_name(cr->best) :
						    NULL;
	uint64_t oom = 0, errs = 0;

	if (!o)
		return NULL;
	for (int c = 0; c < BL_NCONFIGS; c++) {
		oom += cr->oom[c];
		errs += cr->errors[c];
	}
	cJSON_AddStringToObject(o, "name", cr->def->name);
	cJSON_AddStringToObject(o, "description", cr->desc);
	cJSON_AddNumberToObject(o, "vms", cr->nvms);
	cJSON_AddBoolToObject(o, "vms_pinned", cr->pinned);
	cJSON_AddNumberToObject(o, "duration_s", x->o.duration_s);
	cJSON_AddNumberToObject(o, "rounds", x->o.rounds);
	cJSON_AddNumberToObject(o, "budget_mb", (double)cr->budget / MIB);
	cJSON_AddNumberToObject(o, "cgroup_limit_mb", (double)cr->limit / MIB);
	cJSON_AddNumberToObject(o, "harness_overhead_mb",
				(double)cr->overhead / MIB);
	cJSON_AddNumberToObject(o, "memvisor_ops_s", cr->total[BL_MEMVISOR]);
	cJSON_AddNumberToObject(o, "memvisor_worst_vm_ops_s",
				cr->worst[BL_MEMVISOR]);
	if (best)
		cJSON_AddStringToObject(o, "best_linux", best);
	else
		cJSON_AddNullToObject(o, "best_linux");
	cJSON_AddNumberToObject(o, "best_linux_ops_s",
				best ? cr->total[cr->best] : 0);
	cJSON_AddNumberToObject(o, "best_linux_worst_vm_ops_s",
				best ? cr->worst[cr->best_worst] : 0);
	if (best)
		cJSON_AddStringToObject(o, "best_linux_worst_vm",
					bl_config_name(cr->best_worst));
	cJSON_AddNumberToObject(o, "unconstrained_ops_s",
				cr->total[BL_CEILING]);
	/* memory the best Linux configuration used beyond the budget: zram's
	 * compressed pages, which the kernel does not charge to the cgroup,
	 * or zswap's under a v1 cgroup */
	cJSON_AddNumberToObject(o, "best_linux_outside_budget_mb",
				best ? outside_mb(cr, cr->best) : 0);
	if (best) {
		cJSON_AddNumberToObject(o, "ratio_total",
					bl_ratio(cr->total[BL_MEMVISOR],
						 cr->total[cr->best]));
		cJSON_AddNumberToObject(o, "ratio_worst_vm",
					bl_ratio(cr->worst[BL_MEMVISOR],
						 cr->worst[cr->best_worst]));
		/* every run above every run of the peer, below, or not */
		cJSON_AddStringToObject(o, "runs_total_vs_best",
					runs_apart(cr, cr->best, false));
		cJSON_AddStringToObject(o, "runs_worst_vm_vs_best",
					runs_apart(cr, cr->best_worst, true));
	} else {
		cJSON_AddNullToObject(o, "ratio_total");
		cJSON_AddNullToObject(o, "ratio_worst_vm");
		cJSON_AddNullToObject(o, "runs_total_vs_best");
		cJSON_AddNullToObject(o, "runs_worst_vm_vs_best");
		cJSON_AddStringToObject(
			o, "best_linux_note",
			"no Linux configuration ran without OOM kills and integrity errors: none is a usable peer");
	}
	/* the same against the configurations that kept to the budget */
	if (cr->best_in < BL_NCONFIGS) {
		cJSON_AddStringToObject(o, "best_linux_within_budget",
					bl_config_name(cr->best_in));
		cJSON_AddNumberToObject(o, "best_linux_within_budget_ops_s",
					cr->total[cr->best_in]);
		cJSON_AddNumberToObject(o, "ratio_total_within_budget",
					bl_ratio(cr->total[BL_MEMVISOR],
						 cr->total[cr->best_in]));
		cJSON_AddNumberToObject(o, "ratio_worst_vm_within_budget",
					bl_ratio(cr->worst[BL_MEMVISOR],
						 cr->worst[cr->best_worst_in]));
		cJSON_AddStringToObject(o, "runs_total_within_budget",
					runs_apart(cr, cr->best_in, false));
		cJSON_AddStringToObject(o, "runs_worst_vm_within_budget",
					runs_apart(cr, cr->best_worst_in,
						   true));
	} else {
		cJSON_AddNullToObject(o, "best_linux_within_budget");
		cJSON_AddNullToObject(o, "ratio_total_within_budget");
		cJSON_AddNullToObject(o, "ratio_worst_vm_within_budget");
		cJSON_AddNullToObject(o, "runs_total_within_budget");
		cJSON_AddNullToObject(o, "runs_worst_vm_within_budget");
	}
	cJSON_AddNumberToObject(o, "ratio_vs_unconstrained",
				bl_ratio(cr->total[BL_MEMVISOR],
					 cr->total[BL_CEILING]));
	/* the steady state: second halves, against the best Linux's */
	add_num_or_null(o, "memvisor_second_half_ops_s",
			cr->half[BL_MEMVISOR][1]);
	add_num_or_null(o, "best_linux_second_half_ops_s",
			best ? cr->half[cr->best][1] : -1);
	add_num_or_null(o, "ratio_second_half",
			best && cr->half[BL_MEMVISOR][1] >= 0 &&
					cr->half[cr->best][1] > 0 ?
				cr->half[BL_MEMVISOR][1] /
					cr->half[cr->best][1] :
				-1);
	cJSON_AddNumberToObject(o, "oom_kills", (double)oom);
	cJSON_AddNumberToObject(o, "integrity_errors", (double)errs);
	cfgs = cJSON_AddObjectToObject(o, "configs");
	for (int c = 0; cfgs && c < BL_NCONFIGS; c++) {
		co = cJSON_AddObjectToObject(cfgs, bl_config_name(c));
		if (!co)
			break;
		cJSON_AddBoolToObject(co, "ran", config_ran(cr, c));
		/* ran, with no OOM kill and no integrity error: a peer */
		cJSON_AddBoolToObject(co, "usable",
				      config_ran(cr, c) && usable(cr, c));
		if (!config_ran(cr, c)) {
			cJSON_AddStringToObject(co, "skipped",
						not_run_why(cr, c));
			continue;
		}
		cJSON_AddNumberToObject(co, "ops_s", cr->total[c]);
		cJSON_AddNumberToObject(co, "worst_vm_ops_s", cr->worst[c]);
		cJSON_AddNumberToObject(co, "oom_kills", (double)cr->oom[c]);
		cJSON_AddNumberToObject(co, "integrity_errors",
					(double)cr->errors[c]);
		cJSON_AddNumberToObject(co, "swapin_mb", cr->in_mb[c]);
		cJSON_AddNumberToObject(co, "swapout_mb", cr->out_mb[c]);
		cJSON_AddNumberToObject(co, "cpu_user_cores", cr->cpu_user[c]);
		cJSON_AddNumberToObject(co, "cpu_sys_cores", cr->cpu_sys[c]);
		cJSON_AddNumberToObject(co, "cpu_us_per_op",
					cpu_us_per_op(cr, c));
		add_num_or_null(co, "first_half_ops_s", cr->half[c][0]);
		add_num_or_null(co, "second_half_ops_s", cr->half[c][1]);
		if (c == BL_ZRAM)
			cJSON_AddNumberToObject(co, "zram_outside_budget_mb",
						cr->zram_mb);
		if (c == BL_ZSWAP)
			cJSON_AddNumberToObject(co, "zswap_outside_budget_mb",
						cr->zswap_mb);
		if (c == BL_MEMVISOR) {
			cJSON_AddNumberToObject(co, "faults_s", cr->faults_s);
			cJSON_AddNumberToObject(co, "alloc_waits_s",
						cr->alloc_waits_s);
			cJSON_AddNumberToObject(co, "blocked_waits_s",
						cr->blocked_waits_s);
		}
		arr = cJSON_AddArrayToObject(co, "runs_ops_s");
		for (unsigned i = 0; arr && i < cr->nruns[c]; i++)
			cJSON_AddItemToArray(
				arr,
				cr->runs[c][i].ran ?
					cJSON_CreateNumber(
						cr->runs[c][i].total_ops_s) :
					cJSON_CreateNull());
		arr = cJSON_AddArrayToObject(co, "vms");
		for (unsigned k = 0; arr && k < cr->nvms; k++) {
			vo = cJSON_CreateObject();
			if (!vo || !cJSON_AddItemToArray(arr, vo))
				break;
			cJSON_AddStringToObject(vo, "name", cr->vm_names[k]);
			cJSON_AddNumberToObject(vo, "ops_s", cr->vm[c][k]);
		}
	}
	return o;
}

/* ---- the command ---- */

static void on_signal(int sig)
{
	(void)sig;
	bl_stop = 1;
}

/* Removes the files in the work directory (this run's, or an earlier
 * run's left behind). */
static void empty_dir(const char *dir)
{
	struct dirent *e;
	char p[PATH_MAX + 300];
	DIR *d = opendir(dir);

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
}

static int work_dir(struct ctx *x, char *msg, size_t len)
{
	mkdir(x->o.swapdir, 0700);
	if (strlen(x->o.swapdir) > 400) {
		snprintf(msg, len, "--swapdir too long");
		return -ENAMETOOLONG;
	}
	snprintf(x->dir, sizeof(x->dir), "%.400s/memvisor-bench-linux",
		 x->o.swapdir);
	if (mkdir(x->dir, 0700) && errno != EEXIST) {
		snprintf(msg, len, "cannot make %.448s: %s", x->dir,
			 strerror(errno));
		return -errno;
	}
	empty_dir(x->dir);
	return 0;
}

/* Is pid a `memvisor bench linux` (not a process that reused the pid)? */
static bool is_bench_linux(pid_t pid)
{
	char path[64], buf[512];
	bool bench = false, linux_ = false;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
		bench |= !strcmp(buf + i, "bench");
		linux_ |= bench && !strcmp(buf + i, "linux");
	}
	return linux_;
}

/* Refuses when another bench linux owns the state file; else undoes what
 * a killed one left. */
static int leftovers(struct ctx *x, char *msg, size_t len)
{
	char line[128];
	long pid = 0;
	FILE *f = fopen(bl_state_path, "re");
	int n;

	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f) && !strncmp(line, "owner\t", 6))
		pid = strtol(line + 6, NULL, 10);
	fclose(f);
	if (pid > 0 && pid != getpid() && is_bench_linux((pid_t)pid)) {
		snprintf(
			msg, len,
			"another memvisor bench linux (pid %ld) is running (%.300s)",
			pid, bl_state_path);
		return -EBUSY;
	}
	n = bl_state_undo(stderr);
	fprintf(x->out,
		"undid %d change%s a killed bench linux left (swap, zram, zswap, cgroups, sysctls)\n",
		n, n == 1 ? "" : "s");
	return 0;
}

static void probe(struct ctx *x)
{
	char msg[BL_MSG];

	if (bl_cgroup_probe(msg, sizeof(msg)) ||
	    bl_swap_probe(BL_SWAP, msg, sizeof(msg))) {
		/* no cgroup or no root: no Linux peer at all */
		for (int c = BL_SWAP; c < BL_CEILING; c++)
			snprintf(x->skip[c], BL_MSG, "%s", msg);
		return;
	}
	if (bl_swap_probe(BL_ZSWAP, msg, sizeof(msg)))
		snprintf(x->skip[BL_ZSWAP], BL_MSG, "%s", msg);
	if (bl_swap_probe(BL_ZRAM, msg, sizeof(msg)))
		snprintf(x->skip[BL_ZRAM], BL_MSG, "%s", msg);
}

/* How the VMs are run and placed on CPUs, for the header. */
static void pin_line(const struct ctx *x)
{
	char cpus[256];
	cpu_set_t set;

	fprintf(x->out, "%s",
		x->o.vmm_threads ?
			"  kvstore cases: memvisor runs every VM as guest threads of one process (--vmm threads), the Linux peer one process per VM\n" :
			"  kvstore cases: memvisor runs each VM in a process of its own (vmm = process: the VM and its agent, joined to the run's daemon), as the Linux peer runs one process per VM\n");

	if (x->o.no_pin) {
		fprintf(x->out,
			"  --no-pin: no VM is pinned to a CPU, on either side\n");
		return;
	}
	if (scenario_usable_cpus(&set))
		CPU_ZERO(&set);
	scenario_cpus_format(&set, cpus, sizeof(cpus));
	fprintf(x->out,
		"  kvstore cases: VMs pinned round-robin to CPUs %s, one CPU each, on both sides, as VM hosts pin vCPUs (memvisor: cpus = in its scenario, its guest threads there and its fault and reclaim threads beside them; Linux: the VM's whole process); the default case runs its own scenario, unpinned\n",
		cpus[0] ? cpus : "?");
}

/*
 * What DAMON does during the runs: a monitor of physical addresses walks
 * the reverse map of the pages it samples, which holds memvisor's page
 * moves back (docs/ARCHITECTURE.md); the header says it runs, or, with
 * --pause-damon, that it is off during each run (damon_pause).
 */
static void damon_line(struct ctx *x)
{
	unsigned first, n = bl_damon_paddr(&first);

	x->damon_running = n;
	if (!n)
		return;
	if (!x->o.pause_damon)
		fprintf(x->out,
			"  DAMON: kdamond %u%s monitors physical addresses during the runs: its reverse-map walks stall memvisor's page moves for up to seconds (--pause-damon switches it off for the runs)\n",
			first, n > 1 ? " and others" : "");
	else
		fprintf(x->out,
			"  DAMON: %u monitor%s of physical addresses (kdamond %u%s) switched off for each run and on again after it (--pause-damon)\n",
			n, n == 1 ? "" : "s", first,
			n > 1 ? " and others" : "");
}

int bench_linux_main(int argc, char **argv)
{
	struct case_result *res = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	char msg[BL_MSG];
	unsigned n = 0;
	struct ctx x;
	struct utsname u;
	double load = 0;
	int ret;

	memset(&x, 0, sizeof(x));
	ret = bl_parse_opts(argc, argv, &x.o, msg, sizeof(msg));
	if (ret == 1) {
		usage(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "memvisor bench linux: %s\n", msg);
		usage(stderr);
		return 2;
	}
	x.out = x.o.json ? stderr : stdout;
	if (access("/run", W_OK))
		snprintf(bl_state_path, sizeof(bl_state_path),
			 "/var/tmp/memvisor-bench-linux.state");
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (leftovers(&x, msg, sizeof(msg)) || work_dir(&x, msg, sizeof(msg))) {
		fprintf(stderr, "memvisor bench linux: %s\n", msg);
		return 1;
	}
	probe(&x);
	uname(&u);
	getloadavg(&load, 1);
	fprintf(x.out,
		"memvisor bench linux: Linux %s, %ld CPUs, load %.2f; %u round%s of %u s per configuration\n",
		u.release, sysconf(_SC_NPROCESSORS_ONLN), load, x.o.rounds,
		x.o.rounds == 1 ? "" : "s", x.o.duration_s);
	fprintf(x.out,
		"  Linux peers: one process per VM on private anonymous memory in a memory cgroup; %s; zram with lz4 (vm.page-cluster 0, swappiness %d; file and zswap: page-cluster 3, swappiness %d); the burst VM runs without its balloon driver (nothing to talk to); ops/s count the whole run, warm-up included, as memvisor run counts them; the worst VM is the slowest one that is not idle (an OOM-killed VM counts 0); user/sys: CPU cores the VMs' processes used from the run's first second to its end, us/op: that CPU per guest operation\n",
		bl_zswap_note(), ZRAM_SWAPPINESS, SWAPPINESS);
	pin_line(&x);
	damon_line(&x);
	for (int c = BL_SWAP; c < BL_NCONFIGS; c++)
		if (x.skip[c][0])
			fprintf(x.out, "  %s: skipped: %s\n", config_label(c),
				x.skip[c]);
	res = calloc(NCASES, sizeof(*res));
	if (!res)
		return 1;
	for (unsigned i = 0; i < NCASES && !bl_stop; i++) {
		bool want = false;

		for (unsigned k = 0; k < x.o.ncases; k++)
			want |= !strcmp(x.o.cases[k], cases[i].name);
		if (!x.o.ncases)
			want = !cases[i].hidden;
		if (!want)
			continue;
		res[n].def = &cases[i];
		if (run_case(&x, &res[n]))
			ret = 1;
		n++;
	}
	bl_cleanup();
	empty_dir(x.dir);
	rmdir(x.dir);
	if (x.o.json) {
		cJSON *root = cJSON_CreateObject(), *arr;
		char *text;

		arr = root ? cJSON_AddArrayToObject(root, "cases") : NULL;
		for (unsigned i = 0; arr && i < n; i++)
			cJSON_AddItemToArray(arr, json_case(&x, &res[i]));
		if (root && bl_stop)
			cJSON_AddTrueToObject(root, "interrupted");
		if (root) {
			cJSON_AddNumberToObject(root, "damon_paddr_monitors",
						x.damon_running);
			cJSON_AddNumberToObject(root, "damon_paddr_paused",
						x.damon_paused);
		}
		text = root ? cJSON_Print(root) : NULL;
		if (text)
			printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(root);
	} else {
		for (unsigned i = 0; i < n; i++)
			print_case(&x, &res[i]);
		if (n > 1)
			print_summary(stdout, res, n);
	}
	free(res);
	if (bl_stop) {
		fprintf(stderr,
			"memvisor bench linux: interrupted; everything it set is undone\n");
		return 4;
	}
	return ret;
}
