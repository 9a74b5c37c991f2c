// SPDX-License-Identifier: MIT
/*
 * test_proto.c - the daemon protocol's encoding (src/proto.c): every
 * message comes back as it was sent, every prefix of a message asks for
 * more bytes, every bad header is refused as soon as its 16 bytes are in
 * (so no peer can make a reader wait for a body it will refuse), every
 * field out of range is refused with a sentence, the encoder never sends
 * what the decoder refuses, and seeded fuzzing of valid messages and of
 * random bytes never reads past the bytes given and never accepts what it
 * cannot encode back byte for byte.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One valid message of each type. */
static struct mv__proto_msg sample(unsigned type)
{
	struct mv__proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)type;
	switch (type) {
	case MV_PROTO_HELLO:
		strcpy(m.u.hello.name, "guest-1");
		m.u.hello.memsize_bytes = 256ull << 20;
		m.u.hello.shares = 2560;
		m.u.hello.reservation_bytes = 16ull << 20;
		m.u.hello.limit_bytes = 128ull << 20;
		m.u.hello.consumed_bytes = 40ull << 20;
		m.u.hello.pid = 4242;
		strcpy(m.u.hello.qmp_path, "/run/qmp.sock");
		break;
	case MV_PROTO_WELCOME:
	case MV_PROTO_GRANT:
		m.u.grant = (struct mv__proto_grant){
			.seq = 7,
			.grant_bytes = 64ull << 20,
			.target_bytes = 60ull << 20,
			.balloon_bytes = 4ull << 20,
			.period_ms = 100,
			.vm_id = 3,
		};
		break;
	case MV_PROTO_STATS:
		m.u.stats.consumed_pages = 1000;
		m.u.stats.active_pages = 500;
		m.u.stats.active_permille = 500;
		m.u.stats.swcur_pages = 77;
		m.u.stats.faults = 1ull << 40; /* totals are not capped */
		m.u.stats.state_pages[MV_PAGE_SWAPPED] = 77;
		m.u.stats.budget_pages = 2048;
		m.u.stats.flags = MV_PROTO_STATS_DEMAND;
		m.u.stats.demand_pages = 400;
		break;
	case MV_PROTO_GRANT_ACK:
		m.u.ack =
			(struct mv__proto_ack){ .seq = 7,
						.grant_bytes = 64ull << 20,
						.consumed_bytes = 63ull << 20 };
		break;
	case MV_PROTO_BYE:
		break;
	case MV_PROTO_ERROR:
		m.u.error.code = EPROTO;
		strcpy(m.u.error.msg, "something was wrong");
		break;
	}
	return m;
}

static int encode(const struct mv__proto_msg *m, uint8_t *buf)
{
	int n = mv__proto_encode(m, buf, MV_PROTO_MAX);

	assert_true(n > 0);
	return n;
}

static void test_every_message_round_trips(void **state)
{
	uint8_t buf[MV_PROTO_MAX];
	struct mv__proto_msg m, out;
	size_t used;
	int n;

	(void)state;
	for (unsigned t = 1; t < MV_PROTO_NTYPES; t++) {
		m = sample(t);
		n = encode(&m, buf);
		assert_int_equal((size_t)n,
				 MV_PROTO_HDR + mv__proto_body_len(t));
		assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used,
						  NULL, 0),
				 0);
		assert_int_equal(used, (size_t)n);
		assert_memory_equal(&out, &m, sizeof(m));
	}
}

static void test_header_is_little_endian_magic_version_type_length(void **state)
{
	struct mv__proto_msg m = sample(MV_PROTO_GRANT);
	uint8_t buf[MV_PROTO_MAX];

	(void)state;
	encode(&m, buf);
	assert_memory_equal(buf, "MVP1", 4);
	assert_int_equal(buf[4], 1); /* version 1 */
	assert_int_equal(buf[5], 0);
	assert_int_equal(buf[6], MV_PROTO_GRANT);
	assert_int_equal(buf[8], mv__proto_body_len(MV_PROTO_GRANT));
	assert_int_equal(buf[12] | buf[13] | buf[14] | buf[15], 0);
	assert_int_equal(buf[16], 7); /* seq, low byte first */
}

