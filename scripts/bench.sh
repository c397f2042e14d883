#!/usr/bin/env bash
# make bench: the real postmap and swiftpostmap side by side on the same generated virtual(5)
# maps of 10k, 100k and 1M entries (and 10M with BENCH_FULL=1; or BENCH_SIZES="..."). Runs
# alternate between the two programs, BENCH_ROUNDS (default 3) rounds each; the median is
# reported: wall time, peak memory (max RSS), table size, and the ratio postmap/swiftpostmap
# (above 1: swiftpostmap is faster or smaller). Every table is checked with the real postmap:
# `-s` listings equal, and a sample of keys answered identically by `postmap -q -`.
# Sizes of 10M and more run one round each (postmap needs about four minutes for 10M). Then,
# against the 1M table (BENCH_LOOKUP_SIZE; the largest size when that one is not built):
# `-q -` with 100,000 keys, one `-q key` process (median of 200), a btree, an lmdb and a
# cdb build, and with BENCH_FULL=1 a btree build of 10M too. Writes docs/benchmarks.md and, with gnuplot,
# docs/benchmarks.png.
set -euo pipefail
bin=${1:?usage: bench.sh SWIFTPOSTMAP [DOCS_DIR]}
docs=${2:-docs}
postmap=$(command -v postmap || echo /usr/sbin/postmap)
[ -x "$postmap" ] || { echo "bench: the real postmap is not installed" >&2; exit 1; }
sizes=${BENCH_SIZES:-10000 100000 1000000}
[ "${BENCH_FULL:-0}" = 1 ] && sizes="$sizes 10000000"
rounds=${BENCH_ROUNDS:-3}
work=${BENCH_DIR:-$(mktemp -d /tmp/swiftpostmap-bench.XXXXXX)}
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/config" "$docs"
printf 'compatibility_level = 3.6\n' > "$work/config/main.cf"
export MAIL_CONFIG="$work/config"

generate() { # N FILE: mixed-case keys, one to three addresses per value
    python3 - "$1" "$2" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
r = random.Random(42)
with open(path, "w", buffering=1 << 20) as f:
    f.write("# generated for make bench\n")
    for i in range(n):
        dest = ", ".join("dest%d@example.org" % r.randint(0, 10**6) for _ in range(r.randint(1, 3)))
        f.write("user%d.%06d@Example%d.COM\t%s\n" % (i, r.randint(0, 999999), i % 97, dest))
PY
}

median() { sort -n | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }

# build TYPE SOURCE [ROUNDS]: alternating rounds; prints "postmap_s postmap_kb swift_s swift_kb"
build() {
    local type=$1 src=$2 n=${3:-$rounds} i
    : > "$work/p" ; : > "$work/s"
    for ((i = 0; i < n; i++)); do
        /usr/bin/time -a -o "$work/p" -f '%e %M' "$postmap" "$type:$src" >/dev/null 2>&1
        /usr/bin/time -a -o "$work/s" -f '%e %M' "$bin" "$type:$src-swift" >/dev/null 2>&1
    done
    echo "$(cut -d' ' -f1 "$work/p" | median) $(cut -d' ' -f2 "$work/p" | median)" \
        "$(cut -d' ' -f1 "$work/s" | median) $(cut -d' ' -f2 "$work/s" | median)"
}

# same TYPE SOURCE: the real postmap reads both tables identically (cdb, which postmap
# cannot list, by lookups alone)
same() {
    local type=$1 src=$2
    if [ "$type" != cdb ]; then
        cmp -s <("$postmap" -s "$type:$src" | sort) <("$postmap" -s "$type:$src-swift" | sort) || return 1
    fi
    awk -F'\t' 'c >= 20000 { exit } NR % 97 == 2 { print $1; c++ } NR % 89 == 0 { print "nobody" NR "@example.net"; c++ }' \
        "$src" > "$work/sample"
    cmp -s <("$postmap" -q - "$type:$src" < "$work/sample") <("$postmap" -q - "$type:$src-swift" < "$work/sample")
}

