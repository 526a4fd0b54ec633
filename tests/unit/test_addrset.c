/*
 * test_addrset - the keyed-hash address set: SipHash-2-4 against the 64 reference
 * vectors of the SipHash paper (Aumasson and Bernstein, 2012, appendix A and the
 * reference implementation's vectors.h: key 00 01 .. 0f, messages of 0 to 63
 * bytes 00 01 02 ..), membership, growth well past the first table, and no false
 * negatives.
 */
#include "../../core/addrset.h"
#include "../../core/error.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/*
 * SipHash-2-4 outputs for key 00..0f and input 00 01 .. (i-1), i = 0..63; each
 * number spells the output's 8 bytes in order (the hash is a little-endian
 * 64-bit number, so vector 0 is the value 0x726fdb47dd0e0e31).
 */
static const uint64_t reference[64] = {
    0x310e0edd47db6f72, 0xfd67dc93c539f874, 0x5a4fa9d909806c0d, 0x2d7efbd796666785,
    0xb7877127e09427cf, 0x8da699cd64557618, 0xcee3fe586e46c9cb, 0x37d1018bf50002ab,
    0x6224939a79f5f593, 0xb0e4a90bdf82009e, 0xf3b9dd94c5bb5d7a, 0xa7ad6b22462fb3f4,
    0xfbe50e86bc8f1e75, 0x903d84c02756ea14, 0xeef27a8e90ca23f7, 0xe545be4961ca29a1,
    0xdb9bc2577fcc2a3f, 0x9447be2cf5e99a69, 0x9cd38d96f0b3c14b, 0xbd6179a71dc96dbb,
    0x98eea21af25cd6be, 0xc7673b2eb0cbf2d0, 0x883ea3e395675393, 0xc8ce5ccd8c030ca8,
    0x94af49f6c650adb8, 0xeab8858ade92e1bc, 0xf315bb5bb835d817, 0xadcf6b0763612e2f,
    0xa5c91da7acaa4dde, 0x716595876650a2a6, 0x28ef495c53a387ad, 0x42c341d8fa92d832,
    0xce7cf2722f512771, 0xe37859f94623f3a7, 0x381205bb1ab0e012, 0xae97a10fd434e015,
    0xb4a31508beff4d31, 0x81396229f0907902, 0x4d0cf49ee5d4dcca, 0x5c73336a76d8bf9a,
    0xd0a704536ba93e0e, 0x925958fcd6420cad, 0xa915c29bc8067318, 0x952b79f3bc0aa6d4,
    0xf21df2e41d4535f9, 0x87577519048f53a9, 0x10a56cf5dfcd9adb, 0xeb75095ccd986cd0,
    0x51a9cb9ecba312e6, 0x96afadfc2ce666c7, 0x72fe52975a4364ee, 0x5a1645b276d592a1,
    0xb274cb8ebf87870a, 0x6f9bb4203de7b381, 0xeaecb2a30b22a87f, 0x9924a43cc1315724,
    0xbd838d3aafbf8db7, 0x0b1a2a3265d51aea, 0x135079a3231ce660, 0x932b2846e4d70666,
    0xe1915f5cb1eca46c, 0xf325965ca16d629f, 0x575ff28e60381be5, 0x724506eb4c328a95,
};

/* The reference spelling of a hash: its little-endian bytes read as a big-endian number. */
static uint64_t spelled(uint64_t h)
{
    uint64_t out = 0;
    int i;

    for (i = 0; i < 8; i++)
        out = (out << 8) | ((h >> (8 * i)) & 0xff);
    return out;
}

Test(addrset, siphash_matches_the_reference_vectors)
{
    uint8_t key[16], in[64];
    size_t i;

    for (i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)i;
    for (i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)i;
    for (i = 0; i < 64; i++) {
        uint64_t h = addrset_siphash(key, in, i);
        cr_assert_eq(spelled(h), reference[i], "%zu bytes: got %016llx, expected %016llx", i,
                     (unsigned long long)spelled(h), (unsigned long long)reference[i]);
    }
    cr_assert_eq(addrset_siphash(key, in, 0), 0x726fdb47dd0e0e31ULL);
}

