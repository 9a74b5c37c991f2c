// SPDX-License-Identifier: MIT
/*
 * daemon.c - `memvisor daemon`: a host daemon as a process of its own.
 * Makes a host of --memsize bytes (swap files of remote VMs live with
 * their agents, so --swapdir only serves the host's own bookkeeping), a
 * daemon on --socket (docs/PROTOCOL.md), and prints one line per
 * --interval: the host's free memory and state, and per connected VM its
 * grant, what its agent holds, its target, swapped and compressed pages
 * and balloon.  Host events (agents connecting, VMMs gone) go to stderr.
 *
 * Design: the main thread blocks SIGINT and SIGTERM and waits for them
 * with sigtimedwait, one interval at a time: no signal handler, and every
 * wait bounded.  mv_daemon_destroy then closes every connection (agents
 * keep their last grants and reconnect to the next daemon).
 *
 * A running DAMON monitor of physical addresses is warned of at the start
 * (preflight.c has the check).
 *
 * Invariants: exit status 0 after a signal, 2 on bad input or a daemon that
 * could not start; nothing is printed to stdout but the status lines.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "preflight.h"
#include "scenario.h"

#define MAX_SHOWN 64

void daemon_usage(FILE *out)
{
	fprintf(out,
		"usage: memvisor daemon --socket PATH --memsize SIZE [--swapdir DIR]\n"
		"                       [--interval S]\n"
		"  a host of SIZE bytes (\"8G\") whose memory goes to VMMs running\n"
		"  memvisor's agent (libmemvisor-preload.so for QEMU, or a VMM\n"
		"  linking libmemvisor: docs/VMM.md); they connect to PATH (only\n"
		"  this user's processes may).  A status line every S seconds\n"
		"  (default 1; 0: none).  SIGINT or SIGTERM stops it; its agents\n"
		"  keep their last grants and reconnect to the next daemon.\n");
}

static void log_stderr(void *arg, enum mv_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info" };

	(void)arg;
	fprintf(stderr, "memvisor daemon: %s: %s\n",
		level <= MV_LOG_INFO ? names[level] : "?", msg);
}

/* The VMMs' page moves stall behind a DAMON monitor of physical addresses
 * (docs/ARCHITECTURE.md): said once, at the start, as memvisor run's
 * preflight says it. */
static void damon_warning(void)
{
	unsigned first,
		n = preflight_damon_paddr(PREFLIGHT_DAMON_SYSFS, &first);

	if (n)
		fprintf(stderr,
			"memvisor daemon: warning: a DAMON monitor of physical addresses is running (kdamond %u%s): its reverse-map walks can hold the agents' page moves back for seconds; to stop it: echo off > %s/%u/state\n",
			first, n > 1 ? " and others" : "",
			PREFLIGHT_DAMON_SYSFS, first);
}

static void status_line(mv_host *h, mv_daemon *d)
{
	static struct mv_daemon_vm v[MAX_SHOWN];
	struct mv_host_stats hs;
	unsigned n;

	if (mv_host_stats(h, &hs) || mv_daemon_vms(d, v, MAX_SHOWN, &n))
		return;
	printf("free %llu MB (%s), %u VM%s",
	       (unsigned long long)(hs.free_pages >> 8),
	       mv_mem_state_name(hs.state), n, n == 1 ? "" : "s");
	for (unsigned i = 0; i < n && i < MAX_SHOWN; i++) {
		const struct mv_vm_stats *s = &v[i].stats;

		printf("; %s pid %u: grant %llu MB, holds %llu, target %llu, swapped %llu, zip %llu, balloon %llu",
		       s->name, v[i].pid,
		       (unsigned long long)(v[i].grant_pages >> 8),
		       (unsigned long long)(s->consumed_pages >> 8),
		       (unsigned long long)(s->sztgt_pages >> 8),
		       (unsigned long long)(s->swcur_pages >> 8),
		       (unsigned long long)(s->zip_cached_pages >> 8),
		       (unsigned long long)(s->mctltgt_pages >> 8));
	}
	printf("\n");
	fflush(stdout);
}

int daemon_main(int argc, char **argv)
{
	const char *path = NULL, *memsize = NULL, *swapdir = NULL;
	struct mv_host_config cfg;
	struct timespec ts;
	unsigned interval = 1;
	mv_daemon *d = NULL;
	mv_host *h = NULL;
	char msg[512];
	sigset_t sigs;
	int err, sig;

	for (int i = 1; i < argc; i++) {
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			daemon_usage(stdout);
			return 0;
		}
		if (!val) {
			fprintf(stderr, "memvisor daemon: %s needs a value\n",
				argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--socket"))
			path = val;
		else if (!strcmp(argv[i], "--memsize"))
			memsize = val;
		else if (!strcmp(argv[i], "--swapdir"))
			swapdir = val;
		else if (!strcmp(argv[i], "--interval")) {
			char *end;
			unsigned long s = strtoul(val, &end, 10);

			if (*end || end == val || s > 3600) {
				fprintf(stderr,
					"memvisor daemon: --interval %s: seconds, 0 to 3600\n",
					val);
				return 2;
			}
			interval = (unsigned)s;
		} else {
			fprintf(stderr,
				"memvisor daemon: unknown option %s\n\n",
				argv[i]);
			daemon_usage(stderr);
			return 2;
		}
		i++;
	}
	if (!path || !memsize) {
		daemon_usage(stderr);
		return 2;
	}
	mv_host_config_init(&cfg);
	if (scenario_parse_size(memsize, &cfg.memsize_bytes)) {
		fprintf(stderr,
			"memvisor daemon: --memsize %s: a size such as 512M or 8G\n",
			memsize);
		return 2;
	}
	cfg.memsize_bytes &= ~(uint64_t)(MV_PAGE_SIZE - 1);
	if (swapdir)
		cfg.swapdir = swapdir;
	cfg.log = log_stderr;
	if (mv_check_system(msg, sizeof(msg))) {
		fprintf(stderr, "memvisor daemon: %s\n", msg);
		return 2;
	}
	/* blocked before any thread exists (the host's own: its log,
	 * scheduler and scanner threads, then the daemon's), so that every
	 * thread inherits the mask and the signals come here: one thread
	 * without it would take a SIGTERM to its default action, and the
	 * daemon would die of it instead of stopping */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	err = mv_host_create(&cfg, &h);
	if (err) {
		fprintf(stderr, "memvisor daemon: %s\n", mv_host_errmsg(NULL));
		return 2;
	}
	err = mv_daemon_create(h, path, &d);
	if (err) {
		fprintf(stderr, "memvisor daemon: cannot listen on %s: %s\n",
			path, mv_host_errmsg(h));
		mv_host_destroy(h);
		return 2;
	}
	fprintf(stderr,
		"memvisor daemon: %llu MB for VMMs on %s (pid %d); SIGINT or SIGTERM stops it\n",
		(unsigned long long)(cfg.memsize_bytes >> 20), path,
		(int)getpid());
	damon_warning();
	for (;;) {
		ts = (struct timespec){ .tv_sec = interval ? interval : 1 };
		sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (interval)
			status_line(h, d);
	}
	fprintf(stderr, "memvisor daemon: stopping\n");
	mv_daemon_destroy(d);
	mv_host_destroy(h);
	return 0;
}