table="$work/table.txt"
plot="$work/plot.dat"
printf '| entries | type | postmap s | swiftpostmap s | ratio | postmap peak KB | swiftpostmap peak KB | ratio | postmap table B | swiftpostmap table B | ratio | Postfix reads it identically |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n' > "$table"
: > "$plot"
last=""
lookup_size=${BENCH_LOOKUP_SIZE:-1000000}
lookup_src=""
largest_src=""
for n in $sizes; do
    src="$work/src-$n"
    generate "$n" "$src"
    cp "$src" "$src-swift"
    size_rounds=$rounds
    [ "$n" -ge 10000000 ] && size_rounds=1
    read -r pt pm st sm < <(build hash "$src" "$size_rounds")
    identical=yes; same hash "$src" || identical=NO
    printf '| %s | hash | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$pt" "$st" "$(ratio "$pt" "$st")" \
        "$pm" "$sm" "$(ratio "$pm" "$sm")" "$(stat -c %s "$src.db")" "$(stat -c %s "$src-swift.db")" \
        "$(ratio "$(stat -c %s "$src.db")" "$(stat -c %s "$src-swift.db")")" "$identical" | tee -a "$table"
    echo "$n $pt $st $pm $sm" >> "$plot"
    [ -n "$last" ] && [ "$last" != "$lookup_src" ] && rm -f "$last" "$last"-swift "$last".db "$last"-swift.db
    [ "$n" = "$lookup_size" ] && lookup_src=$src
    last=$src
done
largest_src=$last
src=${lookup_src:-$last}
n=${src##*-}
single_ms=""
if [ -n "$src" ]; then
    # -q - with 100,000 keys (nine in ten present) against the hash table
    awk -F'\t' 'c >= 100000 { exit } NR > 1 && NR % 9 != 0 { print $1; c++ } NR % 9 == 0 { print "nobody" NR "@example.net"; c++ }' \
        "$src" > "$work/keys"
    : > "$work/p"; : > "$work/s"
    for ((i = 0; i < rounds; i++)); do
        /usr/bin/time -a -o "$work/p" -f '%e %M' "$postmap" -q - "hash:$src" < "$work/keys" > "$work/po"
        /usr/bin/time -a -o "$work/s" -f '%e %M' "$bin" -q - "hash:$src-swift" < "$work/keys" > "$work/so"
    done
    cmp -s "$work/po" "$work/so" || { echo "bench: -q - answers differ" >&2; exit 1; }
    pq=$(cut -d' ' -f1 "$work/p" | median); sq=$(cut -d' ' -f1 "$work/s" | median)
    # one -q process, median of 200 alternating runs, in microseconds (timed around the
    # process itself, not around a date(1) fork as well)
    key=$(awk -F'\t' 'NR == 2 { print $1; exit }' "$src")
    python3 - "$postmap" "$bin" "$key" "$src" "$work" <<'PY'
import subprocess, sys, time
postmap, ours, key, src, work = sys.argv[1:]
runs = {"p1": [], "s1": []}
for _ in range(200):
    for name, command in (("p1", [postmap, "-q", key, "hash:" + src]), ("s1", [ours, "-q", key, "hash:" + src + "-swift"])):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL)
        runs[name].append(int((time.perf_counter() - start) * 1e6))
for name, values in runs.items():
    with open(work + "/" + name, "w") as f:
        f.write("".join("%d\n" % v for v in values))