static void test_every_prefix_asks_for_more(void **state)
{
	uint8_t buf[MV_PROTO_MAX];
	struct mv__proto_msg m, out;
	size_t used;
	int n;

	(void)state;
	for (unsigned t = 1; t < MV_PROTO_NTYPES; t++) {
		m = sample(t);
		n = encode(&m, buf);
		for (int len = 0; len < n; len++)
			assert_int_equal(mv__proto_decode(buf, (size_t)len,
							  &out, &used, NULL, 0),
					 -EAGAIN);
	}
}

static void test_two_messages_in_a_row_decode_one_at_a_time(void **state)
{
	struct mv__proto_msg a = sample(MV_PROTO_STATS),
			     b = sample(MV_PROTO_BYE), out;
	uint8_t buf[2 * MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	n = encode(&a, buf);
	n += mv__proto_encode(&b, buf + n, MV_PROTO_MAX);
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(out.type, MV_PROTO_STATS);
	assert_int_equal(mv__proto_decode(buf + used, (size_t)n - used, &out,
					  &used, NULL, 0),
			 0);
	assert_int_equal(out.type, MV_PROTO_BYE);
}

/* Decodes buf's first 16 bytes only: a bad header is judged there. */
static int decode_header(const uint8_t *buf, char *err)
{
	struct mv__proto_msg out;
	size_t used;

	return mv__proto_decode(buf, MV_PROTO_HDR, &out, &used, err, 160);
}

static void test_bad_headers_are_refused_at_sixteen_bytes(void **state)
{
	struct mv__proto_msg m = sample(MV_PROTO_HELLO), out;
	uint8_t good[MV_PROTO_MAX], buf[MV_PROTO_MAX];
	char err[160];
	size_t used;

	(void)state;
	encode(&m, good);

	memcpy(buf, good, sizeof(buf));
	buf[0] = 'X'; /* refused at its first byte */
	assert_int_equal(mv__proto_decode(buf, 1, &out, &used, err, 160),
			 -EPROTO);
	assert_non_null(strstr(err, "magic"));

	memcpy(buf, good, sizeof(buf));
	buf[4] = 2;
	assert_int_equal(decode_header(buf, err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "version 2"));

	memcpy(buf, good, sizeof(buf));
	buf[6] = 99;
	assert_int_equal(decode_header(buf, err), -EBADMSG);
	assert_non_null(strstr(err, "type 99"));
	buf[6] = 0;
	assert_int_equal(decode_header(buf, err), -EBADMSG);

	/* oversized: a body of 1 MiB is refused without waiting for it */
	memcpy(buf, good, sizeof(buf));
	buf[8] = 0, buf[9] = 0, buf[10] = 0x10, buf[11] = 0;
	assert_int_equal(decode_header(buf, err), -EBADMSG);
	assert_non_null(strstr(err, "HELLO"));
	/* one byte short is wrong too */
	memcpy(buf, good, sizeof(buf));
	buf[8]--;
	assert_int_equal(decode_header(buf, err), -EBADMSG);

	memcpy(buf, good, sizeof(buf));
	buf[13] = 1;
	assert_int_equal(decode_header(buf, err), -EPROTO);
	assert_non_null(strstr(err, "reserved"));
}

/* Offsets in a HELLO body (docs/PROTOCOL.md) */
#define HELLO_NAME 0
#define HELLO_MEMSIZE 32
#define HELLO_SHARES 40
#define HELLO_RES 48
#define HELLO_LIMIT 56
#define HELLO_CONSUMED 64
#define HELLO_PID 72
#define HELLO_FLAGS 76
#define HELLO_QMP 80

static void put64(uint8_t *p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int decode_hello_patched(void (*patch)(uint8_t *body), char *err)
{
	struct mv__proto_msg m = sample(MV_PROTO_HELLO), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n = encode(&m, buf);

	patch(buf + MV_PROTO_HDR);
	return mv__proto_decode(buf, (size_t)n, &out, &used, err, 160);
}

static void name_unterminated(uint8_t *b)
{
	memset(b + HELLO_NAME, 'a', MV_NAME_MAX);
}
static void name_empty(uint8_t *b)
{
	b[HELLO_NAME] = 0;
}
static void name_slash(uint8_t *b)
{
	b[HELLO_NAME + 2] = '/';
}
static void name_control(uint8_t *b)
{
	b[HELLO_NAME + 1] = '\n';
}
static void memsize_odd(uint8_t *b)
{
	put64(b + HELLO_MEMSIZE, (256ull << 20) + 1);
}
static void memsize_huge(uint8_t *b)
{
	put64(b + HELLO_MEMSIZE, 1ull << 60);
}
static void shares_huge(uint8_t *b)
{
	put64(b + HELLO_SHARES, MV_SHARES_MAX + 1);
}
static void res_above_limit(uint8_t *b)
{
	put64(b + HELLO_RES, 129ull << 20);
}
static void limit_above_memsize(uint8_t *b)
{
	put64(b + HELLO_LIMIT, 257ull << 20);
}
static void consumed_above_memsize(uint8_t *b)
{
	put64(b + HELLO_CONSUMED, 257ull << 20);
}
static void pid_zero(uint8_t *b)
{
	memset(b + HELLO_PID, 0, 4);
}
static void flags_set(uint8_t *b)
{
	b[HELLO_FLAGS] = 1;
}
static void qmp_unterminated(uint8_t *b)
{
	memset(b + HELLO_QMP, 'q', MV_PROTO_PATH_MAX);
}

static void test_hello_fields_out_of_range_are_refused(void **state)
{
	static void (*const patches[])(uint8_t *) = {
		name_unterminated,
		name_empty,
		name_slash,
		name_control,
		memsize_odd,
		memsize_huge,
		shares_huge,
		res_above_limit,
		limit_above_memsize,
		consumed_above_memsize,
		pid_zero,
		flags_set,
		qmp_unterminated,
	};
	char err[160];
	int e;

	(void)state;
	for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
		e = decode_hello_patched(patches[i], err);
		assert_true(e == -EINVAL || e == -ERANGE);
		assert_non_null(strstr(err, "HELLO"));
	}
}

static void test_other_fields_out_of_range_are_refused(void **state)
{
	struct mv__proto_msg m;
	uint8_t buf[MV_PROTO_MAX];
	struct mv__proto_msg out;
	size_t used;
	int n;

	(void)state;
	/* STATS: active_permille (the last u32 but one) above 1000 */
	m = sample(MV_PROTO_STATS);
	n = encode(&m, buf);
	buf[n - 8] = 0xe9, buf[n - 7] = 0x03; /* 1001 */
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -ERANGE);
	/* GRANT: sequence 0, and a grant not in whole pages */
	m = sample(MV_PROTO_GRANT);
	n = encode(&m, buf);
	buf[MV_PROTO_HDR] = 0;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -ERANGE);
	n = encode(&m, buf);
	buf[MV_PROTO_HDR + 8] = 1;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -ERANGE);
	/* GRANT_ACK: consumption above the grant */
	m = sample(MV_PROTO_GRANT_ACK);
	n = encode(&m, buf);
	buf[MV_PROTO_HDR + 16 + 7] = 1;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -ERANGE);
	/* ERROR: code 0 */
	m = sample(MV_PROTO_ERROR);
	n = encode(&m, buf);
	buf[MV_PROTO_HDR] = 0;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -ERANGE);
	/* BYE: an unknown reason */
	m = sample(MV_PROTO_BYE);
	n = encode(&m, buf);
	buf[MV_PROTO_HDR] = 3;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -ERANGE);
}

