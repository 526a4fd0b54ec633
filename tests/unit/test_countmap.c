/*
 * test_countmap - counts by status for many names: lookups across index growth, the
 * order of first counting, names longer than a block, and the summary's JSON form.
 */
#include "../../core/countmap.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(countmap, counts_and_keeps_the_first_order)
{
    struct countmap *m = countmap_new();
    const struct countmap_entry *e;

    cr_assert_not_null(m);
    cr_assert_eq(countmap_add(m, "gmail.com", OUTCOME_DELIVERED, 1), 0);
    cr_assert_eq(countmap_add(m, "yahoo.com", OUTCOME_FAILED, 2), 0);
    cr_assert_eq(countmap_add(m, "gmail.com", OUTCOME_DEFERRED, 1), 0);
    cr_assert_eq(countmap_add(m, "gmail.com", COUNTMAP_OTHER, 1), 0);
    cr_assert_eq(countmap_size(m), 2);
    e = countmap_get(m, "gmail.com");
    cr_assert_not_null(e);
    cr_assert_eq(e->total, 3);
    cr_assert_eq(e->counts[OUTCOME_DELIVERED], 1);
    cr_assert_eq(e->counts[OUTCOME_DEFERRED], 1);
    cr_assert_eq(e->counts[COUNTMAP_OTHER], 1);
    cr_assert_str_eq(countmap_at(m, 0)->name, "gmail.com");
    cr_assert_str_eq(countmap_at(m, 1)->name, "yahoo.com");
    cr_assert_null(countmap_at(m, 2));
    cr_assert_null(countmap_get(m, "outlook.com"));
    countmap_free(m);
}

/* 100,000 names: every one found with its own counts after the index grew many times. */
Test(countmap, many_names)
{
    struct countmap *m = countmap_new();
    char name[64];
    size_t i;

    cr_assert_not_null(m);
    for (i = 0; i < 100000; i++) {
        snprintf(name, sizeof name, "d%06zu.example", i);
        cr_assert_eq(countmap_add(m, name, OUTCOME_DELIVERED, (uint32_t)(i % 7 + 1)), 0);
    }
    for (i = 0; i < 100000; i += 3) {
        snprintf(name, sizeof name, "d%06zu.example", i);
        cr_assert_eq(countmap_add(m, name, OUTCOME_FAILED, 1), 0);
    }
    cr_assert_eq(countmap_size(m), 100000);
    for (i = 0; i < 100000; i++) {
        const struct countmap_entry *e;
        snprintf(name, sizeof name, "d%06zu.example", i);
        e = countmap_get(m, name);
        cr_assert_not_null(e, "%s", name);
        cr_assert_eq(e->counts[OUTCOME_DELIVERED], i % 7 + 1);
        cr_assert_eq(e->counts[OUTCOME_FAILED], i % 3 == 0 ? 1 : 0);
        cr_assert_str_eq(countmap_at(m, i)->name, name);
    }
    countmap_free(m);
}

Test(countmap, a_name_longer_than_a_block)
{
    struct countmap *m = countmap_new();
    size_t len = 200 * 1024;
    char *big = malloc(len + 1);

    cr_assert_not_null(m);
    cr_assert_not_null(big);
    memset(big, 'x', len);
    big[len] = '\0';
    cr_assert_eq(countmap_add(m, "a.example", OUTCOME_DELIVERED, 1), 0);
    cr_assert_eq(countmap_add(m, big, OUTCOME_FAILED, 1), 0);
    cr_assert_eq(countmap_add(m, "b.example", OUTCOME_DELIVERED, 1), 0);
    cr_assert_str_eq(countmap_get(m, big)->name, big);
    cr_assert_str_eq(countmap_get(m, "a.example")->name, "a.example");
    cr_assert_str_eq(countmap_get(m, "b.example")->name, "b.example");
    free(big);
    countmap_free(m);
}

Test(countmap, json_form)
{
    struct countmap *m = countmap_new();
    json_t *j;
    char *text;

    cr_assert_not_null(m);
    cr_assert_eq(countmap_add(m, "relay-a", OUTCOME_DELIVERED, 5), 0);
    cr_assert_eq(countmap_add(m, "relay-a", OUTCOME_UNKNOWN, 1), 0);
    cr_assert_eq(countmap_add(m, "relay-b", COUNTMAP_OTHER, 2), 0);
    cr_assert_eq(countmap_add(m, "relay \"c\"", OUTCOME_DEFERRED, 1), 0);
    j = countmap_to_json(m);
    cr_assert_not_null(j);
    text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_assert_str_eq(text, "{\"relay-a\":{\"delivered\":5,\"unknown\":1},\"relay-b\":{\"other\":2},"
                           "\"relay \\\"c\\\"\":{\"deferred\":1}}");
    free(text);
    json_decref(j);
    countmap_free(m);
    countmap_free(NULL);
}
