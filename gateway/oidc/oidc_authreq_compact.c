/*
 * oidc_authreq_compact.c - a checked authorization request written back as
 * a query of only what the check reads (oidc_authreq.h): what a parked
 * request keeps in the store, so that its size is bounded by the
 * protocol's own limits rather than by what a client chose to send.
 */
#include <stdio.h>
#include <string.h>

#include "oidc/oidc_authreq.h"
#include "oidc/oidc_params.h"
#include "policy/policy.h"

#include "base/compat.h"

struct qbuf {
    char *s;
    size_t len;
    size_t cap;
    bool full;
};

/* Append "&name=" and v (n bytes) percent-encoded. */
static void add(struct qbuf *q, const char *name, const char *v, size_t n)
{
    size_t w;
    int k;

    if (q->full)
        return;
    k = snprintf(q->s + q->len, q->cap - q->len, "%s%s=", q->len ? "&" : "", name);
    if (k < 0 || (size_t)k >= q->cap - q->len) {
        q->full = true;
        return;
    }
    q->len += (size_t)k;
    w = dz_oidc_urlencode(v, n, q->s + q->len, q->cap - q->len);
    if (w == (size_t)-1)
        q->full = true;
    else
        q->len += w;
}

static void add_str(struct qbuf *q, const char *name, const char *v)
{
    add(q, name, v, strlen(v));
}

/* The words of bits (1 << i, in order) through name_of, space-separated. */
static void add_words(struct qbuf *q, const char *name, unsigned bits,
                      const char *(*name_of)(unsigned bit))
{
    char w[64] = "";
    size_t n = 0;

    for (unsigned b = 1; b && b <= bits; b <<= 1) {
        const char *s = (bits & b) ? name_of(b) : NULL;
        int k;
        if (!s)
            continue;
        k = snprintf(w + n, sizeof(w) - n, "%s%s", n ? " " : "", s);
        if (k < 0 || (size_t)k >= sizeof(w) - n) {
            q->full = true;
            return;
        }
        n += (size_t)k;
    }
    add(q, name, w, n);
}

static const char *prompt_name(unsigned bit)
{
    return bit == 1 ? "none" : bit == 2 ? "login" : bit == 4 ? "consent" : NULL;
}

size_t dz_oidc_authreq_compact(const struct dz_oidc_authreq *ar, char *out, size_t cap)
{
    struct qbuf q = {out, 0, cap, cap == 0};
    unsigned prompt =
        (ar->prompt_none ? 1u : 0) | (ar->prompt_login ? 2u : 0) | (ar->prompt_consent ? 4u : 0);

    if (q.full)
        return 0;
    out[0] = '\0';
    add_str(&q, "client_id", ar->client->client_id);
    add_str(&q, "redirect_uri", ar->redirect_uri);
    add_str(&q, "response_type", "code");
    add_words(&q, "scope", ar->scopes, dz_oidc_scope_name);
    add_str(&q, "code_challenge_method", "S256");
    add_str(&q, "code_challenge", ar->challenge);
    if (ar->has_state)
        add_str(&q, "state", ar->state);
    if (ar->has_nonce)
        add_str(&q, "nonce", ar->nonce);
    if (prompt)
        add_words(&q, "prompt", prompt, prompt_name);
    if (ar->max_age >= 0) {
        char n[24];
        snprintf(n, sizeof(n), "%lld", (long long)ar->max_age);
        add_str(&q, "max_age", n);
    }
    /* The level the check chose: the client's default needs no word (and
     * may not be one it is allowed to ask by name). */
    if (ar->acr != ar->client->acr_default)
        add_str(&q, "acr_values", dz_policy_acr_name(ar->acr));
    if (ar->login_hint[0])
        add_str(&q, "login_hint", ar->login_hint);
    if (ar->lang[0])
        add_str(&q, "ui_locales", ar->lang);
    if (q.full) {
        out[0] = '\0';
        return 0;
    }
    return q.len;
}
