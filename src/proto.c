// SPDX-License-Identifier: MIT
/*
 * proto.c - the daemon protocol's encoding and decoding (proto.h,
 * docs/PROTOCOL.md).  Platform layer: pure functions of their arguments,
 * no I/O, no allocation, no engine state.
 *
 * Design: each message body is a fixed list of little-endian fields, read
 * and written by one walk per type (codec_*) that either packs a structure
 * into bytes or unpacks bytes into it, so the two directions cannot
 * disagree on the layout.  STATS alone has several bodies: with
 * MV_PROTO_STATS_MORE its walk goes on into the tail, and with
 * MV_PROTO_STATS_WAITS too into the waits after it, and with
 * MV_PROTO_STATS_ZIP as well into the compression figures after those,
 * and with MV_PROTO_STATS_ZERO into the zero-page figures after them, and
 * with MV_PROTO_STATS_OPEN into the open zero pages' after those, so
 * agents from before any of the additions (their shorter bodies) are still
 * understood, and the body's length must be what its flags say.  After unpacking, check() validates every field
 * a peer controls; the encoder runs the same check before packing, so a
 * message this side sends always passes the other side's decoder.
 *
 * Invariants: the decoder reads no byte past len and writes nothing but *m,
 * *used and err; a header is judged as soon as its 16 bytes are in, so a
 * peer can never make the reader wait for (or buffer) a body larger than
 * MV_PROTO_MAX; a decoded string is NUL-terminated within its field.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define PAGE_SHIFT 12

/* Whether a STATS body of len bytes ends after one of its additions. */
static bool stats_body_len(uint32_t len)
{
	static const uint32_t adds[] = { MV_PROTO_STATS_MORE_BYTES,
					 MV_PROTO_STATS_WAITS_BYTES,
					 MV_PROTO_STATS_ZIP_BYTES,
					 MV_PROTO_STATS_ZERO_BYTES,
					 MV_PROTO_STATS_OPEN_BYTES };
	uint32_t n = (uint32_t)mv__proto_body_len(MV_PROTO_STATS);

	for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++) {
		n += adds[i];
		if (len == n)
			return true;
	}
	return false;
}

/* One walk over a body: packs (out != NULL) or unpacks (in != NULL, len
 * bytes: a field past them reads as 0, and off tells the walk's length). */
struct codec {
	uint8_t *out;
	const uint8_t *in;
	size_t len;
	size_t off;
};

static void field(struct codec *c, void *v, size_t n)
{
	uint8_t *p = v;

	if (!c->out && c->off + n > c->len) {
		memset(p, 0, n);
		c->off += n;
		return;
	}

	/* host byte order is little-endian on every target of this project
	 * (x86-64, aarch64); the loops keep it explicit all the same */
	for (size_t i = 0; i < n; i++) {
		if (c->out)
			c->out[c->off + i] = p[i];
		else
			p[i] = c->in[c->off + i];
	}
	c->off += n;
}

static void u64(struct codec *c, uint64_t *v)
{
	uint8_t b[8];

	if (c->out) {
		for (unsigned i = 0; i < 8; i++)
			b[i] = (uint8_t)(*v >> (8 * i));
		field(c, b, 8);
	} else {
		field(c, b, 8);
		*v = 0;
		for (unsigned i = 0; i < 8; i++)
			*v |= (uint64_t)b[i] << (8 * i);
	}
}

static void u32(struct codec *c, uint32_t *v)
{
	uint8_t b[4];

	if (c->out) {
		for (unsigned i = 0; i < 4; i++)
			b[i] = (uint8_t)(*v >> (8 * i));
		field(c, b, 4);
	} else {
		field(c, b, 4);
		*v = 0;
		for (unsigned i = 0; i < 4; i++)
			*v |= (uint32_t)b[i] << (8 * i);
	}
}

