/*
 * test_privdrop.c - gateway.user: refusals (unknown account, root, unknown
 * group) and, in a forked child, the drop itself: every uid and gid is the
 * account's afterwards and root cannot be regained.  Run as root (as `make
 * test` is) the child drops to "nobody"; run as another user it must be
 * refused with the "start darvazad as root" sentence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "daemon/privdrop.h"

static void test_no_user_is_a_no_op(void **state)
{
    char err[256] = "x";

    (void)state;
    assert_int_equal(dz_privdrop(NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

static void test_refusals(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(dz_privdrop("no-such-user-dz", NULL, err, sizeof(err)), DZ_ERR_NOTFOUND);
    assert_non_null(strstr(err, "gateway.user: no such user \"no-such-user-dz\""));
    assert_int_equal(dz_privdrop("root", NULL, err, sizeof(err)), DZ_ERR_INVAL);
    assert_non_null(strstr(err, "is root"));
    assert_int_equal(dz_privdrop("nobody", "no-such-group-dz", err, sizeof(err)), DZ_ERR_NOTFOUND);
    assert_non_null(strstr(err, "gateway.group: no such group"));
}

/* The child's exit codes: 0 dropped and holds, 10+ what went wrong. */
static int child(uid_t want_uid, gid_t want_gid, bool as_root)
{
    char err[256];
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    int rc;

    if (!as_root) {
        /* Not root: becoming anyone else is refused, staying oneself is a no-op. */
        const struct passwd *me = getpwuid(geteuid());
        const char *other = strcmp(me->pw_name, "nobody") == 0 ? "daemon" : "nobody";
        char self[64];
        snprintf(self, sizeof(self), "%s", me->pw_name);
        rc = dz_privdrop(other, NULL, err, sizeof(err));
        if (rc != DZ_ERR_INVAL || !strstr(err, "start darvazad as root"))
            return 10;
        return dz_privdrop(self, NULL, err, sizeof(err)) == 0 ? 0 : 16;
    }
    rc = dz_privdrop("nobody", NULL, err, sizeof(err));

    if (rc != 0)
        return 11;
    if (getresuid(&ru, &eu, &su) != 0 || ru != want_uid || eu != want_uid || su != want_uid)
        return 12;
    if (getresgid(&rg, &eg, &sg) != 0 || rg != want_gid || eg != want_gid || sg != want_gid)
        return 13;
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
        return 14;
    /* A second call as that account is a no-op (systemd User= case). */
    if (dz_privdrop("nobody", NULL, err, sizeof(err)) != 0)
        return 15;
    return 0;
}

static void test_drop_in_a_child(void **state)
{
    const struct passwd *pw = getpwnam("nobody");
    pid_t pid;
    int st = 0;

    (void)state;
    assert_non_null(pw);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(pw->pw_uid, pw->pw_gid, geteuid() == 0));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_user_is_a_no_op),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_drop_in_a_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
