/*
 * qrsvg.c - QR code rendering over libqrencode; see qrsvg.h.  Owns only the
 * temporary symbol, which is wiped before it is freed (its modules encode the
 * text, often a TOTP secret).  Never logs the text, never emits anything the
 * browser would fetch or run.
 */
#include "base/qrsvg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/secret.h"

#include "base/compat.h"

#define HEAD_MAX 320 /* the <svg> and <rect> text with five-digit numbers */
#define RUN_MAX 20   /* "M181 181h177v1h-177z" */
#define TAIL_MAX 16  /* closing "/></svg> and the NUL */

static int encode(const char *text, QRcode **out)
{
    size_t n;
    QRcode *qr;

    *out = NULL;
    if (!text)
        return DZ_ERR_INVAL;
    n = strnlen(text, DZ_QRSVG_TEXT_MAX + 1);
    if (n == 0)
        return DZ_ERR_INVAL;
    if (n > DZ_QRSVG_TEXT_MAX)
        return DZ_ERR_TOOBIG;
    errno = 0;
    /* QR_MODE_8 with case sensitivity: the text goes in byte for byte (the
     * library still picks numeric/alphanumeric segments where shorter). */
    qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return errno == ENOMEM ? DZ_ERR_NOMEM : errno == ERANGE ? DZ_ERR_TOOBIG : DZ_ERR_INVAL;
    if (qr->width <= 0 || qr->width > 177) {
        QRcode_free(qr);
        return DZ_ERR_INVAL;
    }
    *out = qr;
    return 0;
}

static void release(QRcode *qr)
{
    if (!qr)
        return;
    dz_secret_wipe(qr->data, (size_t)qr->width * (size_t)qr->width);
    QRcode_free(qr);
}

static bool dark(const QRcode *qr, int x, int y)
{
    return (qr->data[(size_t)y * (size_t)qr->width + (size_t)x] & 1) != 0;
}

/* Append with snprintf into svg[cap], failing rather than truncating. */
static int put(char *svg, size_t cap, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int put(char *svg, size_t cap, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(svg + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *pos)
        return DZ_ERR_TOOBIG;
    *pos += (size_t)n;
    return 0;
}

int dz_qrsvg_render(const char *text, char **out_svg)
{
    QRcode *qr = NULL;
    char *svg = NULL;
    size_t cap = 0;
    size_t pos = 0;
    int full;
    int x;
    int y;
    int rc;

    *out_svg = NULL;
    rc = encode(text, &qr);
    if (rc < 0)
        goto out;
    full = qr->width + 2 * DZ_QRSVG_QUIET;
    /* One allocation of a safe upper bound (a row has at most (w+1)/2 runs
     * of at most RUN_MAX characters), not a growing buffer: the picture
     * encodes the text, often a secret, and realloc would leave freed
     * copies of it behind. */
    cap = HEAD_MAX + (size_t)qr->width * (((size_t)qr->width + 1) / 2) * RUN_MAX + TAIL_MAX;
    svg = malloc(cap);
    if (!svg) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    rc = put(svg, cap, &pos,
             "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
             "width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\">"
             "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
             full, full, full * DZ_QRSVG_PX, full * DZ_QRSVG_PX, full, full);
    for (y = 0; y < qr->width && rc == 0; y++) {
        x = 0;
        while (x < qr->width && rc == 0) {
            int start;

            if (!dark(qr, x, y)) {
                x++;
                continue;
            }
            start = x;
            while (x < qr->width && dark(qr, x, y))
                x++;
            rc = put(svg, cap, &pos, "M%d %dh%dv1h-%dz", start + DZ_QRSVG_QUIET, y + DZ_QRSVG_QUIET,
                     x - start, x - start);
        }
    }
    if (rc == 0)
        rc = put(svg, cap, &pos, "\"/></svg>");
    if (rc < 0)
        goto out;
    *out_svg = svg;
    svg = NULL;
out:
    if (svg) {
        dz_secret_wipe(svg, cap);
        free(svg);
    }
    release(qr);
    return rc;
}

int dz_qrsvg_render_pbm(const char *text, int scale, struct dz_buf *out)
{
    QRcode *qr = NULL;
    unsigned char *row = NULL;
    size_t row_bytes;
    int full;
    int px;
    int y;
    int rc;

    if (scale < 1 || scale > DZ_QRSVG_SCALE_MAX)
        return DZ_ERR_INVAL;
    rc = encode(text, &qr);
    if (rc < 0)
        goto out;
    full = qr->width + 2 * DZ_QRSVG_QUIET;
    px = full * scale;
    row_bytes = ((size_t)px + 7) / 8;
    row = malloc(row_bytes);
    if (!row) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    rc = dz_buf_appendf(out, "P4\n%d %d\n", px, px);
    for (y = 0; y < px && rc == 0; y++) {
        int my = y / scale - DZ_QRSVG_QUIET;
        int x;

        memset(row, 0, row_bytes);
        for (x = 0; x < px; x++) {
            int mx = x / scale - DZ_QRSVG_QUIET;

            /* PBM: 1 is black, most significant bit first. */
            if (mx >= 0 && my >= 0 && mx < qr->width && my < qr->width && dark(qr, mx, my))
                row[x / 8] |= (unsigned char)(0x80 >> (x % 8));
        }
        rc = dz_buf_append(out, row, row_bytes);
    }
out:
    if (row) {
        dz_secret_wipe(row, row_bytes);
        free(row);
    }
    release(qr);
    return rc;
}
