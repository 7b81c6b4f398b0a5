/*
 * outcome_slot_bytes.c - the memory a forwarded request holds while it is
 * in flight for its reserved outcome line (dz_gw_audit_slot_new: the
 * record, its values' room, the queue entry, the hand-off's state), as
 * glibc counts it (mallinfo2's bytes in use, its chunks' headers and
 * rounding included), averaged over 10,000 slots.  Built against a tree's
 * own headers and libraries, so one run compares two trees:
 *
 *   L="-lssl -lcrypto -lnghttp2 -ljansson -lyaml -lcurl -largon2 -lrt -ldl
 *      -loath -lqrencode -lsqlite3 -lp11 -lsystemd -lpq -lhiredis -lev -lm
 *      -pthread"                     (the Makefile's LDLIBS)
 *   for t in /work/main .; do
 *     cc -std=c17 -D_GNU_SOURCE -O2 -I$t/lib -I$t/gateway \
 *        -I/usr/include/x86_64-linux-gnu -I/usr/include/postgresql \
 *        -I/usr/include/hiredis -I/usr/include/liboath \
 *        tests/bench/outcome_slot_bytes.c $t/build/libgateway.a \
 *        $t/build/libdarvaza.a $L -o /tmp/slot && /tmp/slot
 *   done
 */
#include <malloc.h>
#include <stdio.h>

#include "core/gwasync.h"
#include "forward/forward.h"

#define N 10000

static struct dz_gw_audit_slot *slots[N];

/* The outcome line's reservation as forward.c makes it: sized from the
 * line's maxima where the tree has them, the general room before. */
static struct dz_gw_audit_slot *outcome_slot(void)
{
#ifdef DZ_FORWARD_OUTCOME_MEMBERS
    return dz_gw_audit_slot_new("forward_result", "outcome", DZ_FORWARD_OUTCOME_MEMBERS,
                                DZ_FORWARD_OUTCOME_VALUES_MAX);
#else
    return dz_gw_audit_slot_new("forward_result", "outcome");
#endif
}

int main(void)
{
    struct mallinfo2 before = mallinfo2(), after;

    for (int i = 0; i < N; i++) {
        slots[i] = outcome_slot();
        if (!slots[i])
            return 1;
    }
    after = mallinfo2();
    printf("%.1f bytes held per request in flight for its outcome line\n",
           (double)(after.uordblks - before.uordblks) / N);
    for (int i = 0; i < N; i++)
        dz_gw_audit_slot_free(slots[i]);
    return 0;
}
