/*
 * parse.h - strict, ranged parsers for the values found in configuration,
 * policies and requests: integers, sizes, durations, rates, booleans and
 * URLs.  (FINs and document numbers are fin.h's.)
 *
 * Every parser is a pure function over a NUL-terminated string: no I/O, no
 * globals, no allocation, so all are thread-safe and fuzzable.  Each accepts
 * one canonical spelling and nothing around it (no blanks, no signs where
 * none make sense, no leading zeros, no trailing junk) and never wraps.
 *
 * Return codes, for every function below:
 *   0               parsed and within range; *out written
 *   DZ_ERR_PARSE    not in the expected form (the caller says what form)
 *   DZ_ERR_INVAL    well-formed but outside [min, max] (overflow included)
 * Out-parameters are cleared on entry, so a failed parse leaves zeros.
 */
#ifndef DZ_PARSE_H
#define DZ_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decimal integer: "0", "42", "-7".  No '+', no leading zeros, no blanks. */
int dz_parse_int(const char *s, long long min, long long max, long long *out);

/* Size in bytes: "512", "512B", "16KiB", "1MiB", "1GiB" (binary units only;
 * "10KB" or "1M" are DZ_ERR_PARSE because they are ambiguous). */
int dz_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Duration into milliseconds: "250ms", "10s", "5m", "12h", "1d".  The unit is
 * required ("10" is DZ_ERR_PARSE). */
int dz_parse_duration(const char *s, uint64_t min_ms, uint64_t max_ms, uint64_t *out_ms);

/* A rate "N/s", "N/m" or "N/h" with 1 <= N <= 1000000. */
struct dz_rate {
    uint32_t count;     /* events allowed ... */
    uint32_t period_ms; /* ... per this many milliseconds (1000, 60000, 3600000) */
};
int dz_parse_rate(const char *s, struct dz_rate *out);

/* "true" or "false" (YAML 1.2 core schema; no yes/no/on/off). */
int dz_parse_bool(const char *s, bool *out);

/* The value of one hexadecimal digit (0-9, a-f, A-F), or -1 for any other
 * character. */
int dz_hex_digit(char c);

/*
 * An absolute http(s) URL: scheme "http" or "https" (lower case), a host
 * (DNS name, dotted IPv4, or [IPv6] without zone), an optional port 1..65535,
 * an optional path.  Rejects user info, query, fragment, blanks and control
 * characters.  Loopback hosts: 127.0.0.0/8, ::1 and "localhost".
 */
struct dz_url {
    bool is_https;
    bool has_port;    /* the port was written */
    bool is_ip;       /* host is a numeric address */
    bool is_loopback; /* host is a loopback address or "localhost" */
    uint16_t port;    /* as written, else 443 or 80 */
    char host[256];   /* without brackets, NUL-terminated */
    size_t path_off;  /* offset of the path ('/' ...) in the input, or its length */
};
int dz_parse_url(const char *s, struct dz_url *out);

/* The one rule for every URL darvaza calls out to (the registry, policy
 * upstreams, the MSSP, the TSA, a peer's JWKS): dz_parse_url's syntax, and
 * https, or plain http only to a loopback host, since what goes out (a
 * bearer secret, a phone number, a FIN) must never cross a network in
 * clear.  NULL when s is such a URL (*out filled when out is not NULL);
 * otherwise why not, a static sentence for a config message. */
const char *dz_outbound_url_problem(const char *s, struct dz_url *out);

/* Canonical text for a size ("16KiB", "1MiB", "1000B"...) and a duration
 * ("10s", "15m", "250ms"...): the largest unit that divides the value, so
 * that parsing the text gives back the value.  buf should hold 32 bytes;
 * returns DZ_ERR_TOOBIG if it does not fit. */
int dz_format_size(uint64_t bytes, char *buf, size_t len);
int dz_format_duration(uint64_t ms, char *buf, size_t len);
int dz_format_rate(const struct dz_rate *r, char *buf, size_t len);

#endif
