/* SPDX-License-Identifier: MIT */
/*
 * daemon.h - `memvisor daemon --socket PATH --memsize SIZE [--swapdir DIR]
 * [--interval S]` (tools/daemon.c): a host of its own with a daemon on
 * PATH (docs/PROTOCOL.md) for VMMs whose agents connect; one status line
 * per interval until SIGINT or SIGTERM.
 */
#ifndef MV_TOOL_DAEMON_H
#define MV_TOOL_DAEMON_H

#include <stdio.h>

#include "memvisor.h"

/* argv[0] is "daemon".  0 after a signal ended it, 2 on bad input or a
 * daemon that could not start. */
int daemon_main(int argc, char **argv);
void daemon_usage(FILE *out);

#endif /* MV_TOOL_DAEMON_H */
