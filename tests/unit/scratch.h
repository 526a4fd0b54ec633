/*
 * scratch - a fresh directory under /tmp for the running unit test, shared by the
 * test files. Criterion runs each test in its own process, so one directory at a
 * time is enough. Tests that make one name scratch_remove as their .fini, so it
 * goes away even when an assertion fails half-way.
 */
#ifndef BLAST_TESTS_SCRATCH_H
#define BLAST_TESTS_SCRATCH_H

#include <stddef.h>

/* The directory made by scratch_make(), or "" when there is none. */
extern char scratch_dir[64];

/* Make a fresh directory (failing the test when it cannot) and return its path. */
const char *scratch_make(void);

/* Remove the directory and everything in it; nothing when there is none. */
void scratch_remove(void);

/* Write text to dir/name (failing the test when it cannot); the path goes to out. */
void scratch_write_file(const char *dir, const char *name, const char *text, char *out,
                        size_t size);

#endif