static void test_encoder_refuses_what_the_decoder_would(void **state)
{
	struct mv__proto_msg m;
	uint8_t buf[MV_PROTO_MAX];

	(void)state;
	m = sample(MV_PROTO_HELLO);
	m.u.hello.memsize_bytes += 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(MV_PROTO_STATS);
	m.u.stats.active_pages = m.u.stats.consumed_pages + 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(MV_PROTO_STATS);
	m.u.stats.flags = 0; /* a demand without its flag */
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(MV_PROTO_STATS);
	m.u.stats.flags = 2; /* a flag version 1 does not know */
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(MV_PROTO_GRANT);
	m.type = 0;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(MV_PROTO_GRANT);
	assert_int_equal(mv__proto_encode(&m, buf, MV_PROTO_HDR + 3), -ENOSPC);
}

/*
 * What a decoder must hold for any bytes: it reads none past len (the
 * bytes sit at the end of a heap block, so ASan sees any), says 0,
 * -EAGAIN or an error with a sentence, and a message it accepts encodes
 * back to exactly the bytes it came from.
 */
static unsigned check_bytes(const uint8_t *bytes, size_t len, unsigned *ok)
{
	uint8_t *copy = malloc(len ? len : 1), again[MV_PROTO_MAX];
	struct mv__proto_msg out;
	char err[160];
	size_t used = 0;
	unsigned bad = 0;
	int e, n;

	assert_non_null(copy);
	memcpy(copy, bytes, len);
	e = mv__proto_decode(copy, len, &out, &used, err, sizeof(err));
	if (e == 0) {
		(*ok)++;
		n = mv__proto_encode(&out, again, sizeof(again));
		if (n <= 0 || (size_t)n != used || used > len ||
		    memcmp(again, copy, used))
			bad++;
	} else if (e != -EAGAIN) {
		if (!err[0] || (e != -EPROTO && e != -EPROTONOSUPPORT &&
				e != -EBADMSG && e != -ERANGE && e != -EINVAL))
			bad++;
	}
	free(copy);
	return bad;
}

