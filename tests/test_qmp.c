// SPDX-License-Identifier: MIT
/*
 * test_qmp.c - the QMP client (tools/qmp.c) against a scripted peer on a
 * socketpair: the handshake, answers found past events, QEMU's errors,
 * statistics with missing fields, and every way a peer can fail it (gone,
 * silent, not QMP) ending in an error within the timeout, never a hang.
 */
#include "../tools/qmp.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "helper.h"

#define GREETING                                                           \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, " \
	"\"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n"
#define OK "{\"return\": {}}\r\n"

struct peer {
	int fd; /* the scripted QEMU's end */
	int cfd; /* the client's end, until handed to qmp_open_fd */
	struct qmp *q;
};

static void say_peer(struct peer *p, const char *text)
{
	size_t len = strlen(text);

	assert_int_equal(write(p->fd, text, len), (ssize_t)len);
}

/* A socketpair; the client's end handed to the client only if greet. */
static void peer_open(struct peer *p, bool greet)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	p->fd = sv[1];
	p->cfd = sv[0];
	p->q = NULL;
	if (greet) {
		say_peer(p, GREETING OK);
		assert_int_equal(qmp_open_fd(p->cfd, 2000, &p->q), 0);
	}
}

static void peer_close(struct peer *p)
{
	qmp_close(p->q);
	close(p->fd);
}

