// SPDX-License-Identifier: MIT
/*
 * top.c - `memvisor top [[ADDR:]PORT]`: the live screen (live.c) of a run
 * that serves --metrics, from another terminal or another process.
 *
 * Design: a client of the metrics endpoint, nothing more: once a second it
 * GETs /metrics over a plain socket (HTTP/1.0, bounded by socket
 * timeouts), reads the text back into a snapshot (metrics_read), computes
 * the rates from the counters' differences against the previous one over
 * the run's own clock (memvisor_run_elapsed_seconds, so a fetch that saw
 * the same snapshot twice changes no rate), and hands it to the screen.
 * The screen's thread owns the terminal; this thread waits in
 * sigtimedwait() for the next second, SIGINT or SIGTERM (leave), or the
 * screen's `q` (SIGUSR1 from this process), as `memvisor run` does.  When
 * the run goes away the last figures stay, with a message, until `q`.
 *
 * Invariants: nothing here can change the run; every network wait is
 * bounded (FETCH_TIMEOUT_S); the terminal is given back on every way out.
 *
 * Lock ordering: none here; live.c has its own leaf lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "live.h"
#include "metrics.h"
#include "snap.h"
#include "top.h"

#define FETCH_TIMEOUT_S 2
#define MAX_RESPONSE (8u << 20)
#define DEFAULT_PORT "9100"

void top_usage(FILE *out)
{
	fprintf(out,
		"usage: memvisor top [[ADDR:]PORT]\n"
		"  the live screen of `memvisor run --metrics PORT` running elsewhere,\n"
		"  read from http://ADDR:PORT/metrics once a second (ADDR defaults to\n"
		"  127.0.0.1, PORT to " DEFAULT_PORT
		"); keys as in `memvisor run --live`,\n"
		"  but `q` leaves top and the run goes on (docs/LIVE.md)\n"
		"exit status: 0 left with q or a signal; 2 bad arguments, no terminal,\n"
		"             or no memvisor metrics at the address when top starts\n");
}

/* GETs /metrics: 0 with the body in *body (the caller frees), or -1 with
 * a sentence in err. */
static int fetch(const struct sockaddr_storage *ss, socklen_t sslen,
		 char **body, char *err, size_t len)
{
	struct timeval tv = { FETCH_TIMEOUT_S, 0 };
	static const char req[] = "GET /metrics HTTP/1.0\r\n"
				  "Host: memvisor\r\nConnection: close\r\n\r\n";
	size_t cap = 1 << 16, n = 0;
	char *buf = NULL, *more, *sep;
	int fd, status = 0;
	ssize_t got;

	*body = NULL;
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, len, "socket: %s", strerror(errno));
		return -1;
	}
	/* SO_SNDTIMEO bounds connect() too */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)ss, sslen)) {
		snprintf(err, len, "cannot connect: %s", strerror(errno));
		goto fail;
	}
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(req) - 1) {
		snprintf(err, len, "cannot send the request: %s",
			 strerror(errno));
		goto fail;
	}
	buf = malloc(cap);
	if (!buf)
		goto oom;
	for (;;) {
		if (n + 1 >= cap) {
			if (cap >= MAX_RESPONSE) {
				snprintf(err, len, "the answer is too long");
				goto fail;
			}
			more = realloc(buf, cap * 2);
			if (!more)
				goto oom;
			buf = more;
			cap *= 2;
		}
		got = recv(fd, buf + n, cap - 1 - n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, len, "no answer: %s", strerror(errno));
			goto fail;
		}
		if (!got)
			break;
		n += (size_t)got;
	}
	close(fd);
	fd = -1;
	buf[n] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !sep) {
		snprintf(err, len, "not an HTTP answer");
		free(buf);
		return -1;
	}
	if (status != 200) {
		snprintf(err, len, "HTTP status %d%s", status,
			 status == 503 ? " (the run is starting)" : "");
		free(buf);
		return -1;
	}
	memmove(buf, sep + 4, strlen(sep + 4) + 1);
	*body = buf;
	return 0;
oom:
	snprintf(err, len, "out of memory");
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* What the screen shows: the snapshot just read, with rates against the
 * one before (by VM name). */
