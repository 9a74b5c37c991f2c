// SPDX-License-Identifier: MIT
/*
 * scenario.c - reads a scenario (a host, its VMs and ESX advanced settings)
 * from an INI file or the embedded default, and rejects anything doubtful
 * with "FILE:LINE: what is wrong (what is expected)".
 *
 * Design: libinih does the INI syntax, but Debian's build of it has no line
 * numbers for the key handler and never reports a section without keys.  So
 * the text reaches inih through our own line reader (ini_parse_stream): it
 * counts lines, which every error cites, and it sees section headers go by,
 * so that an empty "[vm NAME]" still becomes a VM (and is then refused for
 * having no memory).  The reader also strips leading blanks, because inih
 * would take an indented "key = value" as a continuation of the previous
 * value and the error would name the wrong key.  Each section kind has a
 * table of keys; the tables give both the setters and the list of expected
 * keys in messages, so the two cannot drift.  Checks that need a whole
 * section (memsize present, image for the image workload, at least one VM)
 * run once the text is read.  "image = generated" names no file: the
 * image is made when the run starts (genimage.c) from the image_* keys,
 * whose defaults (os "linux", the measured mix, the VM's seed) are set
 * here.  Paths in a file are relative to the file's
 * directory, so a scenario can be run from anywhere.  Only a regular file is
 * read (a device or a pipe may never end), and the reader takes a line a
 * byte at a time so that a NUL byte is refused with its line instead of
 * hiding the rest of the line from the length check.  An [advanced] line
 * the library refuses is told apart, through the library's own answers, as
 * an unknown name or a value out of the setting's range, which is given.
 * A VM's cpus (and the CPU pin_vcpus = spread gives each VM that names
 * none, round-robin over them) are checked against the CPUs this process
 * may run on, so that a VM is never pinned to a CPU it cannot have.
 *
 * Invariants: only the first error is reported, and the reader stops at it;
 * a loader returns either a complete, valid scenario or an empty one, never
 * a half-filled one, so nothing downstream can start from bad input.
 *
 * Lock ordering: none; parsing is single-threaded and keeps no globals.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "scenario.h"

#define DEFAULT_DURATION_S 60
/* Far above what the library needs, far below any real host. */
#define MIN_HOST_MEMSIZE (1ull << 20)
#define MAX_THINK_US 10000000u
#define MAX_ZIPF_S 10.0
#define MAX_BURST_IDLE_MS 3600000u
#define DEFAULT_IMAGE_OS "linux"
#define CPUS_EXPECTED "expected a CPU list such as 0, 1,3 or 0-3,6"

/* Kept word for word in scenarios/default.ini; a test holds them equal. */
const char scenario_default_text[] =
	"; memvisor's default scenario: six VMs with 896 MiB of guest memory on a\n"
	"; host with 384 MiB of machine memory (233% overcommitted), for a minute.\n"
	"; It shows every mechanism at work: zero pages and page sharing between\n"
	"; VMs that run the same operating system, ballooning, the idle memory\n"
	"; tax, compression and, as the last resort, swapping.  At the end every\n"
	"; page is read back and checked.\n"
	"\n"
	"[host]\n"
	"memsize = 384M\n"
	"duration = 60\n"
	"\n"
	"; Three VMs of one Linux distribution.  Their RAM is a guest image that\n"
	"; memvisor generates with the page mix measured on booted Linux guests:\n"
	"; two thirds zero pages; of the rest, two thirds the same in every VM of\n"
	"; the distribution (kernel, libraries) and a third the VM's own.  web1\n"
	"; and web2 are clones of one template (the same image_seed), so they\n"
	"; share the image's pages from the first touch; app booted on its own,\n"
	"; and the share scanner finds what it has in common with them, and every\n"
	"; VM's zero pages.  VMs share pages only with VMs of the same salt.  Each\n"
	"; reads its memory once, then keeps reading a quarter of it, writing now\n"
	"; and then.\n"
	"[vm web1]\n"
	"memsize = 160M\n"
	"workload = image\n"
	"image = generated\n"
	"image_os = debian\n"
	"image_seed = 1\n"
	"salt = debian\n"
	"write_pct = 2\n"
	"think_us = 100\n"
	"\n"
	"[vm web2]\n"
	"memsize = 160M\n"
	"workload = image\n"
	"image = generated\n"
	"image_os = debian\n"
	"image_seed = 1\n"
	"salt = debian\n"
	"write_pct = 2\n"
	"think_us = 100\n"
	"\n"
	"[vm app]\n"
	"memsize = 128M\n"
	"workload = image\n"
	"image = generated\n"
	"image_os = debian\n"
	"salt = debian\n"
	"write_pct = 2\n"
	"think_us = 100\n"
	"\n"
	"; A busy key-value store: Zipf-distributed reads and writes of text-like\n"
	"; values; its high shares keep its memory resident.\n"
	"[vm busy]\n"
	"memsize = 128M\n"
	"workload = kvstore\n"
	"kv_values = text\n"
	"shares = high\n"
	"\n"
	"; Takes most of its memory for a burst, gives all but a tenth back to its\n"
	"; guest OS, and idles for 4 s.  Its balloon driver hands the pages the\n"
	"; guest does not use to the host when the host runs short.\n"
	"[vm burst]\n"
	"memsize = 192M\n"
	"workload = burst\n"
	"balloon = on\n"
	"burst_idle_ms = 4000\n"
	"\n"
	"; A VM of the same distribution that booted and sits idle: the idle\n"
	"; memory tax gives most of its memory to the others; its text-like pages\n"
	"; are compressed, the rest swapped.\n"
	"[vm idle]\n"
	"memsize = 128M\n"
	"workload = idle\n"
	"image = generated\n"
	"image_os = debian\n"
	"salt = debian\n"
	"shares = low\n"
	"\n"
	"; The scheduler samples active memory every 10 s and rebalances every\n"
	"; 5 s, and the share scanner covers each VM in a minute, with CPU enough\n"
	"; for all of them (ESX: 60 s, 15 s, an hour, 4), so that one minute\n"
	"; shows it all.\n"
	"[advanced]\n"
	"Mem.SamplePeriod = 10\n"
	"Mem.BalancePeriod = 5\n"
	"Mem.ShareScanTime = 1\n"
	"Mem.ShareScanGHz = 32\n";

enum section_kind { SEC_NONE, SEC_HOST, SEC_VM, SEC_ADVANCED };

/*
 * State of one parse.  The current VM, in a [vm NAME] section, is always
 * the last of sc->vms.
 */
