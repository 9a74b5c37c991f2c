/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - `memvisor run --metrics ADDR:PORT`: the host's and each VM's
 * memory figures over HTTP in the Prometheus text exposition format
 * (/metrics), and a liveness check (/healthz), served by libmicrohttpd
 * from a snapshot the run loop publishes each second.
 */
#ifndef MV_TOOL_METRICS_H
#define MV_TOOL_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#include "snap.h"

/* The address when the argument gives only a port: loopback. */
#define METRICS_DEFAULT_ADDR "127.0.0.1"

/*
 * Parses "PORT", ":PORT", "ADDR:PORT" or "[ADDR6]:PORT" (numeric addresses
 * only; port 0 picks a free one).  The address defaults to 127.0.0.1.
 * 0, or -1 with a sentence in err.
 */
int metrics_parse_addr(const char *arg, struct sockaddr_storage *ss,
		       socklen_t *sslen, char *err, size_t errlen);

/* Writes s in the exposition format: every family with its HELP and TYPE
 * lines, counters named *_total, VM names as escaped label values.  0, or
 * -1 if out could not take it all. */
int metrics_format(const struct snap *s, FILE *out);

/* Reads text that metrics_format() wrote (memvisor top) back into s
 * (snap_init()ed; its VMs are replaced by those in the text, in their
 * order).  The rates are left 0, GRANT comes from the page census.  0, or
 * -EINVAL if the text is not memvisor's metrics (s then holds what was
 * read), -ENOMEM. */
int metrics_read(const char *text, struct snap *s);

struct metrics;

/* Binds and listens on arg (as metrics_parse_addr() reads it) and starts
 * serving; /metrics answers 503 until the first metrics_publish().  0, or
 * -1 with a sentence in err (a bad address, a port in use, ...). */
int metrics_start(const char *arg, struct metrics **out, char *err,
		  size_t errlen);
/* "http://127.0.0.1:9100/metrics": where it listens, the port resolved. */
const char *metrics_url(const struct metrics *m);
/* Formats s and makes it what /metrics serves from now on.  The caller's
 * thread does the formatting; the server only copies the text, under a
 * lock held for that copy alone. */
void metrics_publish(struct metrics *m, const struct snap *s);
/* Stops serving, closes the socket, frees m (NULL is fine). */
void metrics_stop(struct metrics *m);

#endif /* MV_TOOL_METRICS_H */
