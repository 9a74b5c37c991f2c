// SPDX-License-Identifier: MIT
/*
 * error.c - names for errors and states, for messages and reports.
 *
 * Locks: none; everything here is constant.
 */
#include <errno.h>
#include <string.h>

#include "memvisor.h"

const char *mv_strerror(int err)
{
	if (err > 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case -ENOSPC:
		return "no space left (swap directory full)";
	case -EAGAIN:
		return "try again: nothing reclaimable right now";
	case -ENOSYS:
		return "kernel lacks a needed userfaultfd feature";
	default:
		return strerror(-err);
	}
}

const char *mv_mem_state_name(enum mv_mem_state s)
{
	static const char *const names[] = { "high", "clear", "soft", "hard",
					     "low" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *mv_page_state_name(enum mv_page_state s)
{
	static const char *const names[] = { "untouched", "private",
					     "shared",	  "zero",
					     "ballooned", "compressed",
					     "swapped",	  "sampled" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}
