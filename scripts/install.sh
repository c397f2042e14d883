#!/usr/bin/env bash
# Installs, and removes, swiftpostmap's files (make install, make uninstall, make
# install-compat, make uninstall-compat).
#
#   install.sh install BIN            the binary, the man page, bash/zsh/fish completions
#   install.sh uninstall              exactly the files the manifest lists, then the manifest
#   install.sh install-compat BIN     postmap and postalias links in COMPATDIR
#   install.sh uninstall-compat       the links install-compat made (and any original it moved)
#
# Settings from the environment: DESTDIR, PREFIX, BINDIR, MANDIR, BASHDIR, ZSHDIR, FISHDIR,
# COMPATDIR, FORCE. Every installed path is listed in PREFIX/share/swiftpostmap/manifest
# (without DESTDIR), which uninstall reads; directories that other packages share are never
# removed.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DESTDIR:=}"
: "${PREFIX:=/usr/local}"
: "${BINDIR:=$PREFIX/bin}"
: "${MANDIR:=$PREFIX/share/man}"
: "${BASHDIR:=$PREFIX/share/bash-completion/completions}"
: "${ZSHDIR:=$PREFIX/share/zsh/site-functions}"
: "${FISHDIR:=$PREFIX/share/fish/vendor_completions.d}"
: "${COMPATDIR:=$PREFIX/sbin}"
: "${FORCE:=}"
: "${GZIP_MAN:=}"
MANIFEST="$PREFIX/share/swiftpostmap/manifest"
SUFFIX=".before-swiftpostmap"

die() { echo "install.sh: $*" >&2; exit 1; }

# ours LINK BIN: LINK is a symbolic link to swiftpostmap (BIN, however spelled, or another
# swiftpostmap binary).
ours() {
    [ -L "$1" ] || return 1
    local to
    to=$(readlink "$1")
    [ "$(realpath -m "$to")" = "$(realpath -m "$2")" ] || [ "$(basename "$to")" = swiftpostmap ]
}

record() {  # record PATH: add PATH (without DESTDIR) to the manifest once
    mkdir -p "$DESTDIR$(dirname "$MANIFEST")"
    touch "$DESTDIR$MANIFEST"
    grep -qxF "$1" "$DESTDIR$MANIFEST" || echo "$1" >> "$DESTDIR$MANIFEST"
}

put() {  # put MODE SOURCE TARGET
    install -D -m "$1" "$2" "$DESTDIR$3"
    record "$3"
}

case "${1:-}" in
install)
    bin="${2:?usage: install.sh install BIN}"
    [ -x "$bin" ] || die "$bin: no such program (make build first)"
    put 0755 "$bin" "$BINDIR/swiftpostmap"
    if [ -n "$GZIP_MAN" ]; then
        tmp=$(mktemp)
        gzip -9n < man/swiftpostmap.1 > "$tmp"
        put 0644 "$tmp" "$MANDIR/man1/swiftpostmap.1.gz"
        rm -f "$tmp"
    else
        put 0644 man/swiftpostmap.1 "$MANDIR/man1/swiftpostmap.1"
    fi
    put 0644 completions/swiftpostmap.bash "$BASHDIR/swiftpostmap"
    put 0644 completions/_swiftpostmap "$ZSHDIR/_swiftpostmap"
    put 0644 completions/swiftpostmap.fish "$FISHDIR/swiftpostmap.fish"
    record "$MANIFEST"
    echo "installed swiftpostmap in $DESTDIR$PREFIX (the list: $DESTDIR$MANIFEST)"
    ;;
install-compat)
    bin="${2:-$BINDIR/swiftpostmap}"
    [ -x "$DESTDIR$bin" ] || die "$DESTDIR$bin: not installed (make install first)"
    mkdir -p "$DESTDIR$COMPATDIR"
    for name in postmap postalias; do
        target="$DESTDIR$COMPATDIR/$name"
        if ours "$target" "$bin"; then
            rm -f "$target"  # ours already: pointed at this binary again, nothing moved aside
        elif [ -e "$target" ] || [ -L "$target" ]; then
            if [ -z "$FORCE" ]; then
                die "$target exists (the real Postfix $name?): not replaced; FORCE=1 moves it to $name$SUFFIX"
            fi
            if [ -e "$target$SUFFIX" ] || [ -L "$target$SUFFIX" ]; then
                die "$target$SUFFIX exists already: not overwriting it with $target"
            fi
            mv "$target" "$target$SUFFIX"
            record "$COMPATDIR/$name$SUFFIX"
        fi
        ln -s "$bin" "$target"
        record "$COMPATDIR/$name"
        echo "linked $target -> $bin"
    done
    ;;
uninstall | uninstall-compat)
    if [ ! -f "$DESTDIR$MANIFEST" ]; then
        echo "install.sh: nothing to remove ($DESTDIR$MANIFEST does not exist)"
        exit 0
    fi
    bin="$BINDIR/swiftpostmap"
    # Links first, then any original they replaced is moved back.
    while IFS= read -r path; do
        case "$path" in
        */postmap | */postalias)
            if ours "$DESTDIR$path" "$bin"; then
                rm -f "$DESTDIR$path"
                echo "removed $DESTDIR$path"
            fi
            if { [ -e "$DESTDIR$path$SUFFIX" ] || [ -L "$DESTDIR$path$SUFFIX" ]; } && [ ! -e "$DESTDIR$path" ] \
                && [ ! -L "$DESTDIR$path" ]; then
                mv "$DESTDIR$path$SUFFIX" "$DESTDIR$path"
                echo "put back $DESTDIR$path"
            fi
            ;;
        esac
    done < "$DESTDIR$MANIFEST"
    if [ "$1" = uninstall-compat ]; then
        grep -vE "/(postmap|postalias)($SUFFIX)?\$" "$DESTDIR$MANIFEST" > "$DESTDIR$MANIFEST.new" || true
        mv "$DESTDIR$MANIFEST.new" "$DESTDIR$MANIFEST"
        exit 0
    fi
    while IFS= read -r path; do
        case "$path" in
        */postmap | */postalias | *"$SUFFIX" | "$MANIFEST") ;;
        *) rm -f "$DESTDIR$path" && echo "removed $DESTDIR$path" ;;
        esac
    done < "$DESTDIR$MANIFEST"
    rm -f "$DESTDIR$MANIFEST"
    rmdir "$DESTDIR$(dirname "$MANIFEST")" 2>/dev/null || true
    ;;
*)
    die "usage: install.sh install BIN | uninstall | install-compat [BIN] | uninstall-compat"
    ;;
esac
