/* sessidx_race.h - logins of one person racing on a full session list
 * (gateway/state/sessidx.c), over the store the includer gives: included by
 * test_regcode.c (in-process store) and test_store_redis.c (Redis).  The
 * includer includes <pthread.h>, <stdbool.h>, cmocka, state/sessidx.h and
 * state/session.h first.
 *
 * Each round, RACE_LOGINS threads create a session of the same person,
 * wait at a barrier, then list it at once.  After the round (the threads
 * wait meanwhile): every login was listed (none refused for a full list),
 * the list holds at most DZ_SESSIDX_SLOTS, and every session of the person
 * that still exists is in it (none left out, which "sign out everywhere"
 * could not end).  At the end, sign out everywhere leaves none alive. */
#ifndef SESSIDX_RACE_H
#define SESSIDX_RACE_H

#define RACE_LOGINS 8

struct login_race {
    struct dz_store *s;
    const char *fin;
    unsigned rounds;
    pthread_barrier_t start, go, done; /* start, done: the racers and the checker */
    int rc[RACE_LOGINS];
};

struct racer {
    struct login_race *r;
    unsigned id;
};

/* A session of fin as a login makes it, started at created (the list's
 * order: the sessions of a round start after those of the rounds before),
 * then listed: the rc of the add.  With go, every racer's session exists
 * before any of them is listed. */
static int race_login(struct dz_store *s, const char *fin, int64_t created, pthread_barrier_t *go)
{
    struct dz_session_limits l;
    struct dz_session sess;
    char tok[DZ_SESSION_TOKEN_LEN + 1];
    int64_t now;
    int rc;

    dz_session_limits_default(&l);
    memset(&sess, 0, sizeof(sess));
    snprintf(sess.fin, sizeof(sess.fin), "%s", fin);
    snprintf(sess.method, sizeof(sess.method), "password");
    sess.amr = DZ_AMR_PWD;
    snprintf(sess.acr, sizeof(sess.acr), "low");
    sess.auth_time = 1;
    rc = dz_session_create(s, &l, &sess, tok);
    now = sess.created_ms;
    sess.created_ms = created;
    if (go)
        pthread_barrier_wait(go);
    return rc ? rc : dz_sessidx_add(s, &sess, "127.0.0.1", now);
}

static void *racer_main(void *arg)
{
    struct racer *me = arg;
    struct login_race *r = me->r;

    for (unsigned round = 0; round < r->rounds; round++) {
        pthread_barrier_wait(&r->start);
        r->rc[me->id] = race_login(r->s, r->fin, 1000 + (int64_t)round, &r->go);
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

/* The round's outcome, checked while the racers wait: 0, or which check
 * failed (asserted after they are joined, so that a failure cannot leave
 * them at a barrier). */
static int race_check(struct login_race *r)
{
    struct dz_sessidx_entry e[DZ_SESSIDX_SLOTS];
    size_t n = 0;

    for (unsigned i = 0; i < RACE_LOGINS; i++)
        if (r->rc[i] != 0)
            return 1;
    if (dz_sessidx_list(r->s, r->fin, e, &n) != 0)
        return 2;
    /* The store holds this person's sessions only: all of them listed, and
     * no slot left besides theirs (a list frees the dead ones). */
    if (dz_store_count(r->s, DZ_SESSION_NS) != n || dz_store_count(r->s, DZ_SESSIDX_NS) != n)
        return 3;
    return 0;
}

static void sessidx_race(struct dz_store *s, const char *fin, unsigned rounds)
{
    static const char *const why[] = {"", "a login refused", "list failed or over the slots",
                                      "a live session left out of the list"};
    struct login_race r = {.s = s, .fin = fin, .rounds = rounds};
    struct racer who[RACE_LOGINS];
    pthread_t t[RACE_LOGINS];
    struct dz_sessidx_entry e[DZ_SESSIDX_SLOTS];
    size_t n = 0, ended = 0;
    unsigned failed_round = 0;
    int failed = 0;

    for (int i = 0; i < DZ_SESSIDX_SLOTS; i++)
        assert_int_equal(race_login(s, fin, i, NULL), 0);
    assert_int_equal(dz_sessidx_list(s, fin, e, &n), 0);
    assert_int_equal(n, DZ_SESSIDX_SLOTS);
    assert_int_equal(pthread_barrier_init(&r.start, NULL, RACE_LOGINS + 1), 0);
    assert_int_equal(pthread_barrier_init(&r.go, NULL, RACE_LOGINS), 0);
    assert_int_equal(pthread_barrier_init(&r.done, NULL, RACE_LOGINS + 1), 0);
    for (unsigned i = 0; i < RACE_LOGINS; i++) {
        who[i] = (struct racer){&r, i};
        assert_int_equal(pthread_create(&t[i], NULL, racer_main, &who[i]), 0);
    }
    for (unsigned round = 0; round < rounds; round++) {
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.done);
        if (!failed && (failed = race_check(&r)) != 0)
            failed_round = round;
    }
    for (unsigned i = 0; i < RACE_LOGINS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.go);
    pthread_barrier_destroy(&r.done);
    if (failed)
        fprintf(stderr, "round %u of %u: %s\n", failed_round, rounds, why[failed]);
    assert_int_equal(failed, 0);
    assert_int_equal(dz_sessidx_list(s, fin, e, &n), 0);
    assert_true(n > 0);
    assert_int_equal(dz_sessidx_end_all(s, fin, NULL, NULL, &ended), 0);
    assert_int_equal(ended, n);
    assert_int_equal(dz_store_count(s, DZ_SESSION_NS), 0);
    assert_int_equal(dz_sessidx_list(s, fin, e, &n), 0);
    assert_int_equal(n, 0);
}

#endif