struct parse {
	struct scenario *sc; /* being filled */
	const char *file; /* name used in messages */
	char *basedir; /* relative paths start here; NULL: as written */
	FILE *f; /* source: a file, or else... */
	const char *text; /* ...the rest of a string */
	int line; /* number of the line last handed to inih */
	enum section_kind sec; /* the section being read */
	int sec_line; /* its header's line */
	unsigned seen; /* keys of the current section set so far, by index */
	int advanced_line; /* the [advanced] header's line, 0 if none yet */
	int err; /* first error, 0 if none */
	int err_line; /* its line, 0 for a whole-file problem */
	char *msg; /* its message, "FILE:LINE: ..." */
	size_t msglen;
};

/* A key of [host] or [vm NAME]: its setter gets the value as written. */
struct key {
	const char *name;
	int (*set)(struct parse *p, const char *value);
};

__attribute__((format(printf, 3, 4))) static int
fail_at(struct parse *p, int line, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (p->err)
		return p->err;
	p->err = -EINVAL;
	p->err_line = line;
	if (line > 0)
		n = (size_t)snprintf(p->msg, p->msglen, "%s:%d: ", p->file,
				     line);
	else
		n = (size_t)snprintf(p->msg, p->msglen, "%s: ", p->file);
	if (n < p->msglen) {
		va_start(ap, fmt);
		vsnprintf(p->msg + n, p->msglen - n, fmt, ap);
		va_end(ap);
	}
	return p->err;
}

#define fail(p, ...) fail_at(p, (p)->line, __VA_ARGS__)

static int fail_nomem(struct parse *p)
{
	fail(p, "out of memory");
	p->err = -ENOMEM;
	return p->err;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Separator before item i of n in "a, b or c". */
static const char *list_sep(size_t i, size_t n)
{
	return i == 0 ? "" : i == n - 1 ? " or " : ", ";
}

static struct sc_vm *current_vm(struct parse *p)
{
	return &p->sc->vms[p->sc->nvms - 1];
}

/*
 * A size is digits, an optional fraction, and a binary unit (K, M, G, T,
 * optionally followed by B or iB).  Computed exactly in 128 bits so that
 * "1.5G" is 1610612736 and not a float's guess.  -EDOM: not a whole number
 * of bytes ("0.1K"); zero is returned as zero for the caller to judge.
 */
static int size_value(const char *s, uint64_t *bytes)
{
	unsigned __int128 whole = 0, frac = 0, scale = 1, total;
	unsigned ndigits = 0, nfrac = 0, shift;

	for (; isdigit((unsigned char)*s); s++, ndigits++) {
		whole = whole * 10 + (unsigned)(*s - '0');
		if (whole > UINT64_MAX)
			return -ERANGE;
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, nfrac++) {
			if (nfrac == 18)
				return -EINVAL;
			frac = frac * 10 + (unsigned)(*s - '0');
			scale *= 10;
		}
	}
	if (!ndigits && !nfrac)
		return -EINVAL;
	while (*s == ' ' || *s == '\t')
		s++;
	switch (toupper((unsigned char)*s)) {
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	s++;
	if (*s == 'i' || *s == 'I')
		s++;
	if (*s == 'b' || *s == 'B')
		s++;
	else if (s[-1] == 'i' || s[-1] == 'I')
		return -EINVAL;
	if (*s)
		return -EINVAL;
	total = whole << shift;
	if (total > UINT64_MAX)
		return -ERANGE;
	frac <<= shift;
	if (frac % scale)
		return -EDOM;
	total += frac / scale;
	if (total > UINT64_MAX)
		return -ERANGE;
	*bytes = (uint64_t)total;
	return 0;
}

int scenario_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v;
	int err = size_value(s, &v);

	if (err == -EDOM || (!err && !v))
		return -EINVAL;
	if (!err)
		*bytes = v;
	return err;
}

/* Whole decimal numbers only: "+1", "0x10", "1e3" and "" are mistakes. */
static int uint_value(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -ERANGE;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int set_size_of(struct parse *p, const char *key, const char *value,
		       uint64_t *dst)
{
	uint64_t v = 0;
	int err = size_value(value, &v);

	if (err == -ERANGE)
		return fail(
			p,
			"%s '%s' is too large (expected less than 16777216T)",
			key, value);
	if (err == -EDOM || (!err && v % MV_PAGE_SIZE))
		return fail(
			p,
			"%s '%s' is not a whole number of 4 KiB pages (expected a multiple of 4K, e.g. 512M or 1.5G)",
			key, value);
	if (err)
		return fail(
			p,
			"bad size '%s' (expected a number with a unit K, M, G or T, e.g. 512M or 1.5G)",
			value);
	if (!v)
		return fail(
			p, "%s is zero (expected a size above zero, e.g. 512M)",
			key);
	*dst = v;
	return 0;
}

static int set_memsize(struct parse *p, const char *value, uint64_t *dst)
{
	return set_size_of(p, "memsize", value, dst);
}

static int set_uint(struct parse *p, const char *key, const char *value,
		    uint64_t min, uint64_t max, uint64_t *dst)
{
	uint64_t v = 0;
	bool bad = uint_value(value, max, &v) || v < min;

	/* set either way (a failed scenario is discarded whole), so that no
	 * compiler sees a caller read it unset */
	*dst = v;
	if (bad)
		return fail(
			p,
			"bad %s '%s' (expected a whole number from %llu to %llu)",
			key, value, (unsigned long long)min,
			(unsigned long long)max);
	return 0;
}

/* Relative paths in a file are taken from the file's directory. */
static int set_path(struct parse *p, const char *key, const char *value,
		    char **dst)
{
	char *path;

	if (!*value)
		return fail(p, "%s is empty (expected a path)", key);
	if (value[0] == '/' || !p->basedir)
		path = strdup(value);
	else if (asprintf(&path, "%s%s%s", p->basedir,
			  strcmp(p->basedir, "/") ? "/" : "", value) < 0)
		path = NULL;
	if (!path)
		return fail_nomem(p);
	if (strlen(path) >= PATH_MAX) {
		free(path);
		return fail(p,
			    "%s is too long (expected a path under %d bytes)",
			    key, PATH_MAX);
	}
	free(*dst);
	*dst = path;
	return 0;
}

static int host_memsize(struct parse *p, const char *value)
{
	uint64_t v;
	int err = set_memsize(p, value, &v);

	if (err)
		return err;
	if (v < MIN_HOST_MEMSIZE)
		return fail(
			p,
			"host memsize %s is too small (expected at least 1M)",
			value);
	p->sc->host.memsize = v;
	return 0;
}

static int host_swapdir(struct parse *p, const char *value)
{
	return set_path(p, "swapdir", value, &p->sc->host.swapdir);
}

static int host_duration(struct parse *p, const char *value)
{
	uint64_t v;
	int err =
		set_uint(p, "duration", value, 1, SCENARIO_MAX_DURATION_S, &v);

	if (!err)
		p->sc->host.duration_s = (unsigned)v;
	return err;
}

static int host_pin_vcpus(struct parse *p, const char *value)
{
	if (strcasecmp(value, "spread") && strcasecmp(value, "none"))
		return fail(p, "bad pin_vcpus '%s' (expected spread or none)",
			    value);
	p->sc->host.pin_spread = !strcasecmp(value, "spread");
	return 0;
}

int scenario_usable_cpus(cpu_set_t *set)
{
	CPU_ZERO(set);
	return sched_getaffinity(0, sizeof(*set), set) ? -errno : 0;
}

int scenario_spread_cpu(size_t i)
{
	cpu_set_t set;
	int n, err = scenario_usable_cpus(&set);

	if (err)
		return err;
	n = CPU_COUNT(&set);
	if (n <= 0)
		return -ENODEV;
	i %= (size_t)n;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && !i--)
			return c;
	return -ENODEV;
}

