#!/usr/bin/env bash
# make demo: compile the example tables in Fixtures/ with swiftpostmap, query them, and
# show that the real Postfix (when installed) reads the same tables identically.
set -euo pipefail
bin=${1:?usage: demo.sh SWIFTPOSTMAP}
work=.build/demo
rm -rf "$work" && mkdir -p "$work"
cp Fixtures/virtual Fixtures/vmailbox Fixtures/aliases Fixtures/transport Fixtures/main.cf Fixtures/expectations "$work/"
cd "$work"

# Show every command as a user would type it (swiftpostmap on PATH).
run() { printf '$ swiftpostmap %s\n' "$*"; "$bin" "$@"; }

echo "== compile"
run virtual
run vmailbox
run transport
run --aliases aliases
ls -l virtual.db vmailbox.db transport.db aliases.db

echo
echo "== query (exit status 0 = found, 1 = not found)"
for address in info@example.com sales@example.com @example.net anyone@example.net nobody@example.com; do
    printf '$ swiftpostmap -q %s virtual\n' "$address"
    "$bin" -q "$address" virtual && echo "  (exit 0)" || echo "  (exit $?: not in the table)"
done
run -q Sales@Example.COM vmailbox
printf 'info@example.com\nnobody@example.org\n' > keys
printf '$ swiftpostmap -q - vmailbox < keys\n'
"$bin" -q - vmailbox < keys || true
run -s transport
run --aliases -q root aliases
echo "(postmap -q looks up one literal key: the @example.net catch-all answers only for"
echo " the key @example.net itself; Postfix tries it at delivery time after user@domain.)"

echo
echo "== check the maps offline, as CI would"
run --lint virtual vmailbox || true
run --verify virtual
run --main-cf main.cf --virtual virtual --vmailbox vmailbox --test expectations

echo
if command -v postmap >/dev/null 2>&1; then
    echo "== the real Postfix reads the same tables"
    if diff <("$bin" --aliases -s aliases | grep -v YP_LAST | sort) <(postalias -s aliases | grep -v YP_LAST | sort) \
        >/dev/null; then
        echo "postalias -s aliases: identical to swiftpostmap --aliases -s aliases"
    else
        echo "postalias -s aliases: DIFFERS" >&2
        exit 1
    fi
    for map in virtual vmailbox transport; do
        if diff <("$bin" -s "$map" | sort) <(postmap -s "$map" | sort) >/dev/null; then
            echo "postmap -s $map: identical to swiftpostmap -s $map ($(postmap -s "$map" | wc -l) entries)"
        else
            echo "postmap -s $map: DIFFERS" >&2
            exit 1
        fi
    done
    printf '$ postmap -q info@example.com virtual\n'
    postmap -q info@example.com virtual
    printf '$ postalias -q root aliases\n'
    postalias -q root aliases
else
    echo "(Postfix is not installed here, so there is no second opinion to show.)"
fi
