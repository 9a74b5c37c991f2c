/* SPDX-License-Identifier: MIT */
/*
 * qmp.h - a client of QEMU's machine protocol (QMP) over a Unix socket:
 * the handshake, any command, and the few the project uses (balloon,
 * query-balloon, the balloon driver's guest statistics, quit).  Every call
 * is bounded by a timeout; a QEMU that died or closed the socket is an
 * error (-EPIPE), never a hang.
 */
#ifndef MV_TOOL_QMP_H
#define MV_TOOL_QMP_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct qmp;

/* The QOM path of the balloon device tools/qemu.c adds (id balloon0). */
#define QMP_BALLOON_PATH "/machine/peripheral/balloon0"

/*
 * Connects to the QMP socket at path, reads QEMU's greeting and sends
 * qmp_capabilities, all within timeout_ms.  -ENOENT or -ECONNREFUSED when
 * nothing listens there (yet), -ETIMEDOUT, -EPROTO for a peer that does not
 * speak QMP, -EPIPE if it closed the connection.
 */
int qmp_connect(const char *path, unsigned timeout_ms, struct qmp **out);
/* The same on a connected stream socket (tests hand it one end of a
 * socketpair); the fd is the client's from then on, closed by qmp_close. */
int qmp_open_fd(int fd, unsigned timeout_ms, struct qmp **out);
void qmp_close(struct qmp *q);

/*
 * Sends {"execute": cmd, "arguments": args} (args may be NULL; it is taken
 * over and freed either way) and waits for its answer, skipping the
 * asynchronous events that come in between.  0 and, if ret is not NULL,
 * the "return" value in *ret (the caller's to cJSON_Delete); -EREMOTEIO if
 * QEMU answered with an error, whose class and description go to err;
 * -ETIMEDOUT, -EPIPE (QEMU gone), -EPROTO (an answer that is not QMP).
 */
int qmp_execute(struct qmp *q, const char *cmd, cJSON *args, cJSON **ret,
		unsigned timeout_ms, char *err, size_t errlen);

/* Asks the balloon for a guest size of `bytes` (the guest driver then
 * inflates or deflates toward it). */
int qmp_balloon(struct qmp *q, uint64_t bytes, unsigned timeout_ms);
/* The guest's size as the balloon sees it: RAM less what is inflated. */
int qmp_query_balloon(struct qmp *q, uint64_t *actual, unsigned timeout_ms);

/* The balloon driver's statistics; -1 for one the guest did not report. */
struct qmp_guest_stats {
	int64_t last_update; /* guest's time of the report, 0: none yet */
	int64_t free_memory;
	int64_t total_memory;
	int64_t available_memory;
	int64_t swap_in, swap_out, major_faults, minor_faults;
};
/* Asks the driver to report its statistics every interval_s seconds. */
int qmp_guest_stats_enable(struct qmp *q, unsigned interval_s,
			   unsigned timeout_ms);
int qmp_guest_stats(struct qmp *q, struct qmp_guest_stats *st,
		    unsigned timeout_ms);

/* Sends quit; 0 once QEMU acknowledged it or closed the socket. */
int qmp_quit(struct qmp *q, unsigned timeout_ms);

/* Events seen while waiting for answers (e.g. "BALLOON_CHANGE"). */
unsigned long qmp_events_seen(const struct qmp *q);

#endif /* MV_TOOL_QMP_H */