void scenario_cpus_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t used = 0;
	int end;

	if (!len)
		return;
	buf[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE && used < len; c = end + 1) {
		if (!CPU_ISSET(c, set)) {
			end = c;
			continue;
		}
		for (end = c; end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, set);
		     end++)
			;
		if (end == c)
			used += (size_t)snprintf(buf + used, len - used, "%s%d",
						 used ? "," : "", c);
		else
			used += (size_t)snprintf(buf + used, len - used,
						 "%s%d-%d", used ? "," : "", c,
						 end);
	}
}

/* A CPU number of a list: digits, saturating far above CPU_SETSIZE. */
static const char *cpu_number(const char *s, uint64_t *v)
{
	*v = 0;
	for (; isdigit((unsigned char)*s); s++)
		if (*v < (1ull << 32))
			*v = *v * 10 + (uint64_t)(*s - '0');
	return s;
}

/*
 * The kernel's CPU list syntax (cpuset.cpus, taskset -c): CPUs and
 * LOW-HIGH ranges separated by commas, blanks allowed around each.  Every
 * CPU must be one this process may run on, so a VM is never pinned to a
 * CPU the machine (or its cpuset) does not give it.
 */
static int vm_cpus(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);
	char usable_text[256];
	cpu_set_t usable, set;
	const char *s = value;
	uint64_t lo, hi;
	int err;

	if (!*value)
		return fail(p, "cpus is empty (%s)", CPUS_EXPECTED);
	err = scenario_usable_cpus(&usable);
	if (err)
		return fail(
			p,
			"cannot read the CPUs this process may run on: %s (expected sched_getaffinity to answer)",
			strerror(-err));
	CPU_ZERO(&set);
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!isdigit((unsigned char)*s))
			return fail(p, "bad cpus '%s' (%s)", value,
				    CPUS_EXPECTED);
		s = cpu_number(s, &lo);
		hi = lo;
		if (*s == '-') {
			if (!isdigit((unsigned char)s[1]))
				return fail(p, "bad cpus '%s' (%s)", value,
					    CPUS_EXPECTED);
			s = cpu_number(s + 1, &hi);
		}
		if (hi < lo)
			return fail(
				p,
				"bad cpus '%s': the range %llu-%llu runs backwards (expected LOW-HIGH with LOW <= HIGH)",
				value, (unsigned long long)lo,
				(unsigned long long)hi);
		for (uint64_t c = lo; c <= hi; c++) {
			if (c >= CPU_SETSIZE || !CPU_ISSET((int)c, &usable)) {
				scenario_cpus_format(&usable, usable_text,
						     sizeof(usable_text));
				return fail(
					p,
					"cpus '%s' names CPU %llu, which this process cannot run on (expected CPUs among %s)",
					value, (unsigned long long)c,
					usable_text);
			}
			CPU_SET((int)c, &set);
		}
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		if (*s != ',')
			return fail(p, "bad cpus '%s' (%s)", value,
				    CPUS_EXPECTED);
		s++;
	}
	vm->cpus = set;
	vm->ncpus = (unsigned)CPU_COUNT(&set);
	return 0;
}

static int vm_memsize(struct parse *p, const char *value)
{
	return set_memsize(p, value, &current_vm(p)->memsize);
}

static int vm_workload(struct parse *p, const char *value)
{
	char expected[128];
	enum mvg_kind kind;
	size_t used = 0;

	if (mvg_kind_parse(value, &kind)) {
		/* From the guest's own names, so new workloads show up here. */
		expected[0] = '\0';
		for (int k = 0; k < MVG_NKINDS && used < sizeof(expected); k++)
			used += (size_t)snprintf(expected + used,
						 sizeof(expected) - used,
						 "%s%s",
						 list_sep(k, MVG_NKINDS),
						 mvg_kind_name(k));
		return fail(p, "bad workload '%s' (expected %s)", value,
			    expected);
	}
	current_vm(p)->workload = kind;
	return 0;
}

static int vm_threads(struct parse *p, const char *value)
{
	uint64_t v;
	int err = set_uint(p, "threads", value, 1, SCENARIO_MAX_THREADS, &v);

	if (!err)
		current_vm(p)->threads = (unsigned)v;
	return err;
}

static int vm_image(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);
	struct stat st;
	int err;

	/* made by memvisor at the start of the run (a file so named is
	 * ./generated) */
	if (!strcmp(value, "generated")) {
		vm->image_generated = true;
		return 0;
	}
	err = set_path(p, "image", value, &vm->image);
	if (err)
		return err;
	/* Caught here, with its line, rather than after the host is up. */
	if (stat(vm->image, &st) < 0)
		return fail(
			p,
			"image %s: %s (expected the path of a RAM image file, or generated)",
			vm->image, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(
			p,
			"image %s is not a regular file (expected the path of a RAM image file)",
			vm->image);
	return 0;
}

static bool name_ok(const char *name);

static void image_key_seen(struct parse *p)
{
	struct sc_vm *vm = current_vm(p);

	if (!vm->image_keys_line)
		vm->image_keys_line = p->line;
}

static int vm_image_os(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);

	image_key_seen(p);
	if (!value[0] || strlen(value) >= sizeof(vm->image_spec.os) ||
	    !name_ok(value))
		return fail(
			p,
			"bad image_os '%s' (expected a name of 1 to %zu letters, digits, '-', '_' or '.'; VMs with the same image_os have the same common pages)",
			value, sizeof(vm->image_spec.os) - 1);
	snprintf(vm->image_spec.os, sizeof(vm->image_spec.os), "%s", value);
	return 0;
}

