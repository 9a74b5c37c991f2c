// SPDX-License-Identifier: MIT
/*
 * run.c - `memvisor run`: a scenario from start to verdict.
 *
 * Design: everything that can be refused is refused before anything runs:
 * the arguments, the JSON path (checked to take a new file, so that a typo
 * does not cost a whole run), the kernel (mv_check_system), the scenario.
 * Then the generated guest images (genimage.c), the host, the VMs and
 * their workloads are made in that order and torn down in reverse by one
 * goto ladder, whatever step failed.  The long steps say how far they are
 * (progress.c): making the images, the VMs' first read of their images
 * (under the live line) and the final verification.  SIGINT and
 * SIGTERM are blocked before the first thread exists, so every library and
 * guest thread inherits the mask and the main thread alone takes them, in
 * sigtimedwait(), which is also its clock: during the timed run a signal
 * ends it early, and the guests are still verified and reported on; during
 * the final verification a signal cancels what is left of it (a second one,
 * or the verification not stopping within CANCEL_GRACE_S, writes the report
 * and ends the process at once).  The signals stay blocked to the end, so
 * none can kill the run between the verification and the report.
 *
 * The verification first stops every workload (all are told, then all are
 * waited for), so that no guest competes with it, then verifies the VMs in
 * parallel on a few threads.  Rates come from differences of the library's
 * cumulative counters: the last second for the live line, the whole timed
 * run for the final table; each second's stats also go to the time series
 * (series.c) the JSON carries for `memvisor report`.  The final stats are taken when the timed run
 * ends, before the verification, whose read-back of every page would
 * otherwise show up as swap-in traffic; they are printed after the
 * teardown, so that the verdict is the last line even when destroying VMs
 * is slow.  With --json - the JSON owns stdout and everything meant for
 * people goes to stderr, so the output can be piped.
 *
 * --live and --metrics read a snapshot (snap.c) that the main thread alone
 * takes, once a second of the timed run, and hands to the screen
 * (live.c, its own thread) and the server (metrics.c, libmicrohttpd's
 * thread): neither calls into the engine.  The server starts before the
 * host, so that a port in use fails the run before any guest starts.  The
 * screen replaces the live line during the timed run only; `q` on it
 * makes its thread send SIGUSR1 to the main thread (blocked everywhere,
 * like SIGINT and SIGTERM, and taken only from this process), which ends
 * the timed run as asked, not as an interruption.  The host's messages go
 * to the screen while it is up, not over it.
 *
 * The report always arrives: whatever stops the run after the arguments
 * were read (a bad scenario, a VM that cannot start, integrity errors, a
 * signal, a lost page) writes the JSON with the exit status and the error,
 * replacing the earlier file whole or not at all (report.c).  After a run,
 * it is written before the teardown, which cannot change the verdict; the
 * table for people is printed after it.
 *
 * A VM pinned to CPUs (its scenario's cpus, or pin_vcpus = spread) has
 * its guest threads created on them (mvg_config.cpus), or its QEMU process
 * set on them before QEMU starts (qemu_config.affinity).
 *
 * A `vmm = qemu` VM is a QEMU process (qemu.c), started after the thread
 * VMs' workloads from the main thread (QEMU is killed if that thread ends).
 * When libmemvisor-preload.so is beside the command, the run also starts
 * an in-process daemon (mv_daemon_create) whose socket QEMU's agent joins,
 * so QEMU guests and thread VMs share one host; their engine stats are
 * what the agent reports (mv_daemon_vm_stats), and the scheduler's balloon
 * target reaches QEMU's balloon over the run's own QMP connection (QEMU
 * takes one QMP client), guarded by the VM's qmp_lock.  A QEMU guest's
 * final verification is its own program's verdict, read from its console
 * file after it powers off (waited for with a bound); what is still
 * running is stopped (QMP quit, SIGTERM, SIGKILL, bounded) before the
 * daemon, and the daemon before the host.
 *
 * A `vmm = process` VM is `memvisor guest-process` (guest_process.c), this
 * program again in a process of its own (its own address space, so the
 * TLB flushes of its reclaim reach only its own CPUs), started after the
 * QEMU guests: it makes a host, the VM and its workload, and joins the
 * in-process daemon (started whenever there is a process VM) with its
 * agent, as a VMM would.  Its engine stats are what the daemon was told
 * (and the final host figures count them, as a QEMU guest's, as the
 * host's own VMs are counted: report_host_add_remote),
 * its ops the child's "MVPROC ops=" lines read from its console file each
 * second.  The run waits (bounded) for every child's first ops line
 * before the timed run: a child that ends first is a VM that could not
 * start (status 2, with the child's "MVPROC error=" reason); one that ends
 * during the run is said at once and makes the exit status 1.  At the end SIGTERM goes to every child before any
 * verification is waited for; each verifies itself and prints its verdict
 * (waited for with a bound that grows with its memsize; none: the VM is
 * unverified, exit status 1); what still runs at the teardown gets SIGTERM,
 * a bounded wait and SIGKILL, before the daemon goes.  A VM with cpus
 * gives them to its child (--cpus): its guest threads are made there and
 * the engine's fault and reclaim threads follow them (Mem.ServiceAffinity);
 * the process as a whole is not pinned (guest_process.c says why).
 *
 * Invariants: a workload is stopped before its VM is destroyed, and every
 * VM before the host; the exit status is 0 only when every workload was
 * verified with zero integrity errors and no signal interrupted the run
 * (`q` on the live screen is not an interruption); the terminal is given
 * back (live_stop) before anything else is printed after the screen;
 * the first error recorded is the one the report gives.
 *
 * Lock ordering: a VM's qmp_lock is a leaf of its own (the daemon's
 * balloon hook and the teardown take it, nothing else under it).
 * report_lock, a leaf: it guards what the report is
 * made of (the results the verifier threads store, the stage a signal
 * interrupted, the first error) against the lost-page watch, which may
 * write the report from its own thread.  The screen's and the server's
 * locks (live.c, metrics.c) are leaves inside those files, never taken
 * with report_lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "genimage.h"
#include "guest.h"
#include "guest_process.h"
#include "live.h"
#include "memvisor.h"
#include "metrics.h"
#include "preflight.h"
#include "progress.h"
#include "qemu.h"
#include "qmp.h"
#include "report.h"
#include "run.h"
#include "scenario.h"
#include "series.h"
#include "snap.h"

#define EXIT_INTEGRITY 1
#define EXIT_BAD_INPUT 2
#define EXIT_ENGINE_BUG 3
#define EXIT_INTERRUPTED 4

/* How long cancelled verifications get to notice before the report is
 * written without them and the process ends. */
#define CANCEL_GRACE_S 10
/* How often the main thread looks at verifications while it waits. */
#define VERIFY_POLL_MS 100
#define MAX_VERIFIERS 8
/* How long a VM's process may take to start its workload. */
#define PROCESS_START_S 60

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
	bool live; /* the full-screen view (live.c) instead of live lines */
	const char *metrics; /* --metrics ADDR:PORT, NULL for none */
};

/* One VM and its guest workload. */
struct vm_run {
	const struct sc_vm *cfg; /* its [vm NAME] section */
	mv_vm *vm; /* NULL until created; always NULL for a QEMU guest */
	/* vmm = qemu: the QEMU process (NULL until started), its console
	 * file and QMP socket; qmp_lock keeps the daemon's balloon hook and
	 * the main thread from using the QMP connection at once (a leaf) */
	struct qemu_vm *qemu;
	char console[128];
	char qmp[108];
	pthread_mutex_t qmp_lock;
	/* vmm = process: its process (0: none), whether it was reaped and
	 * how it ended, how far its console file (the child's stdout and
	 * stderr, at v->console) was read, what its last ops line said, and
	 * whether its verdict was ok (its console is then removed) */
	pid_t pid;
	bool reaped;
	int wstatus;
	bool death_shown;
	off_t console_off;
	uint64_t proc_ops, proc_errors;
	char proc_err[160]; /* its "MVPROC error=" line's text, "" if none */
	bool proc_started; /* it printed its first ops line */
	bool proc_ok;
	struct mvg_workload *w; /* NULL until started */
	struct mv_vm_stats start; /* when the timed run began */
	struct mv_vm_stats last; /* at the previous live line */
	uint64_t last_ops; /* guest ops at the previous live line */
	bool error_shown; /* its first integrity error was printed */
	/* under report_lock: its verification ended, how long it took, and
	 * whether its line was printed */
	bool verify_done;
	double verify_s;
	bool verify_shown;
};

