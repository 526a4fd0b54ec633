/*
 * test_text - UTF-8 validation (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF, no truncated sequences), edit distance and the
 * "did you mean" choice.
 */
#include "../../core/text.h"

#include <criterion/criterion.h>
#include <string.h>

static bool valid(const char *s)
{
    return text_utf8_valid(s, strlen(s));
}

Test(text, ascii_and_empty_are_valid)
{
    cr_assert(valid(""));
    cr_assert(valid("plain ASCII, with punctuation: !~\t\r\n"));
    cr_assert(text_utf8_valid("a\0b", 3), "NUL is U+0000, valid UTF-8");
}

Test(text, valid_multibyte_sequences)
{
    cr_assert(valid("\xc2\x80"), "U+0080, smallest 2-byte");
    cr_assert(valid("caf\xc3\xa9"), "U+00E9");
    cr_assert(valid("\xdf\xbf"), "U+07FF, largest 2-byte");
    cr_assert(valid("\xe0\xa0\x80"), "U+0800, smallest 3-byte");
    cr_assert(valid("\xe2\x82\xac"), "U+20AC euro sign");
    cr_assert(valid("\xed\x9f\xbf"), "U+D7FF, just below the surrogates");
    cr_assert(valid("\xee\x80\x80"), "U+E000, just above the surrogates");
    cr_assert(valid("\xef\xbf\xbf"), "U+FFFF");
    cr_assert(valid("\xf0\x90\x80\x80"), "U+10000, smallest 4-byte");
    cr_assert(valid("\xf0\x9f\x98\x80"), "U+1F600 emoji");
    cr_assert(valid("\xf4\x8f\xbf\xbf"), "U+10FFFF, the last code point");
    cr_assert(valid("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84"),
              "пример.рф");
}

Test(text, overlong_forms_are_refused)
{
    cr_assert_not(valid("\xc0\x80"), "overlong NUL");
    cr_assert_not(valid("\xc1\xbf"), "overlong U+007F");
    cr_assert_not(valid("\xe0\x80\x80"), "overlong 3-byte NUL");
    cr_assert_not(valid("\xe0\x9f\xbf"), "overlong U+07FF");
    cr_assert_not(valid("\xf0\x80\x80\x80"), "overlong 4-byte NUL");
    cr_assert_not(valid("\xf0\x8f\xbf\xbf"), "overlong U+FFFF");
    cr_assert_not(valid("\xc0\xaf"), "overlong '/'");
}

Test(text, surrogates_are_refused)
{
    cr_assert_not(valid("\xed\xa0\x80"), "U+D800");
    cr_assert_not(valid("\xed\xaf\xbf"), "U+DBFF");
    cr_assert_not(valid("\xed\xb0\x80"), "U+DC00");
    cr_assert_not(valid("\xed\xbf\xbf"), "U+DFFF");
    cr_assert_not(valid("\xed\xa0\xbd\xed\xb8\x80"), "CESU-8 surrogate pair");
}

Test(text, above_u10ffff_is_refused)
{
    cr_assert_not(valid("\xf4\x90\x80\x80"), "U+110000");
    cr_assert_not(valid("\xf5\x80\x80\x80"));
    cr_assert_not(valid("\xf7\xbf\xbf\xbf"));
    cr_assert_not(valid("\xf8\x88\x80\x80\x80"), "5-byte form");
    cr_assert_not(valid("\xfc\x84\x80\x80\x80\x80"), "6-byte form");
    cr_assert_not(valid("\xfe"));
    cr_assert_not(valid("\xff"));
}

Test(text, truncated_sequences_are_refused)
{
    cr_assert_not(valid("\xc3"));
    cr_assert_not(valid("caf\xc3"));
    cr_assert_not(valid("\xe2\x82"));
    cr_assert_not(valid("\xf0\x9f\x98"));
    cr_assert_not(valid("\xe2\x82x"), "continuation replaced by ASCII");
    cr_assert_not(valid("\xc3\xc3\xa9"), "lead byte where a continuation belongs");
    /* the length decides, not a NUL: "é" cut after its first byte */
    cr_assert_not(text_utf8_valid("\xc3\xa9", 1));
    cr_assert(text_utf8_valid("\xc3\xa9zzz", 2));
}