static int vm_image_size(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);

	image_key_seen(p);
	return set_size_of(p, "image_size", value, &vm->image_spec.size);
}

static int vm_image_seed(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);

	image_key_seen(p);
	vm->image_seed_set = true;
	return set_uint(p, "image_seed", value, 0, UINT64_MAX,
			&vm->image_spec.seed);
}

#define IMAGE_MIX_EXPECTED \
	"expected zero N, common N, private N and optionally text N, in percent, e.g. image_mix = zero 66, common 23, private 11, text 50"

/*
 * "zero 66, common 23, private 11, text 50": zero, common and private are
 * percentages of the pages and add up to 100; text, a percentage of the
 * non-zero pages, may be left out (its default stays).
 */
static int vm_image_mix(struct parse *p, const char *value)
{
	static const char *const names[] = { "zero", "common", "private",
					     "text" };
	struct mvg_image_mix *mix = &current_vm(p)->image_spec.mix;
	uint32_t *dst[] = { &mix->zero_pct, &mix->common_pct, &mix->private_pct,
			    &mix->text_pct };
	char buf[256], *save = NULL, *part, *num;
	unsigned seen = 0;
	uint64_t v;
	size_t i;

	image_key_seen(p);
	if (strlen(value) >= sizeof(buf))
		return fail(p, "image_mix is too long (%s)",
			    IMAGE_MIX_EXPECTED);
	strcpy(buf, value);
	for (part = strtok_r(buf, ",", &save); part;
	     part = strtok_r(NULL, ",", &save)) {
		part = trim(part);
		num = part + strcspn(part, " \t");
		if (*num)
			*num++ = '\0';
		num = trim(num);
		if (*num && num[strlen(num) - 1] == '%')
			num[strlen(num) - 1] = '\0';
		for (i = 0; i < 4 && strcasecmp(part, names[i]); i++)
			;
		if (i == 4 || uint_value(num, 100, &v))
			return fail(p, "bad image_mix part '%s%s%s' (%s)", part,
				    *num ? " " : "", num, IMAGE_MIX_EXPECTED);
		if (seen & (1u << i))
			return fail(p, "image_mix gives %s twice (%s)",
				    names[i], IMAGE_MIX_EXPECTED);
		seen |= 1u << i;
		*dst[i] = (uint32_t)v;
	}
	for (i = 0; i < 3; i++)
		if (!(seen & (1u << i)))
			return fail(p, "image_mix has no %s (%s)", names[i],
				    IMAGE_MIX_EXPECTED);
	if (mix->zero_pct + mix->common_pct + mix->private_pct != 100)
		return fail(
			p,
			"image_mix zero %u + common %u + private %u is %u%% (expected the three to add up to 100)",
			mix->zero_pct, mix->common_pct, mix->private_pct,
			mix->zero_pct + mix->common_pct + mix->private_pct);
	return 0;
}

static int vm_salt(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);

	if (!value[0] || strlen(value) >= sizeof(vm->salt))
		return fail(
			p,
			"bad salt '%s' (expected a name of 1 to %zu characters; VMs with the same salt may share pages)",
			value, sizeof(vm->salt) - 1);
	snprintf(vm->salt, sizeof(vm->salt), "%s", value);
	return 0;
}

static int vm_seed(struct parse *p, const char *value)
{
	return set_uint(p, "seed", value, 0, UINT64_MAX, &current_vm(p)->seed);
}

static int vm_think_us(struct parse *p, const char *value)
{
	uint64_t v;
	int err = set_uint(p, "think_us", value, 0, MAX_THINK_US, &v);

	if (!err)
		current_vm(p)->think_us = (uint32_t)v;
	return err;
}

static int vm_zipf_s(struct parse *p, const char *value)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (!*value || *end || errno || !isfinite(v) || v <= 0 ||
	    v > MAX_ZIPF_S)
		return fail(
			p,
			"bad zipf_s '%s' (expected a number above 0 and at most %g, e.g. 0.99)",
			value, MAX_ZIPF_S);
	current_vm(p)->zipf_s = v;
	return 0;
}

static int vm_kv_values(struct parse *p, const char *value)
{
	if (!strcmp(value, "text"))
		current_vm(p)->kv_text = true;
	else if (!strcmp(value, "random"))
		current_vm(p)->kv_text = false;
	else
		return fail(p, "bad kv_values '%s' (expected text or random)",
			    value);
	return 0;
}

static int vm_balloon(struct parse *p, const char *value)
{
	if (strcasecmp(value, "on") && strcasecmp(value, "off"))
		return fail(p, "bad balloon '%s' (expected on or off)", value);
	current_vm(p)->balloon = !strcasecmp(value, "on");
	return 0;
}

static int vm_large_pages(struct parse *p, const char *value)
{
	if (strcasecmp(value, "on") && strcasecmp(value, "off"))
		return fail(p, "bad large_pages '%s' (expected on or off)",
			    value);
	current_vm(p)->large_pages_off = !strcasecmp(value, "off");
	return 0;
}

static int vm_vmm(struct parse *p, const char *value)
{
	if (strcasecmp(value, "threads") && strcasecmp(value, "qemu") &&
	    strcasecmp(value, "process"))
		return fail(p,
			    "bad vmm '%s' (expected threads, process or qemu)",
			    value);
	current_vm(p)->vmm_qemu = !strcasecmp(value, "qemu");
	current_vm(p)->vmm_process = !strcasecmp(value, "process");
	return 0;
}

static int vm_qemu_file(struct parse *p, const char *key, const char *value,
			char **dst)
{
	struct stat st;
	int err = set_path(p, key, value, dst);

	if (err)
		return err;
	if (stat(*dst, &st) < 0)
		return fail(p, "%s %s: %s (expected the path of a file)", key,
			    *dst, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(p, "%s %s is not a regular file", key, *dst);
	return 0;
}

static int vm_kernel(struct parse *p, const char *value)
{
	return vm_qemu_file(p, "kernel", value, &current_vm(p)->kernel);
}

static int vm_initrd(struct parse *p, const char *value)
{
	return vm_qemu_file(p, "initrd", value, &current_vm(p)->initrd);
}

static int vm_append(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);

	if (!*value)
		return fail(
			p,
			"append is empty (expected the guest kernel's command line)");
	free(vm->append);
	vm->append = strdup(value);
	return vm->append ? 0 : fail_nomem(p);
}

static int vm_qemu_args(struct parse *p, const char *value)
{
	struct sc_vm *vm = current_vm(p);
	char open = 0;

	/* split at blanks when QEMU starts; quotes must close */
	for (const char *c = value; *c; c++)
		if (open ? *c == open : (*c == '\'' || *c == '"'))
			open = open ? 0 : *c;
	if (open)
		return fail(
			p,
			"qemu_args has an unterminated %c quote (expected arguments separated by blanks, '...' or \"...\" keeping blanks)",
			open);
	free(vm->qemu_args);
	vm->qemu_args = strdup(value);
	return vm->qemu_args ? 0 : fail_nomem(p);
}

