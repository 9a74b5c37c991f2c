// SPDX-License-Identifier: MIT
/*
 * qmp.c - a QMP client (qmp.h): QEMU's JSON machine protocol on a Unix
 * stream socket.
 *
 * Design: QEMU sends one JSON object per line (greeting, answers, events).
 * The client keeps what it has read in a buffer and takes complete lines
 * out of it; a line is parsed with cJSON and must be an object.  A command
 * is one line out; its answer is the next object holding "return" or
 * "error" (QMP answers commands in order and this client has one in flight
 * at a time); objects holding "event" are counted and skipped.  Every read
 * waits in poll() for at most what is left of the caller's deadline, so a
 * stuck QEMU costs the timeout and a dead one (end of file, a reset) is
 * -EPIPE at once.  Writes use MSG_NOSIGNAL: a closed socket is an error,
 * not a SIGPIPE.
 *
 * Invariants: the buffer never holds a partial object the parser has
 * seen; a line longer than QMP_MAX_LINE is -EPROTO (the connection is then
 * unusable and every later call fails the same way); nothing here prints.
 * Not thread-safe: one user per connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"

#define QMP_MAX_LINE (1u << 20)

struct qmp {
	int fd;
	int broken; /* -errno once the stream is unusable, else 0 */
	char *buf; /* read, not yet taken: len bytes */
	size_t len, cap;
	unsigned long events;
};

static int64_t qmp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for events until deadline (ms, monotonic). */
static int qmp_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - qmp_now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return 0;
	}
}

/* The next line (without its end), NUL-terminated in *line (the caller's
 * to free). */
static int qmp_read_line(struct qmp *q, char **line, int64_t deadline)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		ssize_t n;
		int ret;

		if (nl) {
			size_t l = (size_t)(nl - q->buf);

			*line = malloc(l + 1);
			if (!*line)
				return -ENOMEM;
			memcpy(*line, q->buf, l);
			(*line)[l] = 0;
			if (l && (*line)[l - 1] == '\r')
				(*line)[l - 1] = 0;
			memmove(q->buf, nl + 1, q->len - l - 1);
			q->len -= l + 1;
			return 0;
		}
		if (q->len >= QMP_MAX_LINE)
			return q->broken = -EPROTO;
		if (q->cap - q->len < 4096) {
			size_t cap = q->cap ? q->cap * 2 : 8192;
			char *b = realloc(q->buf, cap);

			if (!b)
				return -ENOMEM;
			q->buf = b;
			q->cap = cap;
		}
		ret = qmp_wait(q->fd, POLLIN, deadline);
		if (ret)
			return ret;
		n = recv(q->fd, q->buf + q->len, q->cap - q->len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return q->broken = errno == ECONNRESET ? -EPIPE :
								 -errno;
		if (n == 0)
			return q->broken = -EPIPE;
		q->len += (size_t)n;
	}
}

/* The next JSON object QEMU sent. */
static int qmp_read_object(struct qmp *q, cJSON **obj, int64_t deadline)
{
	for (;;) {
		char *line = NULL;
		int ret;

		if (q->broken)
			return q->broken;
		ret = qmp_read_line(q, &line, deadline);
		if (ret)
			return ret;
		if (!line[strspn(line, " \t")]) {
			free(line); /* a blank line between objects */
			continue;
		}
		*obj = cJSON_Parse(line);
		free(line);
		if (!*obj || !cJSON_IsObject(*obj)) {
			cJSON_Delete(*obj);
			*obj = NULL;
			return q->broken = -EPROTO;
		}
		return 0;
	}
}

