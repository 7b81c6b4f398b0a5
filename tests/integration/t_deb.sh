#!/usr/bin/env bash
# t_deb.sh - `make deb` builds an installable Debian package: dpkg-deb lists
# the programs, man pages, unit and snippets; dpkg -i installs it on this
# machine (creating the darvaza account), the installed darvazad answers
# --version, and dpkg --purge removes it again.  Not started: the package
# leaves the service disabled until a configuration exists.
# run.sh: alone (it changes the machine: packages or system users)
. "$(dirname "$0")/lib.sh"
plan 9

VERSION_WANT=$(cat "$ROOT/VERSION")
DEB="$ROOT/build/deb/darvaza_${VERSION_WANT}-1_$(dpkg --print-architecture)"
DEB="$DEB.deb"

if make -C "$ROOT" --no-print-directory deb >"$WORK/deb.log" 2>&1 && [ -f "$DEB" ]; then
    pass "make deb builds ${DEB#"$ROOT"/}"
else
    fail "make deb builds ${DEB#"$ROOT"/}" "$(tail -n 30 "$WORK/deb.log")"
fi
list=$(dpkg-deb -c "$DEB" 2>&1 | awk '{print $6}' | sed 's|^\./|/|')
missing=""
for f in /usr/sbin/darvazad /usr/bin/darvaza /usr/bin/darvaza-card /usr/share/man/man8/darvazad.8.gz \
    /usr/share/man/man5/darvaza.yaml.5.gz /usr/share/man/man1/darvaza.1.gz /usr/share/man/man1/darvaza-card.1.gz \
    /lib/systemd/system/darvazad.service /usr/lib/sysusers.d/darvaza.conf /usr/lib/tmpfiles.d/darvaza.conf \
    /etc/logrotate.d/darvaza /etc/darvaza/darvaza.yaml.example /usr/share/darvaza/web/index.html \
    /usr/share/darvaza/examples/policies/registry.yaml; do
    grep -qxF "$f" <<<"$list" || missing+=" $f"
done
is "$missing" "" "dpkg-deb -c lists the programs, man pages, unit and snippets"
like "$(dpkg-deb -f "$DEB" Depends)" 'libnghttp2-14.*|libssl3' "the package depends on the shared libraries it links"

if dpkg-query -W -f='${Status}' darvaza 2>/dev/null | grep -q 'ok installed'; then
    bail "a darvaza package is already installed on this machine: not touching it"
fi
ok "dpkg -i installs the package" dpkg -i "$DEB"
is "$(/usr/sbin/darvazad --version | head -n 1)" \
    "darvazad $VERSION_WANT (commit $(git -C "$ROOT" rev-parse --short HEAD))" "the installed darvazad answers --version"
is "$(getent passwd darvaza | cut -d: -f7)/$(stat -c '%U %a' /var/lib/darvaza)" \
    "/usr/sbin/nologin/darvaza 750" "postinst made the darvaza account and its state directory"
ok "dpkg --purge removes it" dpkg --purge darvaza
is "$(ls /usr/sbin/darvazad /lib/systemd/system/darvazad.service /etc/logrotate.d/darvaza 2>/dev/null)" "" \
    "no program, unit or snippet is left"
finish
