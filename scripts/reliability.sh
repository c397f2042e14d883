#!/usr/bin/env bash
# make reliability: the promises of README's "What you can rely on", run against the built
# release binary with the real /usr/sbin/postmap as the reader that judges the tables.
#
#   1  crash safety      a 300,000-entry table rebuilt from a changed source, the build
#                        SIGKILLed at 100 points spread over its measured duration: the table
#                        is always the whole old or the whole new one, and the next build
#                        leaves no temporary file behind
#   2  full disk, ulimit a rebuild / -i on a full tmpfs and under `ulimit -f`: exit 1, one
#                        fatal line naming the table and the cause, old table intact, no
#                        temporary file
#   4  damaged tables    1,000 seeded mutants of hash and btree tables, eight modes each:
#                        exit 0/1/2 with a message, never a signal or a timeout; listings
#                        compared with the real postmap's where it lists the file completely
#   5  concurrency       readers during 100 rebuilds see the old or the new value, never an
#                        error; concurrent writers leave one complete table
#   6  file system       no writing through a symlinked NAME.db, no group/world-writable new
#                        table, the source owner's table as root (unless -o); FIFO,
#                        directory and device sources refused (postmap's outcome reported)
#
# Usage: scripts/reliability.sh SWIFTPOSTMAP. One summary line per promise on standard
# output (details of failures on standard error); exit 1 when any promise failed.
# RELIABILITY_ONLY="1 4" runs a subset; CRASH_KILLS, CRASH_ENTRIES, DAMAGE_COUNT, DAMAGE_SEED
# and REBUILDS change the sizes; DAMAGE_KEEP=DIR keeps the damaged tables that failed. Must run as root (mount, chown, mknod).
set -uo pipefail
bin=$(realpath "${1:?usage: reliability.sh SWIFTPOSTMAP}")
postmap=/usr/sbin/postmap
[ -x "$postmap" ] || { echo "reliability: the real postmap is not installed" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "reliability: run as root (tmpfs, chown, mknod)" >&2; exit 1; }
only=${RELIABILITY_ONLY:-1 2 4 5 6}
export LC_ALL=C

note() { echo "reliability: $*" >&2; }

