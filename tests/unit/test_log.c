/*
 * test_log - leveled messages reach the sink formatted; messages above the
 * maximum level, and logs without a sink, are dropped.
 */
#include "../../core/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

struct capture {
    int calls;
    enum log_level level;
    char text[4096];
};

static void sink(void *arg, enum log_level level, const char *message)
{
    struct capture *c = arg;

    c->calls++;
    c->level = level;
    snprintf(c->text, sizeof c->text, "%s", message);
}

Test(log, sink_receives_the_formatted_text)
{
    struct capture cap = {0};
    struct log lg = {sink, &cap, LOG_LEVEL_INFO};

    log_msg(&lg, LOG_LEVEL_INFO, "%s: sent %d of %zu (%.1f%%)", "relay-a", 3, (size_t)4, 75.0);
    cr_assert_eq(cap.calls, 1);
    cr_assert_eq(cap.level, LOG_LEVEL_INFO);
    cr_assert_str_eq(cap.text, "relay-a: sent 3 of 4 (75.0%)");
}

Test(log, messages_above_the_max_level_are_dropped)
{
    struct capture cap = {0};
    struct log lg = {sink, &cap, LOG_LEVEL_WARN};

    log_msg(&lg, LOG_LEVEL_INFO, "info");
    log_msg(&lg, LOG_LEVEL_DEBUG, "debug");
    log_msg(&lg, LOG_LEVEL_TRACE, "trace");
    cr_assert_eq(cap.calls, 0);
    log_msg(&lg, LOG_LEVEL_WARN, "warn");
    cr_assert_eq(cap.calls, 1);
    cr_assert_str_eq(cap.text, "warn");
    log_msg(&lg, LOG_LEVEL_ERROR, "error");
    cr_assert_eq(cap.calls, 2);
    cr_assert_eq(cap.level, LOG_LEVEL_ERROR);
    cr_assert_str_eq(cap.text, "error");
}

Test(log, trace_level_delivers_everything)
{
    struct capture cap = {0};
    struct log lg = {sink, &cap, LOG_LEVEL_TRACE};
    int level;

    for (level = LOG_LEVEL_ERROR; level <= LOG_LEVEL_TRACE; level++)
        log_msg(&lg, (enum log_level)level, "level %d", level);
    cr_assert_eq(cap.calls, 5);
    cr_assert_str_eq(cap.text, "level 4");
}

Test(log, enabled_says_what_would_be_delivered)
{
    struct capture cap = {0};
    struct log lg = {sink, &cap, LOG_LEVEL_INFO};
    struct log nosink = {NULL, NULL, LOG_LEVEL_TRACE};

    cr_assert(log_enabled(&lg, LOG_LEVEL_ERROR));
    cr_assert(log_enabled(&lg, LOG_LEVEL_INFO));
    cr_assert_not(log_enabled(&lg, LOG_LEVEL_DEBUG));
    cr_assert_not(log_enabled(NULL, LOG_LEVEL_ERROR));
    cr_assert_not(log_enabled(&nosink, LOG_LEVEL_ERROR));
}

Test(log, null_log_and_missing_sink_discard)
{
    struct log nosink = {NULL, NULL, LOG_LEVEL_TRACE};

    log_msg(NULL, LOG_LEVEL_ERROR, "nobody listens: %s", "fine");
    log_msg(&nosink, LOG_LEVEL_ERROR, "nobody listens: %s", "fine");
}

Test(log, long_messages_are_truncated_not_overflowed)
{
    struct capture cap = {0};
    struct log lg = {sink, &cap, LOG_LEVEL_INFO};
    char big[3000];

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_msg(&lg, LOG_LEVEL_INFO, "%s", big);
    cr_assert_eq(cap.calls, 1);
    cr_assert_gt(strlen(cap.text), 1000);
    cr_assert_leq(strlen(cap.text), sizeof big - 1);
    cr_assert_eq(strspn(cap.text, "x"), strlen(cap.text));
}

Test(log, level_names)
{
    cr_assert_str_eq(log_level_name(LOG_LEVEL_ERROR), "error");
    cr_assert_str_eq(log_level_name(LOG_LEVEL_WARN), "warning");
    cr_assert_str_eq(log_level_name(LOG_LEVEL_INFO), "info");
    cr_assert_str_eq(log_level_name(LOG_LEVEL_DEBUG), "debug");
    cr_assert_str_eq(log_level_name(LOG_LEVEL_TRACE), "trace");
}
