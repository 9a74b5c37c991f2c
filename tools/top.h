/* SPDX-License-Identifier: MIT */
/*
 * top.h - `memvisor top [[ADDR:]PORT]`: the live screen of a run started
 * elsewhere with `memvisor run --metrics PORT`, read from its /metrics.
 */
#ifndef MV_TOOL_TOP_H
#define MV_TOOL_TOP_H

#include <stdio.h>

/* argv[0] is "top".  0 when left with `q`, 2 when the arguments are bad,
 * no terminal, or nothing answers at the address at the start. */
int top_main(int argc, char **argv);
void top_usage(FILE *out);

#endif /* MV_TOOL_TOP_H */
