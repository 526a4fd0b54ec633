/*
 * render_bench - messages per second for rendering and MIME building on one core,
 * in process: load a campaign, then compose its rows over and over. When the
 * campaign has dkim:, every message is signed as blast send signs it.
 *
 * usage: render_bench CAMPAIGN.yml [MESSAGES]   (default 200000)
 * Prints messages per second, bytes per message and the peak RSS, so that "memory
 * stays flat" can be read off runs of different lengths.
 */
#include "../core/campaign.h"
#include "../core/compose.h"
#include "../core/dkim.h"
#include "../core/recipients.h"
#include "../core/screen.h"
#include "../core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void die(const struct blast_error *err)
{
    char text[2048];

    fprintf(stderr, "render_bench: %s\n", blast_error_format(err, text, sizeof text));
    exit(1);
}

int main(int argc, char **argv)
{
    struct campaign *c = NULL;
    struct recipients *list = NULL;
    struct screen *s = NULL;
    struct compose *cp = NULL;
    struct dkim *dk = NULL;
    struct blast_error err;
    struct recipients_options ro;
    struct recipients_row row;
    struct screen_result who;
    struct compose_result res;
    struct rusage ru;
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 200000, done = 0;
    size_t bytes = 0;
    int64_t t0, t1;
    int rc;

    if (argc < 2) {
        fprintf(stderr, "usage: render_bench CAMPAIGN.yml [MESSAGES]\n");
        return 2;
    }
    blast_error_clear(&err);
    screen_result_init(&who);
    compose_result_init(&res);
    if (campaign_load(argv[1], &c, &err) < 0)
        die(&err);
    memset(&ro, 0, sizeof ro);
    ro.delimiter = c->recipients.delimiter;
    if (recipients_open(c->recipients.path, &ro, &list, &err) < 0 ||
        screen_new(c, list, &s, &err) < 0 || compose_new(c, list, s, NULL, &cp, &err) < 0 ||
        dkim_new(c, NULL, NULL, &dk, &err) < 0)
        die(&err);
    compose_set_dkim(cp, dk);
    t0 = timeutil_mono_ms();
    while (done < n) {
        rc = recipients_next(list, &row, &err);
        if (rc < 0)
            die(&err);
        if (rc == 0) {
            if (recipients_rewind(list, &err) < 0 || screen_restart(s, &err) < 0)
                die(&err);
            continue;
        }
        if (screen_row(s, &row, &who, &err) < 0)
            die(&err);
        if (who.verdict != SCREEN_OK)
            continue;
        if (compose_row(cp, &row, &who.to, &res, &err) < 0)
            die(&err);
        bytes += res.message.len;
        done++;
    }
    t1 = timeutil_mono_ms();
    getrusage(RUSAGE_SELF, &ru);
    printf("%ld messages in %.2f s: %.0f messages/s, %zu bytes a message, peak RSS %ld KB\n", done,
           (double)(t1 - t0) / 1000.0, (double)done * 1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1),
           bytes / (size_t)(done > 0 ? done : 1), ru.ru_maxrss);
    screen_result_free(&who);
    compose_result_free(&res);
    compose_free(cp);
    dkim_free(dk);
    screen_free(s);
    recipients_close(list);
    campaign_free(c);
    return 0;
}
