// SPDX-License-Identifier: MIT
/*
 * msg.c - the host's messages: its last sentence (mv_host_errmsg_copy) and
 * the events on their way to the config's log callback.  Platform layer:
 * every file may call it, under any engine lock; it calls nothing of the
 * engine.
 *
 * Design: errmsg holds the host's last sentence, copied out under msg_lock.
 * Background events are also queued (at most MV_LOG_QUEUE; the oldest are
 * dropped and counted) and delivered by a log thread of the host's own,
 * with no engine lock held, so that a callback can never deadlock the
 * engine nor slow a fault.
 *
 * Invariants: msg_lock is a leaf (internal.h, "Lock order"); the callback
 * runs on the log thread only, with no lock held; mv__log_stop returns
 * after every queued event was delivered.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The log thread's idle wait, re-armed while it has nothing to deliver */
#define LOG_IDLE_MS 1000

/*
 * Messages and events.  errmsg is the last sentence, copied out under
 * msg_lock.  An event is also queued (when the host has a log callback)
 * and delivered by the log thread, which holds no engine lock while the
 * callback runs: events are raised under pmap entry locks and share.lock,
 * and a callback that touched guest memory or called back into the engine
 * there could deadlock.
 */
static void host_vmsg(struct mv_host *h, int level, const char *fmt, va_list ap)
{
	struct mv__log_event *e;

	pthread_mutex_lock(&h->msg_lock);
	vsnprintf(h->errmsg, sizeof(h->errmsg), fmt, ap);
	if (level >= 0 && h->log) {
		if (h->logq_n == MV_LOG_QUEUE) {
			h->logq_head = (h->logq_head + 1) % MV_LOG_QUEUE;
			h->logq_n--;
			h->log_dropped++;
		}
		e = &h->logq[(h->logq_head + h->logq_n++) % MV_LOG_QUEUE];
		e->level = (enum mv_log_level)level;
		memcpy(e->msg, h->errmsg, sizeof(e->msg));
		pthread_cond_signal(&h->log_wake);
	}
	pthread_mutex_unlock(&h->msg_lock);
}

void mv__host_set_msg(struct mv_host *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	host_vmsg(h, MV_LOG_WARNING, fmt, ap);
	va_end(ap);
}

void mv__host_event(struct mv_host *h, enum mv_log_level level, const char *fmt,
		    ...)
{
	va_list ap;

	va_start(ap, fmt);
	host_vmsg(h, (int)level, fmt, ap);
	va_end(ap);
}

void mv__host_api_msg(struct mv_host *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	host_vmsg(h, -1, fmt, ap);
	va_end(ap);
}

/* Delivers queued events, one at a time, with msg_lock dropped. */
static void *log_main(void *arg)
{
	struct mv_host *h = arg;
	char msg[MV_ERRMSG_MAX + 48];
	enum mv_log_level level;
	struct timespec ts;
	uint64_t dropped;

	pthread_mutex_lock(&h->msg_lock);
	for (;;) {
		if (!h->logq_n) {
			if (h->log_stop)
				break;
			mv__deadline_ms(&ts, LOG_IDLE_MS);
			pthread_cond_timedwait(&h->log_wake, &h->msg_lock, &ts);
			continue;
		}
		level = h->logq[h->logq_head].level;
		dropped = h->log_dropped;
		h->log_dropped = 0;
		if (dropped)
			snprintf(msg, sizeof(msg),
				 "(%llu earlier events dropped) %s",
				 (unsigned long long)dropped,
				 h->logq[h->logq_head].msg);
		else
			memcpy(msg, h->logq[h->logq_head].msg,
			       sizeof(h->logq[0].msg));
		h->logq_head = (h->logq_head + 1) % MV_LOG_QUEUE;
		h->logq_n--;
		pthread_mutex_unlock(&h->msg_lock);
		h->log(h->log_arg, level, msg);
		pthread_mutex_lock(&h->msg_lock);
	}
	pthread_mutex_unlock(&h->msg_lock);
	return NULL;
}

int mv__log_start(struct mv_host *h)
{
	if (!h->log)
		return 0;
	return -pthread_create(&h->log_thread, NULL, log_main, h);
}

/* Stops the log thread after it has delivered every queued event. */
void mv__log_stop(struct mv_host *h)
{
	if (!h->log)
		return;
	pthread_mutex_lock(&h->msg_lock);
	h->log_stop = true;
	pthread_cond_signal(&h->log_wake);
	pthread_mutex_unlock(&h->msg_lock);
	pthread_join(h->log_thread, NULL);
}
