/*
 * fin.c - FIN and document-number syntax; see fin.h.  Owns only the compiled
 * document pattern.  Never looks anything up, never logs the input (a FIN is
 * personal data), and never uses locale-dependent ctype functions: the
 * alphabet is ASCII by definition, whatever LC_CTYPE says.
 */
#include "base/fin.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#include "base/compat.h"

struct dz_docpat {
    regex_t re; /* REG_EXTENDED | REG_NOSUB, anchored; immutable after compile */
};

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static char to_upper(unsigned char c)
{
    return (char)(is_lower(c) ? c - 'a' + 'A' : c);
}

int dz_fin_normalize(const char *in, size_t in_len, char out[DZ_FIN_LEN + 1])
{
    size_t i;

    out[0] = '\0';
    if (!in || in_len != DZ_FIN_LEN)
        return DZ_ERR_INVAL;
    for (i = 0; i < DZ_FIN_LEN; i++) {
        unsigned char c = (unsigned char)in[i];

        if (!is_digit(c) && !is_upper(c) && !is_lower(c)) {
            out[0] = '\0';
            return DZ_ERR_INVAL;
        }
        out[i] = to_upper(c);
    }
    out[DZ_FIN_LEN] = '\0';
    return 0;
}

bool dz_fin_is_normal(const char *s)
{
    size_t i;

    if (!s)
        return false;
    for (i = 0; i < DZ_FIN_LEN; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!is_digit(c) && !is_upper(c))
            return false; /* also stops at a NUL before 7 characters */
    }
    return s[DZ_FIN_LEN] == '\0';
}

int dz_docpat_compile(const char *ere, struct dz_docpat **out, char *err, size_t err_size)
{
    struct dz_docpat *p = NULL;
    char anchored[DZ_DOCPAT_MAX + 8];
    size_t n;
    int rc;
    int rrc;

    *out = NULL;
    if (err && err_size)
        err[0] = '\0';
    if (!ere || !*ere) {
        if (err && err_size)
            snprintf(err, err_size, "empty pattern");
        return DZ_ERR_INVAL;
    }
    n = strlen(ere);
    if (n > DZ_DOCPAT_MAX) {
        if (err && err_size)
            snprintf(err, err_size, "pattern longer than %d bytes", DZ_DOCPAT_MAX);
        return DZ_ERR_TOOBIG;
    }
    /* Group the whole pattern so an alternation is anchored as a whole:
     * "A|B" must mean ^(A|B)$, not ^A|B$. */
    snprintf(anchored, sizeof(anchored), "^(%s)$", ere);
    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = DZ_ERR_NOMEM;
        goto out;
    }
    rrc = regcomp(&p->re, anchored, REG_EXTENDED | REG_NOSUB);
    if (rrc != 0) {
        if (err && err_size)
            /* regerror needs the regex_t, so the message is taken before free. */
            regerror(rrc, &p->re, err, err_size);
        free(p);
        p = NULL;
        rc = rrc == REG_ESPACE ? DZ_ERR_NOMEM : DZ_ERR_INVAL;
        goto out;
    }
    *out = p;
    p = NULL;
    rc = 0;
out:
    free(p);
    return rc;
}

void dz_docpat_free(struct dz_docpat *p)
{
    if (!p)
        return;
    regfree(&p->re);
    free(p);
}

int dz_docpat_match(const struct dz_docpat *p, const char *in, size_t in_len, char *out,
                    size_t out_size)
{
    char norm[DZ_DOC_MAX + 1];
    size_t n = 0;
    size_t i;

    if (out && out_size)
        out[0] = '\0';
    if (!p || !out || out_size == 0 || (!in && in_len) || in_len > DZ_DOC_INPUT_MAX)
        return DZ_ERR_INVAL;
    for (i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];

        /* Documents are printed and read out in groups ("AA 1234567"): spaces
         * are not part of the number, so they are dropped, not refused. */
        if (c == ' ')
            continue;
        if (!is_digit(c) && !is_upper(c) && !is_lower(c))
            return DZ_ERR_INVAL;
        /* Bounded before regexec sees it: the stack buffer is the limit, and a
         * longer run is no document number anyway. */
        if (n == DZ_DOC_MAX)
            return DZ_ERR_INVAL;
        norm[n++] = to_upper(c);
    }
    norm[n] = '\0';
    /* The alphabet check above keeps NUL, newlines and non-ASCII bytes away
     * from regexec, so the match is on exactly the bytes we normalised. */
    if (n == 0 || n + 1 > out_size || regexec(&p->re, norm, 0, NULL, 0) != 0)
        return DZ_ERR_INVAL;
    memcpy(out, norm, n + 1);
    return 0;
}
