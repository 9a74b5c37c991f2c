// SPDX-License-Identifier: MIT
/*
 * bench_linux_sys.c - the kernel side of `memvisor bench linux`: the
 * memory cgroup that holds the peer's VM processes, kernel swap on a file,
 * zswap, zram, the counters read from them, and the state file that makes
 * every change undoable even after the run was killed; with --pause-damon,
 * the DAMON monitors of physical addresses switched off for the runs.
 *
 * Design: every change to the system is first appended to the state file
 * (a line "KIND<TAB>ARG<TAB>VALUE": the value to write back, the device to
 * swap off, the cgroup to empty and remove), then made.  Undoing is one
 * function for every case: a configuration's teardown, the SIGINT/SIGTERM
 * path, and the next invocation finding a killed run's file all call
 * bl_state_undo(), which undoes the lines newest first and removes the
 * file.  A line whose change never happened or is gone already is no
 * error, so a run killed between writing a line and making its change is
 * undone too.  /proc and /sys paths go through bl_sys_root, so tests can
 * run the settings and their undo on a fake tree without root.
 *
 * Invariants: nothing is changed before its line is in the state file
 * (fsync'd); the first line names the owning process, so that a running
 * bench is never undone by another; every wait here is bounded.
 *
 * Lock ordering: none; one thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "bench_linux.h"
#include "preflight.h"

#define PAGE 4096
/* A cgroup whose processes were killed empties in well under this. */
#define CGROUP_EMPTY_MS 10000
#define CG_POLL_MS 20

char bl_sys_root[256] = "";
char bl_state_path[512] = "/run/memvisor-bench-linux.state";

static void sys_path(char *out, size_t len, const char *path)
{
	snprintf(out, len, "%s%s", bl_sys_root, path);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The first line of a file, without its newline; 0 or -errno. */
static int sys_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC), ret = 0;
	size_t n = strlen(s);

	if (fd < 0)
		return -errno;
	if (write(fd, s, n) != (ssize_t)n)
		ret = -errno ? -errno : -EIO;
	close(fd);
	return ret;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* ---- the state file ---- */

static int state_append(const char *line)
{
	int fd = open(bl_state_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0600),
	    ret = 0;
	size_t n = strlen(line);

	if (fd < 0)
		return -errno;
	if (write(fd, line, n) != (ssize_t)n || fsync(fd))
		ret = -EIO;
	close(fd);
	return ret;
}

int bl_state_add(const char *kind, const char *arg, const char *value)
{
	char line[1200];
	struct stat st;

	/* the first line says whose changes these are */
	if (stat(bl_state_path, &st) && errno == ENOENT) {
		snprintf(line, sizeof(line), "owner\t%ld\t\n", (long)getpid());
		if (state_append(line))
			return -EIO;
	}
	snprintf(line, sizeof(line), "%s\t%s\t%s\n", kind, arg,
		 value ? value : "");
	return state_append(line);
}

/* Kills every process left in a cgroup and removes it. */
static void cgroup_remove(const char *path)
{
	char procs[600], line[64];
	uint64_t waited = 0;
	bool any;
	FILE *f;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	do {
		any = false;
		f = fopen(procs, "re");
		while (f && fgets(line, sizeof(line), f)) {
			long pid = strtol(line, NULL, 10);

			if (pid > 1 && pid != getpid()) {
				kill((pid_t)pid, SIGKILL);
				any = true;
			}
		}
		if (f)
			fclose(f);
		if (any) {
			sleep_ms(CG_POLL_MS);
			waited += CG_POLL_MS;
		}
	} while (any && waited < CGROUP_EMPTY_MS);
	/* a fake tree in tests holds files: only the control files */
	if (rmdir(path) && errno == ENOTEMPTY && bl_sys_root[0]) {
		DIR *d = opendir(path);
		struct dirent *e;
		char p[900];

		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			unlink(p);
		}
		if (d)
			closedir(d);
		rmdir(path);
	}
}