static void codec_hello(struct codec *c, struct mv__proto_hello *h)
{
	field(c, h->name, sizeof(h->name));
	u64(c, &h->memsize_bytes);
	u64(c, &h->shares);
	u64(c, &h->reservation_bytes);
	u64(c, &h->limit_bytes);
	u64(c, &h->consumed_bytes);
	u32(c, &h->pid);
	u32(c, &h->flags);
	field(c, h->qmp_path, sizeof(h->qmp_path));
}

static void codec_grant(struct codec *c, struct mv__proto_grant *g)
{
	u64(c, &g->seq);
	u64(c, &g->grant_bytes);
	u64(c, &g->target_bytes);
	u64(c, &g->balloon_bytes);
	u32(c, &g->period_ms);
	u32(c, &g->vm_id);
}

static void codec_stats(struct codec *c, struct mv__proto_stats *s)
{
	uint64_t *f[] = {
		&s->consumed_pages,   &s->touched_pages,    &s->active_pages,
		&s->swcur_pages,      &s->swapin_pages,	    &s->swapout_pages,
		&s->zip_cached_pages, &s->zip_used_bytes,   &s->zip_saved_bytes,
		&s->zip_pages,	      &s->unzip_pages,	    &s->shrd_pages,
		&s->zero_pages,	      &s->shrdsvd_pages,    &s->mctlsz_pages,
		&s->mctltgt_pages,    &s->faults,	    &s->fault_errors,
		&s->swap_errors,      &s->unreadable_pages, &s->cow_breaks,
		&s->lpage_pages,
	};
	uint64_t *more[] = {
		&s->service_cpus,    &s->service_cpu_changes,
		&s->service_moves,   &s->service_affinity_errors,
		&s->zip_evict_pages, &s->share_scanned_pages,
		&s->lpage_collapses, &s->lpage_breaks,
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		u64(c, f[i]);
	for (unsigned i = 0; i < MV_PAGE_NSTATES; i++)
		u64(c, &s->state_pages[i]);
	u64(c, &s->demand_pages);
	u64(c, &s->budget_pages);
	u32(c, &s->active_permille);
	u32(c, &s->flags);
	if (s->flags & MV_PROTO_STATS_MORE)
		for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
			u64(c, more[i]);
	if ((s->flags & MV_PROTO_STATS_MORE) &&
	    (s->flags & MV_PROTO_STATS_WAITS)) {
		u64(c, &s->alloc_waits);
		u64(c, &s->blocked_waits);
		if (s->flags & MV_PROTO_STATS_ZIP) {
			u64(c, &s->zip_incompressible);
			u64(c, &s->zip_fast_pages);
			u64(c, &s->zip_accel);
		}
		if ((s->flags & MV_PROTO_STATS_ZIP) &&
		    (s->flags & MV_PROTO_STATS_ZERO)) {
			u64(c, &s->zero_maps);
			u64(c, &s->zero_writes);
			u64(c, &s->zero_around_pages);
		}
		if ((s->flags & MV_PROTO_STATS_ZIP) &&
		    (s->flags & MV_PROTO_STATS_ZERO) &&
		    (s->flags & MV_PROTO_STATS_OPEN)) {
			u64(c, &s->zero_opens);
			u64(c, &s->zero_open_writes);
			u64(c, &s->zero_closes);
			u64(c, &s->zero_open_pages);
			u64(c, &s->zero_open_errors);
		}
	}
}

static void codec_ack(struct codec *c, struct mv__proto_ack *a)
{
	u64(c, &a->seq);
	u64(c, &a->grant_bytes);
	u64(c, &a->consumed_bytes);
}

static void codec_error(struct codec *c, struct mv__proto_error *e)
{
	uint32_t code = (uint32_t)e->code;

	u32(c, &code);
	e->code = (int32_t)code;
	field(c, e->msg, sizeof(e->msg));
}

/* The body of m, walked by c; false for a type with no body layout. */
static bool codec(struct codec *c, struct mv__proto_msg *m)
{
	switch (m->type) {
	case MV_PROTO_HELLO:
		codec_hello(c, &m->u.hello);
		return true;
	case MV_PROTO_WELCOME:
	case MV_PROTO_GRANT:
		codec_grant(c, &m->u.grant);
		return true;
	case MV_PROTO_STATS:
		codec_stats(c, &m->u.stats);
		return true;
	case MV_PROTO_GRANT_ACK:
		codec_ack(c, &m->u.ack);
		return true;
	case MV_PROTO_BYE:
		u32(c, &m->u.bye.reason);
		return true;
	case MV_PROTO_ERROR:
		codec_error(c, &m->u.error);
		return true;
	default:
		return false;
	}
}

/* The body bytes of m (its flags may lengthen it); 0 for no layout.  A dry
 * walk counts them: the layout is written once. */
static size_t walk_len(const struct mv__proto_msg *m)
{
	uint8_t scratch[MV_PROTO_MAX];
	struct mv__proto_msg copy = *m; /* the codec takes a mutable one */
	struct codec c = { .out = scratch };

	return codec(&c, &copy) ? c.off : 0;
}

size_t mv__proto_body_len(unsigned type)
{
	struct mv__proto_msg m;

	if (type == 0 || type >= MV_PROTO_NTYPES)
		return 0;
	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)type;
	return walk_len(&m);
}

