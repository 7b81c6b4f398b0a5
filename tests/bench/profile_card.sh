#!/usr/bin/env bash
# tests/bench/profile_card.sh PERF_DATA CPU_US_PER_LOGIN [ECDSA_VERIFY_PER_S] - where the
# gateway's CPU per card login goes, from `perf record --call-graph dwarf -p` of
# darvazad during card logins (BENCH_PERF=1 tests/bench/card.sh).  Each sample
# is charged to the first stage named by its call chain, walked from the leaf
# up (an EC multiplication under X509_verify_cert is "chain validation", one
# under the TLS handshake is "TLS handshake").  Debian's libcrypto and libssl
# carry no symbol table, so their frames are named by the nearest exported
# symbol below the address (good enough for the stages, which are named by
# darvazad's own frames or by exported entry points).  A stage's share of the
# samples times the CPU per login is its microseconds per login; with the
# machine's ECDSA P-256 verifications per second, also in verifications.
set -u
DATA=$1
CPU_US=${2:-0}
VERIFY=${3:-0}
perf script -i "$DATA" -F tid,ip,sym,dso 2>/dev/null | python3 -c '
import bisect, collections, re, subprocess, sys
cpu_us, verify = float(sys.argv[1] or 0), float(sys.argv[2] or 0)
# (stage, frames that name it); most specific first.
STAGES = [
    ("chain validation (X509_verify_cert: the chain'"'"'s signatures, times, policies, CRLs)", {"run_verify"}),
    ("revocation: OCSP cache lookup", {"leaf_revocation"}),
    ("certificate check, the rest (floor, key usage, FIN, digest)", {"dz_x509_validate"}),
    ("certificate parse (DER to X509, OpenSSL decoders)", {"dz_x509_from_der"}),
    ("challenge signature (dz_sig_verify)", {"dz_sig_verify"}),
    ("TLS handshake (ECDHE, server signature, certificates)", {"handshake", "SSL_do_handshake"}),
    ("audit line (writer thread, fdatasync, transparency index)", {"writer_main", "indexer_main", "dz_gw_audit", "dz_gw_audit_rec"}),
    ("access log", {"dz_accesslog_request", "accesslog_main"}),
    ("session and store", {"dz_session_create", "dz_sessidx_add", "dz_store_put", "dz_store_take", "dz_store_incr"}),
    ("TLS records, HTTP/2, request parsing, answers", {"SSL_read", "SSL_write", "nghttp2_session_mem_recv", "nghttp2_session_mem_send", "dz_router_on_request", "json_loadb"}),
    ("connections and the event loop: accept, close, wake-ups, thread hand-offs", {"accept_cb", "on_close", "dz_h2conn_close", "ev_run", "pool_main"}),
]
syms = {}
def near(dso, ip):
    if dso not in syms:
        out = subprocess.run(["nm", "-D", "--defined-only", dso], capture_output=True, text=True).stdout
        l = sorted((int(p[0], 16), p[2]) for p in (x.split() for x in out.split("\n")) if len(p) == 3 and p[1] in "TtWi")
        syms[dso] = ([a for a, _ in l], [n for _, n in l])
    a, n = syms[dso]
    i = bisect.bisect_right(a, ip) - 1
    return n[i].split("@")[0] if i >= 0 else "?"
samples, cur = [], None
for line in sys.stdin:
    if line and not line[0].isspace():
        if cur: samples.append(cur)
        cur = []
        continue
    m = re.match(r"\s+([0-9a-f]+) (.*) \((.*)\)$", line.rstrip())
    if not m or cur is None:
        continue
    ip, sym, dso = m.groups()
    if sym.startswith("[unknown]") and ("libcrypto" in dso or "libssl" in dso):
        sym = near(dso, int(ip, 16))
    cur.append(re.sub(r"\+0x[0-9a-f]+$", "", sym))
if cur: samples.append(cur)
count = collections.Counter()
for s in samples:
    stage = "other (kernel scheduling, timers, idle wake-ups)"
    for f in s:
        hit = next((name for name, fr in STAGES if f in fr), None)
        if hit:
            stage = hit
            break
    count[stage] += 1
n = len(samples) or 1
print(f"{len(samples)} samples")
print()
print("| stage | share | µs per login | ECDSA P-256 verifications |")
print("| --- | ---: | ---: | ---: |")
for name, c in count.most_common():
    us = cpu_us * c / n
    eq = f"{us / (1e6 / verify):.1f}" if verify > 0 else "-"
    print(f"| {name} | {100 * c / n:.1f} % | {us:.0f} | {eq} |")
' "$CPU_US" "$VERIFY"