static void test_fuzzed_bytes_never_crash_nor_pass_unchecked(void **state)
{
	uint8_t buf[MV_PROTO_MAX + 64];
	uint64_t seed = 0x5eed0f15ull;
	unsigned bad = 0, ok = 0, cases = 0;
	struct mv__proto_msg m;
	size_t len;
	int n;

	(void)state;
	/* mutated valid messages: bit flips, bytes set, cut, extended */
	for (unsigned i = 0; i < 60000; i++, cases++) {
		m = sample(1 + (unsigned)(xs(&seed) % (MV_PROTO_NTYPES - 1)));
		n = encode(&m, buf);
		len = (size_t)n;
		for (unsigned k = 0, flips = 1 + xs(&seed) % 4; k < flips;
		     k++) {
			size_t at = xs(&seed) % len;

			if (xs(&seed) & 1)
				buf[at] ^= (uint8_t)(1u << (xs(&seed) % 8));
			else
				buf[at] = (uint8_t)xs(&seed);
		}
		switch (xs(&seed) % 4) {
		case 0:
			len = xs(&seed) % (len + 1); /* truncated */
			break;
		case 1: /* trailing bytes */
			for (unsigned k = 0; k < 32; k++)
				buf[len + k] = (uint8_t)xs(&seed);
			len += 1 + xs(&seed) % 32;
			break;
		default:
			break;
		}
		bad += check_bytes(buf, len, &ok);
	}
	/* random bytes, with and without a valid header in front */
	for (unsigned i = 0; i < 40000; i++, cases++) {
		len = xs(&seed) % sizeof(buf);
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)xs(&seed);
		if (i & 1 && len >= MV_PROTO_HDR) {
			m = sample(1 + (unsigned)(xs(&seed) %
						  (MV_PROTO_NTYPES - 1)));
			encode(&m, buf + sizeof(buf) - MV_PROTO_MAX);
			memcpy(buf, buf + sizeof(buf) - MV_PROTO_MAX,
			       MV_PROTO_HDR);
		}
		bad += check_bytes(buf, len, &ok);
	}
	print_message("%u cases, %u decoded as valid messages\n", cases, ok);
	assert_int_equal(bad, 0);
	assert_true(ok > 1000); /* the fuzz reached past the checks too */
}