static void undo_line(const char *kind, const char *arg, const char *value,
		      FILE *log)
{
	char path[600];

	if (!strcmp(kind, "file")) {
		if (write_str(arg, value) && log && exists(arg))
			fprintf(log,
				"memvisor bench linux: cannot write %s back to %s: %s\n",
				value, arg, strerror(errno));
	} else if (!strcmp(kind, "swap")) {
		/* EINVAL: not swap (never swapped on, or off already) */
		if (swapoff(arg) && errno != EINVAL && errno != ENOENT && log)
			fprintf(log,
				"memvisor bench linux: cannot swapoff %s: %s\n",
				arg, strerror(errno));
	} else if (!strcmp(kind, "unlink")) {
		unlink(arg);
	} else if (!strcmp(kind, "zram")) {
		snprintf(path, sizeof(path), "%s/sys/block/zram%s/reset",
			 bl_sys_root, arg);
		write_str(path, "1");
		sys_path(path, sizeof(path),
			 "/sys/class/zram-control/hot_remove");
		write_str(path, arg);
	} else if (!strcmp(kind, "cgroup")) {
		cgroup_remove(arg);
	}
}

int bl_state_undo(FILE *log)
{
	char **lines = NULL, buf[1200], *kind, *arg, *value, *save;
	unsigned n = 0, cap = 0;
	int undone = 0;
	FILE *f = fopen(bl_state_path, "re");

	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f)) {
		if (n == cap) {
			char **m = realloc(lines, (cap = cap ? 2 * cap : 16) *
							  sizeof(*lines));
			if (!m)
				break;
			lines = m;
		}
		buf[strcspn(buf, "\n")] = '\0';
		if (!(lines[n] = strdup(buf)))
			break;
		n++;
	}
	fclose(f);
	while (n--) {
		kind = strtok_r(lines[n], "\t", &save);
		arg = kind ? strtok_r(NULL, "\t", &save) : NULL;
		value = arg ? strtok_r(NULL, "\t", &save) : NULL;
		if (kind && arg && strcmp(kind, "owner")) {
			undo_line(kind, arg, value ? value : "", log);
			undone++;
		}
		free(lines[n]);
	}
	free(lines);
	unlink(bl_state_path);
	return undone;
}

void bl_cleanup(void)
{
	bl_state_undo(stderr);
}

/* Writes value to a /proc or /sys file, recording the old value first. */
static int set_param(const char *rel, const char *value)
{
	char path[600], old[256];
	int ret;

	sys_path(path, sizeof(path), rel);
	ret = sys_read_line(path, old, sizeof(old));
	if (ret)
		return ret;
	/* zswap's compressor and zram's algorithm read "[a] b c" */
	if (strchr(old, '[')) {
		char *b = strchr(old, '['), *e = strchr(b, ']');

		if (e)
			*e = '\0';
		memmove(old, b + 1, strlen(b + 1) + 1);
	}
	if (!strcmp(old, value))
		return 0;
	if (bl_state_add("file", path, old))
		return -EIO;
	return write_str(path, value);
}

/* ---- DAMON ---- */

unsigned bl_damon_paddr(unsigned *first)
{
	char root[600];

	sys_path(root, sizeof(root), PREFLIGHT_DAMON_SYSFS);
	return preflight_damon_paddr(root, first);
}

int bl_damon_pause(unsigned *paused)
{
	char root[600], rel[128];
	struct dirent *e;
	unsigned k;
	int ret = 0;
	DIR *d;

	*paused = 0;
	sys_path(root, sizeof(root), PREFLIGHT_DAMON_SYSFS);
	d = opendir(root);
	while (d && !ret && (e = readdir(d))) {
		if (sscanf(e->d_name, "%u", &k) != 1 ||
		    !preflight_damon_paddr_on(root, k))
			continue;
		snprintf(rel, sizeof(rel), PREFLIGHT_DAMON_SYSFS "/%u/state",
			 k);
		if (!(ret = set_param(rel, "off")))
			(*paused)++;
	}
	if (d)
		closedir(d);
	return ret;
}

/* ---- the memory cgroup ---- */

static int cgroup_v2_base(char *base, size_t len)
{
	static const char *const mounts[] = { "/sys/fs/cgroup",
					      "/sys/fs/cgroup/unified" };
	char path[600], line[512];

	for (unsigned i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s%s/cgroup.controllers",
			 bl_sys_root, mounts[i]);
		if (sys_read_line(path, line, sizeof(line)))
			continue;
		for (char *s = strtok(line, " "); s; s = strtok(NULL, " "))
			if (!strcmp(s, "memory")) {
				snprintf(base, len, "%s%s", bl_sys_root,
					 mounts[i]);
				return 0;
			}
	}
	return -ENOTSUP;
}

static int cgroup_v1_base(char *base, size_t len)
{
	char path[600];

	snprintf(base, len, "%s/sys/fs/cgroup/memory", bl_sys_root);
	snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", base);
	return exists(path) ? 0 : -ENOTSUP;
}