Test(text, stray_continuation_bytes_are_refused)
{
    cr_assert_not(valid("\x80"));
    cr_assert_not(valid("a\xbf"));
    cr_assert_not(valid("Gr\xe9"
                        "ce"),
                  "Latin-1 text is not UTF-8");
}

Test(text, edit_distance)
{
    cr_assert_eq(text_edit_distance("", ""), 0);
    cr_assert_eq(text_edit_distance("from", "from"), 0);
    cr_assert_eq(text_edit_distance("", "abc"), 3);
    cr_assert_eq(text_edit_distance("abc", ""), 3);
    cr_assert_eq(text_edit_distance("kitten", "sitting"), 3);
    cr_assert_eq(text_edit_distance("form", "from"), 2);
    cr_assert_eq(text_edit_distance("prot", "port"), 2);
    cr_assert_eq(text_edit_distance("hots", "host"), 2);
    cr_assert_eq(text_edit_distance("recipents", "recipients"), 1);
    cr_assert_eq(text_edit_distance("flaw", "lawn"), 2);
    cr_assert_eq(text_edit_distance("abc", "xyz"), 3);
}

Test(text, edit_distance_is_symmetric)
{
    static const char *const words[] = {"",        "a",       "from",     "form",
                                        "subject", "sbuject", "reply_to", "replyto"};
    size_t i, j, n = sizeof words / sizeof words[0];

    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++)
            cr_assert_eq(text_edit_distance(words[i], words[j]),
                         text_edit_distance(words[j], words[i]), "'%s' / '%s'", words[i], words[j]);
}

Test(text, edit_distance_refuses_long_strings)
{
    char s62[63], s63[64];

    memset(s62, 'a', 62);
    s62[62] = '\0';
    memset(s63, 'a', 63);
    s63[63] = '\0';
    cr_assert_eq(text_edit_distance(s62, s62), 0);
    cr_assert_eq(text_edit_distance(s62, ""), 62);
    cr_assert_eq(text_edit_distance(s63, "a"), (size_t)-1);
    cr_assert_eq(text_edit_distance("a", s63), (size_t)-1);
}

Test(text, nearest_finds_the_likely_typo)
{
    static const char *const keys[] = {"name",       "from", "envelope_from", "reply_to", "subject",
                                       "recipients", "body", "relays",        "report",   NULL};

    cr_assert_str_eq(text_nearest("form", keys), "from");
    cr_assert_str_eq(text_nearest("subjet", keys), "subject");
    cr_assert_str_eq(text_nearest("recipents", keys), "recipients");
    cr_assert_str_eq(text_nearest("relay", keys), "relays");
    cr_assert_str_eq(text_nearest("replyto", keys), "reply_to");
    cr_assert_str_eq(text_nearest("name", keys), "name");
}

Test(text, nearest_gives_up_when_nothing_is_close)
{
    static const char *const keys[] = {"name", "from", "subject", NULL};
    static const char *const none[] = {NULL};

    cr_assert_null(text_nearest("attachments", keys));
    cr_assert_null(text_nearest("zzzzzz", keys));
    cr_assert_null(text_nearest("from", none));
    cr_assert_null(text_nearest("from", NULL));
}

Test(text, nearest_threshold_grows_with_the_word)
{
    /* distance allowed: max(2, len/3 + 1) */
    static const char *const short_keys[] = {"abc", NULL};
    static const char *const long_keys[] = {"abcdefghijkl", NULL};

    cr_assert_str_eq(text_nearest("xyc", short_keys), "abc", "distance 2 <= 2");
    cr_assert_null(text_nearest("xyz", short_keys), "distance 3 > 2");
    /* 12 letters: limit 5 */
    cr_assert_str_eq(text_nearest("abcdefgVWXYZ", long_keys), "abcdefghijkl", "distance 5");
    cr_assert_null(text_nearest("abcdefUVWXYZ", long_keys), "distance 6");
}