# scratch: a fresh directory for one promise, removed (after unmounting anything below it)
# when the subshell that runs the promise exits; a main.cf in it, old enough that Postfix
# does not wait for it to settle.
scratch() {
    work=$(mktemp -d /tmp/swiftpostmap-reliability.XXXXXX)
    trap 'cleanup' EXIT
    mkdir "$work/config"
    printf 'compatibility_level = 3.6\nmyhostname = vm.localdomain\n' > "$work/config/main.cf"
    touch -d '-2 minutes' "$work/config/main.cf"
    export MAIL_CONFIG=$work/config
}
cleanup() {
    local m
    for m in $(awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount "$m" || umount -l "$m"
    done
    rm -rf "$work"
}

# listing TYPE:NAME: checksum of the real postmap's sorted `-s` listing (fails with postmap)
listing() { timeout 60 "$postmap" -s "$1" | sort | md5sum | cut -d' ' -f1; }

# extra DIR NAME...: how many entries of DIR are not among the NAMEs
extra() {
    local dir=$1; shift
    comm -23 <(ls -A "$dir" | sort) <(printf '%s\n' "$@" | sort) | wc -l
}

# entries N TAG [SKIP]: a virtual(5)-style source; values carry TAG; with SKIP, every
# SKIPth key is left out and TAG only applies to every third key (a "changed" source)
entries() {
    python3 - "$@" <<'PY'
import sys
n, tag = int(sys.argv[1]), sys.argv[2]
skip = int(sys.argv[3]) if len(sys.argv) > 3 else 0
out = sys.stdout
for i in range(n):
    if skip and i % skip == 1:
        continue
    t = tag if not skip or i % 3 == 0 else "old"
    out.write(f"user{i}@example{i % 13}.com\tdest-{t}-{i}@example.org, other{i}@example.net\n")
if skip:
    for i in range(n // 15):
        out.write(f"added{i}@example.com\tnew-{i}\n")
PY
}

# ---------------------------------------------------------------------------------------
# 1. Crash safety
crash_safety() {
    scratch
    cd "$work" || exit 1
    local n=${CRASH_ENTRIES:-300000} kills=${CRASH_KILLS:-100}
    entries "$n" old > old.src
    entries "$n" new 10 > new.src
    ln -f new.src t && "$bin" hash:t || exit 1
    local new_sum; new_sum=$(listing hash:t) || exit 1
    ln -f old.src t && "$bin" hash:t || exit 1
    local old_sum; old_sum=$(listing hash:t) || exit 1
    [ "$old_sum" != "$new_sum" ] || { note "crash: the two listings are the same"; exit 1; }
    # The duration of a rebuild from the changed source over the old table (median of 3).
    local i start times=()
    for i in 1 2 3; do
        ln -f new.src t
        start=$(date +%s%N); "$bin" hash:t || exit 1; times+=($(( $(date +%s%N) - start )))
        ln -f old.src t; "$bin" hash:t || exit 1
    done
    local duration; duration=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    local whole=0 old=0 new=0 finished=0 left_by_kill=0 left_after=0 bad=0 rc sum delay pid
    for ((i = 0; i < kills; i++)); do
        # table: old; source: new; kill at i/(kills-1) of the measured duration
        ln -f new.src t
        delay=$(awk -v d="$duration" -v i="$i" -v k="$kills" 'BEGIN { printf "%.4f", d / 1e9 * i / (k - 1) }')
        "$bin" hash:t 2> build.err & pid=$!
        sleep "$delay"
        kill -KILL "$pid" 2> /dev/null
        { wait "$pid"; } 2> /dev/null; rc=$?   # no "Killed" notice from bash
        [ "$rc" = 0 ] && finished=$((finished + 1))
        [ "$rc" = 0 ] || [ "$rc" = 137 ] || { note "crash: kill $i: build exit $rc: $(cat build.err)"; bad=$((bad + 1)); }
        if sum=$(listing hash:t); then
            case $sum in
                "$old_sum") old=$((old + 1)); whole=$((whole + 1)) ;;
                "$new_sum") new=$((new + 1)); whole=$((whole + 1)) ;;
                *) note "crash: kill $i after ${delay}s: the table is neither the old nor the new one" ;;
            esac
        else
            note "crash: kill $i after ${delay}s: the real postmap cannot read the table"
        fi
        (( $(extra . old.src new.src t t.db config build.err) > 0 )) && left_by_kill=$((left_by_kill + 1))
        # The next build (back to the old source) must remove what the killed one left.
        ln -f old.src t
        "$bin" hash:t || { note "crash: kill $i: the next build failed"; bad=$((bad + 1)); }
        if (( $(extra . old.src new.src t t.db config build.err) > 0 )); then
            note "crash: kill $i: left after the next build: $(ls -A | tr '\n' ' ')"
            left_after=$((left_after + 1))
            rm -f .t.db.swiftpostmap-* __db.*
        fi
    done
    printf 'crash safety: %d/%d kills over a %.2f s rebuild of %d entries, table whole every time (%d old, %d new, %d builds finished first); %d kills left a temporary file, %d left after the next build\n' \
        "$whole" "$kills" "$(awk -v d="$duration" 'BEGIN { print d / 1e9 }')" "$n" "$old" "$new" "$finished" \
        "$left_by_kill" "$left_after"
    [ "$whole" = "$kills" ] && [ "$left_after" = 0 ] && [ "$bad" = 0 ]
}

