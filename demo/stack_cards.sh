# stack_cards.sh - the e-signature card world of the demo stack (DESIGN §4.4;
# docs/cards.md), sourced by demo/stack.sh: the demo cards (SoftHSM2 tokens,
# certs/mkcards.sh), the E-Signature CA's OCSP responder, and the card
# fields of people.json.
#
# Cards (labels are "card-<FIN>" for people of the registry, in rowid order):
#   rows 0..2   citizens (EC P-256)  rows 8, 9  judges (title=Judge + judge policy)
#   row 3       a citizen with an RSA-2048 card, row 4 one with an EC P-384 card
#   row 10      a citizen whose card is revoked (both certificates)
#   card-expired (row 11's FIN), card-mobile (row 11, mobile-signature policy),
#   card-nofin (no FIN), card-unknownca (a judge look-alike from an unknown root)
# so the judges are real people of the registry, and a judge can look up the
# others.  The tokens live in STATE_DIR/cards/tokens; every PKCS#11 client
# needs SOFTHSM2_CONF=STATE_DIR/cards/softhsm2.conf to see them.
#
# The OCSP responder (`openssl ocsp`, named darvaza-ocsp-esign for pid_of)
# answers for the E-Signature CA on CARD_OCSP_PORT (the certificates' AIA):
# it serves STATE_DIR/certs/esign-index.txt, signs with the delegated
# responder certificate esign-ocsp.pem, and its answers carry a nextUpdate
# (CARD_OCSP_NDAYS) so that the gateway caches them.  OpenSSL 3.0's
# responder binds the port on every address (no host part).
#
# Environment: CARDS=0 leaves the card world out (no tokens, no responder).

CARD_OCSP_PORT=9105 # certs/mkcards.sh writes http://127.0.0.1:9105/ into every card certificate
CARD_OCSP_NDAYS=${CARD_OCSP_NDAYS:-1}
CARDS=${CARDS:-1}
[ "$CARDS" = 0 ] || PROCS=(ocsp-esign "${PROCS[@]}")

# card_specs: the certs/mkcards.sh arguments for the registry's people.
card_specs() {
    local rows=() fin name surname i
    mapfile -t rows < <(sqlite3 -separator '|' "$STATE/registry.db" \
        "SELECT fin, name, surname FROM person ORDER BY rowid LIMIT 12")
    [ ${#rows[@]} -eq 12 ] || die "the registry has fewer than 12 people: no demo cards"
    for i in 0 1 2 3 4 8 9 10; do
        IFS='|' read -r fin name surname <<<"${rows[$i]}"
        case $i in
        3) echo "card-$fin:citizen:$fin:$name:$surname:rsa" ;;
        4) echo "card-$fin:citizen:$fin:$name:$surname:ec384" ;;
        8 | 9) echo "card-$fin:judge:$fin:$name:$surname" ;;
        10) echo "card-$fin:revoked:$fin:$name:$surname" ;;
        *) echo "card-$fin:citizen:$fin:$name:$surname" ;;
        esac
    done
    IFS='|' read -r fin name surname <<<"${rows[11]}"
    echo "card-expired:expired:$fin:$name:$surname"
    echo "card-mobile:mobilepolicy:$fin:$name:$surname"
    echo "card-nofin:nofin::Anonim:Şəxs"
    IFS='|' read -r fin name surname <<<"${rows[8]}"
    echo "card-unknownca:unknownca:$fin:$name:$surname"
}

# make_cards: the tokens, certificates, OCSP index and CRL (idempotent).
make_cards() {
    local specs=()
    [ "$CARDS" != 0 ] || return 0
    mapfile -t specs < <(card_specs)
    "$ROOT/certs/mkcards.sh" "$STATE/certs" "$STATE/cards" "${specs[@]}" \
        >>"$STATE/logs/mkcards.log" 2>&1 ||
        { tail -n 5 "$STATE/logs/mkcards.log" >&2; die "certs/mkcards.sh failed"; }
    say "$(tail -n 1 "$STATE/logs/mkcards.log")"
}

# start_card_ocsp: the E-Signature CA's OCSP responder.  Waits until it
# says it listens (probing the port with a connection would wedge it:
# `openssl ocsp` serves one connection at a time); -timeout bounds a client
# that connects and sends nothing, -ignore_err keeps it up after a bad one.
start_card_ocsp() {
    local c="$STATE/certs"
    [ "$CARDS" != 0 ] || return 0
    [ -z "$(pid_of ocsp-esign)" ] || die "ocsp-esign already runs (pid $(pid_of ocsp-esign))"
    ! port_busy "$CARD_OCSP_PORT" || die "port $CARD_OCSP_PORT is busy (another stack or program listens on it)"
    launch ocsp-esign bash -c 'exec -a darvaza-ocsp-esign openssl ocsp "$@"' darvaza-ocsp-esign \
        -index "$c/esign-index.txt" -port "$CARD_OCSP_PORT" \
        -rsigner "$c/esign-ocsp.pem" -rkey "$c/esign-ocsp.key" -CA "$c/esign-ca.pem" \
        -ndays "$CARD_OCSP_NDAYS" -timeout 5 -ignore_err
    wait_for ocsp-esign 10 grep -q 'waiting for OCSP client connections' "$STATE/logs/ocsp-esign.log"
    say "e-signature OCSP responder on port $CARD_OCSP_PORT (pid $(pid_of ocsp-esign))"
}

# stop_card_ocsp: the responder alone (tests of "status cannot be learned").
stop_card_ocsp() {
    local pid end
    pid=$(pid_of ocsp-esign)
    [ -n "$pid" ] || { say "ocsp-esign is not running"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    end=$(($(date +%s) + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    rm -f "$STATE/pids/ocsp-esign.pid"
    # The port is free once the listening socket is gone.
    end=$(($(date +%s) + STOP_TIMEOUT))
    while port_busy "$CARD_OCSP_PORT" && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
    say "ocsp-esign (pid $pid) stopped"
}

# card_people: adds to the card holders of people.json "card_label",
# "card_pin", "card_kind" (citizen|judge|revoked) and "role"
# (judge|citizen).  Run at every start (people.json may be older than the
# cards).  The other test cards are in STATE_DIR/cards/cards.json.
card_people() {
    local out="$STATE/people.json" tmp
    [ "$CARDS" != 0 ] && [ -s "$STATE/cards/cards.json" ] && [ -s "$out" ] || return 0
    tmp=$(mktemp "$out.XXXXXX")
    jq --slurpfile cards "$STATE/cards/cards.json" '
        ($cards[0] | map(select(.kind == "citizen" or .kind == "judge" or .kind == "revoked"))
                   | map({key: .fin, value: {card_label: .label, card_pin: .pin,
                                             card_kind: .kind, role: .role}}) | from_entries) as $m
        | map(. + ($m[.fin] // {}))' "$out" >"$tmp" ||
        { rm -f "$tmp"; die "cannot add the card holders to $out"; }
    chmod 600 "$tmp"
    mv "$tmp" "$out"
    say "cards: SOFTHSM2_CONF=$STATE/cards/softhsm2.conf darvaza-card list"
}