/* What a signal interrupted. */
enum stage { STAGE_NONE, STAGE_RUN, STAGE_VERIFY };

struct run {
	struct options opt; /* from the command line */
	struct scenario sc; /* what runs */
	bool have_sc; /* sc was read */
	struct preflight pf; /* this machine, measured before the host */
	struct mv_host_config cfg; /* the host as created */
	mv_host *host; /* NULL until created */
	struct vm_run *vms; /* sc.nvms of them */
	struct gen_images gi; /* the images made for image = generated */
	struct progress verify_progress; /* of the final verification */
	struct progress load_progress; /* of the VMs' first pass over images */
	bool loaded; /* that first pass ended (or there is none) */
	struct report_target json; /* where the JSON goes, if opt.json */
	FILE *out; /* for people: stdout, or stderr when the JSON goes there */
	sigset_t stop_signals; /* SIGINT, SIGTERM: end the timed run early */
	sigset_t old_mask; /* the mask before they were blocked */
	struct timespec t0; /* the timed run began */
	struct run_result res; /* filled at the end, printed after teardown */
	struct series series; /* per second, under report_lock (series.c) */
	char host_msg[512]; /* the host message last shown */
	atomic_bool watch_stop; /* tells lost_page_watch to end */
	int status; /* of a failure to start, 0 if none */
	char error[1024]; /* the first error, "" if none */
	char verdict[1024]; /* the report's error text */
	enum stage interrupted; /* what a signal cut short */
	int signal; /* that signal */
	pthread_mutex_t report_lock; /* a leaf: res, verify_* and the JSON */
	atomic_bool cancel; /* tells the verifications to end early */
	atomic_size_t next_verify; /* the next VM a verifier takes */
	atomic_size_t verified; /* VMs whose verification ended */
	bool json_written; /* the report was written (or tried) */
	bool json_failed; /* and could not be */
	/* --live and --metrics: the snapshot published each second (main
	 * thread only), the screen, the server, and `q` pressed */
	struct snap snap;
	struct live *live;
	struct metrics *metrics;
	pthread_t main_thread;
	bool quit_live;
	/* QEMU guests: the directory of their consoles and sockets, the
	 * in-process daemon their agents join (NULL: unmanaged) */
	char qemu_dir[64];
	mv_daemon *daemon;
	char daemon_sock[96]; /* its socket, "" if none */
	char settings[2048]; /* [advanced] as "Mem.X=v,Mem.Y=w", for agents */
};

