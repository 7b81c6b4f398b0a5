#!/usr/bin/env bash
# t_check.sh - `darvazad -c FILE --check [--dump]` (DESIGN §4.10): accepts the
# stack's config, rejects broken configs and policies naming file:line,
# dumps the effective config without secrets, in a form it accepts again.
. "$(dirname "$0")/lib.sh"

plan 12
stack_start   # makes the PKI, keys and config that --check reads
DZD="$BUILD_DIR/darvazad"
CONF=$(find "$STATE_DIR" -maxdepth 2 -name 'darvaza*.yaml' | head -n 1)
[ -n "$CONF" ] || bail "no darvaza*.yaml in $STATE_DIR"
diag "config: ${CONF#"$ROOT"/}"
check() { "$DZD" -c "$1" --check "${@:2}"; }

OUT=$(check "$CONF" 2>&1)
is "$?" 0 "--check accepts the stack's config${OUT:+ ($OUT)}"

# An unknown key on line 2.
{ head -n 1 "$CONF"; echo "no_such_key: 1"; tail -n +2 "$CONF"; } >"$WORK/broken.yaml"
OUT=$(check "$WORK/broken.yaml" 2>&1)
isnt "$?" 0 "--check refuses an unknown key"
like "$OUT" 'broken\.yaml:2([^0-9]|$)' "and names broken.yaml:2 ($OUT)"

# A value out of range on the line of the first port.
PL=$(grep -n '^[[:space:]-]*port:' "$CONF" | head -n 1 | cut -d: -f1)
sed "${PL:-1}s/port:.*/port: 99999/" "$CONF" >"$WORK/badport.yaml"
OUT=$(check "$WORK/badport.yaml" 2>&1)
like "$? $OUT" "^[1-9][0-9]* .*badport\\.yaml:${PL:-x}([^0-9]|\$)" "--check refuses port 99999 naming badport.yaml:$PL ($OUT)"

# A broken policy in a copy of the policies directory.
mkdir -p "$WORK/policies"
cp "$STATE_DIR"/policies/*.yaml "$WORK/policies/" 2>/dev/null
cat >"$WORK/policies/zz-broken.yaml" <<'EOF'
service: broken
registered_as: "DIS-9998"
upstream: http://127.0.0.1:9
routes:
  - path: /api/broken/x
    methods: [GET]
    acr: ultra-high
EOF
sed "s|^policies:.*|policies: $WORK/policies|" "$CONF" >"$WORK/badpolicy.yaml"
OUT=$(check "$WORK/badpolicy.yaml" 2>&1)
like "$? $OUT" '^[1-9][0-9]* .*zz-broken\.yaml:7([^0-9]|$)' "--check refuses a policy with acr ultra-high naming zz-broken.yaml:7 ($OUT)"

# --dump: the effective config, without secrets, loadable again.
DUMP=$(check "$CONF" --dump 2>"$WORK/dump.err")
is "$?" 0 "--check --dump exits 0"
like "$DUMP" '^gateway:' "the dump is the YAML config (has gateway:)"
ok "the dump holds no private key and no secret file's content" bash -c '
    ! grep -q "BEGIN" <<<"$1" || exit 1
    for f in "$2"/keys/* "$2"/certs/*.key; do
        [ -f "$f" ] || continue
        while IFS= read -r l; do
            [ ${#l} -ge 16 ] || continue
            case "$l" in -----*) continue ;; esac
            grep -qF -- "$l" <<<"$1" && { echo "content of $f in the dump"; exit 1; }
        done <"$f"
    done; exit 0' _ "$DUMP" "$STATE_DIR"
printf '%s\n' "$DUMP" >"$WORK/dump.yaml"
OUT=$(check "$WORK/dump.yaml" 2>&1)
is "$?" 0 "the dump passes --check again${OUT:+ ($OUT)}"

# A PKCS#11 key URI with a pin-value: refused, and the PIN is never echoed.
KL=$(grep -n '^[[:space:]-]*key:.*\.pem' "$CONF" | grep -v 'tls\|client' | head -n 1 | cut -d: -f1)
if [ -n "$KL" ]; then
    sed "${KL}s|key:.*|key: \"pkcs11:token=darvaza;object=k1;type=private?pin-value=Secret-PIN-4711\"|" "$CONF" >"$WORK/pin.yaml"
    OUT=$(check "$WORK/pin.yaml" 2>&1)
    rc=$?
    DUMP2=$(check "$WORK/pin.yaml" --dump 2>&1)
else
    rc=0 OUT="no signing key line found in $CONF" DUMP2=
fi
isnt "$rc" 0 "a signing key URI with pin-value is refused (line $KL)"
unlike "$OUT$DUMP2" 'Secret-PIN-4711' "the PIN is not echoed in the error or a dump"

finish
