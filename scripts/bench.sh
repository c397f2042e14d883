#!/usr/bin/env bash
# make bench: the real postmap and swiftpostmap side by side on the same generated tables.
# For each size and type: median wall time of 3 builds, peak memory (max RSS) and table
# size, and the ratio postmap/swiftpostmap (above 1: swiftpostmap is faster or smaller).
# Also a query run: 20,000 keys through "-q -". Sizes: BENCH_SIZES (default 10000 100000 300000).
set -euo pipefail
bin=${1:?usage: bench.sh SWIFTPOSTMAP}
postmap=$(command -v postmap || echo /usr/sbin/postmap)
[ -x "$postmap" ] || { echo "bench: the real postmap is not installed" >&2; exit 1; }
sizes=${BENCH_SIZES:-10000 100000 300000}
work=${BENCH_DIR:-$(mktemp -d /tmp/swiftpostmap-bench.XXXXXX)}
mkdir -p "$work/config"
printf 'compatibility_level = 3.6\n' > "$work/config/main.cf"
export MAIL_CONFIG="$work/config"

generate() { # N FILE: a virtual(5)-like table, mixed case, a few multi-address values
    python3 - "$1" "$2" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
r = random.Random(42)
with open(path, "w") as f:
    f.write("# generated for make bench\n")
    for i in range(n):
        user = "user%d.%06d" % (i, r.randint(0, 999999))
        dest = ", ".join("dest%d@example.org" % r.randint(0, 10**6) for _ in range(r.randint(1, 3)))
        f.write("%s@Example%d.COM\t%s\n" % (user, i % 97, dest))
PY
}

measure() { # PROGRAM ARGS...: prints "seconds maxrss_kb" of the median of 3 runs
    local runs=()
    for _ in 1 2 3; do
        /usr/bin/time -o "$work/time" -f '%e %M' "$@" >/dev/null 2>&1
        runs+=("$(tail -1 "$work/time")")
    done
    printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p
}

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2fx' % (a/b if b else 0))" "$1" "$2"; }

printf '%-8s %-6s %-9s %10s %10s %7s %11s %11s %7s %11s %11s %7s\n' \
    entries type operation "postmap s" "swift s" ratio "postmap KB" "swift KB" ratio "postmap B" "swift B" ratio
for n in $sizes; do
    src="$work/src-$n"
    generate "$n" "$src"
    cp "$src" "$src-swift"
    for type in hash btree; do
        read -r pt pm < <(measure "$postmap" "$type:$src")
        read -r st sm < <(measure "$bin" "$type:$src-swift")
        ps=$(stat -c %s "$src.db")
        ss=$(stat -c %s "$src-swift.db")
        # Both tables must hold the same records.
        if ! cmp -s <("$postmap" -s "$type:$src" | sort) <("$postmap" -s "$type:$src-swift" | sort); then
            echo "bench: the two $type tables for $n entries differ" >&2
            exit 1
        fi
        printf '%-8s %-6s %-9s %10s %10s %7s %11s %11s %7s %11s %11s %7s\n' "$n" "$type" build \
            "$pt" "$st" "$(ratio "$pt" "$st")" "$pm" "$sm" "$(ratio "$pm" "$sm")" "$ps" "$ss" "$(ratio "$ps" "$ss")"
        keys="$work/keys-$n"
        awk -F'\t' 'c >= 20000 { exit } NR > 1 && NR % 7 == 0 { print $1; c++ }
            NR % 11 == 0 { print "missing" NR "@example.net"; c++ }' "$src" > "$keys"
        read -r pt pm < <(measure sh -c "\"$postmap\" -q - $type:$src < $keys")
        read -r st sm < <(measure sh -c "\"$bin\" -q - $type:$src-swift < $keys")
        printf '%-8s %-6s %-9s %10s %10s %7s %11s %11s %7s\n' "$n" "$type" "query" \
            "$pt" "$st" "$(ratio "$pt" "$st")" "$pm" "$sm" "$(ratio "$pm" "$sm")"
    done
    rm -f "$src"* "$work/keys-$n"
done
echo "(work directory: $work; both programs read $MAIL_CONFIG/main.cf)"