static int qmp_send(struct qmp *q, const char *text, int64_t deadline)
{
	size_t len = strlen(text), off = 0;

	if (q->broken)
		return q->broken;
	while (off < len) {
		ssize_t n;
		int ret = qmp_wait(q->fd, POLLOUT, deadline);

		if (ret)
			return ret;
		n = send(q->fd, text + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return q->broken =
				       (errno == EPIPE || errno == ECONNRESET) ?
					       -EPIPE :
					       -errno;
		off += (size_t)n;
	}
	return 0;
}

static int qmp_execute_until(struct qmp *q, const char *cmd, cJSON *args,
			     cJSON **ret, int64_t deadline, char *err,
			     size_t errlen)
{
	cJSON *msg = cJSON_CreateObject();
	char *text = NULL;
	int rc;

	if (ret)
		*ret = NULL;
	if (err && errlen)
		err[0] = 0;
	if (!msg || !cJSON_AddStringToObject(msg, "execute", cmd)) {
		cJSON_Delete(args);
		cJSON_Delete(msg);
		return -ENOMEM;
	}
	if (args)
		cJSON_AddItemToObject(msg, "arguments", args);
	text = cJSON_PrintUnformatted(msg);
	cJSON_Delete(msg);
	if (!text)
		return -ENOMEM;
	/* QMP takes a line per command */
	{
		size_t l = strlen(text);
		char *t = realloc(text, l + 2);

		if (!t) {
			free(text);
			return -ENOMEM;
		}
		text = t;
		text[l] = '\n';
		text[l + 1] = 0;
	}
	rc = qmp_send(q, text, deadline);
	free(text);
	if (rc)
		return rc;
	for (;;) {
		cJSON *obj, *r, *e;

		rc = qmp_read_object(q, &obj, deadline);
		if (rc)
			return rc;
		if (cJSON_GetObjectItemCaseSensitive(obj, "event")) {
			q->events++;
			cJSON_Delete(obj);
			continue;
		}
		r = cJSON_GetObjectItemCaseSensitive(obj, "return");
		e = cJSON_GetObjectItemCaseSensitive(obj, "error");
		if (r) {
			if (ret)
				*ret = cJSON_DetachItemViaPointer(obj, r);
			cJSON_Delete(obj);
			return 0;
		}
		if (e) {
			cJSON *cls =
				cJSON_GetObjectItemCaseSensitive(e, "class");
			cJSON *desc =
				cJSON_GetObjectItemCaseSensitive(e, "desc");

			if (err && errlen)
				snprintf(err, errlen, "%s: %s",
					 cJSON_IsString(cls) ?
						 cls->valuestring :
						 "error",
					 cJSON_IsString(desc) ?
						 desc->valuestring :
						 "(no description)");
			cJSON_Delete(obj);
			return -EREMOTEIO;
		}
		/* neither an answer nor an event: not QMP */
		cJSON_Delete(obj);
		return q->broken = -EPROTO;
	}
}

int qmp_execute(struct qmp *q, const char *cmd, cJSON *args, cJSON **ret,
		unsigned timeout_ms, char *err, size_t errlen)
{
	return qmp_execute_until(q, cmd, args, ret, qmp_now_ms() + timeout_ms,
				 err, errlen);
}

int qmp_open_fd(int fd, unsigned timeout_ms, struct qmp **out)
{
	int64_t deadline = qmp_now_ms() + timeout_ms;
	struct qmp *q = calloc(1, sizeof(*q));
	cJSON *greeting = NULL;
	int ret;

	*out = NULL;
	if (!q) {
		close(fd);
		return -ENOMEM;
	}
	q->fd = fd;
	ret = qmp_read_object(q, &greeting, deadline);
	if (!ret && !cJSON_GetObjectItemCaseSensitive(greeting, "QMP"))
		ret = -EPROTO;
	cJSON_Delete(greeting);
	if (!ret)
		ret = qmp_execute_until(q, "qmp_capabilities", NULL, NULL,
					deadline, NULL, 0);
	if (ret == -EREMOTEIO)
		ret = -EPROTO;
	if (ret) {
		qmp_close(q);
		return ret;
	}
	*out = q;
	return 0;
}

int qmp_connect(const char *path, unsigned timeout_ms, struct qmp **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* a Unix socket connects at once or fails at once */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = errno;

		close(fd);
		return e == EAGAIN ? -ECONNREFUSED : -e;
	}
	return qmp_open_fd(fd, timeout_ms, out);
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	free(q->buf);
	free(q);
}

