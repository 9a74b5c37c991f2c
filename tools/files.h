/* SPDX-License-Identifier: MIT */
/*
 * files.h - whole-file writes for the command's outputs (files.c).
 */
#ifndef MV_TOOLS_FILES_H
#define MV_TOOLS_FILES_H

#include <stddef.h>
#include <sys/types.h>

/* All len bytes of text to fd (retrying short writes and EINTR): 0 or
 * -errno. */
int file_write_all(int fd, const char *text, size_t len);
/*
 * text becomes the file path, whole or not at all: written to a temporary
 * file named prefix-XXXXXX in dir (the directory of path), given mode,
 * synced, then renamed over path.  On any failure the temporary file is
 * removed and path is as it was.  0 or -errno.
 */
int file_replace(const char *dir, const char *path, const char *prefix,
		 mode_t mode, const char *text, size_t len);

#endif /* MV_TOOLS_FILES_H */
