/*
 * assert_problem.h - what every request-layer test checks of a refusal:
 * its status and its problem code (docs/api.md), together.  Include after
 * <cmocka.h>, whose assert macros it uses (the harness's other headers do
 * not need cmocka, so this is a header of its own).
 */
#ifndef DZ_TEST_ASSERT_PROBLEM_H
#define DZ_TEST_ASSERT_PROBLEM_H

#include "harness/fake_gw.h" /* fake_req_problem_code */

static inline void assert_problem(struct dz_req *r, int status, const char *code)
{
    char buf[64];

    assert_int_equal(fake_req_status(r), status);
    assert_string_equal(fake_req_problem_code(r, buf, sizeof(buf)), code);
}

#endif
