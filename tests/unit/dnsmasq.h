/*
 * dnsmasq - a real DNS server for the unit tests of core/dns and core/spf: Debian's
 * dnsmasq (dnsmasq-base) started on a free port of 127.0.0.1 with the records a test
 * gives it on its command line, forwarding nothing unless told; and a UDP socket that
 * never answers, for timeouts. Only loopback is ever asked.
 */
#ifndef BLAST_TEST_DNSMASQ_H
#define BLAST_TEST_DNSMASQ_H

#include <sys/types.h>

#define DNSMASQ "/usr/sbin/dnsmasq"

/* A port free for both UDP and TCP on 127.0.0.1, as far as one can tell. */
int dnsmasq_free_port(void);

/*
 * Start dnsmasq with the options extra (NULL-terminated) on a free port; its pid
 * into *pid, the port returned (the test fails when it cannot start). It ends with
 * the test's process, even one that crashed.
 */
int dnsmasq_start(const char *const *extra, pid_t *pid);

/* Stop it (SIGTERM, waited for); *pid 0 after. Accepts *pid 0. */
void dnsmasq_stop(pid_t *pid);

/* A bound UDP socket on 127.0.0.1 nobody reads: its fd, its port into *port. */
int dnsmasq_silent_socket(int *port);

#endif
