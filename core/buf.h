/*
 * buf - a growable byte buffer, the scratch space of the per-message hot path.
 *
 * A struct buf is owned by whoever declares it: buf_init() makes it empty without
 * allocating, buf_free() releases its memory. buf_reset() empties it but keeps the
 * memory, so a buffer reused for every message stops allocating once it has grown
 * to the largest message. data is always NUL-terminated when len > 0 or after any
 * append, so text can be read as a C string; binary content may contain NULs.
 *
 * Every function that grows the buffer returns 0 or BLAST_ENOMEM; on failure the
 * buffer is unchanged.
 */
#ifndef BLAST_BUF_H
#define BLAST_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);

/* Make room for at least extra more bytes (plus the terminating NUL). */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Drop the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

struct blast_error;

/*
 * Append the whole file at path to b. Errors: BLAST_EIO (err names the file and
 * says why), BLAST_ENOMEM.
 */
int buf_read_file(struct buf *b, const char *path, struct blast_error *err);

/*
 * Hand the contents over to the caller, who frees them with free(); the buffer is
 * left empty. Returns "" duplicated when empty, NULL only when out of memory.
 */
char *buf_steal(struct buf *b);

#endif