const char *mv__proto_type_name(unsigned type)
{
	static const char *const names[MV_PROTO_NTYPES] = {
		[MV_PROTO_HELLO] = "HELLO",
		[MV_PROTO_WELCOME] = "WELCOME",
		[MV_PROTO_GRANT] = "GRANT",
		[MV_PROTO_STATS] = "STATS",
		[MV_PROTO_GRANT_ACK] = "GRANT_ACK",
		[MV_PROTO_BYE] = "BYE",
		[MV_PROTO_ERROR] = "ERROR",
	};

	return type && type < MV_PROTO_NTYPES ? names[type] : "unknown";
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* A string field: NUL-terminated inside its n bytes, printable. */
static bool good_string(const char *s, size_t n, bool may_be_empty)
{
	const char *end = memchr(s, '\0', n);

	if (!end || (!may_be_empty && end == s))
		return false;
	for (const char *p = s; p < end; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			return false;
	return true;
}

static int check_hello(const struct mv__proto_hello *h, char *err,
		       size_t errlen)
{
	uint64_t limit = h->limit_bytes ? h->limit_bytes : h->memsize_bytes;

	if (!good_string(h->name, sizeof(h->name), false) ||
	    strchr(h->name, '/'))
		return fail(
			err, errlen, -EINVAL,
			"HELLO: the VM name must be 1-31 printable bytes, NUL-terminated, without '/'");
	if (!good_string(h->qmp_path, sizeof(h->qmp_path), true))
		return fail(
			err, errlen, -EINVAL,
			"HELLO: the QMP path must be NUL-terminated printable bytes");
	if (h->memsize_bytes < (16u << PAGE_SHIFT) ||
	    h->memsize_bytes > MV_PROTO_MEMSIZE_MAX ||
	    h->memsize_bytes % MV_PAGE_SIZE)
		return fail(
			err, errlen, -ERANGE,
			"HELLO: memsize %llu bytes: it must be a multiple of 4 KiB from 64 KiB to 16 TiB",
			(unsigned long long)h->memsize_bytes);
	if (h->shares > MV_SHARES_MAX)
		return fail(err, errlen, -ERANGE,
			    "HELLO: %llu shares, more than %llu",
			    (unsigned long long)h->shares, MV_SHARES_MAX);
	if (limit > h->memsize_bytes || h->reservation_bytes > limit)
		return fail(
			err, errlen, -ERANGE,
			"HELLO: the reservation must be at most the limit, and the limit at most memsize");
	if (h->consumed_bytes > h->memsize_bytes)
		return fail(err, errlen, -ERANGE,
			    "HELLO: consumption above memsize");
	if (!h->pid || h->pid > (1u << 22))
		return fail(err, errlen, -ERANGE, "HELLO: pid %u out of range",
			    h->pid);
	if (h->flags)
		return fail(err, errlen, -ERANGE,
			    "HELLO: flags 0x%x unknown to version %u", h->flags,
			    MV_PROTO_VERSION);
	return 0;
}

static int check_grant(const struct mv__proto_grant *g, char *err,
		       size_t errlen)
{
	if (!g->seq)
		return fail(err, errlen, -ERANGE, "GRANT: sequence number 0");
	if (g->grant_bytes % MV_PAGE_SIZE ||
	    g->grant_bytes > MV_PROTO_MEMSIZE_MAX ||
	    g->grant_bytes < (16u << PAGE_SHIFT))
		return fail(
			err, errlen, -ERANGE,
			"GRANT: %llu bytes: a grant is a multiple of 4 KiB from 64 KiB to 16 TiB",
			(unsigned long long)g->grant_bytes);
	if (g->target_bytes > MV_PROTO_MEMSIZE_MAX ||
	    g->balloon_bytes > MV_PROTO_MEMSIZE_MAX)
		return fail(err, errlen, -ERANGE,
			    "GRANT: target or balloon target above 16 TiB");
	if (g->period_ms < 10 || g->period_ms > 60000)
		return fail(err, errlen, -ERANGE,
			    "GRANT: stats period %u ms, not 10..60000",
			    g->period_ms);
	return 0;
}

static int check_stats(const struct mv__proto_stats *s, char *err,
		       size_t errlen)
{
	const uint64_t max = MV_PROTO_MEMSIZE_MAX >> PAGE_SHIFT;
	const uint64_t now[] = {
		s->consumed_pages, s->touched_pages,	s->active_pages,
		s->swcur_pages,	   s->zip_cached_pages, s->shrd_pages,
		s->zero_pages,	   s->shrdsvd_pages,	s->mctlsz_pages,
		s->mctltgt_pages,  s->unreadable_pages, s->lpage_pages,
		s->budget_pages,
	};

	for (size_t i = 0; i < sizeof(now) / sizeof(now[0]); i++)
		if (now[i] > max)
			return fail(
				err, errlen, -ERANGE,
				"STATS: field %zu is %llu pages, above 16 TiB",
				i, (unsigned long long)now[i]);
	for (unsigned i = 0; i < MV_PAGE_NSTATES; i++)
		if (s->state_pages[i] > max)
			return fail(
				err, errlen, -ERANGE,
				"STATS: %llu pages in state %u, above 16 TiB",
				(unsigned long long)s->state_pages[i], i);
	if (s->zip_used_bytes > MV_PROTO_MEMSIZE_MAX ||
	    s->zip_saved_bytes > MV_PROTO_MEMSIZE_MAX)
		return fail(err, errlen, -ERANGE,
			    "STATS: compression cache figures above 16 TiB");
	if (s->active_permille > 1000)
		return fail(err, errlen, -ERANGE,
			    "STATS: active %u permille, above 1000",
			    s->active_permille);
	if (s->active_pages > s->consumed_pages)
		return fail(err, errlen, -ERANGE,
			    "STATS: more active pages than consumed ones");
	if (s->flags & ~(MV_PROTO_STATS_DEMAND | MV_PROTO_STATS_MORE |
			 MV_PROTO_STATS_WAITS | MV_PROTO_STATS_ZIP |
			 MV_PROTO_STATS_ZERO | MV_PROTO_STATS_OPEN))
		return fail(err, errlen, -ERANGE,
			    "STATS: flags 0x%x unknown to version %u", s->flags,
			    MV_PROTO_VERSION);
	if ((s->flags & MV_PROTO_STATS_WAITS) &&
	    !(s->flags & MV_PROTO_STATS_MORE))
		return fail(err, errlen, -ERANGE,
			    "STATS: the waits' flag without the tail's");
	if (!(s->flags & MV_PROTO_STATS_WAITS) &&
	    (s->alloc_waits || s->blocked_waits))
		return fail(err, errlen, -ERANGE,
			    "STATS: the waits' figures without their flag");
	if ((s->flags & MV_PROTO_STATS_ZIP) &&
	    !(s->flags & MV_PROTO_STATS_WAITS))
		return fail(
			err, errlen, -ERANGE,
			"STATS: the compression figures' flag without the waits'");
	if (!(s->flags & MV_PROTO_STATS_ZIP) &&
	    (s->zip_incompressible || s->zip_fast_pages || s->zip_accel))
		return fail(
			err, errlen, -ERANGE,
			"STATS: the compression figures without their flag");
	if ((s->flags & MV_PROTO_STATS_ZERO) &&
	    !(s->flags & MV_PROTO_STATS_ZIP))
		return fail(
			err, errlen, -ERANGE,
			"STATS: the zero-page figures' flag without the compression figures'");
	if (!(s->flags & MV_PROTO_STATS_ZERO) &&
	    (s->zero_maps || s->zero_writes || s->zero_around_pages))
		return fail(err, errlen, -ERANGE,
			    "STATS: the zero-page figures without their flag");
	if ((s->flags & MV_PROTO_STATS_OPEN) &&
	    !(s->flags & MV_PROTO_STATS_ZERO))
		return fail(
			err, errlen, -ERANGE,
			"STATS: the open zero pages' flag without the zero-page figures'");
	if (!(s->flags & MV_PROTO_STATS_OPEN) &&
	    (s->zero_opens || s->zero_open_writes || s->zero_closes ||
	     s->zero_open_pages || s->zero_open_errors))
		return fail(
			err, errlen, -ERANGE,
			"STATS: the open zero pages' figures without their flag");
	if (s->zero_open_pages > s->consumed_pages)
		return fail(err, errlen, -ERANGE,
			    "STATS: more open zero pages than consumed ones");
	if (s->zip_accel > MV_PROTO_ZIP_ACCEL_MAX)
		return fail(err, errlen, -ERANGE,
			    "STATS: LZ4 acceleration %llu, above %u",
			    (unsigned long long)s->zip_accel,
			    MV_PROTO_ZIP_ACCEL_MAX);
	if (s->service_cpus > MV_PROTO_CPUS_MAX ||
	    (!(s->flags & MV_PROTO_STATS_MORE) &&
	     (s->service_cpus || s->service_cpu_changes || s->service_moves ||
	      s->service_affinity_errors || s->zip_evict_pages ||
	      s->share_scanned_pages || s->lpage_collapses || s->lpage_breaks)))
		return fail(
			err, errlen, -ERANGE,
			"STATS: service on %llu CPUs, more than %u, or the tail's figures without its flag",
			(unsigned long long)s->service_cpus, MV_PROTO_CPUS_MAX);
	if (s->demand_pages > max ||
	    (!(s->flags & MV_PROTO_STATS_DEMAND) && s->demand_pages))
		return fail(
			err, errlen, -ERANGE,
			"STATS: demand of %llu pages: above 16 TiB, or given without its flag",
			(unsigned long long)s->demand_pages);
	return 0;
}

static int check(const struct mv__proto_msg *m, char *err, size_t errlen)
{
	switch (m->type) {
	case MV_PROTO_HELLO:
		return check_hello(&m->u.hello, err, errlen);
	case MV_PROTO_WELCOME:
	case MV_PROTO_GRANT:
		return check_grant(&m->u.grant, err, errlen);
	case MV_PROTO_STATS:
		return check_stats(&m->u.stats, err, errlen);
	case MV_PROTO_GRANT_ACK:
		if (!m->u.ack.seq || m->u.ack.grant_bytes % MV_PAGE_SIZE ||
		    m->u.ack.grant_bytes > MV_PROTO_MEMSIZE_MAX ||
		    m->u.ack.consumed_bytes > m->u.ack.grant_bytes)
			return fail(
				err, errlen, -ERANGE,
				"GRANT_ACK: sequence 0, a grant not in pages or above 16 TiB, or consumption above the grant");
		return 0;
	case MV_PROTO_BYE:
		if (m->u.bye.reason)
			return fail(err, errlen, -ERANGE,
				    "BYE: reason %u unknown to version %u",
				    m->u.bye.reason, MV_PROTO_VERSION);
		return 0;
	case MV_PROTO_ERROR:
		if (m->u.error.code <= 0 || m->u.error.code > 4095 ||
		    !good_string(m->u.error.msg, sizeof(m->u.error.msg), true))
			return fail(
				err, errlen, -ERANGE,
				"ERROR: code %d not an errno value, or its sentence not NUL-terminated printable bytes",
				m->u.error.code);
		return 0;
	default:
		return fail(err, errlen, -EBADMSG, "unknown message type %u",
			    m->type);
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

int mv__proto_encode(const struct mv__proto_msg *m, uint8_t *buf, size_t cap)
{
	struct mv__proto_msg copy;
	size_t body;
	struct codec c;

	if (!m || !buf || check(m, NULL, 0))
		return -EINVAL;
	body = walk_len(m);
	if (cap < MV_PROTO_HDR + body)
		return -ENOSPC;
	put32(buf, MV_PROTO_MAGIC);
	buf[4] = (uint8_t)MV_PROTO_VERSION;
	buf[5] = (uint8_t)(MV_PROTO_VERSION >> 8);
	buf[6] = (uint8_t)m->type;
	buf[7] = (uint8_t)(m->type >> 8);
	put32(buf + 8, (uint32_t)body);
	put32(buf + 12, 0);
	copy = *m; /* the codec takes a mutable structure */
	c = (struct codec){ .out = buf + MV_PROTO_HDR };
	codec(&c, &copy);
	return (int)(MV_PROTO_HDR + body);
}

int mv__proto_decode(const uint8_t *buf, size_t len, struct mv__proto_msg *m,
		     size_t *used, char *err, size_t errlen)
{
	unsigned version, type;
	uint32_t body, want;
	struct codec c;
	int e;

	if (err && errlen)
		err[0] = '\0';
	/* a prefix of the magic may still become a message */
	for (size_t i = 0; i < len && i < 4; i++)
		if (buf[i] != (uint8_t)(MV_PROTO_MAGIC >> (8 * i)))
			return fail(err, errlen, -EPROTO,
				    "not a memvisor message (bad magic)");
	if (len < MV_PROTO_HDR)
		return -EAGAIN;
	version = buf[4] | (unsigned)buf[5] << 8;
	type = buf[6] | (unsigned)buf[7] << 8;
	body = get32(buf + 8);
	if (version != MV_PROTO_VERSION)
		return fail(err, errlen, -EPROTONOSUPPORT,
			    "protocol version %u: this side speaks version %u",
			    version, MV_PROTO_VERSION);
	if (get32(buf + 12))
		return fail(err, errlen, -EPROTO,
			    "reserved header word is not 0");
	want = (uint32_t)mv__proto_body_len(type);
	if (!want)
		return fail(err, errlen, -EBADMSG, "unknown message type %u",
			    type);
	/* a STATS may have its tail, the waits after it, the compression
	 * figures after those and the zero-page figures after them */
	if (body != want && (type != MV_PROTO_STATS || !stats_body_len(body)))
		return fail(err, errlen, -EBADMSG,
			    "%s with a body of %u bytes: it has %u",
			    mv__proto_type_name(type), body, want);
	if (len < MV_PROTO_HDR + body)
		return -EAGAIN;
	memset(m, 0, sizeof(*m));
	m->type = (uint16_t)type;
	c = (struct codec){ .in = buf + MV_PROTO_HDR, .len = body };
	codec(&c, m);
	if (c.off != body)
		return fail(err, errlen, -EBADMSG,
			    "%s with a body of %u bytes: its flags make it %zu",
			    mv__proto_type_name(type), body, c.off);
	e = check(m, err, errlen);
	if (e)
		return e;
	*used = MV_PROTO_HDR + body;
	return 0;
}
