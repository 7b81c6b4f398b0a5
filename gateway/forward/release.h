/*
 * release.h - what a release route's answer may carry (docs/policies.md
 * step 6): a pure function over the buffered answer, no I/O, no globals.
 *
 * On a route with a `release` list every answer with content is read here
 * before any of it leaves, whatever its status: a back end's error (a 409
 * "conflict" echoing the stored record, a 422 listing the values it holds)
 * can carry the person's unreleased fields as well as its 200 can.
 */
#ifndef DZ_FORWARD_RELEASE_H
#define DZ_FORWARD_RELEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

enum dz_release_verdict {
    /* *out (malloc'd, *out_len bytes) is the answer's JSON, stripped. */
    DZ_RELEASE_FILTERED,
    /* An error answer whose content cannot be read as one JSON object:
     * its status goes on, its content does not (the gateway's own problem
     * document in its place). */
    DZ_RELEASE_WITHHELD,
    /* Not passed on at all (502): a success the filter cannot read, a
     * partial (206) one, a redirect. */
    DZ_RELEASE_REFUSED,
    /* Out of memory: nothing of the answer may go (502, said as ours). */
    DZ_RELEASE_NOMEM,
};

/*
 * The answer of route r with this status (not 204, 304 or a HEAD's, which
 * have no content; the caller passes those on) and body[0..len) (len may be
 * 0), coded: it has a Content-Encoding other than identity.
 *  - 2xx: a JSON object or array of objects keeps only the released
 *    top-level fields; anything else is refused (so is a 206).
 *  - 3xx: refused: the redirect's Location is the back end's text, which
 *    the filter cannot read (it could carry an unreleased field in its
 *    query, or send the browser away from the portal's origin).
 *  - 4xx/5xx without content: filtered (nothing to strip, *out NULL).
 *    With content: a JSON object keeps RFC 9457's `type` (a string),
 *    `title` (a string) and `status` (an integer), the contract's `code`
 *    when it is a snake_case token, and the released fields; `detail`,
 *    `instance` and every other member go (free text can hold the record),
 *    and a kept `title` is also its `detail`.  Anything else is withheld.
 */
enum dz_release_verdict dz_release_filter(const struct dz_policy_route *r, int status, bool coded,
                                          const void *body, size_t len, char **out,
                                          size_t *out_len);

/*
 * Whether a back end's header field (name, value) goes on with a release
 * route's answer of this status.  The header section is the back end's
 * text as much as the body is, and the filter cannot read it: a
 * Content-Disposition naming the person, an ETag or Last-Modified of the
 * whole record, a Location, a Link, a cookie, any X-* of its own would
 * carry unreleased fields past the list.  So only fields that hold no
 * record pass, each in a shape checked here: `date` (an IMF-fixdate) and,
 * on a 429 or 503, `retry-after` (delay-seconds).  Everything else is
 * dropped; the content type is the gateway's (below).
 */
bool dz_release_field_allows(int status, const char *name, const char *value);

/*
 * The content type of a filtered answer's JSON (backend_type: the back
 * end's Content-Type, or NULL): application/problem+json for an error the
 * back end typed so, else application/json; none of its parameters.
 */
const char *dz_release_content_type(int status, const char *backend_type);

#endif