static int vm_balloon_target(struct parse *p, const char *value)
{
	uint64_t v = 0;

	/* 0 asks for nothing; more than Mem.CtlMaxPercent is clipped */
	if (strcmp(value, "0") && size_value(value, &v))
		return fail(
			p,
			"bad balloon_target '%s' (expected 0 or a size with a unit K, M, G or T, e.g. 128M)",
			value);
	current_vm(p)->balloon_target = v;
	return 0;
}

static int vm_burst_pct(struct parse *p, const char *value)
{
	uint64_t v;
	int err = set_uint(p, "burst_pct", value, 1, 100, &v);

	if (!err)
		current_vm(p)->burst_pct = (uint32_t)v;
	return err;
}

static int vm_burst_keep_pct(struct parse *p, const char *value)
{
	uint64_t v;
	int err = set_uint(p, "burst_keep_pct", value, 1, 100, &v);

	if (!err)
		current_vm(p)->burst_keep_pct = (uint32_t)v;
	return err;
}

static int vm_write_pct(struct parse *p, const char *value)
{
	uint64_t v;
	int err = set_uint(p, "write_pct", value, 0, 100, &v);

	if (!err)
		current_vm(p)->write_pct1 = (uint32_t)v + 1;
	return err;
}

static int vm_burst_idle_ms(struct parse *p, const char *value)
{
	uint64_t v;
	int err = set_uint(p, "burst_idle_ms", value, 1, MAX_BURST_IDLE_MS, &v);

	if (!err)
		current_vm(p)->burst_idle_ms = (uint32_t)v;
	return err;
}

static int vm_shares(struct parse *p, const char *value)
{
	static const char *const levels[] = { [MV_SHARES_LOW] = "low",
					      [MV_SHARES_NORMAL] = "normal",
					      [MV_SHARES_HIGH] = "high" };
	struct sc_vm *vm = current_vm(p);
	uint64_t v;

	for (int i = 0; i < (int)(sizeof(levels) / sizeof(levels[0])); i++) {
		if (!strcasecmp(value, levels[i])) {
			vm->shares_level = i;
			return 0;
		}
	}
	if (uint_value(value, MV_SHARES_MAX, &v) || !v)
		return fail(
			p,
			"bad shares '%s' (expected low, normal, high or a whole number from 1 to %llu)",
			value, MV_SHARES_MAX);
	vm->shares_level = -1;
	vm->shares = v;
	return 0;
}

/* 0 means none; anything else a size, checked against memsize at the end */
static int set_optional_size(struct parse *p, const char *key,
			     const char *value, uint64_t *dst)
{
	uint64_t v = 0;

	if (strcmp(value, "0") && size_value(value, &v))
		return fail(
			p,
			"bad %s '%s' (expected 0 or a size with a unit K, M, G or T, e.g. 128M)",
			key, value);
	*dst = v;
	return 0;
}

static int vm_reservation(struct parse *p, const char *value)
{
	return set_optional_size(p, "reservation", value,
				 &current_vm(p)->reservation);
}

static int vm_limit(struct parse *p, const char *value)
{
	return set_optional_size(p, "limit", value, &current_vm(p)->limit);
}

uint64_t scenario_vm_shares(const struct sc_vm *vm)
{
	if (vm->shares_level < 0)
		return vm->shares;
	return mv_shares_for((enum mv_shares_level)vm->shares_level,
			     vm->memsize);
}

static const struct key host_keys[] = {
	{ "memsize", host_memsize },
	{ "swapdir", host_swapdir },
	{ "duration", host_duration },
	{ "pin_vcpus", host_pin_vcpus },
};

static const struct key vm_keys[] = {
	{ "memsize", vm_memsize },
	{ "workload", vm_workload },
	{ "threads", vm_threads },
	{ "image", vm_image },
	{ "image_os", vm_image_os },
	{ "image_size", vm_image_size },
	{ "image_seed", vm_image_seed },
	{ "image_mix", vm_image_mix },
	{ "salt", vm_salt },
	{ "seed", vm_seed },
	{ "think_us", vm_think_us },
	{ "zipf_s", vm_zipf_s },
	{ "kv_values", vm_kv_values },
	{ "balloon", vm_balloon },
	{ "balloon_target", vm_balloon_target },
	{ "burst_pct", vm_burst_pct },
	{ "burst_keep_pct", vm_burst_keep_pct },
	{ "burst_idle_ms", vm_burst_idle_ms },
	{ "write_pct", vm_write_pct },
	{ "shares", vm_shares },
	{ "reservation", vm_reservation },
	{ "limit", vm_limit },
	{ "large_pages", vm_large_pages },
	{ "cpus", vm_cpus },
	{ "vmm", vm_vmm },
	{ "kernel", vm_kernel },
	{ "initrd", vm_initrd },
	{ "append", vm_append },
	{ "qemu_args", vm_qemu_args },
};

/* Keys only guest threads take (a QEMU guest runs its own program), and
 * keys only a QEMU guest takes. */
static const char *const thread_only_keys[] = {
	"workload",	  "threads",	 "image",	   "image_os",
	"image_size",	  "image_seed",	 "image_mix",	   "salt",
	"think_us",	  "zipf_s",	 "kv_values",	   "balloon",
	"balloon_target", "burst_pct",	 "burst_keep_pct", "burst_idle_ms",
	"write_pct",	  "large_pages",
};
static const char *const qemu_only_keys[] = { "kernel", "initrd", "append",
					      "qemu_args" };
/* Thread-VM keys a VM in a process of its own does not take (yet): its
 * image (made and read in the run's process) and its balloon */
static const char *const process_refused_keys[] = {
	"image",     "image_os", "image_size",	   "image_seed",
	"image_mix", "balloon",	 "balloon_target",
};

static void note_vm_key(struct parse *p, const char *name)
{
	struct sc_vm *vm = current_vm(p);

	for (size_t i = 0;
	     i < sizeof(thread_only_keys) / sizeof(thread_only_keys[0]); i++)
		if (!strcmp(name, thread_only_keys[i]) && !vm->thread_key) {
			vm->thread_key = thread_only_keys[i];
			vm->thread_key_line = p->line;
		}
	for (size_t i = 0;
	     i < sizeof(qemu_only_keys) / sizeof(qemu_only_keys[0]); i++)
		if (!strcmp(name, qemu_only_keys[i]) && !vm->qemu_key) {
			vm->qemu_key = qemu_only_keys[i];
			vm->qemu_key_line = p->line;
		}
	for (size_t i = 0;
	     i < sizeof(process_refused_keys) / sizeof(process_refused_keys[0]);
	     i++)
		if (!strcmp(name, process_refused_keys[i]) &&
		    !vm->process_key) {
			vm->process_key = process_refused_keys[i];
			vm->process_key_line = p->line;
		}
}

