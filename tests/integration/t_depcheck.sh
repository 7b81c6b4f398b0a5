#!/usr/bin/env bash
# t_depcheck.sh - the dependency check of `make lint` (tools/depcheck.py)
# checked against trees made to break it: a small fake tree with the real
# layers file, compiled with cc, where each case adds one fault (an upward
# include, an upward call, a cycle across two folders of one rank, a cycle
# inside a folder that no allow-cycle group names, a peer that uses the
# gateway) and must be refused with the fault named; then the real tree
# passes, and a copy of it with one upward include added is refused.
. "$(dirname "$0")/lib.sh"

plan 14
CHECK="$ROOT/tools/depcheck.py"
LAYERS="$ROOT/tools/layers.conf"
T="$WORK/tree"

# fake_tree: lib/base/a.c (a leaf), lib/http/b.c using a(), gateway/core/c.c
# using b(): arrows down only.
fake_tree() {
    rm -rf "$T" && mkdir -p "$T/lib/base" "$T/lib/http" "$T/gateway/core" "$T/gateway/auth" \
        "$T/gateway/sign" "$T/peers"
    printf 'int a(void);\n' >"$T/lib/base/a.h"
    printf '#include "base/a.h"\nint a(void) { return 1; }\n' >"$T/lib/base/a.c"
    printf 'int b(void);\n' >"$T/lib/http/b.h"
    printf '#include "http/b.h"\n#include "base/a.h"\nint b(void) { return a(); }\n' >"$T/lib/http/b.c"
    printf '#include "http/b.h"\nint c(void);\nint c(void) { return b(); }\n' >"$T/gateway/core/c.c"
}
build_tree() {
    local f
    rm -rf "$T/obj"
    for f in $(cd "$T" && find lib gateway peers -name '*.c'); do
        mkdir -p "$T/obj/$(dirname "$f")"
        cc -std=c17 -w -I"$T/lib" -I"$T/gateway" -c "$T/$f" -o "$T/obj/${f%.c}.o" || return 1
    done
}
check() { python3 "$CHECK" --root "$T" --objdir "$T/obj" --layers "$LAYERS" >"$WORK/out" 2>&1; }

fake_tree && build_tree
ok "a tree whose arrows point down passes" check

# 1. An upward include: lib/base includes a lib/http header (no call).
fake_tree
printf '#include "http/b.h"\n' >>"$T/lib/base/a.c"
build_tree
nok "an upward include (lib/base -> lib/http) is refused" check
like "$(cat "$WORK/out")" 'lib/base/a.c:3: #include "http/b.h" points up' "... and named with file:line"

# 2. An upward call without an include (a prototype written by hand).
fake_tree
printf 'int c(void);\nint a2(void);\nint a2(void) { return c(); }\n' >>"$T/lib/base/a.c"
build_tree
nok "an upward call (lib/base calls gateway/core) is refused" check
like "$(cat "$WORK/out")" 'lib/base/a.c: calls c \(gateway/core/c.c\): points up' "... and named with the symbol"

# 3. A cycle across two folders of one rank (auth <-> sign).
fake_tree
printf 'int s(void);\nint u(void);\nint u(void) { return s(); }\n' >"$T/gateway/auth/u.c"
printf 'int u(void);\nint s(void);\nint s(void) { return u(); }\n' >"$T/gateway/sign/s.c"
build_tree
nok "a cycle across folders (gateway/auth <-> gateway/sign) is refused" check
like "$(cat "$WORK/out")" 'cycle gateway/auth/u <-> gateway/sign/s: crosses folders' "... and the cycle is named"

# 4. A cycle inside one folder that no allow-cycle group names.
fake_tree
printf 'int c(void);\nint d(void);\nint d(void) { return c(); }\n' >"$T/gateway/core/d.c"
printf 'int d(void);\nint c2(void);\nint c2(void) { return d(); }\n' >>"$T/gateway/core/c.c"
build_tree
nok "a cycle inside gateway/core with no allow-cycle entry is refused" check
like "$(cat "$WORK/out")" 'cycle gateway/core/c <-> gateway/core/d: is in no allow-cycle group' "... and named"

# 5. A peer that calls into the gateway (peers may use lib only).
fake_tree
printf 'int c(void);\nint p(void);\nint p(void) { return c(); }\n' >"$T/peers/p.c"
build_tree
nok "a peer using gateway code is refused" check

# The real tree, from this build's objects.
ok "the real tree passes ($BUILD_DIR objects)" python3 "$CHECK" --root "$ROOT" --objdir "$BUILD_DIR/obj"

# A copy of the real sources with one upward include added to lib/base.
R="$WORK/real"
rm -rf "$R" && mkdir -p "$R/tools"
cp -r "$ROOT/lib" "$ROOT/gateway" "$ROOT/peers" "$ROOT/pkcs11" "$R/"
cp "$LAYERS" "$R/tools/"
printf '#include "core/rctx.h"\n' >>"$R/lib/base/buf.c"
python3 "$CHECK" --root "$R" --objdir "$BUILD_DIR/obj" >"$WORK/out" 2>&1
is "$?" 1 "the real tree with lib/base/buf.c including core/rctx.h is refused"
like "$(cat "$WORK/out")" 'lib/base/buf.c:[0-9]+: #include "core/rctx.h" points up' "... at that line"
finish
