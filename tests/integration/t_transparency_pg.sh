#!/usr/bin/env bash
# t_transparency_pg.sh - the access index on PostgreSQL (docs/transparency.md):
# with accounts.backend postgresql the index table lives in the accounts
# database; a judge's lookup is listed with its proof; with PostgreSQL down
# the lookup is still answered and audited, the list is 503
# state_unavailable, and once the server is back the indexer's retry reads
# the line back from the audit log: nothing audited is missing.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/pg.sh"

plan 16

PG_PW="pg-$$-$RANDOM-secret"
CONNINFO="$WORK/pg.conninfo"
pg_start
pg_create_db darvaza darvaza "$PG_PW" || bail "cannot create the database"
(umask 077 && echo "host=127.0.0.1 port=$PG_PORT dbname=darvaza user=darvaza password=$PG_PW" >"$CONNINFO")
stack_start ACCOUNTS_PG="conninfo_file: $CONNINFO, pool: 2, connect_timeout: 2s, statement_timeout: 2s"

C="$STATE_DIR/certs"
CARDS_JSON="$STATE_DIR/cards/cards.json"
export SOFTHSM2_CONF="$STATE_DIR/cards/softhsm2.conf"
MODULE=${DARVAZA_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
J_LABEL=$(jq -r 'map(select(.kind == "judge"))[0].label // empty' "$CARDS_JSON")
J_FIN=$(jq -r 'map(select(.kind == "judge"))[0].fin // empty' "$CARDS_JSON")
J_NAME=$(jq -r 'map(select(.kind == "judge"))[0].name // empty' "$CARDS_JSON")
PARTY=$(pick_person registered 0)
[ -n "$J_FIN" ] && [ -n "$PARTY" ] || bail "no judge card or registered person"
(umask 077 && jq -r --arg l "$J_LABEL" 'map(select(.label == $l))[0].pin' "$CARDS_JSON" >"$WORK/j.pin")
J_TOKEN=$(timeout 60 "$BUILD_DIR/darvaza-card" login --gateway "$GW_URL" --token "$J_LABEL" \
    --pin-file "$WORK/j.pin" --cacert "$C/root.pem" --module "$MODULE" 2>>"$WORK/card.err" | tail -n 1)
isnt "$J_TOKEN" "" "the judge logs in with the card"
login_person "$PARTY"
P_TOKEN=$LOGIN_TOKEN
isnt "$P_TOKEN" "" "the citizen logs in (accounts on PostgreSQL)"

is "$(pg_sql darvaza "SELECT to_regclass('access_index') IS NOT NULL AND to_regclass('access_watermark') IS NOT NULL")" t \
    "the gateway created the index tables in the accounts database"
CASE1="case 4-$RANDOM/2026"
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$J_TOKEN")" -H "Darvaza-Purpose: $CASE1"
is "$STATUS" 200 "the judge looks the citizen up"
listed() { # listed PURPOSE: the entry is in the citizen's list with its proof
    gw GET "/api/my/access?limit=100" -H "$(bearer "$P_TOKEN")"
    [ "$STATUS" = 200 ] &&
        [ "$(jb --arg c "$1" '[.entries[] | select(.purpose == $c and .proof_status == "ok")] | length')" -ge 1 ]
}
ok "the lookup is listed with its proof" wait_until 15 listed "$CASE1"
is "$(pg_sql darvaza "SELECT count(*) FROM access_index WHERE tgt = '$PARTY' AND line LIKE '%$CASE1%'")" 1 \
    "the row is in PostgreSQL's access_index"
gw GET "/api/my/access?limit=100" -H "$(bearer "$P_TOKEN")"
is "$(pg_sql darvaza "SELECT actor_name FROM access_index WHERE line LIKE '%$CASE1%'")|$(jb --arg c "$CASE1" '[.entries[] | select(.purpose == $c)][0].actor.name')" \
    "$J_NAME|$J_NAME" "the row's actor_name (added by the schema's migration) and the entry name the judge"
like "$(pg_sql darvaza "SELECT seq FROM access_watermark")" '^[0-9]+$' "the watermark moved with it"
# Paging on PostgreSQL: the cursor is one of the person's own rows.
CASE1B="case 6-$RANDOM/2026"
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$J_TOKEN")" -H "Darvaza-Purpose: $CASE1B"
gw GET "/api/registry/persons/$J_FIN" -H "$(bearer "$P_TOKEN")" -H "Darvaza-Purpose: $CASE1B"
ok "a second lookup is listed" wait_until 15 listed "$CASE1B"
gw GET "/api/my/access?limit=1" -H "$(bearer "$P_TOKEN")"
NEXT=$(jb .next_before)
gw GET "/api/my/access?limit=1&before=$NEXT" -H "$(bearer "$P_TOKEN")"
is "$STATUS $(jb '.entries[0].purpose')" "200 $CASE1" "?before= the cursor: the next page, from PostgreSQL"
FOREIGN=$(pg_sql darvaza "SELECT max(id) FROM access_index WHERE tgt = '$J_FIN'")
gw GET "/api/my/access?before=$FOREIGN" -H "$(bearer "$P_TOKEN")"
is "$STATUS $(jb '.entries | length')" "200 0" "another person's row is no cursor: an empty page"

pg_stop
CASE2="case 5-$RANDOM/2026"
gw GET "/api/registry/persons/$PARTY" -H "$(bearer "$J_TOKEN")" -H "Darvaza-Purpose: $CASE2"
is "$STATUS" 200 "PostgreSQL down: the lookup is still answered (the audit log is the record)"
ok "it is in the audit log" grep -q "$CASE2" "$STATE_DIR/audit.log"
gw GET /api/my/access -H "$(bearer "$P_TOKEN")"
problem 503 state_unavailable "PostgreSQL down: the list is 503 state_unavailable, not an empty list"
pg_start
ok "PostgreSQL back: the indexer's retry lists the lookup made while it was down" wait_until 20 listed "$CASE2"
finish