#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

static void key_list(const struct key *keys, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 list_sep(i, n), keys[i].name);
}

static int set_key(struct parse *p, const struct key *keys, size_t n,
		   const char *section, const char *name, const char *value)
{
	char expected[320];

	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(name, keys[i].name))
			continue;
		if (p->seen & (1u << i))
			return fail(
				p,
				"%s is set twice in %s (expected each key once)",
				keys[i].name, section);
		p->seen |= 1u << i;
		if (keys == vm_keys)
			note_vm_key(p, keys[i].name);
		return keys[i].set(p, value);
	}
	key_list(keys, n, expected, sizeof(expected));
	return fail(p, "unknown key '%s' in %s (expected %s)", name, section,
		    expected);
}

static bool setting_accepts(const char *name, uint64_t v)
{
	struct mv_settings s;
	char buf[24];

	mv_settings_init(&s);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return !mv_settings_set(&s, name, buf);
}

/*
 * Whether the library knows setting name, and the range it accepts, found
 * through mv_settings_set() alone so that the library's table stays the
 * only authority.  A range is contiguous: one accepted value is looked for
 * (0, 1, then powers of two), and its ends are found by bisection from it.
 */
static bool setting_range(const char *name, uint32_t *min, uint32_t *max)
{
	uint64_t lo, hi, mid, in = UINT64_MAX;

	for (int k = -1; k < 32 && in == UINT64_MAX; k++)
		if (setting_accepts(name, k < 0 ? 0 : 1ull << k))
			in = k < 0 ? 0 : 1ull << k;
	if (in == UINT64_MAX && setting_accepts(name, UINT32_MAX))
		in = UINT32_MAX;
	if (in == UINT64_MAX)
		return false;
	/* lowest accepted: lo refused, hi accepted */
	lo = 0;
	hi = in;
	if (setting_accepts(name, 0))
		hi = 0;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (setting_accepts(name, mid))
			hi = mid;
		else
			lo = mid;
	}
	*min = (uint32_t)hi;
	/* highest accepted: lo accepted, hi refused */
	for (lo = in, hi = (uint64_t)UINT32_MAX + 1; hi - lo > 1;) {
		mid = lo + (hi - lo) / 2;
		if (setting_accepts(name, mid))
			lo = mid;
		else
			hi = mid;
	}
	*max = (uint32_t)lo;
	return true;
}

static int set_advanced(struct parse *p, const char *name, const char *value)
{
	struct scenario *sc = p->sc;
	struct sc_setting *a;

	for (size_t i = 0; i < sc->nadvanced; i++)
		if (!strcasecmp(sc->advanced[i].name, name))
			return fail(
				p,
				"%s is set twice in [advanced] (first at line %d; expected each setting once)",
				name, sc->advanced[i].line);
	if (mv_settings_set(&sc->settings, name, value)) {
		uint32_t min, max;

		if (!setting_range(name, &min, &max))
			return fail(
				p,
				"unknown setting '%s' in [advanced] (expected an ESX setting name such as Mem.ShareScanTime; docs/SCENARIOS.md lists them)",
				name);
		return fail(
			p,
			"bad value '%s' for %s (expected a whole number from %u to %u)",
			value, name, min, max);
	}
	a = realloc(sc->advanced, (sc->nadvanced + 1) * sizeof(*a));
	if (!a)
		return fail_nomem(p);
	sc->advanced = a;
	a = &sc->advanced[sc->nadvanced];
	a->name = strdup(name);
	a->value = strdup(value);
	a->line = p->line;
	sc->nadvanced++;
	if (!a->name || !a->value)
		return fail_nomem(p);
	return 0;
}

static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	struct parse *p = user;
	char where[MV_NAME_MAX + 8];

	/* Our reader tracked the section already, with its line. */
	(void)section;
	if (p->err)
		return 0;
	switch (p->sec) {
	case SEC_NONE:
		fail(p,
		     "'%s' is outside any section (expected [host], [vm NAME] or [advanced] first)",
		     name);
		break;
	case SEC_HOST:
		set_key(p, host_keys, NKEYS(host_keys), "[host]", name, value);
		break;
	case SEC_VM:
		snprintf(where, sizeof(where), "[vm %s]", current_vm(p)->name);
		set_key(p, vm_keys, NKEYS(vm_keys), where, name, value);
		break;
	case SEC_ADVANCED:
		set_advanced(p, name, value);
		break;
	}
	return !p->err;
}

static bool name_ok(const char *name)
{
	for (; *name; name++)
		if (!isalnum((unsigned char)*name) && !strchr("-_.", *name))
			return false;
	return true;
}

/* FNV-1a: a VM's default seed follows its name, not its position. */
static uint64_t name_seed(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return h;
}

static int open_vm(struct parse *p, const char *name)
{
	struct scenario *sc = p->sc;
	struct sc_vm *vms;

	if (!*name)
		return fail(p, "[vm] has no name (expected [vm NAME])");
	if (strlen(name) >= MV_NAME_MAX || !name_ok(name))
		return fail(
			p,
			"bad VM name '%s' (expected 1 to %d letters, digits, '-', '_' or '.')",
			name, MV_NAME_MAX - 1);
	for (size_t i = 0; i < sc->nvms; i++)
		if (!strcmp(sc->vms[i].name, name))
			return fail(
				p,
				"VM '%s' is defined twice (first at line %d; expected unique VM names)",
				name, sc->vms[i].line);
	vms = realloc(sc->vms, (sc->nvms + 1) * sizeof(*vms));
	if (!vms)
		return fail_nomem(p);
	sc->vms = vms;
	memset(&vms[sc->nvms], 0, sizeof(vms[0]));
	strcpy(vms[sc->nvms].name, name);
	vms[sc->nvms].workload = MVG_IDLE;
	vms[sc->nvms].threads = 1;
	vms[sc->nvms].shares_level = MV_SHARES_NORMAL;
	vms[sc->nvms].seed = name_seed(name);
	snprintf(vms[sc->nvms].image_spec.os,
		 sizeof(vms[sc->nvms].image_spec.os), "%s", DEFAULT_IMAGE_OS);
	vms[sc->nvms].image_spec.mix =
		(struct mvg_image_mix)MVG_IMAGE_MIX_DEFAULT;
	vms[sc->nvms].line = p->line;
	sc->nvms++;
	p->sec = SEC_VM;
	return 0;
}