void run_usage(FILE *out)
{
	fprintf(out,
		"usage: memvisor run [SCENARIO] [--duration S] [--json FILE] [--quiet]\n"
		"                    [--live] [--metrics [ADDR:]PORT]\n"
		"  SCENARIO         an INI scenario file (default: the embedded one,\n"
		"                   6 VMs with 896 MB on a 384 MB host for 60 s)\n"
		"  -d, --duration S run the workloads for S seconds instead\n"
		"  -j, --json FILE  write the final stats as JSON to FILE (-: stdout,\n"
		"                   and the rest goes to stderr)\n"
		"  -q, --quiet      no live line every second\n"
		"  -l, --live       a full-screen view like esxtop's memory panel\n"
		"                   instead of the live line (keys: M G T S B C O N\n"
		"                   sort, h help, q end the run early; see docs/LIVE.md)\n"
		"  -m, --metrics [ADDR:]PORT\n"
		"                   serve Prometheus metrics on http://ADDR:PORT/metrics\n"
		"                   and /healthz while the run goes on (ADDR defaults\n"
		"                   to 127.0.0.1; PORT 0 picks a free port)\n"
		"exit status: 0 every page verified, and no signal cut the run short\n"
		"             1 integrity errors, or a VM that could not be verified\n"
		"             2 bad input, a system that cannot run memvisor, a VM that\n"
		"               could not start, or a JSON report that could not be written\n"
		"             3 the engine lost a page (a bug; the run is aborted)\n"
		"             4 interrupted by SIGINT or SIGTERM: the guests were stopped\n"
		"               early or not every VM was verified to the end\n"
		"the JSON report is written whatever the outcome (with \"exit_status\" and\n"
		"\"error\"), replacing FILE whole or not at all\n");
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
		{ "live", no_argument, NULL, 'l' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	char *end;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":d:j:qlm:h", longopts, NULL)) !=
	       -1) {
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
		case 'l':
			o->live = true;
			break;
		case 'm':
			o->metrics = optarg;
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
	if (o->live && o->json && !strcmp(o->json, "-")) {
		fprintf(stderr,
			"memvisor run: --live takes the terminal; --json - would write into it (give --json a file)\n");
		return EXIT_BAD_INPUT;
	}
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

/* Records the first error for the report, and prints every one. */
__attribute__((format(printf, 3, 4))) static void
run_fail(struct run *r, int status, const char *fmt, ...)
{
	char msg[sizeof(r->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "memvisor: %s\n", msg);
	if (!r->status) {
		r->status = status;
		snprintf(r->error, sizeof(r->error), "%s", msg);
	}
}

static void lib_error(struct run *r, int line, const char *what, int err)
{
	char at[PATH_MAX + 16], msg[512];

	/* with no host: why mv_host_create() failed */
	mv_host_errmsg_copy(r->host, msg, sizeof(msg));
	where(r, line, at, sizeof(at));
	run_fail(r, EXIT_BAD_INPUT, "%s%s: %s", at, what, mv_strerror(err));
	/* The library's sentence says what to do; it gets its own line. */
	if (msg[0]) {
		fprintf(stderr, "memvisor: %s\n", msg);
		if (strlen(r->error) + strlen(msg) + 3 < sizeof(r->error))
			strcat(strcat(r->error, ": "), msg);
	}
}

/* The host's log callback (its own thread): each event once, repeats of
 * the last one left out. */
static void host_log(void *arg, enum mv_log_level level, const char *msg)
{
	struct run *r = arg;

	if (!strcmp(msg, r->host_msg))
		return;
	snprintf(r->host_msg, sizeof(r->host_msg), "%s", msg);
	if (live_message(r->live, msg))
		return;
	fprintf(stderr, "memvisor: host%s: %s\n",
		level == MV_LOG_ERROR ? " error" : "", msg);
}

static int generate_images(struct run *r)
{
	char err[2 * PATH_MAX + 256];
	struct mv_host_config cfg;
	int ret;

	mv_host_config_init(&cfg);
	ret = gen_images_make(&r->sc, &r->gi,
			      r->sc.host.swapdir ? r->sc.host.swapdir :
						   cfg.swapdir,
			      r->out, r->opt.quiet, err, sizeof(err));
	if (ret)
		run_fail(r, ret == -EINTR ? EXIT_INTERRUPTED : EXIT_BAD_INPUT,
			 "%s", err);
	return ret;
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
		pthread_mutex_init(&v->qmp_lock, NULL);
		if (v->cfg->vmm_qemu || v->cfg->vmm_process)
			continue;
		mv_vm_config_init(&cfg);
		snprintf(cfg.name, sizeof(cfg.name), "%s", v->cfg->name);
		cfg.memsize_bytes = v->cfg->memsize;
		cfg.image_path = v->cfg->image;
		memcpy(cfg.salt, v->cfg->salt, sizeof(cfg.salt));
		cfg.shares = scenario_vm_shares(v->cfg);
		cfg.reservation_bytes = v->cfg->reservation;
		cfg.limit_bytes = v->cfg->limit;
		cfg.large_pages_off = v->cfg->large_pages_off;
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

/* A VM's engine stats: its own, or for a QEMU guest or a process VM what
 * its agent last reported to the daemon (-ENOENT while none has). */
static int vm_stats(struct run *r, struct vm_run *v, struct mv_vm_stats *st)
{
	uint64_t actual;
	int ret;

	if (!v->cfg || (!v->cfg->vmm_qemu && !v->cfg->vmm_process))
		return mv_vm_stats(v->vm, st);
	ret = r->daemon ? mv_daemon_vm_stats(r->daemon, v->cfg->name, st) :
			  -ENOENT;
	if (ret || v->cfg->vmm_process)
		return ret;
	/* the balloon is QEMU's (a balloon device is always there): its
	 * size is the guest's RAM less what QEMU says the guest has */
	pthread_mutex_lock(&v->qmp_lock);
	if (v->qemu && qemu_qmp(v->qemu) &&
	    !qmp_query_balloon(qemu_qmp(v->qemu), &actual, 500)) {
		st->balloon_driver = 1;
		st->mctlsz_pages = actual < v->cfg->memsize ?
					   (v->cfg->memsize - actual) >> 12 :
					   0;
		/* the scheduler's measure of this VM's balloon is QEMU's */
		mv_daemon_set_balloon_size(r->daemon, v->cfg->name,
					   st->mctlsz_pages << 12);
	}
	pthread_mutex_unlock(&v->qmp_lock);
	return 0;
}

/* The scheduler's balloon target for a QEMU guest, through its QMP (the
 * daemon's thread; bounded). */
static void qemu_balloon_hook(void *arg, const char *vm_name,
			      const char *qmp_path, uint64_t memsize_bytes,
			      uint64_t balloon_bytes)
{
	struct run *r = arg;

	(void)qmp_path; /* QEMU takes one QMP client: the run's own */
	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		if (!v->cfg || !v->cfg->vmm_qemu ||
		    strcmp(v->cfg->name, vm_name))
			continue;
		pthread_mutex_lock(&v->qmp_lock);
		if (v->qemu && qemu_qmp(v->qemu) &&
		    balloon_bytes < memsize_bytes)
			qmp_balloon(qemu_qmp(v->qemu),
				    memsize_bytes - balloon_bytes, 1000);
		pthread_mutex_unlock(&v->qmp_lock);
	}
}

/* libmemvisor-preload.so beside this program, or $MEMVISOR_PRELOAD ("":
 * none); NULL if there is none (QEMU guests then run unmanaged). */
static const char *preload_path(char *buf, size_t len)
{
	const char *env = getenv("MEMVISOR_PRELOAD");
	char self[PATH_MAX - 32];
	ssize_t n;
	char *slash;

	if (env)
		return *env ? env : NULL;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	snprintf(buf, len, "%s/libmemvisor-preload.so", self);
	return access(buf, R_OK) ? NULL : buf;
}

/*
 * For QEMU guests and VMs in processes of their own: a directory for their
 * consoles and QMP sockets, and the daemon their agents join (always for
 * process VMs; for QEMU guests when the preload library is there).
 */
static int start_daemon(struct run *r)
{
	char preload_buf[PATH_MAX];
	const char *preload = preload_path(preload_buf, sizeof(preload_buf));
	const char *tmp = getenv("TMPDIR");
	bool qemu = false, process = false;
	size_t used = 0;
	int ret;

	for (size_t i = 0; i < r->sc.nvms; i++) {
		qemu |= r->sc.vms[i].vmm_qemu;
		process |= r->sc.vms[i].vmm_process;
	}
	if (!qemu && !process)
		return 0;
	/* short: QMP socket paths must fit a sockaddr_un */
	if (!tmp || !*tmp || strlen(tmp) > 32)
		tmp = "/tmp";
	snprintf(r->qemu_dir, sizeof(r->qemu_dir), "%.32s/memvisor-qemu-XXXXXX",
		 tmp);
	if (!mkdtemp(r->qemu_dir)) {
		ret = -errno;
		r->qemu_dir[0] = 0;
		run_fail(r, EXIT_BAD_INPUT,
			 "cannot make a directory for the QEMU guests: %s",
			 strerror(-ret));
		return ret;
	}
	if (preload || process) {
		snprintf(r->daemon_sock, sizeof(r->daemon_sock),
			 "%s/memvisor.sock", r->qemu_dir);
		ret = mv_daemon_create(r->host, r->daemon_sock, &r->daemon);
		if (ret) {
			r->daemon = NULL;
			r->daemon_sock[0] = 0;
			lib_error(r, r->sc.host.line, "cannot start the daemon",
				  ret);
			return ret;
		}
		mv_daemon_set_balloon_hook(r->daemon, qemu_balloon_hook, r);
	}
	if (qemu && !preload && !r->opt.quiet)
		fprintf(r->out,
			"memvisor: no libmemvisor-preload.so beside this program: QEMU guests run unmanaged\n");
	/* the agents' hosts run with the scenario's [advanced] settings */
	for (size_t i = 0; i < r->sc.nadvanced && used < sizeof(r->settings);
	     i++)
		used += (size_t)snprintf(r->settings + used,
					 sizeof(r->settings) - used, "%s%s=%s",
					 i ? "," : "", r->sc.advanced[i].name,
					 r->sc.advanced[i].value);
	return 0;
}

/*
 * Starts the QEMU guests, each with the test guest's program told to hold
 * and verify its memory for the run's duration, its agent joined to the
 * daemon (start_daemon) if there is one.
 */
static int start_qemu_vms(struct run *r)
{
	char preload_buf[PATH_MAX], err[1024];
	char append[512], at[PATH_MAX + 16];
	const char *preload = preload_path(preload_buf, sizeof(preload_buf));
	int ret;

	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];
		struct qemu_config c = { 0 };

		if (!v->cfg->vmm_qemu)
			continue;
		snprintf(v->console, sizeof(v->console), "%.60s/%.32s.console",
			 r->qemu_dir, v->cfg->name);
		snprintf(v->qmp, sizeof(v->qmp), "%.60s/%.32s.qmp", r->qemu_dir,
			 v->cfg->name);
		snprintf(append, sizeof(append),
			 QEMU_DEFAULT_APPEND
			 " mvguest.hold_s=%u mvguest.seed=%llu",
			 r->sc.host.duration_s,
			 (unsigned long long)v->cfg->seed);
		c.name = v->cfg->name;
		c.memsize = v->cfg->memsize;
		c.kernel = v->cfg->kernel;
		c.initrd = v->cfg->initrd;
		c.append = v->cfg->append ? v->cfg->append : append;
		c.qemu_args = v->cfg->qemu_args;
		c.affinity = v->cfg->ncpus ? &v->cfg->cpus : NULL;
		c.console_path = v->console;
		c.qmp_path = v->qmp;
		c.preload = preload;
		c.agent_socket = r->daemon ? r->daemon_sock : NULL;
		c.swapdir = r->cfg.swapdir;
		c.agent_settings = r->settings;
		ret = qemu_start(&c, 60000, &v->qemu, err, sizeof(err));
		if (ret) {
			v->qemu = NULL;
			where(r, v->cfg->line, at, sizeof(at));
			run_fail(r, EXIT_BAD_INPUT, "%sVM %s: %s", at,
				 v->cfg->name, err);
			return ret;
		}
	}
	return 0;
}

/* Stops every QEMU guest still running (bounded), before the daemon and
 * the host go. */
static void stop_qemu_vms(struct run *r)
{
	for (size_t i = 0; r->vms && i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		if (!v->qemu)
			continue;
		pthread_mutex_lock(&v->qmp_lock);
		qemu_destroy(v->qemu);
		v->qemu = NULL;
		pthread_mutex_unlock(&v->qmp_lock);
	}
	mv_daemon_destroy(r->daemon);
	r->daemon = NULL;
	/* kept with the consoles in it; gone if no guest got as far */
	if (r->qemu_dir[0])
		rmdir(r->qemu_dir);
}

/*
 * A QEMU guest's final verification is its own program's: it verifies its
 * memory to the end of its hold and prints its verdict, then powers off.
 * Waits for that (bounded, and cut short by a cancel) and takes the
 * verdict from the console file.
 */
static int verify_qemu_vm(struct run *r, struct vm_run *v, struct mvg_stats *g)
{
	unsigned limit_s = r->sc.host.duration_s > 120 ? r->sc.host.duration_s :
							 120;
	struct timespec t0;
	struct qemu_verdict vd;
	int ret;

	memset(g, 0, sizeof(*g));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (v->qemu && qemu_running(v->qemu)) {
		if (atomic_load(&r->cancel))
			return -ECANCELED;
		if (since(&t0) > limit_s)
			break;
		qemu_wait(v->qemu, 200, NULL);
	}
	ret = qemu_read_verdict(v->console, &vd);
	if (ret)
		return ret;
	if (!vd.found) {
		g->integrity_errors = 1;
		snprintf(
			g->first_error, sizeof(g->first_error),
			"the guest gave no verdict within %u s (see its console_path)",
			limit_s);
		return 0;
	}
	g->pages_verified = vd.checks;
	g->integrity_errors = vd.ok ? 0 : (vd.errors ? vd.errors : 1);
	if (!vd.ok)
		snprintf(
			g->first_error, sizeof(g->first_error),
			"the guest's program found %llu bad pages (see its console_path)",
			(unsigned long long)vd.errors);
	return 0;
}

