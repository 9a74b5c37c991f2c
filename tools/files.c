// SPDX-License-Identifier: MIT
/*
 * files.c - whole-file writes for the command's outputs (the run's JSON
 * report, the HTML report): a reader never finds a half-written file,
 * because the text goes to a temporary file beside the target, is synced,
 * and is renamed over it in one step.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

int file_write_all(int fd, const char *text, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

int file_replace(const char *dir, const char *path, const char *prefix,
		 mode_t mode, const char *text, size_t len)
{
	char *tmp;
	int fd, ret;

	if (asprintf(&tmp, "%s/%s-XXXXXX", dir, prefix) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		free(tmp);
		return ret;
	}
	ret = file_write_all(fd, text, len);
	if (!ret && (fchmod(fd, mode) || fsync(fd)))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	free(tmp);
	return ret;
}
