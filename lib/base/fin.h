/*
 * fin.h - syntax of the two person identifiers the gateway takes from users:
 * the FIN (DESIGN §2: 7 Latin letters or digits, upper case) and the ID-card
 * document number (series + number, pattern from the config).
 *
 * These are pure functions over bounded input: no I/O, no globals, no
 * allocation except in dz_docpat_compile.  They only answer "is this well
 * formed, and what is its normal form"; whether a FIN has an account or a
 * document belongs to a FIN is decided elsewhere, so a syntax error never
 * leaks anything about a person.  Thread-safe; callable from loop threads.
 */
#ifndef DZ_FIN_H
#define DZ_FIN_H

#include <stdbool.h>
#include <stddef.h>

#define DZ_FIN_LEN 7 /* characters of a FIN; buffers are DZ_FIN_LEN + 1 */

/*
 * Check that in[0..in_len) is exactly 7 characters of [0-9A-Za-z] and write
 * the upper-case form plus a NUL into out.  Anything else (6 or 8 characters,
 * spaces, punctuation, any non-ASCII byte, an embedded NUL) is DZ_ERR_INVAL
 * and out is the empty string.  in may be NULL only when in_len is 0.
 */
int dz_fin_normalize(const char *in, size_t in_len, char out[DZ_FIN_LEN + 1]);

/* true when s is already a normalised FIN (7 of [0-9A-Z], NUL-terminated). */
bool dz_fin_is_normal(const char *s);

/*
 * Document numbers.  The input is normalised first (ASCII letters to upper
 * case, spaces removed), then matched in full against a POSIX extended
 * regular expression from the config.  The pattern is anchored for you
 * (compiled as "^(" pattern ")$"), written in upper case, and compiled once
 * at config load; a compiled pattern is immutable and may be shared by all
 * threads.
 */
#define DZ_DOC_MAX 32                              /* longest normalised document number */
#define DZ_DOC_INPUT_MAX 64                        /* longest raw input (spaces included) */
#define DZ_DOCPAT_MAX 256                          /* longest pattern accepted */
#define DZ_DOCPAT_DEFAULT "AZE[0-9]{8}|AA[0-9]{7}" /* AZE12345678, AA1234567 */

struct dz_docpat;

/*
 * Compile ere into *out (caller frees with dz_docpat_free).  On a bad
 * pattern returns DZ_ERR_INVAL and, when err is not NULL, writes a short
 * reason (regerror text) into err[err_size].  DZ_ERR_TOOBIG for a pattern
 * over DZ_DOCPAT_MAX, DZ_ERR_NOMEM.  Start-up / reload thread.
 */
int dz_docpat_compile(const char *ere, struct dz_docpat **out, char *err, size_t err_size);

/* NULL is a no-op. */
void dz_docpat_free(struct dz_docpat *p);

/*
 * Normalise in[0..in_len) and match it.  On a match returns 0 with the
 * normal form in out[out_size] (out_size >= DZ_DOC_MAX + 1 is always
 * enough).  DZ_ERR_INVAL when it is too long, contains a byte other than
 * ASCII letters, digits and spaces, is empty or does not match; out is then
 * the empty string.  Any thread.
 */
int dz_docpat_match(const struct dz_docpat *p, const char *in, size_t in_len, char *out,
                    size_t out_size);

#endif