/* The STATS body agents sent before the tail, and its flags. */
#define STATS_OLD_BODY 264u
#define STATS_FLAGS_AT (MV_PROTO_HDR + STATS_OLD_BODY - 4)

static struct mv__proto_msg stats_with_service(void)
{
	struct mv__proto_msg m = sample(MV_PROTO_STATS);

	m.u.stats.flags |= MV_PROTO_STATS_MORE;
	m.u.stats.service_cpus = 2;
	m.u.stats.service_cpu_changes = 3;
	m.u.stats.service_moves = 5;
	m.u.stats.service_affinity_errors = 1;
	m.u.stats.zip_evict_pages = 7;
	m.u.stats.share_scanned_pages = 1ull << 33;
	m.u.stats.lpage_collapses = 11;
	m.u.stats.lpage_breaks = 13;
	return m;
}

static void test_stats_tail_figures_round_trip_in_the_longer_body(void **state)
{
	struct mv__proto_msg m = stats_with_service(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	n = encode(&m, buf);
	assert_int_equal(n, MV_PROTO_HDR + STATS_OLD_BODY +
				    MV_PROTO_STATS_MORE_BYTES);
	assert_int_equal(buf[8] | buf[9] << 8,
			 STATS_OLD_BODY + MV_PROTO_STATS_MORE_BYTES);
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(used, (size_t)n);
	assert_memory_equal(&out, &m, sizeof(m));
	assert_int_equal(out.u.stats.service_cpus, 2);
	assert_int_equal(out.u.stats.service_moves, 5);
	assert_int_equal(out.u.stats.share_scanned_pages, 1ull << 33);
	assert_int_equal(out.u.stats.lpage_breaks, 13);
}

static void
test_stats_of_the_old_length_decode_without_the_tail_figures(void **state)
{
	struct mv__proto_msg m = sample(MV_PROTO_STATS), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	/* what an agent from before the tail sends: 264 bytes, no flag */
	n = encode(&m, buf);
	assert_int_equal(n, MV_PROTO_HDR + STATS_OLD_BODY);
	assert_int_equal(buf[8] | buf[9] << 8, STATS_OLD_BODY);
	assert_int_equal(mv__proto_body_len(MV_PROTO_STATS), STATS_OLD_BODY);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(used, (size_t)n);
	assert_int_equal(out.u.stats.consumed_pages, 1000);
	assert_int_equal(out.u.stats.demand_pages, 400);
	assert_int_equal(out.u.stats.flags, MV_PROTO_STATS_DEMAND);
	assert_int_equal(out.u.stats.service_cpus, 0);
	assert_int_equal(out.u.stats.service_cpu_changes, 0);
	assert_int_equal(out.u.stats.service_moves, 0);
	assert_int_equal(out.u.stats.service_affinity_errors, 0);
	assert_int_equal(out.u.stats.zip_evict_pages, 0);
	assert_int_equal(out.u.stats.share_scanned_pages, 0);
	assert_int_equal(out.u.stats.lpage_collapses, 0);
	assert_int_equal(out.u.stats.lpage_breaks, 0);
}

static void test_stats_whose_length_and_flags_disagree_are_refused(void **state)
{
	struct mv__proto_msg m = stats_with_service(), out;
	uint8_t buf[MV_PROTO_MAX];
	char err[128];
	size_t used;
	int n;

	(void)state;
	/* the longer body without its flag */
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] &= (uint8_t)~MV_PROTO_STATS_MORE;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, err,
					  sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "flags"));
	/* the shorter body with it */
	m = sample(MV_PROTO_STATS);
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] |= MV_PROTO_STATS_MORE;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
	/* a length that is neither, refused with the header */
	buf[8] = (uint8_t)(STATS_OLD_BODY + 8);
	buf[9] = (uint8_t)((STATS_OLD_BODY + 8) >> 8);
	assert_int_equal(mv__proto_decode(buf, MV_PROTO_HDR, &out, &used, NULL,
					  0),
			 -EBADMSG);
	/* the tail's figures without the flag, or on too many CPUs */
	m = sample(MV_PROTO_STATS);
	m.u.stats.service_moves = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = sample(MV_PROTO_STATS);
	m.u.stats.lpage_breaks = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = stats_with_service();
	m.u.stats.service_cpus = MV_PROTO_CPUS_MAX + 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
}