/* What the client has sent so far. */
static char *peer_heard(struct peer *p)
{
	static char buf[4096];
	ssize_t n = recv(p->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void test_handshake_sends_capabilities_after_the_greeting(void **state)
{
	struct peer p;

	(void)state;
	peer_open(&p, true);
	assert_non_null(
		strstr(peer_heard(&p), "{\"execute\":\"qmp_capabilities\"}\n"));
	peer_close(&p);
}

static void test_a_peer_that_is_not_qmp_is_refused(void **state)
{
	struct peer p;
	struct qmp *q;

	(void)state;
	peer_open(&p, false);
	say_peer(&p, "{\"hello\": 1}\n");
	assert_int_equal(qmp_open_fd(p.cfd, 2000, &q), -EPROTO);
	assert_null(q);
	peer_close(&p);
}

static void test_a_line_that_is_not_json_breaks_the_connection(void **state)
{
	struct peer p;
	uint64_t actual;

	(void)state;
	peer_open(&p, true);
	say_peer(&p, "{\"return\": {\"actual\": \n");
	assert_int_equal(qmp_query_balloon(p.q, &actual, 2000), -EPROTO);
	/* and stays broken: nothing later can be taken for an answer */
	say_peer(&p, "{\"return\": {\"actual\": 5}}\n");
	assert_int_equal(qmp_query_balloon(p.q, &actual, 2000), -EPROTO);
	peer_close(&p);
}

static void test_events_before_an_answer_are_skipped(void **state)
{
	struct peer p;
	uint64_t actual = 0;

	(void)state;
	peer_open(&p, true);
	say_peer(&p,
		 "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
		 "\"event\": \"BALLOON_CHANGE\", \"data\": {\"actual\": 1}}\r\n"
		 "\r\n"
		 "{\"return\": {\"actual\": 201326592}}\r\n");
	assert_int_equal(qmp_query_balloon(p.q, &actual, 2000), 0);
	assert_int_equal(actual, 201326592);
	assert_int_equal(qmp_events_seen(p.q), 1);
	assert_non_null(strstr(peer_heard(&p), "\"query-balloon\""));
	peer_close(&p);
}

static void test_balloon_sends_the_size_in_bytes(void **state)
{
	struct peer p;

	(void)state;
	peer_open(&p, true);
	peer_heard(&p);
	say_peer(&p, OK);
	assert_int_equal(qmp_balloon(p.q, 1ull << 40, 2000), 0);
	assert_string_equal(peer_heard(&p),
			    "{\"execute\":\"balloon\",\"arguments\":{\"value\":"
			    "1099511627776}}\n");
	peer_close(&p);
}

static void test_an_error_answer_gives_its_class_and_description(void **state)
{
	struct peer p;
	char err[128];

	(void)state;
	peer_open(&p, true);
	say_peer(&p, "{\"error\": {\"class\": \"DeviceNotActive\", \"desc\": "
		     "\"No balloon device has been activated\"}}\n");
	assert_int_equal(qmp_execute(p.q, "query-balloon", NULL, NULL, 2000,
				     err, sizeof(err)),
			 -EREMOTEIO);
	assert_string_equal(
		err, "DeviceNotActive: No balloon device has been activated");
	/* the connection still works after an error answer */
	say_peer(&p, "{\"return\": {\"actual\": 7}}\n");
	{
		uint64_t actual;

		assert_int_equal(qmp_query_balloon(p.q, &actual, 2000), 0);
		assert_int_equal(actual, 7);
	}
	peer_close(&p);
}

static void test_a_peer_that_closed_is_an_error_at_once(void **state)
{
	struct peer p;
	uint64_t actual, t0;

	(void)state;
	peer_open(&p, true);
	close(p.fd);
	p.fd = -1;
	t0 = th_now_ms();
	assert_int_equal(qmp_query_balloon(p.q, &actual, 60000), -EPIPE);
	/* far from the 60 s it was given */
	assert_true(th_now_ms() - t0 < TH_WAIT_MS);
	qmp_close(p.q);
}

static void test_a_silent_peer_times_out(void **state)
{
	struct peer p;
	uint64_t actual, t0, spent;

	(void)state;
	peer_open(&p, true);
	t0 = th_now_ms();
	assert_int_equal(qmp_query_balloon(p.q, &actual, 300), -ETIMEDOUT);
	spent = th_now_ms() - t0;
	assert_true(spent >= 290 && spent < TH_WAIT_MS);
	peer_close(&p);
}

static void test_quit_counts_a_closed_socket_as_done(void **state)
{
	struct peer p;

	(void)state;
	peer_open(&p, true);
	shutdown(p.fd, SHUT_WR); /* QEMU closes as it quits */
	assert_int_equal(qmp_quit(p.q, 2000), 0);
	peer_close(&p);
}

static void test_guest_stats_missing_fields_read_as_minus_one(void **state)
{
	struct qmp_guest_stats st;
	struct peer p;

	(void)state;
	peer_open(&p, true);
	say_peer(&p, "{\"return\": {\"stats\": {\"stat-free-memory\": 1000, "
		     "\"stat-total-memory\": 4000, \"stat-swap-in\": "
		     "18446744073709551615}, "
		     "\"last-update\": 1700000000}}\n");
	assert_int_equal(qmp_guest_stats(p.q, &st, 2000), 0);
	assert_int_equal(st.last_update, 1700000000);
	assert_int_equal(st.free_memory, 1000);
	assert_int_equal(st.total_memory, 4000);
	assert_int_equal(st.swap_in, -1);
	assert_int_equal(st.available_memory, -1);
	assert_non_null(strstr(peer_heard(&p),
			       "\"path\":\"" QMP_BALLOON_PATH
			       "\",\"property\":\"guest-stats\""));
	peer_close(&p);
}

static void test_an_answer_of_the_wrong_shape_is_a_protocol_error(void **state)
{
	struct peer p;
	uint64_t actual;

	(void)state;
	peer_open(&p, true);
	say_peer(&p, "{\"return\": {\"actual\": \"lots\"}}\n");
	assert_int_equal(qmp_query_balloon(p.q, &actual, 2000), -EPROTO);
	say_peer(&p, "[1, 2]\n");
	assert_int_equal(qmp_query_balloon(p.q, &actual, 2000), -EPROTO);
	peer_close(&p);
}

static void test_connect_to_nothing_says_so(void **state)
{
	struct qmp *q;

	(void)state;
	assert_int_equal(qmp_connect("/nonexistent/mv-qmp.sock", 1000, &q),
			 -ENOENT);
	assert_null(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_handshake_sends_capabilities_after_the_greeting),
		cmocka_unit_test(test_a_peer_that_is_not_qmp_is_refused),
		cmocka_unit_test(
			test_a_line_that_is_not_json_breaks_the_connection),
		cmocka_unit_test(test_events_before_an_answer_are_skipped),
		cmocka_unit_test(test_balloon_sends_the_size_in_bytes),
		cmocka_unit_test(
			test_an_error_answer_gives_its_class_and_description),
		cmocka_unit_test(test_a_peer_that_closed_is_an_error_at_once),
		cmocka_unit_test(test_a_silent_peer_times_out),
		cmocka_unit_test(test_quit_counts_a_closed_socket_as_done),
		cmocka_unit_test(
			test_guest_stats_missing_fields_read_as_minus_one),
		cmocka_unit_test(
			test_an_answer_of_the_wrong_shape_is_a_protocol_error),
		cmocka_unit_test(test_connect_to_nothing_says_so),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