# ---------------------------------------------------------------------------------------
# 2. Full disk and file-size limits
# write_failure DIR TYPE OP CAUSE: rebuild (OP=build) or -i (OP=insert) the table DIR/t,
# whose old contents are DIR/old.src; a bigger source is DIR/new.src. Checks the outcome.
write_failure() {
    local dir=$1 type=$2 op=$3 cause=$4 limit=${5:-} sum rc err
    sum=$(listing "$type:$dir/t") || return 1
    if [ "$op" = build ]; then
        ln -f "$dir/new.src" "$dir/t"
        ( [ -n "$limit" ] && ulimit -f "$limit"; exec "$bin" "$type:$dir/t" ) > "$work/out" 2> "$work/err"
    else
        # keys of their own, so that -i has nothing to warn about
        sed 's/^user/fresh/' "$dir/new.src" > "$work/insert"
        ( [ -n "$limit" ] && ulimit -f "$limit"; exec "$bin" -i "$type:$dir/t" < "$work/insert" ) > "$work/out" 2> "$work/err"
    fi
    rc=$?
    err=$(cat "$work/err")
    ln -f "$dir/old.src" "$dir/t"
    local why=""
    [ "$rc" = 1 ] || why="exit $rc"
    [ "$(wc -l < "$work/err")" = 1 ] || why="$why; $(wc -l < "$work/err") lines on stderr"
    [[ $err == "swiftpostmap: fatal: "*t.db*": $cause" ]] || why="$why; message"
    [ "$(listing "$type:$dir/t")" = "$sum" ] || why="$why; the old table changed"
    (( $(extra "$dir" old.src new.src t t.db fill) == 0 )) || why="$why; left: $(ls -A "$dir" | tr '\n' ' ')"
    if [ -n "$why" ]; then
        note "write failure $type $op ($cause): ${why#; }: $(head -3 "$work/err")"
        return 1
    fi
    echo "$err" >> "$work/messages"
}

full_disk() {
    scratch
    local passed=0 cases=0 type op free
    mkdir "$work/fs"
    mount -t tmpfs -o size=8m,mode=0755 swiftpostmap-reliability "$work/fs" || { note "cannot mount a tmpfs"; exit 1; }
    entries 1000 old > "$work/fs/old.src"
    entries 30000 new > "$work/fs/new.src"   # about 2 MB of source, a 3 MB table
    for type in hash btree; do
        for op in build insert; do
            for free in 0 262144; do
                rm -f "$work/fs/t.db"
                ln -f "$work/fs/old.src" "$work/fs/t"
                "$bin" "$type:$work/fs/t" || exit 1
                # Fill the file system up to FREE bytes.
                local avail; avail=$(df --output=avail -B1 "$work/fs" | tail -1)
                if (( avail > free )); then
                    head -c $((avail - free)) /dev/zero > "$work/fs/fill" 2> /dev/null
                fi
                cases=$((cases + 1))
                write_failure "$work/fs" "$type" "$op" "No space left on device" && passed=$((passed + 1))
                rm -f "$work/fs/fill"
            done
        done
    done
    umount "$work/fs"
    # ulimit -f (1024-byte blocks) far below the new table
    mkdir "$work/lim"
    entries 1000 old > "$work/lim/old.src"
    entries 120000 new > "$work/lim/new.src"
    local efbig=0
    for type in hash btree; do
        for op in build insert; do
            rm -f "$work/lim/t.db"
            ln -f "$work/lim/old.src" "$work/lim/t"
            "$bin" "$type:$work/lim/t" || exit 1
            cases=$((cases + 1)); efbig=$((efbig + 1))
            write_failure "$work/lim" "$type" "$op" "File too large" 512 && passed=$((passed + 1))
        done
    done
    echo "full disk and file-size limits: $passed/$cases cases ($((cases - efbig)) full tmpfs, $efbig ulimit -f; hash and btree, rebuild and -i): exit 1, one fatal line, old table intact, no temporary file"
    sort "$work/messages" 2> /dev/null | sed -E 's/-[0-9]+-[0-9a-f]+/-PID-RAND/; s/^/    /' | sort -u >&2
    [ "$passed" = "$cases" ]
}

# ---------------------------------------------------------------------------------------
# 4. Damaged tables
damaged_tables() {
    scratch
    python3 - "$bin" "$postmap" "$work" "${DAMAGE_COUNT:-1000}" "${DAMAGE_SEED:-9}" <<'PY'
import concurrent.futures, os, random, struct, subprocess, sys, time
binary, postmap, work, count, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
TIMEOUT = 60  # --check alone may wait 30 s for a looping worker
env = dict(os.environ, LC_ALL="C")

def run(args, cwd, stdin=b"", timeout=TIMEOUT):
    try:
        p = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, timeout=timeout, env=env)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, b"", b""

