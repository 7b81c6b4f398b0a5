/*
 * problem.h - every error a client sees: an RFC 9457 problem+json document
 * with a stable snake_case `code` (DESIGN.md §4.1), made in this one place.
 *
 * The table maps each code to its HTTP status and a fixed title; the detail
 * text is the caller's and must never contain a secret or say whether a FIN
 * has an account.
 */
#ifndef DZ_PROBLEM_H
#define DZ_PROBLEM_H

#include <jansson.h>

/* Status for a known code; 500 for an unknown one. */
int dz_problem_status(const char *code);

/* Build {"type","title","status","detail","code"} for code.  detail may be
 * NULL (the title is used).  Returns a new reference or NULL (no memory). */
json_t *dz_problem_new(const char *code, const char *detail);

#endif
