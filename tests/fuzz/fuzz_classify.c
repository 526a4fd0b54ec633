/*
 * fuzz_classify - the bounce classifier (core/classify.h) on fuzzed text: what a
 * remote mail system puts in a DSN's Status, Action and Diagnostic-Code fields.
 *
 * The input is split at its first two NUL bytes into status, action and diagnostic
 * (absent parts are NULL).
 *
 * Checks: every verdict has a class in range and a rule; a status code found in a
 * text is "D.D{1,3}.D{1,3}" with D 2, 4 or 5, and is a part of that text.
 */
#include "../../core/classify.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void check_status(const char *text)
{
    char code[16];
    size_t i, dots = 0;

    if (text == NULL || classify_find_status(text, code, sizeof code) < 0)
        return;
    if (strstr(text, code) == NULL)
        fuzz_fail("status '%s' is not in the text", code);
    if (code[0] != '2' && code[0] != '4' && code[0] != '5')
        fuzz_fail("status '%s' of class %c", code, code[0]);
    for (i = 1; code[i] != '\0'; i++) {
        if (code[i] == '.')
            dots++;
        else if (code[i] < '0' || code[i] > '9')
            fuzz_fail("status '%s' holds '%c'", code, code[i]);
    }
    if (dots != 2 || strlen(code) > 9)
        fuzz_fail("status '%s' is not D.D.D", code);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *parts[3] = {NULL, NULL, NULL}, *p, *end;
    struct bounce_verdict v;
    size_t n = 0;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    end = text + size;
    for (p = text; n < 3 && p <= end; n++) {
        parts[n] = p;
        p += strlen(p) + 1;
    }
    classify_dsn(parts[0], parts[1], parts[2], &v);
    if (v.class < 0 || v.class >= BOUNCE_CLASS_COUNT || v.rule == NULL || v.rule[0] == '\0')
        fuzz_fail("a verdict without a class or a rule");
    check_status(parts[0]);
    check_status(parts[2]);
    free(text);
    return 0;
}