/* The waits after the tail: round trip in the longest body, and the rules
 * that keep them from standing alone. */
static void test_stats_waits_round_trip_after_the_tail(void **state)
{
	struct mv__proto_msg m = stats_with_service(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	m.u.stats.flags |= MV_PROTO_STATS_WAITS;
	m.u.stats.alloc_waits = 19;
	m.u.stats.blocked_waits = 1ull << 35;
	n = encode(&m, buf);
	assert_int_equal(n, MV_PROTO_HDR + STATS_OLD_BODY +
				    MV_PROTO_STATS_MORE_BYTES +
				    MV_PROTO_STATS_WAITS_BYTES);
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(used, (size_t)n);
	assert_memory_equal(&out, &m, sizeof(m));
	/* the tail alone decodes with no waits */
	m = stats_with_service();
	n = encode(&m, buf);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(out.u.stats.alloc_waits, 0);
	assert_int_equal(out.u.stats.blocked_waits, 0);
}

static void test_stats_waits_without_the_tail_are_refused(void **state)
{
	struct mv__proto_msg m = sample(MV_PROTO_STATS), out;
	uint8_t buf[MV_PROTO_MAX];
	char err[128];
	size_t used;
	int n;

	(void)state;
	/* the flag without the tail's */
	m.u.stats.flags |= MV_PROTO_STATS_WAITS;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* figures without their flag */
	m = stats_with_service();
	m.u.stats.blocked_waits = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* the longest body with the flag taken off */
	m = stats_with_service();
	m.u.stats.flags |= MV_PROTO_STATS_WAITS;
	m.u.stats.alloc_waits = 1;
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] &= (uint8_t)~MV_PROTO_STATS_WAITS;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, err,
					  sizeof(err)),
			 -EBADMSG);
	/* the tail's body with the flag set on it */
	m = stats_with_service();
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] |= MV_PROTO_STATS_WAITS;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
}

/* The compression figures after the waits: round trip in the longest body,
 * and the rules that keep them from standing alone or out of range. */
static struct mv__proto_msg stats_with_waits(void)
{
	struct mv__proto_msg m = stats_with_service();

	m.u.stats.flags |= MV_PROTO_STATS_WAITS;
	m.u.stats.alloc_waits = 3;
	return m;
}

static void test_stats_zip_figures_round_trip_after_the_waits(void **state)
{
	struct mv__proto_msg m = stats_with_waits(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	m.u.stats.flags |= MV_PROTO_STATS_ZIP;
	m.u.stats.zip_incompressible = 77;
	m.u.stats.zip_fast_pages = 1ull << 33;
	m.u.stats.zip_accel = 8;
	n = encode(&m, buf);
	assert_int_equal(n, MV_PROTO_HDR + STATS_OLD_BODY +
				    MV_PROTO_STATS_MORE_BYTES +
				    MV_PROTO_STATS_WAITS_BYTES +
				    MV_PROTO_STATS_ZIP_BYTES);
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(used, (size_t)n);
	assert_memory_equal(&out, &m, sizeof(m));
	/* the waits alone decode with no compression figures */
	m = stats_with_waits();
	n = encode(&m, buf);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(out.u.stats.zip_incompressible, 0);
	assert_int_equal(out.u.stats.zip_fast_pages, 0);
	assert_int_equal(out.u.stats.zip_accel, 0);
}

static void test_stats_zip_figures_without_the_waits_are_refused(void **state)
{
	struct mv__proto_msg m = stats_with_service(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	/* the flag without the waits' */
	m.u.stats.flags |= MV_PROTO_STATS_ZIP;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* figures without their flag */
	m = stats_with_waits();
	m.u.stats.zip_accel = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = stats_with_waits();
	m.u.stats.zip_fast_pages = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* an acceleration no setting can give */
	m = stats_with_waits();
	m.u.stats.flags |= MV_PROTO_STATS_ZIP;
	m.u.stats.zip_accel = MV_PROTO_ZIP_ACCEL_MAX + 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* the longest body with the flag taken off */
	m = stats_with_waits();
	m.u.stats.flags |= MV_PROTO_STATS_ZIP;
	m.u.stats.zip_accel = 8;
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] &= (uint8_t)~MV_PROTO_STATS_ZIP;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
	/* the waits' body with the flag set on it */
	m = stats_with_waits();
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] |= MV_PROTO_STATS_ZIP;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
}

