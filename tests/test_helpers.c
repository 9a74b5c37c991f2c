// SPDX-License-Identifier: MIT
/*
 * test_helpers.c - the shared test helpers' own promises (helper.h): a
 * scratch directory is fresh, private and inside the build tree beside the
 * test binary, on the build tree's disk; a unix socket's name always fits
 * in sun_path, however deep the scratch directory is; th_tmpfile is a
 * file in memory, not under /tmp.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"

/* BUILD/tests/tmp, the real path of this binary's directory's tmp. */
static void scratch_base(char *buf, size_t len)
{
	char self[PATH_MAX], *slash;

	assert_non_null(realpath("/proc/self/exe", self));
	slash = strrchr(self, '/');
	assert_non_null(slash);
	*slash = '\0';
	assert_true((size_t)snprintf(buf, len, "%s/tmp/", self) < len);
}

static unsigned entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void
test_scratch_dir_is_fresh_private_and_beside_the_binary(void **state)
{
	char a[TH_DIR_LEN], b[TH_DIR_LEN], base[PATH_MAX + 8], real[PATH_MAX];
	struct stat st;

	(void)state;
	scratch_base(base, sizeof(base));
	assert_int_equal(th_scratch_dir(a, sizeof(a), "helpers"), 0);
	th_remove_at_teardown(a);
	assert_int_equal(th_scratch_dir(b, sizeof(b), "helpers"), 0);
	th_remove_at_teardown(b);
	/* BUILD/tests/tmp/helpers.XXXXXX, whatever the way to it */
	assert_non_null(realpath(a, real));
	assert_memory_equal(real, base, strlen(base));
	assert_non_null(strstr(real + strlen(base), "helpers."));
	assert_null(strchr(real + strlen(base), '/'));
	/* fresh: two calls, two empty directories of ours, mode 0700 */
	assert_string_not_equal(a, b);
	assert_int_equal(stat(a, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(entries(a), 0);
	assert_int_equal(entries(b), 0);
	assert_null(strstr(real, "/var/tmp/"));
}

/* Swap files there behave as on the build tree's disk: the same file
 * system as the binary's own directory. */
static void test_scratch_dir_is_on_the_build_trees_file_system(void **state)
{
	char dir[TH_DIR_LEN], self[PATH_MAX];
	struct stat sd, sb;

	(void)state;
	th_scratch(dir, sizeof(dir), "helpers");
	th_remove_at_teardown(dir);
	assert_non_null(realpath("/proc/self/exe", self));
	*strrchr(self, '/') = '\0';
	assert_int_equal(stat(dir, &sd), 0);
	assert_int_equal(stat(self, &sb), 0);
	assert_int_equal(sd.st_dev, sb.st_dev);
}

/* True if base holds an entry whose name starts with prefix. */
static bool has_entry(const char *base, const char *prefix)
{
	DIR *d = opendir(base);
	struct dirent *e;
	bool found = false;

	assert_non_null(d);
	while (!found && (e = readdir(d)))
		found = !strncmp(e->d_name, prefix, strlen(prefix));
	closedir(d);
	return found;
}

static void test_scratch_dir_too_long_for_the_buffer_is_refused(void **state)
{
	char small[24], base[PATH_MAX + 8], prefix[64];

	(void)state;
	scratch_base(base, sizeof(base));
	snprintf(prefix, sizeof(prefix), "helpers-long-%d", (int)getpid());
	memset(small, 'x', sizeof(small));
	assert_int_equal(th_scratch_dir(small, sizeof(small), prefix),
			 -ENAMETOOLONG);
	assert_string_equal(small, "");
	/* and nothing was made: not even a truncated name */
	assert_false(has_entry(base, prefix));
}

static void test_socket_path_fits_sun_path(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[TH_DIR_LEN], deep[TH_DIR_LEN], sock[TH_SOCK_LEN];
	size_t n;
	int fd;

	(void)state;
	th_scratch(dir, sizeof(dir), "helpers");
	th_remove_at_teardown(dir);
	/* a short directory: the socket goes into it */
	th_socket_path(sock, sizeof(sock), "/run/x", "s.sock");
	assert_string_equal(sock, "/run/x/s.sock");
	/* a directory too deep for sun_path: a short one of its own */
	n = (size_t)snprintf(deep, sizeof(deep), "%s/", dir);
	while (n < sizeof(sa.sun_path) + 20)
		deep[n++] = 'd';
	deep[n] = '\0';
	assert_int_equal(mkdir(deep, 0700), 0);
	th_remove_at_teardown(deep);
	th_socket_path(sock, sizeof(sock), deep, "s.sock");
	assert_true(strlen(sock) < sizeof(sa.sun_path));
	assert_non_null(strstr(sock, "/s.sock"));
	th_remove_at_teardown(sock);
	/* a name a socket can be bound to */
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	/* teardown takes the socket and its short directory away */
	th_teardown(state);
	assert_int_equal(access(sock, F_OK), -1);
	*strrchr(sock, '/') = '\0';
	assert_int_equal(access(sock, F_OK), -1);
	assert_int_equal(access(dir, F_OK), -1);
}

/* th_tmpfile: a file that reads back what was written, with no name in
 * any directory (a memfd), so that nothing is left under /tmp. */
static void test_tmpfile_is_a_read_write_file_without_a_name(void **state)
{
	char link[PATH_MAX], proc[64], buf[16];
	FILE *f = th_tmpfile();
	ssize_t n;

	(void)state;
	fputs("written", f);
	rewind(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_string_equal(buf, "written");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fileno(f));
	n = readlink(proc, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	if (strncmp(link, "/memfd:", 7))
		fail_msg("th_tmpfile is %s, not a memfd", link);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_scratch_dir_is_fresh_private_and_beside_the_binary),
		cmocka_unit_test(
			test_scratch_dir_is_on_the_build_trees_file_system),
		cmocka_unit_test(
			test_scratch_dir_too_long_for_the_buffer_is_refused),
		cmocka_unit_test(test_socket_path_fits_sun_path),
		cmocka_unit_test(
			test_tmpfile_is_a_read_write_file_without_a_name),
	};

	return th_run_tests(tests);
}