PY
    p1=$(median < "$work/p1"); s1=$(median < "$work/s1")
    {
        echo
        echo "| lookups against the $n-entry hash table | postmap | swiftpostmap | ratio |"
        echo "|---|---|---|---|"
        echo "| \`-q -\`, 100,000 keys | $pq s | $sq s | $(ratio "$pq" "$sq") |"
        echo "| one \`-q key\` process (median of 200) | $((p1 / 1000)).$(printf %03d $((p1 % 1000))) ms | $((s1 / 1000)).$(printf %03d $((s1 % 1000))) ms | $(ratio "$p1" "$s1") |"
    } | tee -a "$table"
    # btree at the lookup size, and at the largest when that is larger (one round at 10M)
    last_btree=""
    {
        echo
        printf '| entries | type | postmap s | swiftpostmap s | ratio | postmap peak KB | swiftpostmap peak KB | ratio | postmap table B | swiftpostmap table B | ratio | Postfix reads it identically |\n'
        printf '|---|---|---|---|---|---|---|---|---|---|---|---|\n'
    } | tee -a "$table"
    for bsrc in "$src" "$largest_src"; do
        [ "$bsrc" = "$src" ] || [ "${BENCH_FULL:-0}" = 1 ] || continue
        [ "$bsrc" = "$last_btree" ] && continue
        bn=${bsrc##*-}
        brounds=$rounds
        [ "$bn" -ge 10000000 ] && brounds=1
        read -r pt pm st sm < <(build btree "$bsrc" "$brounds")
        identical=yes; same btree "$bsrc" || identical=NO
        printf '| %s | btree | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$bn" "$pt" "$st" "$(ratio "$pt" "$st")" \
            "$pm" "$sm" "$(ratio "$pm" "$sm")" "$(stat -c %s "$bsrc.db")" "$(stat -c %s "$bsrc-swift.db")" \
            "$(ratio "$(stat -c %s "$bsrc.db")" "$(stat -c %s "$bsrc-swift.db")")" "$identical" | tee -a "$table"
        last_btree=$bsrc
    done
    # lmdb and cdb at the lookup size (Debian's postfix-lmdb and postfix-cdb). postmap 3.7's
    # lmdb build that outgrows lmdb_map_size starts over and then stores its keys unfolded
    # (its own lookups miss them), so ours is compared with a postmap build given a map
    # large enough from the start (not timed).
    mkdir -p "$work/bigmap"
    printf 'compatibility_level = 3.6\nlmdb_map_size = 4294967296\n' > "$work/bigmap/main.cf"
    for type in lmdb cdb; do
        read -r pt pm st sm < <(build "$type" "$src")
        identical=yes
        if [ "$type" = lmdb ]; then
            cp "$src" "$src-ref"
            MAIL_CONFIG="$work/bigmap" "$postmap" "lmdb:$src-ref"
            cp "$src.lmdb" "$src-default.lmdb"
            cp "$src-ref.lmdb" "$src.lmdb"
            same lmdb "$src" || identical=NO
            cmp -s <("$postmap" -s "lmdb:$src-default" | sort) <("$postmap" -s "lmdb:$src" | sort) \
                || identical="$identical (postmap's own default-size table is not: its keys are unfolded)"
            mv "$src-default.lmdb" "$src.lmdb"
        else
            same "$type" "$src" || identical=NO
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${src##*-}" "$type" "$pt" "$st" \
            "$(ratio "$pt" "$st")" "$pm" "$sm" "$(ratio "$pm" "$sm")" "$(stat -c %s "$src.$type")" \
            "$(stat -c %s "$src-swift.$type")" "$(ratio "$(stat -c %s "$src.$type")" "$(stat -c %s "$src-swift.$type")")" \
            "$identical" | tee -a "$table"
    done
fi

{
    echo "# Benchmarks"
    echo
    echo "\`make bench\` on $(date -u +%Y-%m-%d): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
        "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(. /etc/os-release; echo "$PRETTY_NAME")," \
        "postmap from Postfix $(dpkg-query -W -f '${Version}' postfix 2>/dev/null || echo '?')."
    echo "Medians of $rounds alternating rounds (one round for 10M entries); ratios are postmap / swiftpostmap (above 1: swiftpostmap faster or smaller)."
    echo
    cat "$table"
    echo
    echo "![build time and peak memory against entries](benchmarks.png)"
} > "$docs/benchmarks.md"

if command -v gnuplot > /dev/null; then
    gnuplot <<GP
set terminal pngcairo size 1000,420 font "sans,10"
set output "$docs/benchmarks.png"
set multiplot layout 1,2
set logscale xy
set key top left
set grid
set xlabel "entries"
set ylabel "build wall time (s)"
plot "$plot" using 1:2 with linespoints title "postmap", "$plot" using 1:3 with linespoints title "swiftpostmap"
set ylabel "peak memory (MiB)"
plot "$plot" using 1:(\$4/1024) with linespoints title "postmap", "$plot" using 1:(\$5/1024) with linespoints title "swiftpostmap"
unset multiplot
GP
else
    echo "bench: gnuplot is not installed; no picture" >&2
fi
echo "(written: $docs/benchmarks.md${docs:+, $docs/benchmarks.png})"