# Base tables: 3,000 entries, hash and btree, each written by postmap and by swiftpostmap.
source = "".join(f"user{i}@example{i % 7}.com\tdest{i}@example.org, x{i}@example.net\n" for i in range(3000))
keys = [f"user{i}@example{i % 7}.com" for i in range(0, 3000, 37)] + ["nobody@example.com"]
bases = []
for type in ("hash", "btree"):
    for maker in (postmap, binary):
        d = os.path.join(work, f"base-{type}-{os.path.basename(maker)}")
        os.mkdir(d)
        open(os.path.join(d, "t"), "w").write(source)
        assert run([maker, f"{type}:t"], d)[0] == 0
        bases.append((type, os.path.basename(maker), open(os.path.join(d, "t.db"), "rb").read()))

def page_size(data):
    size = struct.unpack_from("<I", data, 20)[0] if len(data) >= 24 else 0
    return size if size in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536) else 4096

def mutate(data, kind, r):
    data = bytearray(data)
    ps = page_size(data)
    pages = max(1, len(data) // ps)
    page = r.randrange(pages)
    values = [0, 1, 2, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, pages, pages + 1, r.getrandbits(32)]
    if kind == "truncated":
        cut = r.choice([0, r.randrange(len(data)), page * ps, page * ps + ps // 2, 512, len(data) - 1])
        return bytes(data[:cut])
    if kind == "bit flips":
        for _ in range(r.randint(1, 16)):
            data[r.randrange(len(data))] ^= 1 << r.randrange(8)
    elif kind == "zeroed page":
        data[page * ps:(page + 1) * ps] = bytes(ps)
    elif kind == "header field":
        # a field of the meta-data page (page 0) or of a page header (first 26 bytes)
        if r.random() < 0.5:
            offset = r.choice(range(8, 120, 4))
            page = 0
        else:
            offset = r.choice([8, 12, 16, 20, 22, 24])
        struct.pack_into("<I", data, page * ps + offset, r.choice(values))
    elif kind == "garbage page":
        if r.random() < 0.5:
            data[page * ps:(page + 1) * ps] = bytes(r.getrandbits(8) for _ in range(ps))
        else:  # another page's contents, whose header is plausible but wrong here
            other = r.randrange(pages)
            data[page * ps:(page + 1) * ps] = data[other * ps:(other + 1) * ps]
    return bytes(data)

kinds = ["truncated", "bit flips", "zeroed page", "header field", "garbage page"]
seconds = {}  # time spent per mode
modes = ["-q key", "-q -", "-s", "-d key", "-i", "--check", "--verify", "--diff"]

def one(i):
    r = random.Random(f"{seed}-{i}")
    type, maker, base = bases[i % len(bases)]
    kind = kinds[(i // len(bases)) % len(kinds)]
    table = mutate(base, kind, r)
    d = os.path.join(work, f"m{i}")
    os.mkdir(d)
    open(os.path.join(d, "t"), "w").write(source)
    key = r.choice(keys)
    failures, ours, slow = [], None, 0
    for mode in modes:
        open(os.path.join(d, "t.db"), "wb").write(table)
        args, stdin = {
            "-q key": (["-q", key, f"{type}:t"], b""),
            "-q -": (["-q", "-", f"{type}:t"], "\n".join(keys).encode() + b"\n"),
            "-s": (["-s", f"{type}:t"], b""),
            "-d key": (["-d", key, f"{type}:t"], b""),
            "-i": (["-i", f"{type}:t"], b"added@example.com\tnew\nuser5@example5.com\tchanged\n"),
            "--check": (["--check", "t.db"], b""),
            "--verify": (["--verify", f"{type}:t"], b""),
            "--diff": (["--diff", f"{type}:t", "t"], b""),
        }[mode]
        started = time.monotonic()
        rc, out, err = run([binary] + args, d, stdin)
        elapsed = time.monotonic() - started
        seconds[mode] = seconds.get(mode, 0) + elapsed
        slow += elapsed > 5
        what = None
        if rc is None: what = "timeout"
        elif rc < 0: what = f"signal {-rc}"
        elif rc not in (0, 1, 2): what = f"exit {rc}"
        # Exit 1 of -q and -d is "not found" (a damaged table may have lost the keys);
        # otherwise a failure says something (--check and --diff report on standard output).
        elif rc != 0 and mode not in ("-q key", "-q -", "-d key") and not (err.strip() or out.strip()):
            what = f"exit {rc} without a message"
        if what:
            failures.append(f"mutant {i} ({type} by {maker}, {kind}): {mode}: {what} {err[:200]!r}")
        if mode == "-s" and rc == 0:
            ours = sorted(out.split(b"\n"))
    keep = os.environ.get("DAMAGE_KEEP")
    if failures and keep:  # for reproducing: the damaged table and its source
        os.makedirs(keep, exist_ok=True)
        open(os.path.join(keep, f"m{i}"), "w").write(source)
        open(os.path.join(keep, f"m{i}.db"), "wb").write(table)
        open(os.path.join(keep, f"m{i}.type"), "w").write(type + "\n")
    # The real postmap's listing of the same file (it may hang or crash on it).
    open(os.path.join(d, "t.db"), "wb").write(table)
    rc, out, _ = run([postmap, "-s", f"{type}:t"], d, timeout=5)
    complete = rc == 0
    agree = complete and ours == sorted(out.split(b"\n"))
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)
    return failures, complete, agree, slow

runs = failures = complete = agree = slow = 0
with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
    for f, c, a, s in pool.map(one, range(count)):
        runs += len(modes)
        failures += len(f)
        complete += c
        agree += a
        slow += s
        for line in f:
            print("reliability: damaged: " + line, file=sys.stderr)
print(f"damaged tables: {runs - failures}/{runs} runs ended in exit 0/1/2 with a message"
      f" ({count} mutants x {len(modes)} modes, seed {seed}; {slow} took over 5 s); the real postmap"
      f" listed {complete} completely, swiftpostmap -s agreed on {agree}")
print("reliability: damaged: seconds per mode: " + ", ".join(f"{m} {t:.0f}" for m, t in seconds.items()), file=sys.stderr)
sys.exit(1 if failures else 0)
PY
}

# ---------------------------------------------------------------------------------------
# 5. Concurrency
concurrency() {
    scratch
    cd "$work" || exit 1
    python3 - <<'PY'
for tag in "ab":
    with open(f"{tag}.src", "w") as f:
        for i in range(100000):
            f.write(f"user{i}@example.com\t{tag}{i}\n")
with open("keys", "w") as f:
    for i in range(0, 100000, 61):
        f.write(f"user{i}@example.com\nuser4242@example.com\n")
PY
    ln -f a.src t && "$bin" hash:t || exit 1
    local key=user4242@example.com rebuilds=${REBUILDS:-100} r bad=0
    (   # single lookups
        while [ ! -e stop ]; do
            v=$("$bin" -q "$key" hash:t 2>&1); echo "$? $v"
        done > single.log
    ) &
    local single=$!
    (   # -q - batches (over 512 keys, so more than one run under the lock)
        while [ ! -e stop ]; do
            "$bin" -q - hash:t < keys > batch.out 2>&1; echo "## $?"; cat batch.out
        done > batch.log
    ) &
    local batch=$!
    for ((r = 0; r < rebuilds; r++)); do
        if ((r % 2)); then ln -f a.src t; else ln -f b.src t; fi
        "$bin" hash:t || bad=$((bad + 1))
    done
    touch stop
    wait "$single" "$batch"
    # Concurrent writers: two builds from the source and three -i of their own keys at once,
    # ten times; the table must be the source's plus each -i's keys entirely or not at all.
    local round k complete=0
    for ((round = 0; round < 10; round++)); do
        ln -f a.src t && "$bin" hash:t || exit 1
        local pids=()
        for k in 1 2 3; do
            seq 1 500 | sed "s/.*/ins$k-&@example.com\tv$k/" | "$bin" -i hash:t & pids+=($!)
            [ "$k" = 2 ] || { "$bin" hash:t & pids+=($!); }
        done
        for k in "${pids[@]}"; do wait "$k" || bad=$((bad + 1)); done
        timeout 60 "$postmap" -s hash:t > listing.$round || { note "concurrency: round $round: postmap -s failed"; continue; }
        (( $(extra . a.src b.src t t.db config keys single.log batch.log batch.out stop $(ls listing.*)) == 0 )) \
            || note "concurrency: round $round: left: $(ls -A | tr '\n' ' ')"
    done
    python3 - "$rebuilds" "$bad" <<'PY'
import glob, re, sys
rebuilds, bad = int(sys.argv[1]), int(sys.argv[2])
singles = wrong_single = 0
for line in open("single.log"):
    singles += 1
    if line.rstrip("\n") not in ("0 a4242", "0 b4242"):
        wrong_single += 1
        print(f"reliability: concurrency: -q answered {line.rstrip()!r}", file=sys.stderr)
batches = wrong_batch = answers = 0
expected = sum(2 for i in range(0, 100000, 61))
lines = []
def judge(status, lines):
    global wrong_batch, answers
    ok = status == "0" and len(lines) == expected
    for l in lines:
        m = re.fullmatch(r"user(\d+)@example\.com\t[ab](\d+)", l)
        ok = ok and m is not None and m.group(1) == m.group(2)
    answers += len(lines)
    if not ok:
        wrong_batch += 1
        print(f"reliability: concurrency: a -q - batch: status {status}, {len(lines)} lines: {lines[:3]}", file=sys.stderr)
status = None
for line in open("batch.log"):
    line = line.rstrip("\n")
    if line.startswith("## "):
        if status is not None: judge(status, lines)
        batches += 1
        lines = []
        status = line[3:]
    else:
        lines.append(line)
if status is not None: judge(status, lines)
# writer rounds
source = {f"user{i}@example.com": f"a{i}" for i in range(100000)}
rounds = whole = 0
for name in sorted(glob.glob("listing.*")):
    rounds += 1
    table = dict(l.split("\t", 1) for l in open(name).read().splitlines())
    rest = {k: v for k, v in table.items() if k not in source}
    ok = all(table.get(k) == v for k, v in source.items())
    for k in (1, 2, 3):
        got = sum(1 for j in range(1, 501) if rest.pop(f"ins{k}-{j}@example.com", None) == f"v{k}")
        ok = ok and got in (0, 500)
    ok = ok and not rest
    whole += ok
    if not ok:
        print(f"reliability: concurrency: {name} is not the source plus whole -i batches", file=sys.stderr)
print(f"concurrency: {singles - wrong_single}/{singles} -q and {batches - wrong_batch}/{batches} -q - batches"
      f" ({answers} answers) during {rebuilds} rebuilds gave the old or the new value; {whole}/10 rounds of"
      f" 5 concurrent writers (2 builds, 3 -i) left one complete table; {bad} writers failed")
sys.exit(0 if wrong_single == 0 and wrong_batch == 0 and whole == 10 and bad == 0 and batches > 0 and singles > 0 else 1)
PY
}

# ---------------------------------------------------------------------------------------
# 6. File-system safety as root
file_system() {
    scratch
    cd "$work" || exit 1
    local passed=0 checks=0 op rc
    check() { checks=$((checks + 1)); if "$@"; then passed=$((passed + 1)); else note "file system: failed: $*"; fi; }
    # A symlink planted at NAME.db, pointing at a valid table elsewhere.
    mkdir victim && printf 'victim@example.com\tv\n' > victim/v && "$bin" hash:victim/v || exit 1
    local victim_sum; victim_sum=$(md5sum < victim/v.db)
    printf 'a@example.com\tb\n' > s
    ln -s victim/v.db s.db
    for op in build -i "-d a@example.com"; do
        if [ "$op" = build ]; then "$bin" hash:s 2> err; rc=$?
        else "$bin" $op hash:s < s 2> err; rc=$?; fi
        check test "$rc" = 1
        check grep -q 'symbolic link' err
        check test "$(md5sum < victim/v.db)" = "$victim_sum"
        check test -L s.db
    done
    local symlink_msg; symlink_msg=$(cat err)
    cp -p victim/v.db victim/v.db.saved
    "$postmap" hash:s 2> /dev/null; rc=$?
    local postmap_symlink="postmap exit $rc, $(cmp -s victim/v.db victim/v.db.saved && echo "target untouched" || echo "wrote through it")"
    rm -f s.db
    # No group- or world-writable new table, even with umask 000.
    local mode m
    for mode in 0666 0644 0600 0777 0664; do
        for op in "" -p; do
            rm -f s.db; chmod "$mode" s
            ( umask 000; exec "$bin" $op hash:s ) || exit 1
            m=$(stat -c %a s.db)
            check test $(( 8#$m & 8#022 )) = 0
        done
    done
    rm -f s.db; ( umask 000; "$bin" -i hash:s < s ) && m=$(stat -c %a s.db) && check test $(( 8#$m & 8#022 )) = 0
    # As root: the source owner's table, unless -o.
    chmod 0755 "$work"
    mkdir owned && chown nobody: owned && printf 'a@example.com\tb\n' > owned/s && chown nobody: owned/s
    "$bin" hash:owned/s; check test "$(stat -c %U owned/s.db)" = nobody
    rm -f owned/s.db; "$bin" -o hash:owned/s; check test "$(stat -c %U owned/s.db)" = root
    rm -f owned/s.db; "$postmap" hash:owned/s; local postmap_owner; postmap_owner=$(stat -c %U owned/s.db)
    echo "file system as root: $passed/$checks checks: a symlinked NAME.db refused for build, -i and -d (\"${symlink_msg#swiftpostmap: fatal: }\"; $postmap_symlink), new tables never group/world-writable under umask 000, table owned by the source's owner (nobody; root with -o; postmap: $postmap_owner)"
    # FIFO, directory and device sources: refused at once with a message and no table;
    # what the real postmap does with each is reported next to it.
    mkfifo fifo; mkdir dir; mknod dev c 1 3
    local kind report="" refused=0 out
    for kind in fifo dir dev; do
        local theirs
        rm -f "$kind.db"
        out=$(timeout -s KILL 10 "$bin" "hash:$kind" 2>&1); rc=$?
        if [ "$rc" = 1 ] && [[ $out == *"not a regular file"* ]] && [ ! -e "$kind.db" ]; then
            refused=$((refused + 1))
        else
            note "file system: $kind source: exit $rc, \"$out\"$( [ -e "$kind.db" ] && echo ", table made")"
        fi
        rm -f "$kind.db"; theirs=$(describe "$postmap" "$kind")
        report="$report; $kind: postmap $theirs"
    done
    echo "special sources: $refused/3 refused with exit 1 and no table (FIFO, directory, /dev/null)$report"
    [ "$passed" = "$checks" ] && [ "$refused" = 3 ]
}
# describe PROGRAM SOURCE: how a build of hash:SOURCE ends (10 s at most)
describe() {
    local out rc
    out=$(timeout -s KILL 10 "$1" "hash:$2" 2>&1); rc=$?
    out=${out//$'\n'/ }
    if [ "$rc" = 137 ]; then echo "waits (killed after 10 s)"
    else echo "exit $rc${out:+ \"${out#*: }\"}$( [ -e "$2.db" ] && echo ", $(stat -c %s "$2.db")-byte table made")"; fi
}

# ---------------------------------------------------------------------------------------
status=0
started=$(date +%s)
for p in $only; do
    case $p in
        1) ( crash_safety ) || status=1 ;;
        2) ( full_disk ) || status=1 ;;
        4) ( damaged_tables ) || status=1 ;;
        5) ( concurrency ) || status=1 ;;
        6) ( file_system ) || status=1 ;;
        *) note "no promise $p"; status=1 ;;
    esac
done
echo "reliability: $( ((status)) && echo FAILED || echo passed) in $(( $(date +%s) - started )) s"
exit $status
