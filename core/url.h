/*
 * url - the rules a webhook URL must meet (docs/report.md, "Webhook"), checked as the
 * campaign is loaded, before any request.
 *
 * Owns: url_check_webhook(): printable ASCII without spaces, https:// (or http:// to
 * a loopback host), a host right after the "//", no '\\', no user name or password,
 * parsed by libcurl's URL API as the request will parse it.
 * Does not own: making the request (notify), nor where a reason is placed (the
 * campaign loader). It sits below both, so that the loader does not depend on the
 * module that depends on it.
 */
#ifndef BLAST_URL_H
#define BLAST_URL_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Check url. *loopback tells whether its host is loopback (the request then
 * bypasses any proxy). Returns 0; BLAST_EINVAL with the reason in why (size bytes;
 * it never quotes the URL, whose query may hold a secret); or BLAST_ENOMEM.
 */
int url_check_webhook(const char *url, bool *loopback, char *why, size_t size);

#endif