static void carry_rates(const struct snap *prev, struct snap *cur)
{
	for (size_t i = 0; i < cur->nvms; i++) {
		struct snap_vm *v = &cur->vms[i];
		struct snap_vm was = { .have = false };
		struct mv_vm_stats st = v->st;

		for (size_t j = 0; j < prev->nvms; j++)
			if (!strcmp(prev->vms[j].name, v->name))
				was = prev->vms[j];
		snap_vm_update(&was, &st, v->ops, v->integrity_errors,
			       cur->t_s);
		*v = was;
	}
}

struct top {
	pthread_t main_thread;
};

static void quit(void *arg)
{
	struct top *t = arg;

	pthread_kill(t->main_thread, SIGUSR1);
}

int top_main(int argc, char **argv)
{
	const char *arg = DEFAULT_PORT;
	struct sockaddr_storage ss;
	struct timespec second = { 1, 0 };
	struct snap prev, cur;
	struct top t;
	struct live *l;
	sigset_t sigs, old;
	siginfo_t info;
	char err[512], msg[640], where[64];
	char *body;
	socklen_t sslen;
	int sig;

	if (argc > 1 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		top_usage(stdout);
		return 0;
	}
	if (argc > 2) {
		top_usage(stderr);
		return 2;
	}
	if (argc > 1)
		arg = argv[1];
	if (metrics_parse_addr(arg, &ss, &sslen, err, sizeof(err))) {
		fprintf(stderr, "memvisor top: %s\n", err);
		return 2;
	}
	snprintf(where, sizeof(where), "%s%.60s", strchr(arg, ':') ? "" : ":",
		 arg);
	if (fetch(&ss, sslen, &body, err, sizeof(err))) {
		fprintf(stderr,
			"memvisor top: no metrics at %s: %s (start the run with `memvisor run --metrics %s`)\n",
			arg, err, arg);
		return 2;
	}
	snap_init(&prev, 0);
	snap_init(&cur, 0);
	if (metrics_read(body, &cur)) {
		fprintf(stderr,
			"memvisor top: what answers at %s is not memvisor's metrics\n",
			arg);
		free(body);
		snap_free(&cur);
		return 2;
	}
	free(body);
	if (live_check_terminal(err, sizeof(err))) {
		fprintf(stderr, "memvisor top: %s\n", err);
		snap_free(&cur);
		return 2;
	}
	/* the screen's thread takes WINCH and TSTP; this one the rest */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGWINCH);
	sigaddset(&sigs, SIGTSTP);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	sigdelset(&sigs, SIGWINCH);
	sigdelset(&sigs, SIGTSTP);
	t.main_thread = pthread_self();
	l = live_create(cur.nvms);
	if (!l || live_start(l, quit, &t, err, sizeof(err))) {
		fprintf(stderr, "memvisor top: %s\n",
			l ? err : "out of memory");
		live_destroy(l);
		snap_free(&cur);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return 2;
	}
	for (;;) {
		if (cur.nvms || cur.have_host) {
			carry_rates(&prev, &cur);
			/* the title: "memvisor top WHERE NAME  ...", the name
			 * cut, from its start, only by the screen's width */
			snprintf(cur.origin, sizeof(cur.origin), "top %s",
				 where);
			live_update(l, &cur);
			snap_copy(&prev, &cur);
		}
		sig = sigtimedwait(&sigs, &info, &second);
		if (sig == SIGUSR1 && info.si_pid != getpid())
			continue;
		if (sig > 0)
			break;
		if (fetch(&ss, sslen, &body, err, sizeof(err))) {
			snprintf(
				msg, sizeof(msg),
				"%.40s: %.500s; the run may have ended (q leaves)",
				where, err);
			live_message(l, msg);
			snap_free(&cur);
			snap_init(&cur, 0);
			continue;
		}
		if (metrics_read(body, &cur))
			live_message(l, "the answer is not memvisor's metrics");
		else
			live_message(l, "");
		free(body);
	}
	live_destroy(l);
	snap_free(&prev);
	snap_free(&cur);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}