int bl_cgroup_probe(char *msg, size_t len)
{
	char base[512];

	if (!cgroup_v2_base(base, sizeof(base)) ||
	    !cgroup_v1_base(base, sizeof(base)))
		return 0;
	snprintf(
		msg, len,
		"no memory cgroup controller: neither \"memory\" in /sys/fs/cgroup/cgroup.controllers (v2) nor /sys/fs/cgroup/memory/memory.limit_in_bytes (v1)");
	return -ENOTSUP;
}

int bl_cgroup_create(struct bl_cgroup *cg, uint64_t limit, unsigned swappiness,
		     char *msg, size_t len)
{
	static unsigned serial;
	char base[512], path[700], v[32];
	int ret;

	memset(cg, 0, sizeof(*cg));
	if (!cgroup_v2_base(base, sizeof(base))) {
		cg->v2 = true;
	} else if (cgroup_v1_base(base, sizeof(base))) {
		return bl_cgroup_probe(msg, len);
	}
	if (cg->v2) {
		/* the children of the base need the controller */
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", base);
		char line[512] = "";

		sys_read_line(path, line, sizeof(line));
		if (!strstr(line, "memory")) {
			if (bl_state_add("file", path, "-memory"))
				return -EIO;
			if ((ret = write_str(path, "+memory"))) {
				snprintf(
					msg, len,
					"cannot enable the memory controller in %s: %s",
					path, strerror(-ret));
				return ret;
			}
		}
	}
	snprintf(cg->path, sizeof(cg->path),
		 "%.400s/memvisor-bench-linux-%ld-%u", base, (long)getpid(),
		 serial++);
	if (bl_state_add("cgroup", cg->path, NULL))
		return -EIO;
	if (mkdir(cg->path, 0755) && errno != EEXIST) {
		ret = -errno;
		snprintf(msg, len, "cannot make the cgroup %s: %s", cg->path,
			 strerror(errno));
		cg->path[0] = '\0';
		return ret;
	}
	if (cg->v2) {
		snprintf(v, sizeof(v), "%u", swappiness);
		/* v2 has no per-cgroup swappiness: the sysctl decides */
		ret = set_param("/proc/sys/vm/swappiness", v);
		if (!ret && limit) {
			snprintf(path, sizeof(path), "%s/memory.max", cg->path);
			snprintf(v, sizeof(v), "%" PRIu64, limit);
			ret = write_str(path, v);
		}
	} else {
		snprintf(path, sizeof(path), "%s/memory.swappiness", cg->path);
		snprintf(v, sizeof(v), "%u", swappiness);
		ret = write_str(path, v);
		if (!ret && limit) {
			snprintf(path, sizeof(path), "%s/memory.limit_in_bytes",
				 cg->path);
			snprintf(v, sizeof(v), "%" PRIu64, limit);
			ret = write_str(path, v);
		}
	}
	if (ret)
		snprintf(msg, len, "cannot set up the cgroup %s (%s): %s",
			 cg->path, path, strerror(-ret));
	return ret;
}

int bl_cgroup_add(const struct bl_cgroup *cg, pid_t pid)
{
	char path[600], v[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg->path);
	snprintf(v, sizeof(v), "%ld", (long)pid);
	return write_str(path, v);
}

