/*
 * error - blast's one return convention and its error record.
 *
 * Every core function that can fail returns an int: 0 (BLAST_OK) on success, a
 * negative BLAST_E* code on failure. The human detail goes into a caller-provided
 * struct blast_error, like jansson's json_error_t: the source (a file name, a relay
 * name), a 1-based line and column when known, and the text. The first error
 * recorded wins, so a low-level cause is not overwritten by a vaguer caller.
 *
 * This module does not print: cmd/ formats the record for the terminal.
 */
#ifndef BLAST_ERROR_H
#define BLAST_ERROR_H

#include <stddef.h>

enum blast_rc {
    BLAST_OK = 0,
    BLAST_ENOMEM = -1,   /* out of memory */
    BLAST_EIO = -2,      /* reading or writing a file failed */
    BLAST_ESYNTAX = -3,  /* input does not parse (YAML, CSV, template) */
    BLAST_EINVAL = -4,   /* input parses but a value is not acceptable */
    BLAST_ECONNECT = -5, /* could not reach the server */
    BLAST_ETIMEOUT = -6, /* a deadline passed */
    BLAST_EPROTO = -7,   /* the server broke the protocol */
    BLAST_ETLS = -8,     /* TLS handshake or certificate verification failed */
    BLAST_EAUTH = -9,    /* the server refused our credentials */
    BLAST_EREPLY = -10,  /* the server answered with an error reply */
    BLAST_ECLOSED = -11, /* the peer closed the connection */
};

#define BLAST_ERROR_SOURCE_MAX 512
#define BLAST_ERROR_TEXT_MAX   1024

struct blast_error {
    int code;                            /* BLAST_E*, 0 while no error is set */
    char source[BLAST_ERROR_SOURCE_MAX]; /* file or relay name; "" when none */
    int line;                            /* 1-based; 0 when unknown */
    int column;                          /* 1-based; 0 when unknown */
    char text[BLAST_ERROR_TEXT_MAX];
};

/*
 * Where problems go when a caller wants every one of them rather than the first
 * (blast check). Functions that take a diag report each problem to it and go on
 * where they can; they still return an error code when there was any problem.
 */
struct blast_diag {
    void (*report)(void *arg, const struct blast_error *problem);
    void *arg;
};

/* A short constant description of a BLAST_E* code. */
const char *blast_strerror(int code);

/* Reset to "no error". Accepts NULL. */
void blast_error_clear(struct blast_error *err);

/*
 * Record an error unless one is already recorded (first error wins). source may
 * be NULL; line and column may be 0. Returns code, so callers can write
 * `return blast_error_set(err, BLAST_EINVAL, ...)`. err may be NULL.
 */
int blast_error_set(struct blast_error *err, int code, const char *source, int line, int column,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Like blast_error_set, but overwrites whatever was recorded before. */
int blast_error_replace(struct blast_error *err, int code, const char *source, int line, int column,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Format as "source:line:column: text" (parts that are unknown are left out) into
 * out, which holds size bytes. Returns out.
 */
const char *blast_error_format(const struct blast_error *err, char *out, size_t size);

#endif
