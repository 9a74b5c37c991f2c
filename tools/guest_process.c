// SPDX-License-Identifier: MIT
/*
 * guest_process.c - `memvisor guest-process` (hidden): one `vmm = process`
 * VM of a `memvisor run`, in a process of its own, as a VMM would run it.
 *
 * Why: VMs in one process share one address space, so every page the
 * engine moves out of any of them (UFFDIO_MOVE) flushes the TLBs of every
 * CPU that process runs on; a VM in its own process disturbs only its own
 * CPUs, as under a real VMM (docs/VMM.md).
 *
 * Design: the host here is this process's own, its budget the VM's
 * memsize until the daemon's first grant arrives (as the preload does);
 * the agent (mv_agent_create) joins the run's daemon on --socket and from
 * then on the daemon's grants are the budget.  The guest workload is
 * guest/workload.c's, configured from the arguments.  A pinned VM's
 * CPUs come as --cpus: its guest (vCPU) threads are made on them
 * (mvg_config.cpus), and the engine's fault and reclaim threads follow
 * them (Mem.ServiceAffinity); the process itself is not pinned, so the
 * host's other threads (its scheduler and sampler, the agent) go where
 * the kernel puts them.  (With the whole process on one CPU, two
 * UFFDIO_MOVE calls of one VM, the sampler's and reclaim's, were seen
 * sleeping in the kernel's move_pages_ptes for seconds at a time, and the
 * VM ran at 600 ops/s against 100k+ for the others.)  The main thread blocks
 * SIGTERM, SIGINT and SIGHUP before any thread exists and takes them in
 * sigtimedwait, one second at a time, printing the ops line each second
 * (guest_process.h gives the lines); the first one stops, verifies and
 * ends.  PR_SET_PDEATHSIG makes the parent's death a SIGTERM, so a child
 * never outlives its run for long.
 *
 * Invariants: stdout carries only MVPROC lines (the host's log goes to
 * stderr); the verdict line is the last thing printed on stdout and comes
 * only after every page was read back; the agent is destroyed before its
 * VM and the VM before its host; exit 0 only with a verdict of ok.
 *
 * Lock ordering: none here; one thread of this file, the library's and the
 * workload's threads live behind their APIs.
 */
#include <errno.h>
#include <sched.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "guest_process.h"
#include "memvisor.h"

struct gp_args {
	const char *socket, *swapdir, *settings;
	cpu_set_t cpus; /* --cpus, for wc.cpus */
	struct mv_vm_config vc;
	struct mvg_config wc;
};

static void gp_log(void *arg, enum mv_log_level level, const char *msg)
{
	const char *name = arg;

	fprintf(stderr, "memvisor guest-process %s: %s%s\n", name,
		level == MV_LOG_ERROR ? "error: " : "", msg);
}