static int open_section(struct parse *p, char *header)
{
	char *arg = header + strcspn(header, " \t");

	if (*arg)
		*arg++ = '\0';
	arg = trim(arg);
	p->seen = 0;
	p->sec_line = p->line;
	if (!strcasecmp(header, "vm"))
		return open_vm(p, arg);
	if (!strcasecmp(header, "host") && !*arg) {
		if (p->sc->host.line)
			return fail(
				p,
				"[host] appears twice (first at line %d; expected one [host] section)",
				p->sc->host.line);
		p->sc->host.line = p->line;
		p->sec = SEC_HOST;
		return 0;
	}
	if (!strcasecmp(header, "advanced") && !*arg) {
		if (p->advanced_line)
			return fail(
				p,
				"[advanced] appears twice (first at line %d; expected one [advanced] section)",
				p->advanced_line);
		p->advanced_line = p->line;
		p->sec = SEC_ADVANCED;
		return 0;
	}
	return fail(
		p,
		"unknown section [%s%s%s] (expected [host], [vm NAME] or [advanced])",
		header, *arg ? " " : "", arg);
}

/*
 * One line of the file into buf (at most cap bytes, NUL-terminated), read
 * byte by byte so that a NUL byte is seen: fgets() would stop the string
 * at it, hiding the rest of the line from the length check, and a file of
 * NULs (/dev/zero) would then never end.  Returns the bytes read, 0 at the
 * end of the file; *nul is set if the line held a NUL byte.
 */