/* The value of "key N" in a flat keyed file, 0 when absent. */
static uint64_t keyed(const char *path, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	uint64_t v = 0;
	FILE *f = fopen(path, "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ')
			v = strtoull(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

uint64_t bl_cgroup_oom_kills(const struct bl_cgroup *cg)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", cg->path,
		 cg->v2 ? "memory.events" : "memory.oom_control");
	return keyed(path, "oom_kill");
}

uint64_t bl_cgroup_peak(const struct bl_cgroup *cg)
{
	char path[600], line[64];

	snprintf(path, sizeof(path), "%s/%s", cg->path,
		 cg->v2 ? "memory.peak" : "memory.max_usage_in_bytes");
	if (sys_read_line(path, line, sizeof(line)))
		return 0;
	return strtoull(line, NULL, 10);
}

void bl_cgroup_destroy(struct bl_cgroup *cg)
{
	if (cg->path[0])
		cgroup_remove(cg->path);
	cg->path[0] = '\0';
}

/* ---- swap ---- */

/* Is name a compressor in the kernel's crypto API? */
static bool crypto_has(const char *name)
{
	char path[600], line[256], want[128];
	bool found = false;
	FILE *f;

	sys_path(path, sizeof(path), "/proc/crypto");
	f = fopen(path, "re");
	snprintf(want, sizeof(want), "name         : %s\n", name);
	while (f && !found && fgets(line, sizeof(line), f))
		found = !strcmp(line, want);
	if (f)
		fclose(f);
	return found;
}

/* zswap's compressor: lz4 when the kernel has it, else lzo-rle. */
static const char *zswap_compressor(void)
{
	return crypto_has("lz4") ? "lz4" : "lzo-rle";
}

int bl_swap_probe(enum bl_config kind, char *msg, size_t len)
{
	char path[600];

	if (geteuid() != 0) {
		snprintf(
			msg, len,
			"not root: swapon, memory cgroups and zswap/zram settings need root");
		return -EPERM;
	}
	if (kind == BL_ZSWAP) {
		sys_path(path, sizeof(path),
			 "/sys/module/zswap/parameters/enabled");
		if (!exists(path)) {
			snprintf(
				msg, len,
				"this kernel has no zswap (CONFIG_ZSWAP: /sys/module/zswap/parameters missing)");
			return -ENOTSUP;
		}
		if (!crypto_has("lzo-rle") && !crypto_has("lz4")) {
			snprintf(
				msg, len,
				"zswap has no compressor: neither lz4 nor lzo-rle in /proc/crypto");
			return -ENOTSUP;
		}
	} else if (kind == BL_ZRAM) {
		sys_path(path, sizeof(path), "/sys/class/zram-control/hot_add");
		if (!exists(path)) {
			snprintf(
				msg, len,
				"no zram: /sys/class/zram-control missing (CONFIG_ZRAM off or the zram module not loaded: modprobe zram)");
			return -ENOTSUP;
		}
	}
	return 0;
}

const char *bl_zswap_note(void)
{
	return crypto_has("lz4") ?
		       "zswap with lz4" :
		       "zswap with lzo-rle (lz4 is not in this kernel's crypto API)";
}

/* mkswap: the version-1 header in the first page. */
static int swap_header(int fd, uint64_t bytes)
{
	static char page[PAGE];
	uint32_t v[3] = { 1, (uint32_t)(bytes / PAGE - 1), 0 };

	memset(page, 0, sizeof(page));
	memcpy(page + 1024, v, sizeof(v));
	memcpy(page + PAGE - 10, "SWAPSPACE2", 10);
	if (pwrite(fd, page, PAGE, 0) != PAGE || fsync(fd))
		return -errno ? -errno : -EIO;
	return 0;
}

static int swap_file(struct bl_swap *s, const char *dir, uint64_t bytes,
		     char *msg, size_t len)
{
	int fd, ret;

	snprintf(s->file, sizeof(s->file), "%s/linux-swap", dir);
	if (bl_state_add("unlink", s->file, NULL))
		return -EIO;
	unlink(s->file);
	fd = open(s->file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(msg, len, "cannot create the swap file %s: %s",
			 s->file, strerror(errno));
		return ret;
	}
	ret = posix_fallocate(fd, 0, (off_t)bytes);
	if (!ret)
		ret = -swap_header(fd, bytes);
	close(fd);
	if (ret) {
		snprintf(msg, len, "cannot make the swap file %s (%.0f MB): %s",
			 s->file, bytes / 1e6, strerror(ret < 0 ? -ret : ret));
		return -EIO;
	}
	if (bl_state_add("swap", s->file, NULL))
		return -EIO;
	if (swapon(s->file, 0)) {
		ret = -errno;
		snprintf(msg, len, "swapon %s failed: %s", s->file,
			 strerror(errno));
		return ret;
	}
	return 0;
}

static int zram_setup(struct bl_swap *s, const char *dir, uint64_t bytes,
		      char *msg, size_t len)
{
	char path[600], line[64], v[32];
	unsigned maj, min;
	int ret, fd, n;

	sys_path(path, sizeof(path), "/sys/class/zram-control/hot_add");
	if ((ret = sys_read_line(path, line, sizeof(line)))) {
		snprintf(msg, len, "cannot add a zram device (%s): %s", path,
			 strerror(-ret));
		return ret;
	}
	n = atoi(line);
	s->zram = n;
	if (bl_state_add("zram", line, NULL))
		return -EIO;
	snprintf(path, sizeof(path), "%s/sys/block/zram%d/comp_algorithm",
		 bl_sys_root, n);
	if ((ret = write_str(path, "lz4"))) {
		snprintf(msg, len, "zram has no lz4 (%s): %s", path,
			 strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/sys/block/zram%d/disksize",
		 bl_sys_root, n);
	snprintf(v, sizeof(v), "%" PRIu64, bytes);
	if ((ret = write_str(path, v))) {
		snprintf(msg, len, "cannot size zram%d: %s", n, strerror(-ret));
		return ret;
	}
	/* the device node: /dev's if udev made it, else our own */
	snprintf(s->file, sizeof(s->file), "/dev/zram%d", n);
	if (!exists(s->file)) {
		snprintf(path, sizeof(path), "%s/sys/block/zram%d/dev",
			 bl_sys_root, n);
		if (sys_read_line(path, line, sizeof(line)) ||
		    sscanf(line, "%u:%u", &maj, &min) != 2) {
			snprintf(msg, len, "cannot read %s", path);
			return -EIO;
		}
		snprintf(s->file, sizeof(s->file), "%s/zram%d", dir, n);
		if (bl_state_add("unlink", s->file, NULL))
			return -EIO;
		if (mknod(s->file, S_IFBLK | 0600, makedev(maj, min))) {
			ret = -errno;
			snprintf(msg, len, "cannot make the node %s: %s",
				 s->file, strerror(errno));
			return ret;
		}
	}
	fd = open(s->file, O_RDWR | O_CLOEXEC);
	if (fd < 0 || (ret = swap_header(fd, bytes))) {
		ret = fd < 0 ? -errno : ret;
		snprintf(msg, len, "cannot write a swap header on %s: %s",
			 s->file, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	close(fd);
	if (bl_state_add("swap", s->file, NULL))
		return -EIO;
	if (swapon(s->file, 0)) {
		ret = -errno;
		snprintf(msg, len, "swapon %s failed: %s", s->file,
			 strerror(errno));
		return ret;
	}
	return 0;
}

int bl_swap_setup(struct bl_swap *s, enum bl_config kind, const char *dir,
		  uint64_t bytes, char *msg, size_t len)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->zram = -1;
	bytes = (bytes + PAGE - 1) / PAGE * PAGE;
	if ((ret = bl_swap_probe(kind, msg, len)))
		return ret;
	/* zswap stays off for the others, whatever the machine had */
	ret = set_param("/sys/module/zswap/parameters/enabled",
			kind == BL_ZSWAP ? "Y" : "N");
	if (ret && kind == BL_ZSWAP) {
		snprintf(msg, len, "cannot enable zswap: %s", strerror(-ret));
		return ret;
	}
	if (kind == BL_ZSWAP) {
		s->zswap_set = true;
		if ((ret = set_param("/sys/module/zswap/parameters/compressor",
				     zswap_compressor()))) {
			snprintf(msg, len, "cannot set zswap's compressor: %s",
				 strerror(-ret));
			return ret;
		}
	}
	/* swap-in readahead reads neighbours for nothing on zram */
	ret = set_param("/proc/sys/vm/page-cluster",
			kind == BL_ZRAM ? "0" : "3");
	if (ret) {
		snprintf(msg, len, "cannot set vm.page-cluster: %s",
			 strerror(-ret));
		return ret;
	}
	if (kind == BL_ZRAM)
		return zram_setup(s, dir, bytes, msg, len);
	return swap_file(s, dir, bytes, msg, len);
}

void bl_swap_teardown(struct bl_swap *s)
{
	(void)s;
	bl_state_undo(stderr);
}

uint64_t bl_zram_peak(const struct bl_swap *s)
{
	char path[600], line[256];
	unsigned long long v[5];

	if (s->zram < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/sys/block/zram%d/mm_stat", bl_sys_root,
		 s->zram);
	/* orig_data_size compr_data_size mem_used_total mem_limit
	 * mem_used_max ... */
	if (sys_read_line(path, line, sizeof(line)) ||
	    sscanf(line, "%llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4]) != 5)
		return 0;
	return v[4];
}

uint64_t bl_zswap_pool(void)
{
	char path[600];

	sys_path(path, sizeof(path), "/proc/meminfo");
	return keyed(path, "Zswap:") * 1024;
}

void bl_vmstat_swap(uint64_t *in_pages, uint64_t *out_pages)
{
	char path[600];

	sys_path(path, sizeof(path), "/proc/vmstat");
	*in_pages = keyed(path, "pswpin") + keyed(path, "zswpin");
	*out_pages = keyed(path, "pswpout") + keyed(path, "zswpout");
}
