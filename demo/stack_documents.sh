# stack_documents.sh - the signed-documents world of the demo stack (DESIGN
# §4.7, §5; docs/signatures.md), sourced by demo/stack.sh: the RFC 3161
# time-stamping authority (`darvaza-peer tsa`, h2c on TSA_ADDR, the
# certificate certs/tsa.pem) and the e-court (`darvaza-peer court`, h2 + TLS
# on COURT_ADDR, the gateway's client certificate required; it checks
# signatures against the e-signature and mobile chains and time-stamps
# against the TSA's issuing CA alone (the gateway CA, not the root: any CA
# under the root could otherwise certify a TSA), and reaches the registry
# with certs/court-client.pem).
# The gateway's documents: section points at the TSA (demo/darvaza.yaml).
#
# Environment: DOCUMENTS=0 leaves both out.

TSA_ADDR=127.0.0.1:9104
TSA_POLICY=1.3.6.1.4.1.55555.3.1 # the demo TSA's (peers/tsa.c); the court accepts it alone
COURT_ADDR=127.0.0.1:9102
DOCUMENTS=${DOCUMENTS:-1}
[ "$DOCUMENTS" = 0 ] || PROCS=(tsa court "${PROCS[@]}")

# start_tsa: the TSA alone (also `demo/stack.sh tsa-start`).
start_tsa() {
    [ "$DOCUMENTS" != 0 ] || return 0
    [ -z "$(pid_of tsa)" ] || die "tsa already runs (pid $(pid_of tsa))"
    ! port_busy "${TSA_ADDR##*:}" || die "port ${TSA_ADDR##*:} is busy (another stack or program listens on it)"
    launch tsa "$PEER_BIN" tsa --listen "$TSA_ADDR" \
        --cert "$STATE/certs/tsa.pem" --key "$STATE/certs/tsa.key"
    wait_for tsa 10 curl -sf --http2-prior-knowledge --max-time 2 "http://$TSA_ADDR/_peer/requests"
    say "time-stamping authority on $TSA_ADDR (pid $(pid_of tsa))"
}

# stop_tsa: the TSA alone (tests of "TSA down": `demo/stack.sh tsa-stop`).
stop_tsa() {
    local pid end
    pid=$(pid_of tsa)
    [ -n "$pid" ] || { say "tsa is not running"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    end=$(($(date +%s) + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    rm -f "$STATE/pids/tsa.pid"
    say "tsa (pid $pid) stopped"
}

# start_documents: the TSA, then the court (before the gateway: the court
# fetches the gateway's JWKS lazily, at its first request).
start_documents() {
    local c="$STATE/certs"
    [ "$DOCUMENTS" != 0 ] || return 0
    ! port_busy "${COURT_ADDR##*:}" || die "port ${COURT_ADDR##*:} is busy (another stack or program listens on it)"
    start_tsa
    launch court "$PEER_BIN" court --listen "$COURT_ADDR" --db "$STATE/court.db" \
        --tls-cert "$c/peer-tls.pem" --tls-key "$c/peer-tls.key" --client-ca "$c/gateway-ca.pem" \
        --jwks-url "$GW_URL/.well-known/jwks.json" --cacert "$c/root.pem" \
        --iss "$GW_ISS" --aud court \
        --esign-ca "$c/esign-chain.pem" --mobile-ca "$c/mobile-chain.pem" --tsa-ca "$c/gateway-ca.pem" \
        --tsa-policy "$TSA_POLICY" \
        --revocation "${COURT_REVOCATION:-ocsp}" \
        --registry-url "https://localhost:${REGISTRY_ADDR##*:}" \
        --registry-cert "$c/court-client.pem" --registry-key "$c/court-client.key"
    wait_for court 10 curl -sf --http2 --max-time 2 --cacert "$c/root.pem" \
        --cert "$c/gateway-client.pem" --key "$c/gateway-client.key" \
        "https://localhost:${COURT_ADDR##*:}/_peer/requests"
    say "e-court on $COURT_ADDR (pid $(pid_of court))"
}
