/*
 * version.h - what build of darvaza this is, for --version, the
 * darvaza_build_info metric and the log line at start.
 *
 * The version comes from the VERSION file at the top of the tree and the
 * commit from `git rev-parse --short HEAD` when the tree is a git checkout
 * ("unknown" otherwise, as in a source tarball); the Makefile passes both
 * as -D definitions to version.c only, so a new commit recompiles one file.
 */
#ifndef DZ_VERSION_H
#define DZ_VERSION_H

#include <stdio.h>

/* "0.9.0": the release this tree is (VERSION). */
const char *dz_version(void);

/* The short commit id of the build, or "unknown". */
const char *dz_version_commit(void);

/* --version of every program: "NAME 0.9.0 (commit abc1234)" and a line
 * naming the OpenSSL and nghttp2 the binary runs with (the shared
 * libraries loaded, which an operator upgrades apart from darvaza).
 * Writes to `to`; any thread. */
void dz_version_print(FILE *to, const char *program);

#endif