/* ---- vmm = process: VMs in processes of their own (guest_process.c) ---- */

/* A process VM's guest stats, from its last ops line (its workload is in
 * its own process); any other VM's from its workload. */
static void guest_stats(const struct vm_run *v, struct mvg_stats *g)
{
	if (!v->cfg || !v->cfg->vmm_process) {
		mvg_get_stats(v->w, g);
		return;
	}
	memset(g, 0, sizeof(*g));
	g->ops = v->proc_ops;
	g->integrity_errors = v->proc_errors;
	if (v->proc_errors)
		snprintf(g->first_error, sizeof(g->first_error),
			 "found by its process (see %.120s)", v->console);
}

/* The lines a process VM's child printed since the last look: its last
 * ops line becomes its ops and integrity errors.  Main thread only. */
static void proc_read(struct vm_run *v)
{
	struct guest_process_line gl;
	char buf[8192], *line, *nl;
	ssize_t n;
	int fd;

	if (!v->pid)
		return;
	fd = open(v->console, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while ((n = pread(fd, buf, sizeof(buf) - 1, v->console_off)) > 0) {
		buf[n] = 0;
		line = buf;
		/* whole lines only: a partial one is read again next time */
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			guest_process_parse(line, &gl);
			if (gl.kind == GP_OPS) {
				v->proc_started = true;
				v->proc_ops = gl.ops;
				v->proc_errors = gl.errors;
			} else if (gl.kind == GP_ERROR) {
				snprintf(v->proc_err, sizeof(v->proc_err), "%s",
					 gl.text);
			}
			v->console_off += nl + 1 - line;
			line = nl + 1;
		}
		if (line == buf) /* a line longer than buf: skip it */
			v->console_off += n;
	}
	close(fd);
}

/* Whether a process VM's child has ended (reaped, without waiting). */
static bool proc_ended(struct vm_run *v)
{
	if (v->pid && !v->reaped && waitpid(v->pid, &v->wstatus, WNOHANG) > 0)
		v->reaped = true;
	return !v->pid || v->reaped;
}

static void proc_how(const struct vm_run *v, char *buf, size_t len)
{
	if (!v->reaped)
		snprintf(buf, len, "did not end");
	else if (WIFSIGNALED(v->wstatus))
		snprintf(buf, len, "was killed by signal %d (%s)",
			 WTERMSIG(v->wstatus), strsignal(WTERMSIG(v->wstatus)));
	else
		snprintf(buf, len, "exited with status %d",
			 WEXITSTATUS(v->wstatus));
}

/* Each second of the timed run: the process VMs' ops, and any child that
 * ended before it was told to (said once; the run goes on, the VM will
 * have no verdict and the exit status is 1). */
static void poll_processes(struct run *r)
{
	char how[128];

	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		if (!v->cfg || !v->cfg->vmm_process || !v->pid)
			continue;
		proc_read(v);
		if (!proc_ended(v) || v->death_shown)
			continue;
		v->death_shown = true;
		proc_how(v, how, sizeof(how));
		live_stop(r->live);
		pthread_mutex_lock(&r->report_lock);
		run_fail(
			r, EXIT_INTEGRITY,
			"VM %s: its process (pid %d) %s during the run%s%s%s, unverified (see %s)",
			v->cfg->name, (int)v->pid, how,
			v->proc_err[0] ? " (" : "", v->proc_err,
			v->proc_err[0] ? ")" : "", v->console);
		pthread_mutex_unlock(&r->report_lock);
	}
}

/*
 * Waits (bounded) until every process VM's child has started its workload
 * (its first ops line); one that ended first, or did not start in time,
 * is a VM that could not start.
 */
static int wait_process_vms(struct run *r)
{
	struct timespec t0, nap = { 0, 10000000L };
	char at[PATH_MAX + 16], how[128];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		while (v->pid && !v->proc_started) {
			proc_read(v);
			if (v->proc_started)
				break;
			if (proc_ended(v) || since(&t0) > PROCESS_START_S) {
				if (v->reaped)
					proc_how(v, how, sizeof(how));
				else
					snprintf(how, sizeof(how),
						 "did not start within %d s",
						 PROCESS_START_S);
				where(r, v->cfg->line, at, sizeof(at));
				run_fail(
					r, EXIT_BAD_INPUT,
					"%sVM %s: its process could not start: %s%s%s%s (see %s)",
					at, v->cfg->name, v->proc_err,
					v->proc_err[0] ? " (its process " : "",
					how, v->proc_err[0] ? ")" : "",
					v->console);
				v->death_shown = true;
				return -ECHILD;
			}
			nanosleep(&nap, NULL);
		}
	}
	return 0;
}

/*
 * Starts each process VM: `memvisor guest-process` (this program again),
 * its stdout and stderr to its console file, in a process group of its
 * own (a ^C reaches the run, which stops it in order), pinned before exec
 * when the VM has cpus, and told to end if the run dies.
 */
static int start_process_vms(struct run *r)
{
	char at[PATH_MAX + 16];
	pid_t self = getpid();

	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];
		const struct sc_vm *c = v->cfg;
		char a[20][64], zipf[32], cpus[1024];
		const char *argv[48];
		sigset_t none;
		int n = 0, fd;
		pid_t pid;

		if (!c->vmm_process)
			continue;
		snprintf(v->console, sizeof(v->console), "%.60s/%.32s.console",
			 r->qemu_dir, c->name);
		fd = open(v->console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0644);
		if (fd < 0) {
			where(r, c->line, at, sizeof(at));
			run_fail(r, EXIT_BAD_INPUT,
				 "%sVM %s: cannot make %s: %s", at, c->name,
				 v->console, strerror(errno));
			return -errno;
		}
		argv[n++] = "memvisor";
		argv[n++] = GUEST_PROCESS_CMD;
		argv[n++] = "--socket";
		argv[n++] = r->daemon_sock;
		argv[n++] = "--name";
		argv[n++] = c->name;
		snprintf(a[0], sizeof(a[0]), "--memsize=%llu",
			 (unsigned long long)c->memsize);
		argv[n++] = a[0];
		argv[n++] = "--swapdir";
		argv[n++] = r->cfg.swapdir;
		argv[n++] = "--settings";
		argv[n++] = r->settings;
		snprintf(a[1], sizeof(a[1]), "--workload=%s",
			 mvg_kind_name(c->workload));
		argv[n++] = a[1];
		snprintf(a[2], sizeof(a[2]), "--threads=%u", c->threads);
		argv[n++] = a[2];
		snprintf(a[3], sizeof(a[3]), "--seed=%llu",
			 (unsigned long long)c->seed);
		argv[n++] = a[3];
		snprintf(zipf, sizeof(zipf), "--zipf=%.17g", c->zipf_s);
		argv[n++] = zipf;
		if (c->kv_text)
			argv[n++] = "--kv-text";
		snprintf(a[4], sizeof(a[4]), "--think-us=%u", c->think_us);
		argv[n++] = a[4];
		snprintf(a[5], sizeof(a[5]), "--shares=%llu",
			 (unsigned long long)scenario_vm_shares(c));
		argv[n++] = a[5];
		snprintf(a[6], sizeof(a[6]), "--reservation=%llu",
			 (unsigned long long)c->reservation);
		argv[n++] = a[6];
		snprintf(a[7], sizeof(a[7]), "--limit=%llu",
			 (unsigned long long)c->limit);
		argv[n++] = a[7];
		if (c->salt[0]) {
			argv[n++] = "--salt";
			argv[n++] = c->salt;
		}
		if (c->large_pages_off)
			argv[n++] = "--large-pages-off";
		snprintf(a[8], sizeof(a[8]), "--burst-pct=%u", c->burst_pct);
		argv[n++] = a[8];
		snprintf(a[9], sizeof(a[9]), "--burst-keep-pct=%u",
			 c->burst_keep_pct);
		argv[n++] = a[9];
		snprintf(a[10], sizeof(a[10]), "--burst-idle-ms=%u",
			 c->burst_idle_ms);
		argv[n++] = a[10];
		snprintf(a[11], sizeof(a[11]), "--write-pct1=%u",
			 c->write_pct1);
		argv[n++] = a[11];
		if (c->ncpus) {
			/* its vCPUs there, the engine's service following
			 * them (guest_process.c says why not the process) */
			size_t used =
				(size_t)snprintf(cpus, sizeof(cpus), "--cpus=");

			for (int k = 0; k < CPU_SETSIZE && used < sizeof(cpus);
			     k++)
				if (CPU_ISSET(k, &c->cpus))
					used += (size_t)snprintf(
						cpus + used,
						sizeof(cpus) - used, "%s%d",
						cpus[used - 1] == '=' ? "" :
									",",
						k);
			argv[n++] = cpus;
		}
		argv[n] = NULL;
		sigemptyset(&none);
		pid = fork();
		if (pid == 0) {
			/* async-signal-safe calls only, until exec */
			int devnull = open("/dev/null", O_RDONLY);

			setpgid(0, 0);
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != self)
				_exit(127);
			if (devnull >= 0)
				dup2(devnull, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			sigprocmask(SIG_SETMASK, &none, NULL);
			execv("/proc/self/exe", (char *const *)argv);
			_exit(127);
		}
		close(fd);
		if (pid < 0) {
			where(r, c->line, at, sizeof(at));
			run_fail(r, EXIT_BAD_INPUT,
				 "%sVM %s: cannot start its process: %s", at,
				 c->name, strerror(errno));
			return -EAGAIN;
		}
		v->pid = pid;
	}
	return wait_process_vms(r);
}

