/* test_qrsvg.c - QR rendering (lib/base/qrsvg.c): the PBM decodes back to the
 * text with zbarimg, and the SVG, parsed back into modules, is the same
 * matrix as the PBM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/qrsvg.h"

#define GRID_MAX (177 + 2 * DZ_QRSVG_QUIET)

struct grid {
    int n;
    unsigned char m[GRID_MAX][GRID_MAX];
};

/* Parse a P4 image of scale 1 into modules (quiet zone included). */
static void parse_pbm(const struct dz_buf *b, struct grid *g)
{
    int w = 0;
    int h = 0;
    int consumed = 0;
    const unsigned char *bits;
    size_t row_bytes;
    int x;
    int y;

    assert_int_equal(sscanf(b->data, "P4\n%d %d\n%n", &w, &h, &consumed), 2);
    assert_int_equal(w, h);
    assert_true(w > 2 * DZ_QRSVG_QUIET && w <= GRID_MAX);
    row_bytes = ((size_t)w + 7) / 8;
    assert_int_equal(b->len, (size_t)consumed + row_bytes * (size_t)h);
    bits = (const unsigned char *)b->data + consumed;
    g->n = w;
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++)
            g->m[y][x] = (bits[(size_t)y * row_bytes + (size_t)x / 8] >> (7 - x % 8)) & 1;
}

/* Parse our SVG: the header, then runs "M x y h n v1 h-n z". */
static void parse_svg(const char *svg, struct grid *g)
{
    const char *p;
    int vb = 0;
    int vb2 = 0;
    int x;
    int y;
    int n;
    int n2;
    int used;
    int runs = 0;

    memset(g, 0, sizeof(*g));
    assert_true(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ", 52) == 0);
    assert_int_equal(sscanf(svg + 52, "%d %d", &vb, &vb2), 2);
    assert_int_equal(vb, vb2);
    assert_true(vb > 2 * DZ_QRSVG_QUIET && vb <= GRID_MAX);
    g->n = vb;
    assert_non_null(strstr(svg, "shape-rendering=\"crispEdges\""));
    assert_non_null(strstr(svg, "fill=\"#fff\""));
    p = strstr(svg, "<path fill=\"#000\" d=\"");
    assert_non_null(p);
    p += strlen("<path fill=\"#000\" d=\"");
    while (*p == 'M') {
        used = 0;
        assert_int_equal(sscanf(p, "M%d %dh%dv1h-%dz%n", &x, &y, &n, &n2, &used), 4);
        assert_true(used > 0);
        assert_int_equal(n, n2);
        assert_true(n >= 1);
        /* every module inside the symbol, none in the quiet zone */
        assert_true(x >= DZ_QRSVG_QUIET && y >= DZ_QRSVG_QUIET);
        assert_true(x + n <= vb - DZ_QRSVG_QUIET && y < vb - DZ_QRSVG_QUIET);
        for (int i = 0; i < n; i++) {
            assert_int_equal(g->m[y][x + i], 0); /* no overlapping runs */
            g->m[y][x + i] = 1;
        }
        p += used;
        runs++;
    }
    assert_true(runs > 0);
    assert_string_equal(p, "\"/></svg>");
}

static void zbar_roundtrip(const char *text, const struct dz_buf *pbm_scaled)
{
    char path[] = "/tmp/test_qrsvg_XXXXXX";
    char cmd[128];
    struct dz_buf got;
    char chunk[512];
    size_t n;
    FILE *f;
    int fd;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pbm_scaled->data, pbm_scaled->len), (ssize_t)pbm_scaled->len);
    close(fd);
    snprintf(cmd, sizeof(cmd), "zbarimg -q --raw %s 2>/dev/null", path);
    f = popen(cmd, "r");
    assert_non_null(f);
    dz_buf_init(&got, 65536);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(dz_buf_append(&got, chunk, n), 0);
    assert_int_equal(pclose(f), 0);
    unlink(path);
    /* zbarimg ends the symbol with a newline */
    assert_true(got.len > 0 && got.data[got.len - 1] == '\n');
    got.data[--got.len] = '\0';
    assert_string_equal(dz_buf_cstr(&got), text);
    dz_buf_cleanup(&got);
}

