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
 * as for every other kind of bad input; help and version exit 0.
 *
 * Lock ordering: none; no threads exist here.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "memvisor.h"
#include "run.h"

#define MEMVISOR_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: memvisor COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  run [SCENARIO] [--duration S] [--json FILE] [--quiet]\n"
		"            run a scenario (default: the embedded one) and verify\n"
		"            every page the guests wrote; see docs/SCENARIOS.md\n"
		"  bench NAME [ARGS]\n"
		"            microbenchmarks, each figure beside its floor\n"
		"            (NAME: fault, swapin, ..., all; `memvisor bench` lists them)\n"
		"  check     say whether this kernel and process can run memvisor\n"
		"  version   print the version\n"
		"  help      print this text\n");
}

static int check(void)
{
	char msg[512];

	if (mv_check_system(msg, sizeof(msg))) {
		fprintf(stderr, "memvisor: %s\n", msg);
		return 2;
	}
	printf("OK: this system can run memvisor\n");
	return 0;
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
	if (!strcmp(cmd, "bench"))
		return mv_bench_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "check"))
		return check();
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("memvisor %s\n", MEMVISOR_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") ||
	    !strcmp(cmd, "-h")) {
		if (argc > 2 && !strcmp(argv[2], "run"))
			run_usage(stdout);
		else
			usage(stdout);
		return 0;
	}
	fprintf(stderr, "memvisor: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