/* Tells every process VM still running to stop and verify itself. */
static void proc_stop_all(struct run *r)
{
	for (size_t i = 0; r->vms && i < r->sc.nvms; i++)
		if (r->vms[i].pid && !proc_ended(&r->vms[i]))
			kill(r->vms[i].pid, SIGTERM);
}

/*
 * A process VM's final verification is its child's: told to stop (by
 * proc_stop_all), it reads back every page and prints its verdict, then
 * ends.  Waits for that (bounded by its memsize, and cut short by a
 * cancel) and takes the verdict from its console file.  No verdict: the
 * run's error says which VM and how its process ended (-ESRCH).  Sets
 * *secs to how long the child's workload ran (0: unknown).
 */
static int verify_process_vm(struct run *r, struct vm_run *v,
			     struct mvg_stats *g, double *secs)
{
	/* kvstore's read-back of a few hundred MiB under pressure can take
	 * tens of seconds on a loaded machine */
	unsigned limit_s = 60 + (unsigned)(v->cfg->memsize >> 22);
	struct guest_process_line gl;
	char *line = NULL, how[128], err[256] = "";
	bool found = false;
	struct timespec t0, nap = { 0, 50000000L };
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	memset(g, 0, sizeof(*g));
	*secs = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!proc_ended(v)) {
		if (atomic_load(&r->cancel))
			return -ECANCELED;
		if (since(&t0) > limit_s)
			break;
		nanosleep(&nap, NULL);
	}
	f = fopen(v->console, "r");
	while (f && (len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = 0;
		guest_process_parse(line, &gl);
		if (gl.kind == GP_FIRST_ERROR)
			snprintf(g->first_error, sizeof(g->first_error), "%s",
				 gl.text);
		else if (gl.kind == GP_ERROR)
			snprintf(err, sizeof(err), "%s", gl.text);
		else if (gl.kind == GP_VERDICT) {
			found = true;
			g->ops = gl.ops;
			g->integrity_errors = gl.ok	? 0 :
					      gl.errors ? gl.errors :
							  1;
			g->pages_verified = gl.pages;
			*secs = gl.secs;
		}
	}
	free(line);
	if (f)
		fclose(f);
	if (found) {
		v->proc_ok = !g->integrity_errors;
		return 0;
	}
	if (v->reaped) {
		proc_how(v, how, sizeof(how) - 24);
		strcat(how, " without a verdict");
	} else {
		snprintf(how, sizeof(how), "gave no verdict within %u s",
			 limit_s);
	}
	pthread_mutex_lock(&r->report_lock);
	run_fail(r, EXIT_INTEGRITY,
		 "VM %s: its process (pid %d) %s%s%s%s, unverified (see %s)",
		 v->cfg->name, (int)v->pid, how, err[0] ? " (" : "", err,
		 err[0] ? ")" : "", v->console);
	pthread_mutex_unlock(&r->report_lock);
	return -ESRCH;
}

/* Ends every process VM still running (SIGTERM was sent: a bounded wait,
 * then SIGKILL) before the daemon goes; removes the consoles of those
 * verified clean. */
static void stop_process_vms(struct run *r)
{
	struct timespec t0, nap = { 0, 20000000L };

	proc_stop_all(r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; r->vms && i < r->sc.nvms; i++)
		while (!proc_ended(&r->vms[i]) && since(&t0) < 5)
			nanosleep(&nap, NULL);
	for (size_t i = 0; r->vms && i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		if (!v->pid)
			continue;
		if (!proc_ended(v)) {
			kill(v->pid, SIGKILL);
			if (waitpid(v->pid, &v->wstatus, 0) > 0)
				v->reaped = true;
		}
		if (v->proc_ok)
			unlink(v->console);
	}
}

static int start_workloads(struct run *r)
{
	struct mvg_config cfg;
	char at[PATH_MAX + 16];
	int err;

	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		if (v->cfg->vmm_qemu || v->cfg->vmm_process)
			continue;
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
		cfg.cpus = v->cfg->ncpus ? &v->cfg->cpus : NULL;
		cfg.balloon_vm = v->cfg->balloon ? v->vm : NULL;
		cfg.burst_pct = v->cfg->burst_pct;
		cfg.burst_keep_pct = v->cfg->burst_keep_pct;
		cfg.burst_idle_ms = v->cfg->burst_idle_ms;
		cfg.image_write_pct1 = v->cfg->write_pct1;
		err = mvg_start(&cfg, &v->w);
		if (err) {
			v->w = NULL;
			where(r, v->cfg->line, at, sizeof(at));
			run_fail(r, EXIT_BAD_INPUT,
				 "%scannot start the %s workload on VM %s: %s",
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

		if (vm->vmm_qemu)
			fprintf(r->out, "  vm %-16s %8.1f MB  QEMU guest",
				vm->name, mb(vm->memsize));
		else
			fprintf(r->out,
				"  vm %-16s %8.1f MB  %-8s %2u thread%s%s",
				vm->name, mb(vm->memsize),
				mvg_kind_name(vm->workload), vm->threads,
				vm->threads == 1 ? "" : "s",
				vm->vmm_process ? " in a process of its own" :
						  "");
		fprintf(r->out, "  %llu shares",
			(unsigned long long)scenario_vm_shares(vm));
		if (vm->ncpus) {
			char cpus[256];

			scenario_cpus_format(&vm->cpus, cpus, sizeof(cpus));
			fprintf(r->out, "  on CPU%s %s",
				vm->ncpus == 1 ? "" : "s", cpus);
		}
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
		if (vm->image_generated)
			fprintf(r->out, "  image generated (os %s, seed %llu)",
				vm->image_spec.os,
				(unsigned long long)vm->image_spec.seed);
		else if (vm->image)
			fprintf(r->out, "  image %s", vm->image);
		fprintf(r->out, "\n");
	}
	for (size_t i = 0; i < sc->nadvanced; i++)
		fprintf(r->out, "  [advanced] %s = %s\n", sc->advanced[i].name,
			sc->advanced[i].value);
	fprintf(r->out, "  swap files in %s\n", r->cfg.swapdir);
	preflight_print(sc, &r->pf, r->out, stderr);
	if (!r->opt.quiet && !r->opt.live)
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

static void add_vm(struct run *r, struct vm_run *v, struct totals *t)
{
	struct mv_vm_stats st;
	struct mvg_stats g;
	char msg[256];

	if (vm_stats(r, v, &st))
		st = v->last;
	guest_stats(v, &g);
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
		snprintf(msg, sizeof(msg), "INTEGRITY ERROR in VM %s: %s",
			 v->cfg->name, g.first_error);
		/* on the live screen if it is up, not over it */
		if (!live_message(r->live, msg))
			fprintf(stderr, "memvisor: %s\n", msg);
		v->error_shown = true;
	}
}

/* A VM whose engine runs in a process of its own (its agent reports to the
 * run's daemon): the host's figures add what it reported (report.c). */
static bool remote_vm(const struct vm_run *v)
{
	return v->cfg && (v->cfg->vmm_process || v->cfg->vmm_qemu);
}

/* The snapshot the live screen and the metrics show, taken each second of
 * the timed run; rates come from the one before (snap.c).  The host's
 * figures count VMs in processes of their own, as the final report does. */
static void publish(struct run *r, double t)
{
	struct mv_vm_stats st;
	struct mvg_stats g;
	bool host;

	if (!r->live && !r->metrics)
		return;
	host = !mv_host_stats(r->host, &r->snap.host);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		if (vm_stats(r, &r->vms[i], &st)) {
			/* not seen this second: its last figures count */
			if (host && remote_vm(&r->vms[i]))
				report_host_add_remote(&r->snap.host,
						       &r->vms[i].last);
			continue;
		}
		guest_stats(&r->vms[i], &g);
		snap_vm_update(&r->snap.vms[i], &st, g.ops, g.integrity_errors,
			       t);
		if (host && remote_vm(&r->vms[i]))
			report_host_add_remote(&r->snap.host, &st);
	}
	if (host)
		r->snap.have_host = true;
	r->snap.t_s = t;
	r->snap.seq++;
	live_update(r->live, &r->snap);
	metrics_publish(r->metrics, &r->snap);
}

