/* SPDX-License-Identifier: MIT */
/*
 * run.h - `memvisor run [SCENARIO] [--duration S] [--json FILE] [--quiet]
 * [--live] [--metrics [ADDR:]PORT]`: starts a scenario's host, VMs and guest
 * workloads, shows a live line per second (or the live screen, live.h, and
 * serves metrics, metrics.h), then verifies every page and prints the
 * final table.
 */
#ifndef MV_TOOL_RUN_H
#define MV_TOOL_RUN_H

#include <stdio.h>

/* argv[0] is "run".  Returns the process exit status: 0 when every page
 * read back as written and no signal cut the run short, 1 on any integrity
 * error, 2 on bad input, a system that cannot run memvisor or a VM that
 * could not start, 4 when SIGINT or SIGTERM interrupted the run (3, a lost
 * page, ends the process from the watch thread); run_usage() says the
 * same. */
int run_main(int argc, char **argv);
void run_usage(FILE *out);

#endif /* MV_TOOL_RUN_H */
