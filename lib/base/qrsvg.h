/*
 * qrsvg.h - QR codes (libqrencode, ECC level M, 8-bit mode) rendered as a
 * compact standalone SVG for browsers (TOTP enrolment, QR login), and as a
 * PBM image for tools such as zbarimg.
 *
 * The SVG is one white background <rect> plus one black <path> made of
 * horizontal runs of dark modules ("M x y h n v1 h-n z"), a viewBox with a
 * 4-module quiet zone, shape-rendering="crispEdges", and no script, style,
 * link or other external reference, so it can be inlined or served as
 * image/svg+xml as is.  Note the text is often a secret (an otpauth URI):
 * callers wipe the result when done.  Pure functions; thread-safe.
 */
#ifndef DZ_QRSVG_H
#define DZ_QRSVG_H

#include <stddef.h>

struct dz_buf;

#define DZ_QRSVG_TEXT_MAX 2048 /* longest text encoded (bytes) */
#define DZ_QRSVG_QUIET 4       /* quiet zone, in modules, on each side */
#define DZ_QRSVG_PX 4          /* SVG width/height attributes: px per module */
#define DZ_QRSVG_SCALE_MAX 32  /* largest PBM scale (pixels per module) */

/*
 * Encode text (NUL-terminated, 1..DZ_QRSVG_TEXT_MAX bytes) and return the
 * SVG in *out_svg (malloc'd, NUL-terminated, caller frees; wipe it first if
 * the text was secret).  0, DZ_ERR_INVAL (empty), DZ_ERR_TOOBIG (text over
 * the limit or beyond QR capacity), DZ_ERR_NOMEM.
 */
int dz_qrsvg_render(const char *text, char **out_svg);

/*
 * Same symbol as a binary PBM (P4) image with the same quiet zone,
 * scale x scale pixels per module (1..DZ_QRSVG_SCALE_MAX), appended to out
 * (give it a max of at least 1 MiB).  Same return codes plus the buffer's.
 * Meant for tools and tests: out grows by appends, so do not use it for
 * secret text in a long-running process.
 */
int dz_qrsvg_render_pbm(const char *text, int scale, struct dz_buf *out);

#endif