/* One live line: the host, then the VMs' totals over the last second. */
static void live_line(struct run *r, double t, double dt)
{
	struct totals tot = { 0 };
	struct mv_host_stats h;

	for (size_t i = 0; i < r->sc.nvms; i++)
		add_vm(r, &r->vms[i], &tot);
	if (r->opt.quiet || r->opt.live || mv_host_stats(r->host, &h))
		return;
	for (size_t i = 0; i < r->sc.nvms; i++)
		if (remote_vm(&r->vms[i]))
			report_host_add_remote(&h, &r->vms[i].last);
	progress_clear(&r->load_progress);
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

/* A sample of the time series: the host and the VMs now.  The stats are
 * read before report_lock is taken, which stays a leaf. */
static void sample(struct run *r, double t)
{
	struct mv_vm_stats *st = calloc(r->sc.nvms, sizeof(*st));
	uint64_t *ops = calloc(r->sc.nvms, sizeof(*ops));
	struct mv_host_stats h;
	struct mvg_stats g;

	if (st && ops && !mv_host_stats(r->host, &h)) {
		for (size_t i = 0; i < r->sc.nvms; i++) {
			if (vm_stats(r, &r->vms[i], &st[i]))
				st[i] = r->vms[i].last;
			guest_stats(&r->vms[i], &g);
			ops[i] = g.ops;
			if (remote_vm(&r->vms[i]))
				report_host_add_remote(&h, &st[i]);
		}
		pthread_mutex_lock(&r->report_lock);
		series_begin(&r->series, t, &h);
		for (size_t i = 0; i < r->sc.nvms; i++)
			series_vm(&r->series, i, &st[i], ops[i]);
		series_end(&r->series);
		pthread_mutex_unlock(&r->report_lock);
	}
	free(st);
	free(ops);
}

/* How far the VMs started from images are in reading them (a restore's
 * load), under the live line; once, when all have, how long it took. */
static void load_progress(struct run *r, double t)
{
	uint64_t done = 0, total = 0;
	struct mvg_stats g;

	if (r->loaded)
		return;
	for (size_t i = 0; i < r->sc.nvms; i++) {
		mvg_get_stats(r->vms[i].w, &g);
		done += g.loaded_pages;
		total += g.load_pages;
	}
	if (done < total) {
		progress_update(&r->load_progress, done << 12, total << 12);
		return;
	}
	r->loaded = true;
	progress_clear(&r->load_progress);
	if (total && !r->opt.quiet) {
		char msg[128];

		snprintf(
			msg, sizeof(msg),
			"images loaded: every page of %llu MB read and checked in %.0f s",
			(unsigned long long)(total >> 8), t);
		/* on the live screen's message line while it is up */
		if (!live_message(r->live, msg))
			fprintf(r->out, "%s\n", msg);
	}
}

/* The timed run.  Returns the signal that ended it early, or 0. */
static int watch(struct run *r)
{
	unsigned duration = r->sc.host.duration_s, tick = 0;
	double t, prev = 0, left;
	struct timespec timeout;
	sigset_t wait_for = r->stop_signals;
	siginfo_t info;
	int sig;

	poll_processes(r);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_run *v = &r->vms[i];

		vm_stats(r, v, &v->start);
		v->last = v->start;
		v->last_ops = v->proc_ops;
	}
	progress_init(&r->load_progress, r->out, r->opt.quiet || r->opt.live,
		      "loading images");
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	sample(r, 0);
	/* `q` on the live screen: its thread signals this one (on_quit) */
	if (r->live)
		sigaddset(&wait_for, SIGUSR1);
	publish(r, 0);
	while (tick < duration) {
		left = tick + 1 - since(&r->t0);
		if (left > 0) {
			timeout.tv_sec = (time_t)left;
			timeout.tv_nsec =
				(long)((left - (double)timeout.tv_sec) * 1e9);
			sig = sigtimedwait(&wait_for, &info, &timeout);
			if (sig == SIGUSR1) {
				/* from another process: not the screen's */
				if (info.si_pid != getpid())
					continue;
				r->quit_live = true;
				return 0;
			}
			if (sig > 0) {
				live_stop(r->live);
				fprintf(stderr,
					"\nmemvisor: %s: stopping the guests early\n",
					strsignal(sig));
				return sig;
			}
			if (errno == EINTR)
				continue;
		}
		tick++;
		t = since(&r->t0);
		poll_processes(r);
		live_line(r, tick, t - prev);
		sample(r, t);
		publish(r, t);
		load_progress(r, tick);
		prev = t;
	}
	return 0;
}

/* The end-of-run stats, taken before the verification disturbs them.
 * Called with report_lock held. */
static void collect(struct run *r)
{
	struct run_result *res = &r->res;
	struct mvg_stats g;

	res->swapdir = r->cfg.swapdir;
	res->duration_s = since(&r->t0);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_result *v = &res->vms[i];
		struct vm_run *vr = &r->vms[i];
		double in, out;

		v->vm = vr->cfg;
		if (vm_stats(r, vr, &v->st))
			v->st = vr->last;
		v->console_path = vr->qemu ? vr->console : NULL;
		guest_stats(vr, &g);
		v->ops = g.ops;
		v->guest = g;
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
	/* VMs in other processes: their engines' figures, as its own VMs' */
	for (size_t i = 0; i < r->sc.nvms; i++)
		if (remote_vm(&r->vms[i]))
			report_host_add_remote(&res->host, &res->vms[i].st);
	res->have_stats = true;
}

/* Every workload is told to stop before any is waited for, so that the
 * last one is not still running while the first are verified. */
static void halt_all(struct run *r)
{
	proc_stop_all(r);
	for (size_t i = 0; i < r->sc.nvms; i++)
		mvg_request_stop(r->vms[i].w);
	for (size_t i = 0; i < r->sc.nvms; i++)
		mvg_halt(r->vms[i].w);
}

/* A verifier thread: takes the next VM not yet verified until none is
 * left.  After a cancel, the VMs it takes are left unverified. */
static void *verifier(void *arg)
{
	struct run *r = arg;
	struct timespec t;
	struct mvg_stats g;
	double secs;
	size_t i;
	int err;

	while ((i = atomic_fetch_add(&r->next_verify, 1)) < r->sc.nvms) {
		struct vm_result *v = &r->res.vms[i];
		struct vm_run *vr = &r->vms[i];

		clock_gettime(CLOCK_MONOTONIC, &t);
		secs = 0;
		if (atomic_load(&r->cancel)) {
			guest_stats(vr, &g);
			err = -ECANCELED;
		} else if (vr->cfg->vmm_qemu) {
			err = verify_qemu_vm(r, vr, &g);
		} else if (vr->cfg->vmm_process) {
			err = verify_process_vm(r, vr, &g, &secs);
		} else {
			err = mvg_verify(vr->w, &r->cancel, &g);
		}
		pthread_mutex_lock(&r->report_lock);
		if (vr->cfg->vmm_process) {
			/* its ops and rate are its child's own count */
			if (!err) {
				v->ops = g.ops;
				if (secs > 0)
					v->ops_s = (double)g.ops / secs;
			} else {
				g.ops = v->ops;
			}
			if (!vr->proc_ok)
				v->console_path = vr->console;
		}
		v->guest = g;
		v->verified = !err;
		v->verify_err = err == -ECANCELED ? 0 : err;
		vr->verify_s = since(&t);
		vr->verify_done = true;
		pthread_mutex_unlock(&r->report_lock);
		atomic_fetch_add(&r->verified, 1);
	}
	return NULL;
}