static void check_text(const char *text, bool with_zbar)
{
    static struct grid gp;
    static struct grid gs;
    struct dz_buf pbm;
    char *svg = NULL;
    int x;
    int y;

    assert_int_equal(dz_qrsvg_render(text, &svg), 0);
    assert_non_null(svg);
    /* standalone: nothing fetched or run */
    assert_null(strstr(svg, "href"));
    assert_null(strstr(svg, "<script"));
    assert_null(strstr(svg, "style"));
    assert_null(strstr(svg, "<image"));
    parse_svg(svg, &gs);

    dz_buf_init(&pbm, 1 << 20);
    assert_int_equal(dz_qrsvg_render_pbm(text, 1, &pbm), 0);
    parse_pbm(&pbm, &gp);
    assert_int_equal(gp.n, gs.n);
    for (y = 0; y < gp.n; y++)
        for (x = 0; x < gp.n; x++)
            assert_int_equal(gs.m[y][x], gp.m[y][x]);
    /* quiet zone is white; the top-left finder pattern is dark */
    for (x = 0; x < gp.n; x++) {
        assert_int_equal(gp.m[0][x], 0);
        assert_int_equal(gp.m[DZ_QRSVG_QUIET - 1][x], 0);
        assert_int_equal(gp.m[gp.n - 1][x], 0);
        assert_int_equal(gp.m[x][gp.n - DZ_QRSVG_QUIET], 0);
    }
    assert_int_equal(gp.m[DZ_QRSVG_QUIET][DZ_QRSVG_QUIET], 1);
    dz_buf_cleanup(&pbm);

    if (with_zbar) {
        dz_buf_init(&pbm, 1 << 22);
        assert_int_equal(dz_qrsvg_render_pbm(text, 4, &pbm), 0);
        zbar_roundtrip(text, &pbm);
        dz_buf_cleanup(&pbm);
    }
    free(svg);
}

static void test_roundtrip(void **state)
{
    (void)state;
    check_text("otpauth://totp/Darvaza:ABC1234?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
               "&issuer=Darvaza&algorithm=SHA1&digits=6&period=30",
               true);
    check_text("darvaza-qr:1:3q2+7w-xyz:17:"
               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
               true);
    check_text("A", true);
    check_text("0123456789", true);
    check_text("Salam, dünya! Ərazi", false);
}

static void test_large(void **state)
{
    char big[DZ_QRSVG_TEXT_MAX + 1];

    (void)state;
    for (size_t i = 0; i < DZ_QRSVG_TEXT_MAX; i++)
        big[i] = (char)('a' + (i * 7) % 26);
    big[DZ_QRSVG_TEXT_MAX] = '\0';
    check_text(big, false);
    big[600] = '\0';
    check_text(big, true);
}

static void test_bad_input(void **state)
{
    char big[DZ_QRSVG_TEXT_MAX + 2];
    struct dz_buf b;
    char *svg = (char *)"x";

    (void)state;
    assert_int_equal(dz_qrsvg_render("", &svg), DZ_ERR_INVAL);
    assert_null(svg);
    assert_int_equal(dz_qrsvg_render(NULL, &svg), DZ_ERR_INVAL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(dz_qrsvg_render(big, &svg), DZ_ERR_TOOBIG);
    assert_null(svg);

    dz_buf_init(&b, 1 << 20);
    assert_int_equal(dz_qrsvg_render_pbm("A", 0, &b), DZ_ERR_INVAL);
    assert_int_equal(dz_qrsvg_render_pbm("A", DZ_QRSVG_SCALE_MAX + 1, &b), DZ_ERR_INVAL);
    assert_int_equal(dz_qrsvg_render_pbm("", 1, &b), DZ_ERR_INVAL);
    assert_int_equal(b.len, 0);
    dz_buf_cleanup(&b);
    /* an output bound that is too small is an error, not a truncation */
    dz_buf_init(&b, 100);
    assert_int_equal(dz_qrsvg_render_pbm("A", 4, &b), DZ_ERR_TOOBIG);
    dz_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_bad_input),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
