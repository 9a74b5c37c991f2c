/* SPDX-License-Identifier: MIT */
/*
 * guest_process.h - `memvisor guest-process`, hidden: one VM of a `memvisor
 * run` in a process of its own (a `vmm = process` VM), as a VMM runs it:
 * a host of its own, the VM, guest threads, and memvisor's agent joined to
 * the run's daemon.  Started by run.c only; its stdout carries the lines
 * below, one at a time, each ending in a newline:
 *
 *   MVPROC ops=N errors=E            once a second while the guest runs
 *   MVPROC first_error=TEXT          before a failed verdict, if any
 *   MVPROC verdict=ok|fail ops=N errors=E pages=P secs=S
 *   MVPROC error=TEXT                the VM could not start (exit 2)
 *
 * N counts guest operations since the workload started, E integrity errors
 * so far, P page checks in the whole run, S the seconds the workload ran
 * before it was told to stop.  SIGTERM, SIGINT or SIGHUP (and the parent's
 * death, PR_SET_PDEATHSIG) stop the guest, verify every page, print the
 * verdict and end the process: 0 verified, 1 integrity errors, 2 bad
 * arguments or a VM that could not start.
 */
#ifndef MV_TOOL_GUEST_PROCESS_H
#define MV_TOOL_GUEST_PROCESS_H

#include <stdint.h>

#define GUEST_PROCESS_CMD "guest-process"

/* What the verdict line says (guest_process_parse). */
struct guest_process_line {
	enum { GP_NONE, GP_OPS, GP_FIRST_ERROR, GP_VERDICT, GP_ERROR } kind;
	int ok; /* verdict=ok */
	uint64_t ops, errors, pages;
	double secs;
	const char *text; /* first_error= and error=: the rest of the line */
};

/* One line of the child's output (without its newline) into *out; kind
 * GP_NONE for any line that is not one of the above. */
void guest_process_parse(const char *line, struct guest_process_line *out);

int guest_process_main(int argc, char **argv);

#endif /* MV_TOOL_GUEST_PROCESS_H */