/* Prints the line of each VM whose verification ended since last time. */
static void show_verified(struct run *r)
{
	pthread_mutex_lock(&r->report_lock);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		struct vm_result *v = &r->res.vms[i];
		struct vm_run *vr = &r->vms[i];

		if (!vr->verify_done || vr->verify_shown)
			continue;
		vr->verify_shown = true;
		if (r->opt.quiet)
			continue;
		progress_clear(&r->verify_progress);
		if (v->verified || v->verify_err)
			fprintf(r->out,
				"  %-16s read back in %5.1f s: %llu integrity errors (%llu page checks in the whole run)\n",
				vr->cfg->name, vr->verify_s,
				(unsigned long long)v->guest.integrity_errors,
				(unsigned long long)v->guest.pages_verified);
		else
			fprintf(r->out,
				"  %-16s not verified to the end (interrupted): %llu integrity errors so far\n",
				vr->cfg->name,
				(unsigned long long)v->guest.integrity_errors);
	}
	pthread_mutex_unlock(&r->report_lock);
	fflush(r->out);
}

static void write_report(struct run *r);
static void finish_result(struct run *r);

/* The verification did not end after a cancel: the report is written with
 * what is known, and the process ends without waiting any longer. */
static void abandon(struct run *r, const char *why)
{
	progress_clear(&r->verify_progress);
	fprintf(stderr,
		"memvisor: %s: writing the report and ending without waiting\n",
		why);
	pthread_mutex_lock(&r->report_lock);
	finish_result(r);
	write_report(r);
	_exit(r->res.exit_status);
}

/* How far the verification is: pages read back since it began (base)
 * against the pages it will read (total). */
static void verify_progress(struct run *r, uint64_t base, uint64_t total)
{
	uint64_t done = 0;
	struct mvg_stats g;

	for (size_t i = 0; i < r->sc.nvms; i++) {
		mvg_get_stats(r->vms[i].w, &g);
		done += g.pages_verified;
	}
	progress_update(&r->verify_progress,
			(done > base ? done - base : 0) << 12, total << 12);
}

/*
 * Verifies every VM on a few threads while the main thread takes signals:
 * the first cancels what is left of the verification, a second (or a
 * verification still running CANCEL_GRACE_S later) ends the process with
 * the report written.
 */
static void verify_all(struct run *r)
{
	struct timespec poll = { 0, VERIFY_POLL_MS * 1000000L }, cancel_t0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = ncpu < 2 ? 2 : (size_t)ncpu, started = 0;
	pthread_t tids[MAX_VERIFIERS];
	uint64_t base = 0, total = 0;
	struct mvg_stats g;
	int sig;

	if (n > MAX_VERIFIERS)
		n = MAX_VERIFIERS;
	if (n > r->sc.nvms)
		n = r->sc.nvms;
	progress_clear(&r->load_progress);
	if (!r->opt.quiet)
		fprintf(r->out,
			"\nstopping the guests and reading back every page they wrote:\n");
	fflush(r->out);
	halt_all(r);
	for (size_t i = 0; i < r->sc.nvms; i++) {
		mvg_get_stats(r->vms[i].w, &g);
		base += g.pages_verified;
		total += mvg_verify_pages(r->vms[i].w);
	}
	/* QEMU guests verify themselves: nothing to show if only they do */
	progress_init(&r->verify_progress, r->out, r->opt.quiet || !total,
		      "verifying");
	for (size_t i = 0; i < n; i++)
		if (!pthread_create(&tids[started], NULL, verifier, r))
			started++;
	if (!started)
		verifier(r);
	while (atomic_load(&r->verified) < r->sc.nvms) {
		sig = sigtimedwait(&r->stop_signals, NULL, &poll);
		show_verified(r);
		verify_progress(r, base, total);
		if (sig > 0 && !atomic_load(&r->cancel)) {
			fprintf(stderr,
				"\nmemvisor: %s: ending the verification early; the report follows (again to end at once)\n",
				strsignal(sig));
			pthread_mutex_lock(&r->report_lock);
			r->interrupted = STAGE_VERIFY;
			r->signal = sig;
			pthread_mutex_unlock(&r->report_lock);
			atomic_store(&r->cancel, true);
			clock_gettime(CLOCK_MONOTONIC, &cancel_t0);
		} else if (sig > 0) {
			abandon(r, strsignal(sig));
		}
		if (atomic_load(&r->cancel) &&
		    since(&cancel_t0) > CANCEL_GRACE_S)
			abandon(r, "the verification did not stop");
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	show_verified(r);
	progress_clear(&r->verify_progress);
}

static const char *sig_name(int sig)
{
	return sig == SIGINT  ? "SIGINT" :
	       sig == SIGTERM ? "SIGTERM" :
				"a signal";
}

/* The exit status and the report's error text, from everything known.
 * Called with report_lock held. */
static void finish_result(struct run *r)
{
	struct run_result *res = &r->res;
	const struct vm_result *first = NULL, *failed = NULL;

	res->integrity_errors = 0;
	res->verify_failures = 0;
	res->unverified = 0;
	for (size_t i = 0; res->have_stats && i < r->sc.nvms; i++) {
		const struct vm_result *v = &res->vms[i];

		res->integrity_errors += v->guest.integrity_errors;
		if (v->guest.integrity_errors && !first)
			first = v;
		if (v->verify_err) {
			res->verify_failures++;
			if (!failed)
				failed = v;
		} else if (!v->verified) {
			res->unverified++;
		}
	}
	res->sc = r->have_sc ? &r->sc : NULL;
	res->scenario_name = r->opt.scenario;
	res->interrupted = r->interrupted != STAGE_NONE;
	res->interrupted_during = r->interrupted == STAGE_RUN ? "run" :
				  r->interrupted == STAGE_VERIFY ?
								"verification" :
								NULL;
	res->signal = r->signal;
	if (r->status) {
		res->exit_status = r->status;
		snprintf(r->verdict, sizeof(r->verdict), "%s", r->error);
	} else if (first) {
		res->exit_status = EXIT_INTEGRITY;
		snprintf(r->verdict, sizeof(r->verdict),
			 "%llu integrity errors; the first in VM %s: %s",
			 (unsigned long long)res->integrity_errors,
			 first->vm->name, first->guest.first_error);
	} else if (failed) {
		res->exit_status = EXIT_INTEGRITY;
		snprintf(r->verdict, sizeof(r->verdict),
			 "VM %s: the final verification could not run: %s",
			 failed->vm->name, strerror(-failed->verify_err));
	} else if (r->interrupted == STAGE_VERIFY) {
		res->exit_status = EXIT_INTERRUPTED;
		snprintf(
			r->verdict, sizeof(r->verdict),
			"interrupted by %s during the final verification: %u of %zu VMs not verified to the end (every page read back so far matched)",
			sig_name(r->signal), res->unverified, r->sc.nvms);
	} else if (r->interrupted == STAGE_RUN) {
		res->exit_status = EXIT_INTERRUPTED;
		snprintf(
			r->verdict, sizeof(r->verdict),
			"interrupted by %s after %.1f s of the timed run (every page was still verified)",
			sig_name(r->signal), res->duration_s);
	} else {
		res->exit_status = 0;
		r->verdict[0] = '\0';
	}
	/* the JSON cannot say this; the exit status can */
	if (!res->exit_status && r->json_failed)
		res->exit_status = EXIT_BAD_INPUT;
	res->error = r->verdict;
}

/* The JSON report, if one was asked for.  Called with report_lock held. */
static void write_report(struct run *r)
{
	char err[PATH_MAX + 128];

	if (!r->opt.json)
		return;
	if (report_write_json(&r->json, &r->res, err, sizeof(err))) {
		fprintf(stderr, "memvisor: %s\n", err);
		r->json_failed = true;
		if (!r->res.exit_status)
			r->res.exit_status = EXIT_BAD_INPUT;
	}
	r->json_written = true;
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
		run_fail(r, EXIT_BAD_INPUT, "%s", err);
		return ret;
	}
	r->have_sc = true;
	if (r->opt.duration_s)
		r->sc.host.duration_s = r->opt.duration_s;
	return 0;
}

