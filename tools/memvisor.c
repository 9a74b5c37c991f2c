// SPDX-License-Identifier: MIT
/*
 * memvisor.c - the `memvisor` command: picks the subcommand and hands it
 * the rest of the arguments.
 *
 * Design: thin on purpose.  Each subcommand lives in its own file and
 * returns a process exit status, so this is the only place that ends the
 * process, and it does so by returning from main.
 *
 * Invariants: exit status 2 for a command line that names nothing runnable,
 * as for every other kind of bad input; help and version exit 0; check
 * exits 2 when the system cannot run memvisor or the scenario is bad, and
 * 0 otherwise, warnings included.
 *
 * Lock ordering: none; no threads exist here.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "daemon.h"
#include "guest_process.h"
#include "memvisor.h"
#include "preflight.h"
#include "report_html.h"
#include "run.h"
#include "scenario.h"
#include "top.h"

#define MEMVISOR_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: memvisor COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  run [SCENARIO] [--duration S] [--json FILE] [--quiet] [--live]\n"
		"      [--metrics [ADDR:]PORT]\n"
		"            run a scenario (default: the embedded one) and verify\n"
		"            every page the guests wrote; see docs/SCENARIOS.md;\n"
		"            --live: a full-screen view like esxtop's memory panel,\n"
		"            --metrics: Prometheus metrics on 127.0.0.1:PORT/metrics\n"
		"            (docs/LIVE.md); `memvisor help run` lists every option\n"
		"  top [[ADDR:]PORT]\n"
		"            the --live screen of a run serving --metrics (default\n"
		"            127.0.0.1:9100), from another terminal; q leaves it\n"
		"  report RUN.json [-o FILE]\n"
		"            one self-contained HTML page with plots over time (memory\n"
		"            by state per VM, host free memory and states, reclaim\n"
		"            rates, ops/s) and the end-of-run table, from the JSON of\n"
		"            `memvisor run --json RUN.json`; see docs/REPORT.md\n"
		"  bench NAME [ARGS]\n"
		"            microbenchmarks, each figure beside its floor\n"
		"            (NAME: fault, swapin, ..., all; `memvisor bench` lists them)\n"
		"  daemon --socket PATH --memsize SIZE\n"
		"            a host daemon: VMMs running memvisor's agent (QEMU\n"
		"            with libmemvisor-preload.so) get their memory from it;\n"
		"            see docs/PROTOCOL.md and `memvisor help daemon`\n"
		"  check [SCENARIO]\n"
		"            say whether this kernel and process can run memvisor, and\n"
		"            what the scenario (default: the embedded one) needs here:\n"
		"            physical memory, and mappings (vm.max_map_count)\n"
		"  version   print the version\n"
		"  help      print this text\n");
}

/*
 * `memvisor check [SCENARIO]`: the system, then the scenario (the embedded
 * default without one) against this machine: physical memory and the
 * mappings its guests may need.  Warnings do not change the exit status.
 */
static int check(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : NULL;
	char msg[512], err[PATH_MAX + 512];
	struct scenario sc;
	struct preflight pf;
	int status = 0, ret;

	if (argc > 2) {
		fprintf(stderr,
			"memvisor check: one scenario at a time ('%s' and '%s' given)\n",
			argv[1], argv[2]);
		return 2;
	}
	if (mv_check_system(msg, sizeof(msg))) {
		fprintf(stderr, "memvisor: %s\n", msg);
		status = 2;
	} else {
		printf("OK: this system can run memvisor\n");
	}
	ret = path ? scenario_load_file(path, &sc, err, sizeof(err)) :
		     scenario_load_default(&sc, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "memvisor: %s\n", err);
		return 2;
	}
	printf("scenario %s: %zu VM%s with %.1f MB of guest memory on a %.1f MB host\n",
	       sc.source, sc.nvms, sc.nvms == 1 ? "" : "s",
	       (double)scenario_vm_memsize_total(&sc) / (1 << 20),
	       (double)sc.host.memsize / (1 << 20));
	fflush(stdout);
	preflight_measure(&sc, &pf);
	preflight_print(&sc, &pf, stdout, stderr);
	scenario_free(&sc);
	return status;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "run"))
		return run_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "report"))
		return report_html_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "bench"))
		return mv_bench_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "check"))
		return check(argc - 1, argv + 1);
	if (!strcmp(cmd, "top"))
		return top_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "daemon"))
		return daemon_main(argc - 1, argv + 1);
	/* hidden: a `vmm = process` VM of `memvisor run` (run.c starts it) */
	if (!strcmp(cmd, GUEST_PROCESS_CMD))
		return guest_process_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("memvisor %s\n", MEMVISOR_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h")) {
		if (argc > 2 && !strcmp(argv[2], "run"))
			run_usage(stdout);
		else if (argc > 2 && !strcmp(argv[2], "report"))
			report_html_usage(stdout);
		else if (argc > 2 && !strcmp(argv[2], "top"))
			top_usage(stdout);
		else if (argc > 2 && !strcmp(argv[2], "daemon"))
			daemon_usage(stdout);
		else
			usage(stdout);
		return 0;
	}
	fprintf(stderr, "memvisor: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
