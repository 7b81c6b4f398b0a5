#!/usr/bin/env bash
# tests/bench/profile.sh PERF_DATA CPU_US_PER_REQUEST - where the gateway's CPU
# time per forwarded request goes, from `perf record --call-graph dwarf -p` of
# darvazad during a (c) round (BENCH_PERF=1 make bench).  Each sample is
# charged to a stage of the request: its call chain is walked from the leaf
# up and the first frame that names a stage decides (an AES routine under
# SSL_write is "TLS", a malloc under the HTTP/1.1 client is "upstream").  A
# darvazad function names the stage of the source file that defines it (the
# map below, read from the sources, so static functions count too); library
# functions are matched by name.  A sample no frame names goes to its leaf's
# object.  A stage's share of the samples times the CPU the gateway spent per
# request in that run is its microseconds per request.  Prints a markdown table.
set -u
DATA=$1
CPU_US=${2:-0}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAP=$(mktemp)
trap 'rm -f "$MAP"' EXIT
# stage_of FILES... : "function<TAB>stage" for every function defined there
# (a definition starts at column 0 with its return type on the same line).
funcs() {
    local stage=$1 f
    shift
    for f in "$@"; do
        [ -f "$ROOT/$f" ] || continue
        grep -oE '^[a-z_][a-z0-9_ ]*[ *]([a-z_][a-z0-9_]*)\(' "$ROOT/$f" | sed -E 's/.*[ *]([a-z_][a-z0-9_]*)\($/\1/' |
            awk -v s="$stage" '{ print $0 "\t" s }'
    done
}
cd "$ROOT" || exit 2
{
    # Most specific first: a name defined in two files keeps its first stage.
    funcs "assertion: ES256 signature" lib/keys/signer*.c lib/keys/ecdsa_sig.c
    funcs "assertion: claims, batch tree" lib/keys/assertion.c lib/keys/jws_batch.c lib/keys/jws.c gateway/core/batchsign.c
    funcs "audit: line, hash chain, hand-off" gateway/audit/*.c gateway/core/gwasync.c
    funcs "access log line" gateway/ops/accesslog*.c
    funcs "session, store, rate limit" gateway/state/*.c
    funcs "router, policy" gateway/policy/*.c gateway/daemon/router.c gateway/core/rctx.c
    funcs "upstream: HTTP/1.1 client, back-end socket" lib/http/h1*.c lib/http/httpc.c
    funcs "forwarding logic" gateway/forward/*.c
    funcs "thread hand-offs, wake-ups" lib/http/pool.c
    funcs "logs, metrics" lib/base/log*.c gateway/core/metrics.c
    funcs "HTTP/2 engine (ours)" lib/http/h2*.c lib/http/httpd.c
} | awk -F'\t' '!seen[$1]++' >"$MAP"
perf script -i "$DATA" -F ip,sym,dso 2>/dev/null | awk -v cpu="$CPU_US" -v map="$MAP" '
    BEGIN { FS = "\t"; while ((getline l < map) > 0) { split(l, kv, "\t"); own[kv[1]] = kv[2] }; FS = " " }
    function stage(s, d) {
        if (s ~ /fdatasync|fsync/) return "audit: fdatasync (the line made durable)"
        if (s ~ /^EVP_DigestSign|^ECDSA_|^ossl_ecdsa/) return "assertion: ES256 signature"
        if (d ~ /darvazad|inlined/ && (s in own)) return own[s]
        if (s ~ /^SSL_|^ssl3_|^tls1?_|^ossl_statem|^ssl_/) return "TLS: records, encryption, client socket"
        if (s ~ /^nghttp2_/) return "nghttp2: frames, HPACK"
        if (s ~ /pthread_cond|futex|__lll_|^sem_|eventfd/) return "thread hand-offs, wake-ups"
        if (s ~ /epoll_wait|^ev_run|epoll_poll|^ev_invoke/) return "event loop, epoll"
        return ""
    }
    function flush_sample() {
        if (nframes == 0) return
        b = ""
        for (i = 1; i <= nframes && b == ""; i++) b = stage(fsym[i], fdso[i])
        if (b == "") { d = fdso[1]; sub(/.*\//, "", d); b = "other (" d ")" }
        share[b]++; total++
        nframes = 0
    }
    /^[^ \t]/ { flush_sample(); next }          # a sample header (with -F ip,sym,dso: rare)
    /^[ \t]*$/ { flush_sample(); next }
    {
        line = $0; sub(/^[ \t]+/, "", line)
        dso = line; sub(/.*\(/, "", dso); sub(/\)$/, "", dso)
        sym = line; sub(/^[0-9a-f]+ /, "", sym); sub(/ \(.*$/, "", sym); sub(/\+0x[0-9a-f]+$/, "", sym)
        nframes++; fsym[nframes] = sym; fdso[nframes] = dso
    }
    END {
        flush_sample()
        if (total <= 0) { print "(no samples: is perf allowed here? see build/bench/perf.log)"; exit }
        for (b in share) order[++m] = b
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (share[order[j]] > share[order[i]]) { t = order[i]; order[i] = order[j]; order[j] = t }
        print "| stage (by the first frame that names one, leaf up) | share | µs per request |"
        print "| --- | ---: | ---: |"
        for (i = 1; i <= m; i++) printf "| %s | %.1f %% | %.1f |\n", order[i], share[order[i]] * 100 / total, share[order[i]] / total * cpu
        printf "| **all (%d samples)** | 100 %% | %.1f |\n", total, cpu
    }'
