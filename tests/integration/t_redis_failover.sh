#!/usr/bin/env bash
# t_redis_failover.sh - the Redis store behind Sentinel (docs/internals/
# redis-store.md "Failover"): master + replica + three sentinels, the gateway
# finds the master through them and waits for one replica on every
# single-use or security write (store.redis.wait_replicas: 1).  A replica that
# does not acknowledge in time makes those writes fail closed (503); a logout
# and a lockout written just before SIGKILL of the master still hold after
# the promotion; the gateway follows the sentinels' +switch-master event to the
# new master (logged, counted) and service resumes without a restart.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis.sh"

plan 22

M_PORT=9136
R_PORT=9137
S_PORTS=(9138 9139 9135)
MNAME=dz

redis_start master "$M_PORT"
redis_replica_start replica "$R_PORT" "$M_PORT" --enable-debug-command local
for i in 0 1 2; do sentinel_start "sentinel$i" "${S_PORTS[$i]}" "$MNAME" "$M_PORT" 2 1000; done
is "$(redis_role "$M_PORT") $(redis_role "$R_PORT") $(sentinel_master "${S_PORTS[0]}" "$MNAME")" \
    "master slave 127.0.0.1 $M_PORT" "master, replica and three sentinels up"

SENT="{address: 127.0.0.1:${S_PORTS[0]}}, {address: 127.0.0.1:${S_PORTS[1]}}, {address: 127.0.0.1:${S_PORTS[2]}}"
(umask 077 && openssl rand -hex 32 >"$WORK/redis.key")  # the value key (names and values sealed)
stack_start STORE_REDIS="value_key_file: $WORK/redis.key, sentinels: [$SENT], master_name: $MNAME, prefix: \"f:\", wait_replicas: 1, timeouts: {command: 1s, retry_max: 1s}" \
    CONFIG_SET="lockout.pair_attempts=3"
gw GET /readyz
is "$STATUS" 200 "the gateway found the master through the sentinels"

R1=$(pick_person registered 0); R2=$(pick_person registered 1); R3=$(pick_person registered 2)
[ -n "$R3" ] || bail "people.json lacks 3 registered people"
login_person "$R1"
TOK1=$LOGIN_TOKEN
is "$STATUS" 200 "login on the master found through the sentinels -> 200"
gw GET /api/registry/me -H "$(bearer "$TOK1")"
is "$STATUS" 200 "forward with it -> 200"

# ---- no replica acknowledgement: fail closed ---------------------------------------------------
wrong() { gw_json POST /auth/password "$(jq -nc --arg f "$1" '{fin:$f,password:"wrong-password-x"}')"; }
# Linked means what wait_replicas: 1 needs: the master gets an acknowledgement
# for a write.  The replica's own "master_link_status:up" comes before the
# master counts it online, and a WAIT in between answers 0 (a 503).
linked() { redis_cli "$R_PORT" INFO replication | grep -q '^master_link_status:up' && redis_acked "$M_PORT"; }
redis_cli "$R_PORT" REPLICAOF NO ONE >/dev/null
wrong "$R3"
problem 503 state_unavailable "replica detached: a wrong password (its failure count needs the replica's ack) -> 503, not 401"
redis_cli "$R_PORT" REPLICAOF 127.0.0.1 "$M_PORT" >/dev/null
ok "the replica is attached again" wait_until 20 linked

# ---- single-use and security writes right before the master dies ----------------------------------
wrong "$R2"; wrong "$R2"; wrong "$R2"
problem 401 bad_credentials "three wrong passwords for $R2 -> 401 (the third writes the lock)"
login "$R2" "$(person "$R2" password)"
problem 429 locked "then the right password -> 429 locked"
gw POST /auth/logout -H "$(bearer "$TOK1")"
is "$STATUS" 204 "logout (the delete waited for the replica) -> 204"
redis_kill master
pass "SIGKILL of the master right after"

promoted() { [ "$(sentinel_master "${S_PORTS[0]}" "$MNAME")" = "127.0.0.1 $R_PORT" ]; }
ok "the sentinels promote the replica" wait_until 30 promoted
a_ready() { gw GET /readyz; [ "$STATUS" = 200 ]; }
ok "the gateway is ready again on the new master, without a restart" wait_until 30 a_ready
is "$(redis_role "$R_PORT")" master "127.0.0.1:$R_PORT is the master now"
# The gateway follows the sentinels' +switch-master event (not only an error
# on its next call): logged with the new address, and counted.
switched() { grep -q '"store_master_switched".*now 127\.0\.0\.1:'"$R_PORT" "$(gw_log)"; }
ok "the +switch-master event moved the gateway to the new master (store_master_switched)" wait_until 10 switched
is "$(metric darvaza_store_master_switches_total)" 1 "darvaza_store_master_switches_total 1"

gw GET /api/registry/me -H "$(bearer "$TOK1")"
problem 401 unauthenticated "the session logged out before the failover stays dead"
login "$R2" "$(person "$R2" password)"
problem 429 locked "the lock written before the failover still holds"
login_person "$R3"
is "$STATUS" 200 "a new login on the promoted master -> 200"
wrong "$R3"
problem 503 state_unavailable "with no replica left, a failure cannot be recorded durably -> 503 (wait_replicas: 1)"
# The old master comes back; the sentinels make it a replica of the new one.
redis_start master "$M_PORT"
old_linked() {
    [ "$(redis_role "$M_PORT")" = slave ] && redis_cli "$M_PORT" INFO replication | grep -q '^master_link_status:up' &&
        redis_acked "$R_PORT"
}
ok "the old master rejoins as a replica" wait_until 30 old_linked
wrong "$R3"
problem 401 bad_credentials "and failures are counted again -> 401"
finish
