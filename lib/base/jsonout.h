/*
 * jsonout.h - JSON strings written straight into a buffer, byte for byte as
 * jansson's json_dumps writes them with JSON_ENSURE_ASCII.  For the lines
 * written once per request (the access log, the forwarding audit lines),
 * where a jansson object built and dumped per line costs more than the rest
 * of the line's work; their tests compare the output with jansson's.
 * Pure functions; any thread.
 */
#ifndef DZ_JSONOUT_H
#define DZ_JSONOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* true when s[0..n) is UTF-8 as jansson accepts it (no overlong forms, no
 * surrogates, nothing over U+10FFFF); json_string refuses anything else. */
bool dz_json_utf8_valid(const char *s, size_t n);

/*
 * Append s[0..n) as a JSON string, quotes included: '"' and '\\' escaped,
 * \b \f \n \r \t by name, other controls and every code point over U+007F
 * as \uXXXX (a surrogate pair above U+FFFF), upper-case hex, '/' and DEL as
 * they are.  s must be valid UTF-8 (check first): DZ_ERR_INVAL otherwise.
 * Returns what dz_buf_append returns (the buffer is freed on error).
 */
int dz_json_put_string(struct dz_buf *b, const char *s, size_t n);

#endif