Test(addrset, siphash_depends_on_the_key_and_every_byte)
{
    uint8_t key[16] = {0}, other[16] = {0};
    const char msg[] = "someone@example.com";
    char changed[sizeof msg];
    uint64_t h = addrset_siphash(key, msg, strlen(msg));
    size_t i;

    other[15] = 1;
    cr_assert_neq(addrset_siphash(other, msg, strlen(msg)), h);
    for (i = 0; i < strlen(msg); i++) {
        memcpy(changed, msg, sizeof msg);
        changed[i] ^= 0x20;
        cr_assert_neq(addrset_siphash(key, changed, strlen(msg)), h, "byte %zu", i);
    }
    cr_assert_neq(addrset_siphash(key, msg, strlen(msg) - 1), h, "the length counts");
}

Test(addrset, add_and_contains)
{
    struct addrset *s = addrset_new();

    cr_assert_not_null(s);
    cr_assert_eq(addrset_size(s), 0);
    cr_assert_not(addrset_contains(s, "a@example.com", 13));
    cr_assert_eq(addrset_add(s, "a@example.com", 13), 1, "added");
    cr_assert_eq(addrset_add(s, "a@example.com", 13), 0, "already a member");
    cr_assert_eq(addrset_size(s), 1);
    cr_assert(addrset_contains(s, "a@example.com", 13));
    cr_assert_not(addrset_contains(s, "A@example.com", 13), "keys are compared as bytes");
    cr_assert_not(addrset_contains(s, "a@example.co", 12), "the length is part of the key");
    cr_assert_eq(addrset_add(s, "a@example.co", 12), 1);
    cr_assert_eq(addrset_size(s), 2);
    addrset_free(s);
}

Test(addrset, empty_and_binary_keys)
{
    struct addrset *s = addrset_new();

    cr_assert_not_null(s);
    cr_assert_eq(addrset_add(s, "", 0), 1);
    cr_assert(addrset_contains(s, "", 0));
    cr_assert_eq(addrset_add(s, "a\0b", 3), 1, "bytes after a NUL count");
    cr_assert_not(addrset_contains(s, "a\0c", 3));
    cr_assert(addrset_contains(s, "a\0b", 3));
    cr_assert_eq(addrset_size(s), 2);
    addrset_free(s);
}

#define MANY 100000

Test(addrset, grows_to_a_hundred_thousand_members_without_false_negatives, .timeout = 60)
{
    struct addrset *s = addrset_new();
    char key[64];
    size_t i, absent_found = 0;
    int n, rc;

    cr_assert_not_null(s);
    for (i = 0; i < MANY; i++) {
        n = snprintf(key, sizeof key, "user%zu@example.com", i);
        rc = addrset_add(s, key, (size_t)n);
        if (rc != 1)
            cr_assert_fail("member %zu: addrset_add returned %d", i, rc);
        /* everything added so far is still there after each growth */
        if ((i & (i + 1)) == 0) {
            size_t k;
            for (k = 0; k <= i; k++) {
                n = snprintf(key, sizeof key, "user%zu@example.com", k);
                if (!addrset_contains(s, key, (size_t)n))
                    cr_assert_fail("member %zu lost after adding %zu", k, i + 1);
            }
        }
    }
    cr_assert_eq(addrset_size(s), MANY);
    for (i = 0; i < MANY; i++) {
        n = snprintf(key, sizeof key, "user%zu@example.com", i);
        if (!addrset_contains(s, key, (size_t)n))
            cr_assert_fail("false negative for member %zu", i);
        if (addrset_add(s, key, (size_t)n) != 0)
            cr_assert_fail("member %zu added twice", i);
    }
    cr_assert_eq(addrset_size(s), MANY, "adding members again changes nothing");
    /* different addresses: with 64-bit hashes a collision among these is ~1e-9 */
    for (i = 0; i < MANY; i++) {
        n = snprintf(key, sizeof key, "other%zu@example.org", i);
        absent_found += addrset_contains(s, key, (size_t)n);
    }
    cr_assert_eq(absent_found, 0, "%zu addresses never added were found", absent_found);
    addrset_free(s);
}

Test(addrset, two_sets_are_independent)
{
    struct addrset *a = addrset_new(), *b = addrset_new();

    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(addrset_add(a, "x@example.com", 13), 1);
    cr_assert_not(addrset_contains(b, "x@example.com", 13));
    cr_assert_eq(addrset_add(b, "x@example.com", 13), 1);
    cr_assert(addrset_contains(a, "x@example.com", 13));
    addrset_free(a);
    addrset_free(b);
}

Test(addrset, free_accepts_null)
{
    addrset_free(NULL);
}