/* The zero-page figures after the compression figures: round trip in the
 * longest body, and the rules that keep them from standing alone. */
static struct mv__proto_msg stats_with_zip(void)
{
	struct mv__proto_msg m = stats_with_waits();

	m.u.stats.flags |= MV_PROTO_STATS_ZIP;
	m.u.stats.zip_accel = 8;
	return m;
}

static void
test_stats_zero_figures_round_trip_after_the_zip_figures(void **state)
{
	struct mv__proto_msg m = stats_with_zip(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	m.u.stats.flags |= MV_PROTO_STATS_ZERO;
	m.u.stats.zero_maps = 1ull << 35;
	m.u.stats.zero_writes = 12345;
	m.u.stats.zero_around_pages = 6789;
	n = encode(&m, buf);
	assert_int_equal(n, MV_PROTO_HDR + STATS_OLD_BODY +
				    MV_PROTO_STATS_MORE_BYTES +
				    MV_PROTO_STATS_WAITS_BYTES +
				    MV_PROTO_STATS_ZIP_BYTES +
				    MV_PROTO_STATS_ZERO_BYTES);
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(used, (size_t)n);
	assert_memory_equal(&out, &m, sizeof(m));
	/* the compression figures alone decode with no zero-page figures */
	m = stats_with_zip();
	n = encode(&m, buf);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(out.u.stats.zero_maps, 0);
	assert_int_equal(out.u.stats.zero_writes, 0);
	assert_int_equal(out.u.stats.zero_around_pages, 0);
}

static void
test_stats_zero_figures_without_the_zip_figures_are_refused(void **state)
{
	struct mv__proto_msg m = stats_with_waits(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	/* the flag without the compression figures' */
	m.u.stats.flags |= MV_PROTO_STATS_ZERO;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* figures without their flag */
	m = stats_with_zip();
	m.u.stats.zero_maps = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = stats_with_zip();
	m.u.stats.zero_around_pages = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* the longest body with the flag taken off */
	m = stats_with_zip();
	m.u.stats.flags |= MV_PROTO_STATS_ZERO;
	m.u.stats.zero_writes = 3;
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] &= (uint8_t)~MV_PROTO_STATS_ZERO;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
	/* the compression figures' body with the flag set on it */
	m = stats_with_zip();
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] |= MV_PROTO_STATS_ZERO;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
}

static struct mv__proto_msg stats_with_zero(void)
{
	struct mv__proto_msg m = stats_with_zip();

	m.u.stats.flags |= MV_PROTO_STATS_ZERO;
	m.u.stats.zero_maps = 4096;
	return m;
}

