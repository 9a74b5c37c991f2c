/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - `memvisor daemon --socket PATH --memsize SIZE [--swapdir DIR]
 * [--interval S]` (tools/daemon.c): a host of its own with a daemon on
 * PATH (docs/PROTOCOL.md) for VMMs whose agents connect; one status line
 * per interval until SIGINT or SIGTERM.  And what `memvisor run` needs of
 * a daemon it runs in-process for QEMU guests.
 */
#ifndef MV_TOOL_DAEMON_H
#define MV_TOOL_DAEMON_H

#include <stdio.h>

#include "memvisor.h"

/* argv[0] is "daemon".  0 after a signal ended it, 2 on bad input or a
 * daemon that could not start. */
int daemon_main(int argc, char **argv);
void daemon_usage(FILE *out);

/*
 * The statistics of the remote VM named name (mv_vm_stats' figures, from
 * its agent's reports, with the host's targets): 0, or -ENOENT while no
 * agent of that name is connected (a QEMU guest still booting, or gone).
 * For run.c's live line, table and JSON of QEMU guests.
 */
int daemon_vm_stats(mv_daemon *d, const char *name, struct mv_vm_stats *st);

#endif /* MV_TOOL_DAEMON_H */