static size_t file_line(FILE *f, char *buf, size_t cap, bool *nul)
{
	size_t n = 0;
	int ch;

	*nul = false;
	while (n < cap && (ch = getc(f)) != EOF) {
		if (!ch)
			*nul = true;
		buf[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	buf[n] = '\0';
	return n;
}

/*
 * inih's fgets-like reader.  Returning NULL ends the parse, which is how
 * the first error stops it.
 */
static char *read_line(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	size_t n, cap = (size_t)size - 1;
	bool more, nul = false;
	char *s, *end, header[128];
	int ch;

	if (p->err || size < 4)
		return NULL;
	if (p->f) {
		n = file_line(p->f, buf, cap, &nul);
		if (!n)
			return NULL;
		ch = getc(p->f);
		more = ch != EOF;
		if (more)
			ungetc(ch, p->f);
	} else {
		if (!*p->text)
			return NULL;
		n = strcspn(p->text, "\n");
		n = n < cap ? n + (p->text[n] == '\n') : cap;
		memcpy(buf, p->text, n);
		buf[n] = '\0';
		p->text += n;
		more = *p->text != '\0';
	}
	p->line++;
	if (nul) {
		fail(p,
		     "line has a NUL byte (expected a text file of [section] and key = value lines)");
		return NULL;
	}
	if (n == cap && buf[n - 1] != '\n' && more) {
		fail(p, "line is too long (expected at most %zu characters)",
		     cap - 2);
		return NULL;
	}
	/* A BOM is only ever at the very start; inih's own check would miss
	 * it once we look at the line first. */
	s = buf;
	if (p->line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (*s == ' ' || *s == '\t')
		s++;
	memmove(buf, s, strlen(s) + 1);
	end = strchr(buf, ']');
	if (buf[0] == '[' && end) {
		if ((size_t)(end - buf) > sizeof(header)) {
			fail(p,
			     "section header is too long (expected [host], [vm NAME] or [advanced])");
			return NULL;
		}
		memcpy(header, buf + 1, (size_t)(end - buf) - 1);
		header[end - buf - 1] = '\0';
		if (open_section(p, trim(header)))
			return NULL;
	}
	return buf;
}

/* pin_vcpus = spread: a CPU each for the VMs that name none. */
static int spread_vcpus(struct parse *p)
{
	struct scenario *sc = p->sc;

	if (!sc->host.pin_spread)
		return 0;
	for (size_t i = 0; i < sc->nvms; i++) {
		struct sc_vm *vm = &sc->vms[i];
		int cpu;

		if (vm->ncpus)
			continue;
		cpu = scenario_spread_cpu(i);
		if (cpu < 0)
			return fail_at(
				p, sc->host.line,
				"pin_vcpus = spread, but the CPUs this process may run on cannot be read: %s (expected sched_getaffinity to answer)",
				strerror(-cpu));
		CPU_ZERO(&vm->cpus);
		CPU_SET(cpu, &vm->cpus);
		vm->ncpus = 1;
	}
	return 0;
}

static int finish(struct parse *p)
{
	struct scenario *sc = p->sc;

	if (!sc->nvms)
		return fail_at(
			p, p->line,
			"no VMs (expected at least one [vm NAME] section with a memsize)");
	for (size_t i = 0; i < sc->nvms; i++) {
		struct sc_vm *vm = &sc->vms[i];

		if (!vm->memsize)
			return fail_at(
				p, vm->line,
				"[vm %s] has no memsize (expected memsize = SIZE, e.g. 256M)",
				vm->name);
		if (vm->vmm_qemu && vm->thread_key)
			return fail_at(
				p, vm->thread_key_line,
				"[vm %s] has vmm = qemu but sets %s, which only guest threads take (expected memsize, seed, shares, reservation, limit, kernel, initrd, append or qemu_args)",
				vm->name, vm->thread_key);
		if (vm->vmm_process && vm->process_key)
			return fail_at(
				p, vm->process_key_line,
				"[vm %s] has vmm = process but sets %s, which a VM in a process of its own does not take (expected no image or balloon keys, or vmm = threads)",
				vm->name, vm->process_key);
		if (!vm->vmm_qemu && vm->qemu_key)
			return fail_at(
				p, vm->qemu_key_line,
				"[vm %s] sets %s but is not a QEMU guest (expected vmm = qemu with it)",
				vm->name, vm->qemu_key);
		if (vm->vmm_qemu && vm->memsize % (1u << 20))
			return fail_at(
				p, vm->line,
				"[vm %s] has vmm = qemu and a memsize that is not whole MiB (expected a multiple of 1M: QEMU's -m)",
				vm->name);
		if (vm->workload == MVG_IMAGE && !vm->image &&
		    !vm->image_generated)
			return fail_at(
				p, vm->line,
				"[vm %s] has workload = image but no image (expected image = PATH of the RAM image it starts from, or image = generated)",
				vm->name);
		if (vm->image_keys_line && !vm->image_generated)
			return fail_at(
				p, vm->image_keys_line,
				"[vm %s] sets image_os, image_size, image_seed or image_mix but has no image = generated (expected image = generated, or no image_* keys)",
				vm->name);
		if ((vm->image || vm->image_generated) &&
		    (vm->workload == MVG_KVSTORE || vm->workload == MVG_BURST))
			return fail_at(
				p, vm->line,
				"[vm %s] has an image but workload = %s, %s (expected workload = image, idle or random on an image)",
				vm->name, mvg_kind_name(vm->workload),
				vm->workload == MVG_KVSTORE ?
					"which expects its table in zeroed memory" :
					"whose guest OS takes all memory as free and never reads the image");
		if (vm->image_generated) {
			if (vm->image_spec.size > vm->memsize)
				return fail_at(
					p, vm->line,
					"[vm %s] has an image_size above its memsize (expected image_size <= memsize)",
					vm->name);
			if (!vm->image_spec.size)
				vm->image_spec.size = vm->memsize;
			if (!vm->image_seed_set)
				vm->image_spec.seed = vm->seed;
		}
		if ((vm->burst_pct || vm->burst_keep_pct ||
		     vm->burst_idle_ms) &&
		    vm->workload != MVG_BURST)
			return fail_at(
				p, vm->line,
				"[vm %s] sets burst_* keys but has workload = %s (expected workload = burst, or no burst_* keys)",
				vm->name, mvg_kind_name(vm->workload));
		if (vm->write_pct1 && vm->workload != MVG_IMAGE)
			return fail_at(
				p, vm->line,
				"[vm %s] sets write_pct but has workload = %s (expected workload = image, or no write_pct)",
				vm->name, mvg_kind_name(vm->workload));
		if (vm->reservation > vm->memsize ||
		    (vm->limit &&
		     (vm->limit > vm->memsize || vm->limit < vm->reservation)))
			return fail_at(
				p, vm->line,
				"[vm %s] has a reservation or limit out of range (expected reservation <= limit <= memsize)",
				vm->name);
		if (vm->balloon && vm->workload != MVG_BURST)
			return fail_at(
				p, vm->line,
				"[vm %s] has balloon = on but workload = %s, which does not allocate through the guest OS (expected workload = burst)",
				vm->name, mvg_kind_name(vm->workload));
	}
	return spread_vcpus(p);
}

static void scenario_init(struct scenario *sc)
{
	struct mv_host_config cfg;

	memset(sc, 0, sizeof(*sc));
	mv_host_config_init(&cfg);
	sc->host.memsize = cfg.memsize_bytes;
	sc->host.duration_s = DEFAULT_DURATION_S;
	sc->settings = cfg.settings;
}

void scenario_free(struct scenario *sc)
{
	for (size_t i = 0; i < sc->nvms; i++) {
		free(sc->vms[i].image);
		free(sc->vms[i].kernel);
		free(sc->vms[i].initrd);
		free(sc->vms[i].append);
		free(sc->vms[i].qemu_args);
	}
	for (size_t i = 0; i < sc->nadvanced; i++) {
		free(sc->advanced[i].name);
		free(sc->advanced[i].value);
	}
	free(sc->vms);
	free(sc->advanced);
	free(sc->host.swapdir);
	free(sc->source);
	memset(sc, 0, sizeof(*sc));
}

static int parse(struct parse *p)
{
	int ret;

	p->sc->source = strdup(p->file);
	if (!p->sc->source)
		return fail_nomem(p);
	ret = ini_parse_stream(read_line, p, on_key, p);
	if (p->f && !p->err && ferror(p->f)) {
		fail_at(p, 0,
			"cannot read: %s (expected a readable scenario file)",
			strerror(errno));
		p->err = errno ? -errno : -EIO;
	}
	/* inih's own syntax errors come back only as a line number. */
	if (ret > 0 && (!p->err || ret < p->err_line)) {
		p->err = 0;
		fail_at(p, ret,
			"cannot parse this line (expected [section], key = value, or a ; comment)");
	} else if (ret < 0 && !p->err) {
		fail_at(p, 0, "out of memory");
		p->err = -ENOMEM;
	}
	if (!p->err)
		finish(p);
	return p->err;
}

int scenario_load_string(const char *text, const char *source,
			 struct scenario *sc, char *err, size_t errlen)
{
	struct parse p = { .sc = sc,
			   .file = source,
			   .text = text,
			   .msg = err,
			   .msglen = errlen };
	int ret;

	scenario_init(sc);
	ret = parse(&p);
	if (ret)
		scenario_free(sc);
	return ret;
}

int scenario_load_default(struct scenario *sc, char *err, size_t errlen)
{
	return scenario_load_string(scenario_default_text,
				    SCENARIO_DEFAULT_NAME, sc, err, errlen);
}

/* What a file that is not a scenario is, for the message refusing it. */
static const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFIFO:
		return "a pipe";
	case S_IFSOCK:
		return "a socket";
	default:
		return "not a regular file";
	}
}

/*
 * Opens a scenario file, refusing anything but a regular file before a byte
 * is read: a device such as /dev/zero never ends, and a pipe could keep the
 * run waiting for a writer.  O_NONBLOCK makes the open of a FIFO return at
 * once, so that fstat() can refuse it.
 */
static int open_scenario(const char *path, FILE **f, char *err, size_t errlen)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		snprintf(
			err, errlen,
			"%s: cannot open: %s (expected a readable scenario file)",
			path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(
			err, errlen,
			"%s: cannot read: %s (expected a readable scenario file)",
			path, strerror(-ret));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
			 "%s: is %s (expected a scenario file, a regular file)",
			 path, file_kind(st.st_mode));
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
	    !(*f = fdopen(fd, "r"))) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot read: %s", path,
			 strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	close(fd);
	return ret;
}

int scenario_load_file(const char *path, struct scenario *sc, char *err,
		       size_t errlen)
{
	struct parse p = {
		.sc = sc, .file = path, .msg = err, .msglen = errlen
	};
	const char *slash = strrchr(path, '/');
	int ret;

	scenario_init(sc);
	ret = open_scenario(path, &p.f, err, errlen);
	if (ret)
		return ret;
	if (slash) {
		p.basedir = strndup(path,
				    slash == path ? 1 : (size_t)(slash - path));
		if (!p.basedir) {
			snprintf(err, errlen, "%s: out of memory", path);
			ret = -ENOMEM;
			goto out_close;
		}
	}
	ret = parse(&p);
	if (ret)
		scenario_free(sc);
	free(p.basedir);
out_close:
	fclose(p.f);
	return ret;
}

uint64_t scenario_vm_memsize_total(const struct scenario *sc)
{
	uint64_t total = 0;

	for (size_t i = 0; i < sc->nvms; i++)
		total += sc->vms[i].memsize;
	return total;
}
