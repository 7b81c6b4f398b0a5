#!/usr/bin/env bash
# t_cluster_tickets.sh - TLS session tickets across the demo cluster's two
# instances (listeners[].tls.ticket_keys; docs/operations.md "Several
# instances"): both public listeners share one key file, so a session made
# on A resumes on B and the other way, and through haproxy every reconnection
# resumes whichever instance it lands on.  Rotation by SIGHUP: B with a new
# first key and the old one second still resumes old sessions and hands out
# tickets under the new key; A without the new key makes a full handshake
# for them (not an error); the old key dropped, its sessions make full
# handshakes.  A reload with a bad key file keeps the keys in force, and
# darvazad --check refuses keys on the card listener.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/cluster.sh"

plan 27

for t in haproxy redis-server openssl xxd; do
    command -v "$t" >/dev/null || bail "$t is not installed"
done
cluster_start CARDS=0 DOCUMENTS=0 MOBILE=0 PEOPLE_REGISTERED=1
pass "the cluster started: instances A and B behind haproxy"

ROOTCA="$STATE_DIR/certs/root.pem"
KEYS="$CLUSTER_DIR/tickets"
A_HP=localhost:8451
B_HP=localhost:8452
LB_HP=localhost:8443

# s_client HOST:PORT ARGS...: "Reused, TLSv1.3" or "New, TLSv1.3" (openssl's
# words for the handshake); stdin closed at once.
s_client() {
    local hp=$1
    shift
    timeout 30 openssl s_client -connect "$hp" -servername localhost -alpn h2 -CAfile "$ROOTCA" \
        "$@" </dev/null 2>/dev/null | grep -aEo '^(Reused|New), TLSv1\.[23]' | head -n 1
}
# sess_out HOST:PORT FILE ARGS...: the same, keeping the session in FILE.  A
# TLS 1.3 ticket comes after the handshake: stdin stays open until s_client
# has written it (then EOF ends the connection).
sess_out() {
    local hp=$1 f=$2
    shift 2
    rm -f "$f"
    { wait_until 10 test -s "$f"; } </dev/null | {
        timeout 30 openssl s_client -connect "$hp" -servername localhost -alpn h2 -CAfile "$ROOTCA" \
            -sess_out "$f" "$@" 2>/dev/null | grep -aEo '^(Reused|New), TLSv1\.[23]' | head -n 1
    }
}
# ticket_of: the key name (hex) of the ticket in a session printed by
# openssl (stdin): the ticket's first 16 bytes, as the gateway wrote them.
ticket_of() {
    awk '/TLS session ticket:/ { getline; sub(/^ *0000 - /, ""); print substr($0, 1, 47); exit }' |
        tr -d ' -'
}
# ticket_name FILE: the same for a stored session.
ticket_name() { openssl sess_id -in "$1" -noout -text 2>/dev/null | ticket_of; }
key_name() { head -c 16 "$1" | xxd -p; }
pid_of_b() { cat "$CLUSTER_DIR/pids/darvazad-b.pid"; }
reloads_b() { metric_of B "darvaza_config_reloads_total{result=\"$1\"}"; }
# set_keys_b LIST: B's public listener with ticket_keys LIST, then SIGHUP and
# wait until B counts the reload as RESULT (success|failure).
set_keys_b() {
    local result=${2:-success} before
    before=$(reloads_b "$result")
    sed -i "s|^      ticket_keys: .*|      ticket_keys: $1|" "$CLUSTER_DIR/b/darvaza.yaml"
    kill -HUP "$(pid_of_b)"
    b_reloaded() { [ "$(reloads_b "$result")" -gt "${before:-0}" ]; }
    wait_until 15 b_reloaded
}

is "$(stat -c '%a %s' "$KEYS/current.key")" "600 80" "the cluster's ticket key file: 80 bytes, mode 0600"
is "$(grep -c '^      ticket_keys: ' "$CLUSTER_DIR/b/darvaza.yaml")" 1 \
    "B's config names it once (the public listener; the card listener issues no tickets)"

# ---- one key file: a session resumes on the other instance --------------------------------
for v in 3 2; do
    is "$(sess_out "$A_HP" "$WORK/a.$v" -tls1_$v)" "New, TLSv1.$v" "TLS 1.$v: a full handshake on A, its session kept"
    is "$(s_client "$B_HP" -tls1_$v -sess_in "$WORK/a.$v")" "Reused, TLSv1.$v" "B resumes A's TLS 1.$v session"
