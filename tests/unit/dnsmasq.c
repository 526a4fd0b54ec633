/*
 * dnsmasq - a real DNS server for the unit tests; see dnsmasq.h.
 */
#include "dnsmasq.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A port free for both UDP and TCP on 127.0.0.1, as far as one can tell. */
int dnsmasq_free_port(void)
{
    int tries;

    for (tries = 0; tries < 50; tries++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), port = -1;

        cr_assert(u >= 0 && t >= 0);
        if (bind(u, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(u, (struct sockaddr *)&a, &len) == 0 &&
            bind(t, (struct sockaddr *)&a, sizeof a) == 0)
            port = ntohs(a.sin_port);
        close(u);
        close(t);
        if (port > 0)
            return port;
    }
    cr_assert_fail("no free port on 127.0.0.1");
    return -1;
}

/* Whether something accepts TCP connections on 127.0.0.1:port (dnsmasq listens on both). */
static bool listening(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

/*
 * Start dnsmasq with args (NULL-terminated) on a free port; its pid into *pid, the port
 * returned. A port taken between the choice and the start makes it exit: another one
 * is tried.
 */
int dnsmasq_start(const char *const *extra, pid_t *pid)
{
    int attempt;

    for (attempt = 0; attempt < 5; attempt++) {
        char portarg[32];
        const char *argv[1024];
        size_t n = 0, i;
        int port = dnsmasq_free_port(), status, waited;
        pid_t p;

        snprintf(portarg, sizeof portarg, "--port=%d", port);
        argv[n++] = DNSMASQ;
        argv[n++] = "--no-daemon";
        argv[n++] = "--conf-file=/dev/null";
        argv[n++] = "--no-resolv";
        argv[n++] = "--no-hosts";
        argv[n++] = "--pid-file=";
        argv[n++] = "--log-facility=-";
        argv[n++] = "--listen-address=127.0.0.1";
        argv[n++] = "--bind-interfaces";
        argv[n++] = portarg;
        for (i = 0; extra[i] != NULL; i++) {
            cr_assert(n < sizeof argv / sizeof *argv - 1);
            argv[n++] = extra[i];
        }
        argv[n] = NULL;
        p = fork();
        cr_assert(p >= 0, "fork: %s", strerror(errno));
        if (p == 0) {
            int null = open("/dev/null", O_RDWR);

            /* gone with the test's process, even one that crashed */
            prctl(PR_SET_PDEATHSIG, SIGTERM);

            if (null >= 0) {
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
            }
            execv(DNSMASQ, (char *const *)argv);
            _exit(127);
        }
        for (waited = 0; waited < 500; waited++) {
            if (listening(port)) {
                *pid = p;
                return port;
            }
            if (waitpid(p, &status, WNOHANG) == p)
                break; /* it exited: the port was taken, most likely */
            usleep(10000);
        }
        if (waited == 500) {
            kill(p, SIGKILL);
            waitpid(p, &status, 0);
        }
    }
    cr_assert_fail("dnsmasq did not start");
    return -1;
}

void dnsmasq_stop(pid_t *pid)
{
    int status;

    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    waitpid(*pid, &status, 0);
    *pid = 0;
}

/* A UDP socket on 127.0.0.1 that is bound (so no ICMP "port unreachable") and never read. */
int dnsmasq_silent_socket(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}
