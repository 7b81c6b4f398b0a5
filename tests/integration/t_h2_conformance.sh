#!/usr/bin/env bash
# t_h2_conformance.sh - RFC 9113 error signalling of the gateway's HTTP/2
# engine, checked frame by frame with a raw client (h2raw.py) that sends what
# a polite client never would:
#   - DATA or HEADERS on a closed stream: STREAM_CLOSED (§5.1), a connection
#     error as nghttp2 signals it; frames on a stream the *server* reset are
#     ignored (§5.1 closed) and the connection keeps serving;
#   - PRIORITY on stream 0 (§6.3) or a stream depending on itself (§5.3.1):
#     PROTOCOL_ERROR;
# and that conformance did not cost the bounds: closed streams are
# remembered only up to the concurrency limit, rapid reset still ends in
# GOAWAY(ENHANCE_YOUR_CALM), a CONTINUATION flood still ends the connection.
. "$(dirname "$0")/lib.sh"

plan 22
stack_start
GW_PID=$(listener_pid 8443)
STREAMS=$(awk '/^[[:space:]]+streams:/ {print $2; exit}' "$(find "$STATE_DIR" -maxdepth 2 -name 'darvaza*.yaml' | head -n 1)" 2>/dev/null)
STREAMS=${STREAMS:-100}
diag "gateway pid ${GW_PID:-unknown}, SETTINGS_MAX_CONCURRENT_STREAMS $STREAMS"

# h2raw CASE [options]: runs one case on a new connection; sets OUT (result
# lines joined with '|'); a client that could not run the case is a diag.
h2raw() {
    local c=$1 rc
    shift
    OUT=$(/usr/bin/python3 "$LIB_DIR/h2raw.py" --cafile "$STATE_DIR/certs/root.pem" --wait 5 "$@" "$c" \
        2>"$WORK/h2raw.err")
    rc=$?
    OUT=$(printf '%s' "$OUT" | paste -sd '|')
    [ "$rc" -eq 0 ] || diag "h2raw $c exited $rc: $(tail -n 3 "$WORK/h2raw.err")"
}
line() { printf '%s' "$OUT" | cut -d'|' -f"$1"; }

# ---- controls --------------------------------------------------------------------------------------
h2raw get
is "$OUT" "STATUS 1 200" "control: a plain GET /healthz over the raw client -> 200"

# ---- §5.1: frames on closed streams --------------------------------------------------------------
h2raw data-closed
is "$OUT" "GOAWAY STREAM_CLOSED" "DATA on a stream closed by both END_STREAMs -> GOAWAY(STREAM_CLOSED)"
h2raw headers-closed
is "$OUT" "GOAWAY STREAM_CLOSED" "HEADERS on a stream closed by both END_STREAMs -> GOAWAY(STREAM_CLOSED)"
h2raw data-half-closed
is "$OUT" "GOAWAY STREAM_CLOSED" "DATA after the client's END_STREAM (half-closed remote) -> GOAWAY(STREAM_CLOSED)"
h2raw data-after-rst
is "$OUT" "GOAWAY STREAM_CLOSED" "DATA on a stream the client reset -> GOAWAY(STREAM_CLOSED) (a stream error raised to the connection, §5.4.1)"
h2raw data-after-server-rst
is "$(line 1)" "RST_STREAM 1 PROTOCOL_ERROR" "a malformed request (upper-case field name) -> RST_STREAM(PROTOCOL_ERROR) on its stream only"
is "$(line 2)" "IGNORED" "DATA the client sends on the stream the server reset is ignored (§5.1), no error"
is "$(line 3)" "STATUS 3 200" "after the stream error the same connection serves a new stream (200)"

# ---- §5.3.1, §6.3: PRIORITY -------------------------------------------------------------------------
h2raw priority-zero
is "$OUT" "GOAWAY PROTOCOL_ERROR" "PRIORITY on stream 0 -> GOAWAY(PROTOCOL_ERROR)"
h2raw priority-self
is "$OUT" "GOAWAY PROTOCOL_ERROR" "PRIORITY making stream 1 depend on itself -> GOAWAY(PROTOCOL_ERROR)"
h2raw headers-priority-self
is "$OUT" "GOAWAY PROTOCOL_ERROR" "HEADERS whose priority depends on its own stream -> GOAWAY(PROTOCOL_ERROR)"
h2raw priority-valid
is "$OUT" "STATUS 1 200" "control: a valid PRIORITY for an idle stream is accepted, the next request -> 200"

# ---- the bounds still hold -------------------------------------------------------------------------
# nghttp2 remembers at most MAX_CONCURRENT_STREAMS closed streams: after
# STREAMS + 50 more finished streams, stream 1 is forgotten and DATA on it
# is ignored like DATA on a stream never seen (the memory stays bounded).
h2raw forgotten-stream --count $((STREAMS / 2))
is "$(line 1)" "GOAWAY STREAM_CLOSED" "within the bound ($((STREAMS / 2)) more streams) the first closed stream is still known: DATA -> GOAWAY(STREAM_CLOSED)"
h2raw forgotten-stream --count $((STREAMS + 50))
is "$(line 1)" "IGNORED" "after $((STREAMS + 50)) more streams the first closed one is forgotten (bounded memory): DATA ignored"
is "$(line 2)" "STATUS $((2 * (STREAMS + 50) + 3)) 200" "and the connection still serves (200)"
h2raw rapid-reset --count 300
is "$OUT" "GOAWAY ENHANCE_YOUR_CALM" "300 streams opened and reset at once -> GOAWAY(ENHANCE_YOUR_CALM) (rapid reset)"
h2raw continuation-flood --count 200
like "$OUT" '^(GOAWAY [A-Z_]+|CLOSED)$' "a HEADERS followed by 200 CONTINUATION frames ends the connection ($OUT)"
h2raw get
is "$OUT" "STATUS 1 200" "control: a new connection after all of the above -> 200"

# ---- the same process, still healthy ----------------------------------------------------------------
is "$(listener_pid 8443)" "$GW_PID" "the same gateway process is listening as at the start"
gw GET /healthz
is "$STATUS" 200 "curl: /healthz -> 200 at the end"
mgmt /metrics
is "$STATUS" 200 "curl: /metrics on the management listener -> 200 at the end"

finish
