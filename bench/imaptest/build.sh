#!/usr/bin/env bash
# Build Dovecot's imaptest against Debian's dovecot-dev (2.3), from a checkout of its public
# repository (github.com/dovecot/imaptest) given as $1; its source is never committed here.
#
#   apt-get install dovecot-dev autoconf automake libtool gettext
#   bench/imaptest/build.sh /path/to/imaptest-checkout   # prints the binary's path
#
# imaptest's main branch follows Dovecot 2.4's API; commit 924f619 (2022-03) is the last one
# before it, so the script exports that commit when given a git repository, and adapts its
# imap_parser_create() calls to 2.3.19's four-argument form.
set -euo pipefail
src=$1
work=${2:-/tmp/imaptest-build}
commit=${IMAPTEST_COMMIT:-924f619}
rm -rf "$work" && mkdir -p "$work"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$src" archive "$commit" | tar -x -C "$work"
    git -C "$src" rev-parse --short "$commit" > "$work/version"
else
    cp -a "$src/." "$work/"
    [ -s "$work/version" ] || echo "0.0.0-unknown" > "$work/version"
fi
cd "$work"
if grep -q "const struct imap_parser_params \*params" /usr/include/dovecot/imap-parser.h; then
    sed -i 's/imap_parser_create(\([^;]*\));/imap_parser_create(\1, NULL);/' src/*.c
fi
./autogen.sh >/dev/null 2>&1
./configure --with-dovecot=/usr/lib/dovecot >/dev/null
make -j"$(nproc)" >/dev/null 2>&1
echo "$work/src/imaptest"