static int prepare_json(struct run *r)
{
	char err[PATH_MAX + 128];

	if (!r->opt.json)
		return 0;
	if (report_json_prepare(r->opt.json, &r->json, err, sizeof(err))) {
		fprintf(stderr, "memvisor: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

/*
 * A guest thread touching a page the engine lost (mv_host_stats'
 * lost_pages) can never proceed, nor be joined: the run could only hang.
 * This thread notices, writes the report with what it knows, and ends the
 * process with a clear message instead.
 */
static void *lost_page_watch(void *arg)
{
	struct run *r = arg;
	struct timespec ts = { 0, 500000000L };
	struct mv_host_stats hs;

	while (!atomic_load(&r->watch_stop)) {
		mv_host_stats(r->host, &hs);
		if (hs.lost_pages) {
			live_stop(r->live);
			fprintf(stderr,
				"memvisor: engine bug: %llu guest page(s) lost: %s\nmemvisor: a guest thread is stuck on it; aborting the run\n",
				(unsigned long long)hs.lost_pages,
				mv_host_errmsg(r->host));
			pthread_mutex_lock(&r->report_lock);
			if (!r->res.have_stats)
				collect(r);
			r->res.host.lost_pages = hs.lost_pages;
			r->status = EXIT_ENGINE_BUG;
			snprintf(r->error, sizeof(r->error),
				 "engine bug: %llu guest page(s) lost: %s",
				 (unsigned long long)hs.lost_pages,
				 mv_host_errmsg(r->host));
			finish_result(r);
			write_report(r);
			_exit(EXIT_ENGINE_BUG);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* A signal that came after the verification (during the teardown) is
 * taken here, so that it cannot end the process before the report. */
static void drain_signals(struct run *r)
{
	struct timespec zero = { 0, 0 };
	int sig;

	while ((sig = sigtimedwait(&r->stop_signals, NULL, &zero)) > 0)
		fprintf(stderr,
			"memvisor: %s while shutting down: finishing the report\n",
			strsignal(sig));
}

/* `q` on the live screen (its thread): ends the timed run as a signal
 * would, but as asked for, not as an interruption. */
static void quit_from_live(void *arg)
{
	struct run *r = arg;

	pthread_kill(r->main_thread, SIGUSR1);
}

/*
 * --metrics and --live, once the scenario is known and before any guest
 * starts: a port in use or a bad address ends the run here, with status 2.
 */
static int prepare_views(struct run *r)
{
	char err[256];

	if (snap_init(&r->snap, r->sc.nvms)) {
		run_fail(r, EXIT_BAD_INPUT, "out of memory");
		return -1;
	}
	snprintf(r->snap.scenario, sizeof(r->snap.scenario), "%s",
		 r->sc.source);
	r->snap.duration_s = r->sc.host.duration_s;
	for (size_t i = 0; i < r->sc.nvms; i++)
		snprintf(r->snap.vms[i].name, sizeof(r->snap.vms[i].name), "%s",
			 r->sc.vms[i].name);
	if (r->opt.metrics) {
		if (metrics_start(r->opt.metrics, &r->metrics, err,
				  sizeof(err))) {
			run_fail(r, EXIT_BAD_INPUT, "%s", err);
			return -1;
		}
		fprintf(r->out, "metrics: %s (and /healthz)\n",
			metrics_url(r->metrics));
		fflush(r->out);
	}
	if (r->opt.live && !(r->live = live_create(r->sc.nvms))) {
		run_fail(r, EXIT_BAD_INPUT, "out of memory");
		return -1;
	}
	return 0;
}

int run_main(int argc, char **argv)
{
	struct run r = { .status = 0 };
	char msg[512];
	bool watching = false;
	pthread_t watcher;
	int ret, sig;

	ret = parse_args(&r.opt, argc, argv);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (r.opt.live && live_check_terminal(msg, sizeof(msg))) {
		fprintf(stderr, "memvisor run: %s\n", msg);
		return EXIT_BAD_INPUT;
	}
	r.out = r.opt.json && !strcmp(r.opt.json, "-") ? stderr : stdout;
	/* before any thread: it reads the umask */
	if (prepare_json(&r))
		return EXIT_BAD_INPUT;
	pthread_mutex_init(&r.report_lock, NULL);
	sigemptyset(&r.stop_signals);
	sigaddset(&r.stop_signals, SIGINT);
	sigaddset(&r.stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &r.stop_signals, &r.old_mask);
	if (r.opt.live) {
		/* for the screen's thread alone (live.c), and its `q` */
		sigset_t screen;

		sigemptyset(&screen);
		sigaddset(&screen, SIGUSR1);
		sigaddset(&screen, SIGWINCH);
		sigaddset(&screen, SIGTSTP);
		pthread_sigmask(SIG_BLOCK, &screen, NULL);
	}
	r.main_thread = pthread_self();
	if (mv_check_system(msg, sizeof(msg))) {
		run_fail(&r, EXIT_BAD_INPUT, "%s", msg);
		goto out;
	}
	if (load_scenario(&r))
		goto out;
	if (prepare_views(&r))
		goto out;
	/* before the host and VMs, whose own mappings the bound includes */
	preflight_measure(&r.sc, &r.pf);
	r.vms = calloc(r.sc.nvms, sizeof(*r.vms));
	r.res.vms = calloc(r.sc.nvms, sizeof(*r.res.vms));
	if (!r.vms || !r.res.vms || series_init(&r.series, r.sc.nvms, 0)) {
		run_fail(&r, EXIT_BAD_INPUT, "out of memory");
		goto out;
	}
	r.res.series = &r.series;
	if (generate_images(&r) || start_host(&r))
		goto out_vms;
	if (start_vms(&r))
		goto out_vms;
	if (start_workloads(&r) || start_daemon(&r) || start_qemu_vms(&r) ||
	    start_process_vms(&r))
		goto out_workloads;
	print_summary(&r);
	watching = !pthread_create(&watcher, NULL, lost_page_watch, &r);
	if (r.live &&
	    live_start(r.live, quit_from_live, &r, msg, sizeof(msg))) {
		/* r.live stays (the host's log thread may look at it), down */
		fprintf(stderr, "memvisor: %s; showing the live line instead\n",
			msg);
		r.opt.live = false;
	}
	sig = watch(&r);
	live_stop(r.live);
	if (r.quit_live)
		fprintf(r.out,
			"memvisor: the run was ended from the live screen after %.1f s\n",
			since(&r.t0));
	pthread_mutex_lock(&r.report_lock);
	if (sig) {
		r.interrupted = STAGE_RUN;
		r.signal = sig;
	}
	collect(&r);
	pthread_mutex_unlock(&r.report_lock);
	verify_all(&r);
	if (watching) {
		atomic_store(&r.watch_stop, true);
		pthread_join(watcher, NULL);
	}
	/* Before the teardown, which cannot change the verdict, so that not
	 * even a teardown that never ended could keep the report back. */
	pthread_mutex_lock(&r.report_lock);
	finish_result(&r);
	write_report(&r);
	pthread_mutex_unlock(&r.report_lock);
out_workloads:
	for (size_t i = 0; i < r.sc.nvms; i++)
		if (r.vms[i].w)
			mvg_stop(r.vms[i].w);
out_vms:
	stop_process_vms(&r);
	stop_qemu_vms(&r);
	if (r.res.have_stats && !r.opt.quiet)
		fprintf(r.out, "shutting down the VMs...\n");
	fflush(r.out);
	for (size_t i = r.sc.nvms; r.vms && i-- > 0;)
		if (r.vms[i].vm)
			mv_vm_destroy(r.vms[i].vm);
	mv_host_destroy(r.host);
	gen_images_free(&r.gi);
out:
	metrics_stop(r.metrics);
	live_destroy(r.live);
	r.live = NULL;
	snap_free(&r.snap);
	drain_signals(&r);
	pthread_mutex_lock(&r.report_lock);
	finish_result(&r);
	/* After the teardown, so the verdict is the last thing printed. */
	if (r.res.have_stats) {
		report_print(r.out, &r.res);
		fflush(r.out);
	}
	if (!r.json_written)
		write_report(&r);
	ret = r.res.exit_status;
	pthread_mutex_unlock(&r.report_lock);
	report_json_target_free(&r.json);
	series_free(&r.series);
	free(r.res.vms);
	free(r.vms);
	scenario_free(&r.sc);
	pthread_mutex_destroy(&r.report_lock);
	return ret;
}