static int num(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

/* "Mem.X=v,Mem.Y=w" through mv_settings_set; -EINVAL names the pair. */
static int apply_settings(struct mv_settings *s, const char *text)
{
	char buf[2048], *save = NULL, *item, *eq;

	if (!text || !*text)
		return 0;
	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	for (item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		eq = strchr(item, '=');
		if (!eq)
			return -EINVAL;
		*eq = '\0';
		if (mv_settings_set(s, item, eq + 1)) {
			printf("MVPROC error=cannot set %s=%s\n", item, eq + 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* "0,3,5": the CPUs the parent gives, as numbers; -EINVAL if bad */
static int cpu_list(const char *s, cpu_set_t *set)
{
	uint64_t v;
	char num_buf[24];
	size_t n;

	CPU_ZERO(set);
	while (*s) {
		n = strcspn(s, ",");
		if (!n || n >= sizeof(num_buf))
			return -EINVAL;
		memcpy(num_buf, s, n);
		num_buf[n] = 0;
		if (num(num_buf, &v) || v >= CPU_SETSIZE)
			return -EINVAL;
		CPU_SET((int)v, set);
		s += n + (s[n] == ',');
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

static int parse(int argc, char **argv, struct gp_args *a)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "name", required_argument, NULL, 'n' },
		{ "memsize", required_argument, NULL, 'm' },
		{ "swapdir", required_argument, NULL, 'd' },
		{ "settings", required_argument, NULL, 'A' },
		{ "workload", required_argument, NULL, 'w' },
		{ "threads", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "zipf", required_argument, NULL, 'z' },
		{ "kv-text", no_argument, NULL, 'k' },
		{ "think-us", required_argument, NULL, 'T' },
		{ "shares", required_argument, NULL, 'h' },
		{ "reservation", required_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'l' },
		{ "salt", required_argument, NULL, 'a' },
		{ "large-pages-off", no_argument, NULL, 'L' },
		{ "burst-pct", required_argument, NULL, 'b' },
		{ "burst-keep-pct", required_argument, NULL, 'B' },
		{ "burst-idle-ms", required_argument, NULL, 'i' },
		{ "write-pct1", required_argument, NULL, 'W' },
		{ "cpus", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v = 0;
	char *end;
	int c, bad = 0;

	mv_vm_config_init(&a->vc);
	memset(&a->wc, 0, sizeof(a->wc));
	a->wc.kind = MVG_IDLE;
	a->wc.threads = 1;
	opterr = 0;
	optind = 1;
	while (!bad && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			a->socket = optarg;
			break;
		case 'n':
			bad = strlen(optarg) >= sizeof(a->vc.name);
			snprintf(a->vc.name, sizeof(a->vc.name), "%s", optarg);
			break;
		case 'm':
			bad = num(optarg, &a->vc.memsize_bytes);
			break;
		case 'd':
			a->swapdir = optarg;
			break;
		case 'A':
			a->settings = optarg;
			break;
		case 'w':
			bad = mvg_kind_parse(optarg, &a->wc.kind);
			break;
		case 't':
			bad = num(optarg, &v) || !v || v > 1024;
			a->wc.threads = (unsigned)v;
			break;
		case 's':
			bad = num(optarg, &a->wc.seed);
			break;
		case 'z':
			errno = 0;
			a->wc.zipf_s = strtod(optarg, &end);
			bad = errno || *end;
			break;
		case 'k':
			a->wc.kv_text = true;
			break;
		case 'T':
			bad = num(optarg, &v) || v > UINT32_MAX;
			a->wc.think_us = (uint32_t)v;
			break;
		case 'h':
			bad = num(optarg, &a->vc.shares);
			break;
		case 'r':
			bad = num(optarg, &a->vc.reservation_bytes);
			break;
		case 'l':
			bad = num(optarg, &a->vc.limit_bytes);
			break;
		case 'a':
			snprintf(a->vc.salt, sizeof(a->vc.salt), "%s", optarg);
			break;
		case 'L':
			a->vc.large_pages_off = 1;
			break;
		case 'b':
			bad = num(optarg, &v) || v > 100;
			a->wc.burst_pct = (uint32_t)v;
			break;
		case 'B':
			bad = num(optarg, &v) || v > 100;
			a->wc.burst_keep_pct = (uint32_t)v;
			break;
		case 'i':
			bad = num(optarg, &v) || v > UINT32_MAX;
			a->wc.burst_idle_ms = (uint32_t)v;
			break;
		case 'W':
			bad = num(optarg, &v) || v > 101;
			a->wc.image_write_pct1 = (uint32_t)v;
			break;
		case 'C':
			bad = cpu_list(optarg, &a->cpus);
			a->wc.cpus = &a->cpus;
			break;
		default:
			bad = 1;
			break;
		}
	}
	if (bad || optind != argc || !a->socket || !a->vc.name[0] ||
	    !a->vc.memsize_bytes || a->vc.memsize_bytes % 4096) {
		printf("MVPROC error=bad arguments (%s)\n",
		       optind <= argc && optind > 0 ? argv[optind - 1] : "?");
		return -EINVAL;
	}
	return 0;
}

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	       (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void ops_line(struct mvg_workload *w)
{
	struct mvg_stats g;

	mvg_get_stats(w, &g);
	printf("MVPROC ops=%llu errors=%llu\n", (unsigned long long)g.ops,
	       (unsigned long long)g.integrity_errors);
	fflush(stdout);
}

int guest_process_main(int argc, char **argv)
{
	struct gp_args a = { 0 };
	struct mv_host_config hc;
	struct timespec t0, tick = { 1, 0 };
	struct mvg_workload *w = NULL;
	struct mvg_stats g;
	mv_agent *agent = NULL;
	mv_host *h = NULL;
	mv_vm *vm = NULL;
	sigset_t stop;
	double secs;
	int err, ret = 2, sig;

	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	/* before any thread, so that every thread inherits the mask */
	sigprocmask(SIG_BLOCK, &stop, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (parse(argc, argv, &a)) {
		fflush(stdout);
		return 2;
	}
	mv_host_config_init(&hc);
	hc.memsize_bytes = a.vc.memsize_bytes;
	if (a.swapdir)
		hc.swapdir = a.swapdir;
	hc.log = gp_log;
	hc.log_arg = a.vc.name;
	if (apply_settings(&hc.settings, a.settings)) {
		printf("MVPROC error=bad settings '%s'\n", a.settings);
		goto out;
	}
	err = mv_host_create(&hc, &h);
	if (err) {
		h = NULL;
		printf("MVPROC error=cannot create the host: %s\n",
		       mv_strerror(err));
		goto out;
	}
	err = mv_vm_create(h, &a.vc, &vm);
	if (err) {
		vm = NULL;
		printf("MVPROC error=cannot create the VM: %s\n",
		       mv_strerror(err));
		goto out;
	}
	/* never waits for the daemon: unreachable, it retries */
	err = mv_agent_create(h, vm, a.socket, &agent);
	if (err) {
		agent = NULL;
		printf("MVPROC error=cannot start the agent: %s\n",
		       mv_strerror(err));
		goto out;
	}
	a.wc.mem = mv_vm_mem(vm);
	a.wc.memsize = mv_vm_memsize(vm);
	err = mvg_start(&a.wc, &w);
	if (err) {
		w = NULL;
		printf("MVPROC error=cannot start the %s workload: %s\n",
		       mvg_kind_name(a.wc.kind), strerror(-err));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ops_line(w);
	for (;;) {
		sig = sigtimedwait(&stop, NULL, &tick);
		if (sig > 0)
			break;
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			break;
		ops_line(w);
	}
	secs = since(&t0);
	err = mvg_stop_and_verify(w, &g);
	w = NULL;
	if (err) {
		printf("MVPROC error=the final verification could not run: %s\n",
		       strerror(-err));
		goto out;
	}
	if (g.integrity_errors)
		printf("MVPROC first_error=%s\n", g.first_error);
	printf("MVPROC verdict=%s ops=%llu errors=%llu pages=%llu secs=%.3f\n",
	       g.integrity_errors ? "fail" : "ok", (unsigned long long)g.ops,
	       (unsigned long long)g.integrity_errors,
	       (unsigned long long)g.pages_verified, secs);
	ret = g.integrity_errors ? 1 : 0;
out:
	fflush(stdout);
	if (w)
		mvg_stop(w);
	mv_agent_destroy(agent); /* its grant goes back to the daemon */
	if (vm)
		mv_vm_destroy(vm);
	mv_host_destroy(h);
	return ret;
}

void guest_process_parse(const char *line, struct guest_process_line *out)
{
	unsigned long long ops = 0, errors = 0, pages = 0;
	char verdict[8];
	double secs = 0;

	memset(out, 0, sizeof(*out));
	if (strncmp(line, "MVPROC ", 7))
		return;
	line += 7;
	if (!strncmp(line, "first_error=", 12)) {
		out->kind = GP_FIRST_ERROR;
		out->text = line + 12;
	} else if (!strncmp(line, "error=", 6)) {
		out->kind = GP_ERROR;
		out->text = line + 6;
	} else if (sscanf(line,
			  "verdict=%7s ops=%llu errors=%llu pages=%llu secs=%lf",
			  verdict, &ops, &errors, &pages, &secs) == 5) {
		out->kind = GP_VERDICT;
		out->ok = !strcmp(verdict, "ok");
	} else if (sscanf(line, "ops=%llu errors=%llu", &ops, &errors) == 2) {
		out->kind = GP_OPS;
	}
	out->ops = ops;
	out->errors = errors;
	out->pages = pages;
	out->secs = secs;
}