int qmp_balloon(struct qmp *q, uint64_t bytes, unsigned timeout_ms)
{
	cJSON *args = cJSON_CreateObject();

	if (!args || !cJSON_AddNumberToObject(args, "value", (double)bytes)) {
		cJSON_Delete(args);
		return -ENOMEM;
	}
	return qmp_execute(q, "balloon", args, NULL, timeout_ms, NULL, 0);
}

static int qmp_get_int(const cJSON *obj, const char *name, int64_t *v)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(n))
		return -EPROTO;
	/* QEMU prints a statistic the guest did not give as (uint64_t)-1 */
	if (n->valuedouble >= 9.2e18 || n->valuedouble <= -9.2e18)
		*v = -1;
	else
		*v = (int64_t)n->valuedouble;
	return 0;
}

int qmp_query_balloon(struct qmp *q, uint64_t *actual, unsigned timeout_ms)
{
	cJSON *r;
	int64_t v = 0;
	int ret =
		qmp_execute(q, "query-balloon", NULL, &r, timeout_ms, NULL, 0);

	if (ret)
		return ret;
	ret = qmp_get_int(r, "actual", &v);
	cJSON_Delete(r);
	if (!ret && v < 0)
		ret = -EPROTO;
	if (!ret)
		*actual = (uint64_t)v;
	return ret;
}

int qmp_guest_stats_enable(struct qmp *q, unsigned interval_s,
			   unsigned timeout_ms)
{
	cJSON *args = cJSON_CreateObject();

	if (!args || !cJSON_AddStringToObject(args, "path", QMP_BALLOON_PATH) ||
	    !cJSON_AddStringToObject(args, "property",
				     "guest-stats-polling-interval") ||
	    !cJSON_AddNumberToObject(args, "value", interval_s)) {
		cJSON_Delete(args);
		return -ENOMEM;
	}
	return qmp_execute(q, "qom-set", args, NULL, timeout_ms, NULL, 0);
}

int qmp_guest_stats(struct qmp *q, struct qmp_guest_stats *st,
		    unsigned timeout_ms)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{ "stat-free-memory",
		  offsetof(struct qmp_guest_stats, free_memory) },
		{ "stat-total-memory",
		  offsetof(struct qmp_guest_stats, total_memory) },
		{ "stat-available-memory",
		  offsetof(struct qmp_guest_stats, available_memory) },
		{ "stat-swap-in", offsetof(struct qmp_guest_stats, swap_in) },
		{ "stat-swap-out", offsetof(struct qmp_guest_stats, swap_out) },
		{ "stat-major-faults",
		  offsetof(struct qmp_guest_stats, major_faults) },
		{ "stat-minor-faults",
		  offsetof(struct qmp_guest_stats, minor_faults) },
	};
	cJSON *args = cJSON_CreateObject(), *r, *stats;
	int ret;

	if (!args || !cJSON_AddStringToObject(args, "path", QMP_BALLOON_PATH) ||
	    !cJSON_AddStringToObject(args, "property", "guest-stats")) {
		cJSON_Delete(args);
		return -ENOMEM;
	}
	ret = qmp_execute(q, "qom-get", args, &r, timeout_ms, NULL, 0);
	if (ret)
		return ret;
	stats = cJSON_GetObjectItemCaseSensitive(r, "stats");
	if (!cJSON_IsObject(stats) ||
	    qmp_get_int(r, "last-update", &st->last_update)) {
		cJSON_Delete(r);
		return -EPROTO;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		int64_t *v = (int64_t *)((char *)st + fields[i].off);

		if (qmp_get_int(stats, fields[i].name, v))
			*v = -1;
	}
	cJSON_Delete(r);
	return 0;
}

int qmp_quit(struct qmp *q, unsigned timeout_ms)
{
	int ret = qmp_execute(q, "quit", NULL, NULL, timeout_ms, NULL, 0);

	/* QEMU may close the socket before its answer reaches us */
	return ret == -EPIPE ? 0 : ret;
}

unsigned long qmp_events_seen(const struct qmp *q)
{
	return q->events;
}
