/* Unit tests for SHA-256 (daemon/base/sha256.h): the FIPS 180-2 example
 * vectors, lengths on each side of the padding boundaries (digests from
 * coreutils' sha256sum), and the same digest whatever the pieces the
 * input is fed in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

static void assert_digest(const void *data, size_t n, const char *want)
{
    char hex[VG_SHA256_HEX_LEN];
    vg_sha256_hex(data, n, hex);
    assert_string_equal(hex, want);
}

static void test_fips_vectors(void **state)
{
    (void)state;
    assert_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_digest(two, strlen(two),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopj"
                       "klmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    assert_digest(four, strlen(four),
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* 'a' repeated n times, around 56 (the length no longer fits the block)
 * and 64 (a whole block). */
static void test_padding_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char a[128];
    memset(a, 'a', sizeof(a));
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_digest(a, v[i].n, v[i].hex);
}

/* A million 'a' (FIPS 180-2's third example) fed in uneven pieces. */
static void test_pieces(void **state)
{
    (void)state;
    static const char want[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    assert_digest(a, 1000000, want);
    static const size_t steps[] = {1, 3, 63, 64, 65, 1000, 4099};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        vg_sha256_t s;
        vg_sha256_init(&s);
        for (size_t off = 0; off < 1000000; off += steps[k])
            vg_sha256_update(&s, a + off, off + steps[k] <= 1000000 ? steps[k] : 1000000 - off);
        vg_sha256_update(&s, NULL, 0);
        uint8_t d[VG_SHA256_LEN];
        vg_sha256_final(&s, d);
        char hex[VG_SHA256_HEX_LEN];
        for (int i = 0; i < VG_SHA256_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        assert_string_equal(hex, want);
    }
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