done
sess_out "$B_HP" "$WORK/b.3" >/dev/null
is "$(s_client "$A_HP" -sess_in "$WORK/b.3")" "Reused, TLSv1.3" "A resumes B's session"
is "$(ticket_name "$WORK/b.3")" "$(key_name "$KEYS/current.key")" "B's ticket is under the shared key (its name)"

# Through haproxy (leastconn: consecutive connections alternate): every one
# resumes, whichever instance takes it.  With keys of their own, about half
# would be full handshakes.
R=0
for _ in $(seq 1 20); do
    [ "$(s_client "$LB_HP" -sess_in "$WORK/a.3")" = "Reused, TLSv1.3" ] && R=$((R + 1))
done
is "$R" 20 "20 reconnections through haproxy with A's session: 20 resumed"

# ---- rotation by reload: a new first key, the old one second ------------------------------
(umask 077 && openssl rand 80 >"$KEYS/next.key")
ok "B reloads with [next, current] (SIGHUP)" set_keys_b "[$KEYS/next.key, $KEYS/current.key]"
is "$(sess_out "$B_HP" "$WORK/a-on-b.3" -sess_in "$WORK/a.3")" "Reused, TLSv1.3" \
    "TLS 1.3: a session under the old key (second in B's list) still resumes on B"
is "$(ticket_name "$WORK/a-on-b.3")" "$(key_name "$KEYS/next.key")" \
    "... and the client got a new ticket under B's new first key"
# TLS 1.2: s_client keeps no session of a resumed handshake in -sess_out, but
# prints the one it ends with, which holds the ticket the gateway renewed.
OUT12=$(timeout 30 openssl s_client -connect "$B_HP" -servername localhost -alpn h2 -CAfile "$ROOTCA" \
    -tls1_2 -sess_in "$WORK/a.2" </dev/null 2>/dev/null | tr -d '\000')
is "$(grep -aEo '^(Reused|New), TLSv1\.[23]' <<<"$OUT12" | head -n 1)" "Reused, TLSv1.2" \
    "TLS 1.2: a session under the old key still resumes on B"
is "$(ticket_of <<<"$OUT12")" "$(key_name "$KEYS/next.key")" \
    "... and B renewed its ticket under the new first key in the resumed handshake"
sess_out "$B_HP" "$WORK/b-next.3" >/dev/null
is "$(ticket_name "$WORK/b-next.3")" "$(key_name "$KEYS/next.key")" "B's new sessions' tickets are under the new key"
is "$(s_client "$A_HP" -sess_in "$WORK/b-next.3")" "New, TLSv1.3" \
    "A, without the new key yet, takes no such ticket: a full handshake, not an error"
on A gw GET /healthz
is "$STATUS" 200 "(A serves as ever)"

# ---- the old key dropped ---------------------------------------------------------------------
ok "B reloads with [next] only" set_keys_b "[$KEYS/next.key]"
is "$(s_client "$B_HP" -sess_in "$WORK/a.3")" "New, TLSv1.3" "a session under the dropped key: a full handshake on B"
is "$(s_client "$B_HP" -sess_in "$WORK/b-next.3")" "Reused, TLSv1.3" "one under the new key resumes"

# ---- a bad key file on reload: the keys in force stay ------------------------------------------
(umask 077 && openssl rand 80 >"$KEYS/loose.key") && chmod 0644 "$KEYS/loose.key"
ok "a reload naming a key file others can read fails (B counts a failed reload)" \
    set_keys_b "[$KEYS/loose.key]" failure
like "$(grep -F '"event":"reload_failed"' "$CLUSTER_DIR/logs/darvazad-b.log" | tail -n 1)" \
    "ticket_keys\\[0\\]: $KEYS/loose.key is accessible by group or others" \
    "the log names the key, the file and the reason (with the config's line)"
is "$(s_client "$B_HP" -sess_in "$WORK/b-next.3")" "Reused, TLSv1.3" "B keeps its keys: sessions still resume"

# ---- darvazad --check: never on the card listener --------------------------------------------
sed -e "s|^      ticket_keys: .*|      ticket_keys: [$KEYS/current.key]|" \
    -e "/^      client_ca: /a\\      ticket_keys: [$KEYS/current.key]" \
    "$CLUSTER_DIR/b/darvaza.yaml" >"$WORK/card-keys.yaml"
OUT=$("$BUILD_DIR/darvazad" --check -c "$WORK/card-keys.yaml" 2>&1)
is "$?" 1 "darvazad --check with ticket_keys on the card listener -> exit 1"
like "$OUT" "card-keys.yaml:[0-9]+: listeners\\[1\\]\\.tls\\.ticket_keys: not with client_auth: optional or required" \
    "... naming the file, the line and the key, and why: $(one_line "$OUT")"

cluster_finish