static void
test_stats_open_figures_round_trip_after_the_zero_figures(void **state)
{
	struct mv__proto_msg m = stats_with_zero(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	m.u.stats.flags |= MV_PROTO_STATS_OPEN;
	m.u.stats.zero_opens = 1ull << 34;
	m.u.stats.zero_open_writes = 777;
	m.u.stats.zero_closes = 555;
	m.u.stats.zero_open_pages = m.u.stats.consumed_pages;
	m.u.stats.zero_open_errors = 2;
	n = encode(&m, buf);
	assert_int_equal(
		n,
		MV_PROTO_HDR + STATS_OLD_BODY + MV_PROTO_STATS_MORE_BYTES +
			MV_PROTO_STATS_WAITS_BYTES + MV_PROTO_STATS_ZIP_BYTES +
			MV_PROTO_STATS_ZERO_BYTES + MV_PROTO_STATS_OPEN_BYTES);
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(used, (size_t)n);
	assert_memory_equal(&out, &m, sizeof(m));
	/* the zero-page figures alone decode with no open figures */
	m = stats_with_zero();
	n = encode(&m, buf);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 0);
	assert_int_equal(out.u.stats.zero_opens, 0);
	assert_int_equal(out.u.stats.zero_open_pages, 0);
	assert_int_equal(out.u.stats.zero_open_errors, 0);
}

static void
test_stats_open_figures_without_the_zero_figures_are_refused(void **state)
{
	struct mv__proto_msg m = stats_with_zip(), out;
	uint8_t buf[MV_PROTO_MAX];
	size_t used;
	int n;

	(void)state;
	/* the flag without the zero-page figures' */
	m.u.stats.flags |= MV_PROTO_STATS_OPEN;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* figures without their flag */
	m = stats_with_zero();
	m.u.stats.zero_closes = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	m = stats_with_zero();
	m.u.stats.zero_open_errors = 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* more pages open than the VM holds */
	m = stats_with_zero();
	m.u.stats.flags |= MV_PROTO_STATS_OPEN;
	m.u.stats.zero_open_pages = m.u.stats.consumed_pages + 1;
	assert_int_equal(mv__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
	/* the longest body with the flag taken off */
	m = stats_with_zero();
	m.u.stats.flags |= MV_PROTO_STATS_OPEN;
	m.u.stats.zero_opens = 3;
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] &= (uint8_t)~MV_PROTO_STATS_OPEN;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
	/* the zero-page figures' body with the flag set on it */
	m = stats_with_zero();
	n = encode(&m, buf);
	buf[STATS_FLAGS_AT] |= MV_PROTO_STATS_OPEN;
	assert_int_equal(mv__proto_decode(buf, (size_t)n, &out, &used, NULL, 0),
			 -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_message_round_trips),
		cmocka_unit_test(
			test_header_is_little_endian_magic_version_type_length),
		cmocka_unit_test(test_every_prefix_asks_for_more),
		cmocka_unit_test(
			test_two_messages_in_a_row_decode_one_at_a_time),
		cmocka_unit_test(test_bad_headers_are_refused_at_sixteen_bytes),
		cmocka_unit_test(test_hello_fields_out_of_range_are_refused),
		cmocka_unit_test(test_other_fields_out_of_range_are_refused),
		cmocka_unit_test(test_encoder_refuses_what_the_decoder_would),
		cmocka_unit_test(test_stats_waits_round_trip_after_the_tail),
		cmocka_unit_test(test_stats_waits_without_the_tail_are_refused),
		cmocka_unit_test(
			test_stats_zip_figures_round_trip_after_the_waits),
		cmocka_unit_test(
			test_stats_zip_figures_without_the_waits_are_refused),
		cmocka_unit_test(
			test_fuzzed_bytes_never_crash_nor_pass_unchecked),
		cmocka_unit_test(
			test_stats_tail_figures_round_trip_in_the_longer_body),
		cmocka_unit_test(
			test_stats_of_the_old_length_decode_without_the_tail_figures),
		cmocka_unit_test(
			test_stats_whose_length_and_flags_disagree_are_refused),
		cmocka_unit_test(
			test_stats_zero_figures_round_trip_after_the_zip_figures),
		cmocka_unit_test(
			test_stats_zero_figures_without_the_zip_figures_are_refused),
		cmocka_unit_test(
			test_stats_open_figures_round_trip_after_the_zero_figures),
		cmocka_unit_test(
			test_stats_open_figures_without_the_zero_figures_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
