/*
 * test_buf - the growable byte buffer: appends, printf, consume, reset, steal,
 * NUL termination after every append, growth that keeps the content.
 */
#include "../../core/buf.h"
#include "../../core/error.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(buf, init_is_empty_and_allocates_nothing)
{
    struct buf b;
    struct buf s = BUF_INIT;

    memset(&b, 0x5A, sizeof b);
    buf_init(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    cr_assert_null(s.data);
    cr_assert_eq(s.len, 0);
    cr_assert_eq(s.cap, 0);
}

Test(buf, append_puts_putc_concatenate_and_terminate)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(buf_append(&b, "abc", 3), 0);
    cr_assert_eq(b.len, 3);
    cr_assert_eq(b.data[3], '\0');
    cr_assert_eq(buf_puts(&b, "def"), 0);
    cr_assert_eq(buf_putc(&b, '!'), 0);
    cr_assert_eq(b.len, 7);
    cr_assert_str_eq(b.data, "abcdef!");
    cr_assert_geq(b.cap, b.len + 1);
    buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
}

Test(buf, empty_append_still_terminates)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(buf_append(&b, "", 0), 0);
    cr_assert_not_null(b.data, "after any append data is a C string");
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(b.len, 0);
    buf_free(&b);
}

Test(buf, binary_content_keeps_embedded_nuls)
{
    struct buf b = BUF_INIT;
    static const char bin[] = {'a', '\0', 'b', '\0', 'c'};

    cr_assert_eq(buf_append(&b, bin, sizeof bin), 0);
    cr_assert_eq(b.len, sizeof bin);
    cr_assert_eq(memcmp(b.data, bin, sizeof bin), 0);
    cr_assert_eq(b.data[sizeof bin], '\0');
    buf_free(&b);
}

Test(buf, printf_appends_formatted_text)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(buf_puts(&b, "MAIL FROM:"), 0);
    cr_assert_eq(buf_printf(&b, "<%s> SIZE=%zu", "a@b.example", (size_t)4096), 0);
    cr_assert_str_eq(b.data, "MAIL FROM:<a@b.example> SIZE=4096");
    cr_assert_eq(b.len, strlen("MAIL FROM:<a@b.example> SIZE=4096"));
    cr_assert_eq(buf_printf(&b, "%s", ""), 0);
    cr_assert_eq(b.len, strlen("MAIL FROM:<a@b.example> SIZE=4096"));
    buf_free(&b);
}

Test(buf, printf_of_empty_string_on_empty_buffer_terminates)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(buf_printf(&b, "%s", ""), 0);
    cr_assert_not_null(b.data);
    cr_assert_str_eq(b.data, "");
    buf_free(&b);
}

Test(buf, printf_larger_than_the_capacity_grows)
{
    struct buf b = BUF_INIT;
    char big[5000];

    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(buf_puts(&b, "x"), 0);
    cr_assert_eq(buf_printf(&b, "[%s]", big), 0);
    cr_assert_eq(b.len, 1 + 1 + strlen(big) + 1);
    cr_assert_eq(b.data[0], 'x');
    cr_assert_eq(b.data[1], '[');
    cr_assert_eq(b.data[b.len - 1], ']');
    cr_assert_eq(b.data[b.len], '\0');
    cr_assert_eq(strspn(b.data + 2, "q"), strlen(big));
    buf_free(&b);
}

Test(buf, growth_keeps_every_byte)
{
    struct buf b = BUF_INIT;
    size_t i;
    char c;

    for (i = 0; i < 1000000; i++) {
        c = (char)('a' + i % 26);
        cr_assert_eq(buf_putc(&b, c), 0);
    }
    cr_assert_eq(b.len, 1000000);
    cr_assert_geq(b.cap, b.len + 1);
    for (i = 0; i < b.len; i++)
        if (b.data[i] != (char)('a' + i % 26))
            cr_assert_fail("byte %zu changed while growing", i);
    cr_assert_eq(b.data[b.len], '\0');
    buf_free(&b);
}

Test(buf, reserve_makes_room_without_changing_content)
{
    struct buf b = BUF_INIT;
    char *before;

    cr_assert_eq(buf_puts(&b, "keep"), 0);
    cr_assert_eq(buf_reserve(&b, 10000), 0);
    cr_assert_geq(b.cap, 4 + 10000 + 1);
    cr_assert_str_eq(b.data, "keep");
    before = b.data;
    cr_assert_eq(buf_append(&b, "0123456789", 10), 0);
    cr_assert_eq(b.data, before, "no reallocation within reserved room");
    cr_assert_str_eq(b.data, "keep0123456789");
    buf_free(&b);
}

Test(buf, reserve_refuses_absurd_sizes)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(buf_puts(&b, "abc"), 0);
    cr_assert_eq(buf_reserve(&b, (size_t)-1), BLAST_ENOMEM);
    cr_assert_eq(b.len, 3, "a failed grow leaves the buffer unchanged");
    cr_assert_str_eq(b.data, "abc");
    buf_free(&b);
}

Test(buf, consume_drops_the_front)
{
    struct buf b = BUF_INIT;

    cr_assert_eq(buf_puts(&b, "250 OK\r\n354 go\r\n"), 0);
    buf_consume(&b, 8);
    cr_assert_eq(b.len, 8);
    cr_assert_str_eq(b.data, "354 go\r\n");
    buf_consume(&b, 0);
    cr_assert_str_eq(b.data, "354 go\r\n");
    buf_consume(&b, b.len);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    buf_free(&b);
}

Test(buf, reset_empties_but_keeps_memory)
{
    struct buf b = BUF_INIT;
    char *data;
    size_t cap;

    cr_assert_eq(buf_puts(&b, "some message bytes"), 0);
    data = b.data;
    cap = b.cap;
    buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.data, data);
    cr_assert_eq(b.cap, cap);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(buf_puts(&b, "next"), 0);
    cr_assert_eq(b.data, data, "a reused buffer does not allocate again");
    cr_assert_str_eq(b.data, "next");
    buf_free(&b);

    buf_reset(&b); /* on a never-used buffer */
    cr_assert_eq(b.len, 0);
}

Test(buf, steal_hands_over_contents_and_empties)
{
    struct buf b = BUF_INIT;
    char *s;

    cr_assert_eq(buf_puts(&b, "hello"), 0);
    s = buf_steal(&b);
    cr_assert_str_eq(s, "hello");
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    free(s);

    cr_assert_eq(buf_puts(&b, "again"), 0, "the buffer is usable after a steal");
    cr_assert_str_eq(b.data, "again");
    buf_free(&b);
}

Test(buf, steal_of_empty_buffer_returns_empty_string)
{
    struct buf b = BUF_INIT;
    char *s = buf_steal(&b);

    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(buf, free_is_null_safe_and_repeatable)
{
    struct buf b = BUF_INIT;

    buf_free(NULL);
    buf_free(&b);
    cr_assert_eq(buf_puts(&b, "x"), 0);
    buf_free(&b);
    buf_free(&b);
    cr_assert_null(b.data);
}
