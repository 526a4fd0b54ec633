/*
 * fuzz - what the harnesses of tests/fuzz/ share: the libFuzzer entry points, and
 * an input handed to a module that reads a path.
 *
 * Each fuzz_NAME.c defines LLVMFuzzerTestOneInput (and maybe LLVMFuzzerInitialize).
 * `make fuzz` links it with libFuzzer (clang); `make test` links it with replay.c,
 * which feeds it every committed input once (gcc, AddressSanitizer and UBSan).
 * A harness checks what must hold whatever the input, and calls fuzz_fail() when it
 * does not: a finding, like a crash.
 */
#ifndef BLAST_FUZZ_H
#define BLAST_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Report a broken invariant on stderr and abort, so both drivers count a finding. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * The input as a file that exists only in memory (memfd), for modules that take a
 * path: its path ("/proc/self/fd/N") goes to path. Returns the fd to close, or -1.
 */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t pathsize);

#endif
