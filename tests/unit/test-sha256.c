#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "sha256.h"

#define MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

static void check(const char *msg, const char *want)
{
        struct vp_sha256 s;
        char hex[65];

        vp_sha256_init(&s);
        vp_sha256_update(&s, msg, strlen(msg));
        vp_sha256_final_hex(&s, hex);
        assert_string_equal(hex, want);
}

static void test_fips_vectors(void **state)
{
        (void) state;
        check("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
              "nopqrlmnopqrsmnopqrstnopqrstu",
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a(void **state)
{
        (void) state;
        struct vp_sha256 s;
        char hex[65], chunk[1000];

        memset(chunk, 'a', sizeof(chunk));
        vp_sha256_init(&s);
        for (int i = 0; i < 1000; i++)
                vp_sha256_update(&s, chunk, sizeof(chunk));
        vp_sha256_final_hex(&s, hex);
        assert_string_equal(hex, MILLION_A);
}

/* Padding edge cases: lengths around the 55/56/64 byte boundaries, fed in
 * one go and byte by byte, must agree. */
static void test_split_updates(void **state)
{
        (void) state;
        uint8_t data[300];

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 7 + 3);

        for (size_t len = 0; len <= sizeof(data); len++) {
                struct vp_sha256 a, b, c;
                char ha[65], hb[65], hc[65];

                vp_sha256_init(&a);
                vp_sha256_update(&a, data, len);
                vp_sha256_final_hex(&a, ha);

                vp_sha256_init(&b);
                for (size_t i = 0; i < len; i++)
                        vp_sha256_update(&b, data + i, 1);
                vp_sha256_final_hex(&b, hb);

                vp_sha256_init(&c);
                size_t cut = len / 3;
                vp_sha256_update(&c, data, cut);
                vp_sha256_update(&c, data + cut, 0);
                vp_sha256_update(&c, data + cut, len - cut);
                vp_sha256_final_hex(&c, hc);

                assert_string_equal(ha, hb);
                assert_string_equal(ha, hc);
        }
        /* Spot check a boundary length against a known digest: 64 x 'a'. */
        check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
              "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void test_fd(void **state)
{
        (void) state;
        char path[] = "/tmp/vp-test-sha256-XXXXXX";
        char hex[65];
        struct vp_error err = { 0 };
        char *buf;
        int fd;

        fd = mkostemp(path, O_CLOEXEC);
        assert_true(fd >= 0);
        unlink(path);

        /* Empty file. */
        assert_int_equal(vp_sha256_fd(fd, hex, &err), 0);
        assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

        /* The FIPS million-'a' vector from a file. */
        buf = malloc(1000000);
        assert_non_null(buf);
        memset(buf, 'a', 1000000);
        assert_int_equal(write(fd, buf, 1000000), 1000000);
        /* The file offset must not matter: vp_sha256_fd reads from 0. */
        assert_int_equal(vp_sha256_fd(fd, hex, &err), 0);
        assert_string_equal(hex, MILLION_A);
        free(buf);

        /* Larger than the 1 MiB read chunk and not a multiple of it. */
        size_t big = 5 * 512 * 1024 + 17;
        buf = malloc(big);
        assert_non_null(buf);
        for (size_t i = 0; i < big; i++)
                buf[i] = (char) (i ^ (i >> 9));
        assert_int_equal(ftruncate(fd, 0), 0);
        assert_int_equal(pwrite(fd, buf, big, 0), (ssize_t) big);
        struct vp_sha256 s;
        char want[65];
        vp_sha256_init(&s);
        vp_sha256_update(&s, buf, big);
        vp_sha256_final_hex(&s, want);
        assert_int_equal(vp_sha256_fd(fd, hex, &err), 0);
        assert_string_equal(hex, want);
        free(buf);
        close(fd);
}

static void test_fd_error(void **state)
{
        (void) state;
        struct vp_error err = { 0 };
        char hex[65];
        int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(vp_sha256_fd(fd, hex, &err), -EISDIR);
        assert_int_equal(err.code, -EISDIR);
        close(fd);
        assert_int_equal(vp_sha256_fd(-1, hex, &err), -EBADF);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fips_vectors),
                cmocka_unit_test(test_million_a),
                cmocka_unit_test(test_split_updates),
                cmocka_unit_test(test_fd),
                cmocka_unit_test(test_fd_error),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
