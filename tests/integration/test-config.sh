#!/bin/bash
# The configuration file: precedence of options over environment over file
# over defaults as 'config show' reports it and as init, env list, pool
# create and migrate use it; malformed lines, unknown keys and bad values
# refused with the file and line named, before anything runs.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=tcfg
require_hosts "$HOSTA" "$HOSTB"
setup_workdir

# The catalog comes from the file from here on: the variable stays in this
# shell (snapshot reads it) but vpool no longer sees it.
CATALOG=$VPOOL_CATALOG
export -n VPOOL_CATALOG
CONF=$VPOOL_CONFIG

show() { vpool config show --json "$@"; }
field() { jq -r "$1"; }

# ---- defaults ---------------------------------------------------------------

out=$(show)
check_eq "empty file: parallel is the built-in 8" "8 default" "$(field '"\(.parallel.value) \(.parallel.source)"' <<<"$out")"
check_eq "empty file: shutdown timeout 120" "120 default" \
    "$(field '"\(.shutdown_timeout.value) \(.shutdown_timeout.source)"' <<<"$out")"
check_eq "empty file: catalog is the built-in path" "/var/lib/vpool/catalog.db default" \
    "$(field '"\(.catalog.value) \(.catalog.source)"' <<<"$out")"
check_eq "empty file: no storage root, no profile" "null null" "$(field '"\(.storage.value) \(.profile.value)"' <<<"$out")"
check_eq "the file named by VPOOL_CONFIG is read" "$CONF true environment" \
    "$(field '"\(.config_file.path) \(.config_file.found) \(.config_file.source)"' <<<"$out")"

# ---- the file ---------------------------------------------------------------

cat >"$CONF" <<EOF
# vpool settings for the config test

catalog = $CATALOG
storage = $STORAGE
   parallel=3
shutdown_timeout = 7
profile = pc-ide
EOF

out=$(show)
check_eq "file: parallel 3 from line 5" "3 file $CONF 5" \
    "$(field '"\(.parallel.value) \(.parallel.source) \(.parallel.file) \(.parallel.line)"' <<<"$out")"
check_eq "file: catalog, storage, timeout, profile with their lines" "$CATALOG:3 $STORAGE:4 7:6 pc-ide:7" \
    "$(field '"\(.catalog.value):\(.catalog.line) \(.storage.value):\(.storage.line) \(.shutdown_timeout.value):\(.shutdown_timeout.line) \(.profile.value):\(.profile.line)"' <<<"$out")"
line=$(vpool config show | grep '^parallel ')
check_eq "text output names FILE:LINE" "parallel 3 $CONF:5" "$(echo $line)"

# ---- environment over file, option over environment -------------------------

out=$(VPOOL_PARALLEL=5 VPOOL_PROFILE=q35-virtio VPOOL_CATALOG=$WORK/env.db show)
check_eq "environment over file: parallel" "5 environment VPOOL_PARALLEL" \
    "$(field '"\(.parallel.value) \(.parallel.source) \(.parallel.variable)"' <<<"$out")"
check_eq "environment over file: profile and catalog" "q35-virtio $WORK/env.db environment" \
    "$(field '"\(.profile.value) \(.catalog.value) \(.catalog.source)"' <<<"$out")"
check_eq "environment over file: the rest still from the file" "7 file" \
    "$(field '"\(.shutdown_timeout.value) \(.shutdown_timeout.source)"' <<<"$out")"
line=$(VPOOL_PARALLEL=5 vpool config show | grep '^parallel ')
check_eq "text output names the variable" "parallel 5 environment VPOOL_PARALLEL" "$(echo $line)"

out=$(VPOOL_PARALLEL=5 VPOOL_CATALOG=$WORK/env.db vpool --catalog "$WORK/opt.db" config show --json --parallel 2 \
    --shutdown-timeout 9 --profile other)
check_eq "option over environment: parallel" "2 command line" "$(field '"\(.parallel.value) \(.parallel.source)"' <<<"$out")"
check_eq "option over environment: catalog, timeout, profile" "$WORK/opt.db 9 other command line" \
    "$(field '"\(.catalog.value) \(.shutdown_timeout.value) \(.profile.value) \(.profile.source)"' <<<"$out")"

printf 'parallel = 11\n' >"$WORK/other.conf"
out=$(vpool --config "$WORK/other.conf" config show --json)
check_eq "--config over VPOOL_CONFIG" "11 $WORK/other.conf 1 command line" \
    "$(field '"\(.parallel.value) \(.parallel.file) \(.parallel.line) \(.config_file.source)"' <<<"$out")"
check_eq "--config: keys it does not set are defaults" "120 default" \
    "$(field '"\(.shutdown_timeout.value) \(.shutdown_timeout.source)"' <<<"$out")"

# ---- the values at work -----------------------------------------------------

out=$(vpool init --json)
check_eq "init without --storage uses the file's catalog and storage root" "$CATALOG $STORAGE" \
    "$(field '"\(.catalog) \(.storage)"' <<<"$out")"
check "the catalog is where the file says" catalog_exists
check "the storage root is laid out" test -d "$STORAGE/images" -a -d "$STORAGE/deltas"
check "init is idempotent with the configured root" vpool init

vpool env add "$HOSTA" --uri "$(uri_of "$HOSTA")" --domain-type qemu >/dev/null || bail "env add $HOSTA failed"
vpool env add "$HOSTB" --uri "$(uri_of "$HOSTB")" --domain-type qemu >/dev/null || bail "env add $HOSTB failed"
vpool image add guest --file "$GUEST_DIR/master.qcow2" --no-inspect >/dev/null || bail "image add failed"
vpool profile add pc-ide --machine pc --disk-bus ide --nic e1000 --vcpus 1 --memory 256M >/dev/null ||
    bail "profile add failed"
check_eq "env list reads the configured catalog" "$HOSTA $HOSTB" "$(vpool env list --json | jq -r '.[].name' | sort | xargs)"
expect_fail "VPOOL_CATALOG over the file in env list" 1 "^vpool: catalog '$WORK/env.db' does not exist" \
    env VPOOL_CATALOG="$WORK/env.db" "$VPOOL_BIN" env list

check "pool create without --profile" vpool pool create tcfg --image guest --env "$HOSTA" --size 2
check_eq "the pool got the file's profile" "pc-ide" "$(vpool pool show tcfg --json | jq -r .profile)"
expect_fail "VPOOL_PROFILE over the file in pool create" 1 "^vpool: unknown profile 'nosuch'" \
    env VPOOL_PROFILE=nosuch "$VPOOL_BIN" pool create tcfg2 --image guest --env "$HOSTA" --size 1

# migrate status shows the parallelism and shutdown timeout a migration ran with.
mig_settings() { vpool migrate status "$1" --json | jq -r '"\(.parallel) \(.shutdown_timeout) \(.state)"'; }
id=$(vpool migrate tcfg --to "$HOSTB" | sed -n 's/^migration \([0-9]*\)$/\1/p' | head -1)
check_eq "migrate takes parallel and shutdown timeout from the file" "3 7 done" "$(mig_settings "$id")"
id=$(VPOOL_PARALLEL=5 VPOOL_SHUTDOWN_TIMEOUT=1 vpool migrate tcfg --to "$HOSTA" | sed -n 's/^migration \([0-9]*\)$/\1/p' | head -1)
check_eq "migrate takes them from the environment over the file" "5 1 done" "$(mig_settings "$id")"
id=$(VPOOL_PARALLEL=5 vpool migrate tcfg --to "$HOSTB" --parallel 2 --shutdown-timeout 4 |
    sed -n 's/^migration \([0-9]*\)$/\1/p' | head -1)
check_eq "migrate takes its options over the environment" "2 4 done" "$(mig_settings "$id")"
check_eq "the pool is on host B" "tcfg-001 tcfg-002" "$(domains_on "$HOSTB" tcfg)"

# ---- errors: the file and line named, nothing run ---------------------------

good=$(cat "$CONF")
bad_conf() { printf '%s\n' "$good" >"$CONF"; printf '%s\n' "$@" >>"$CONF"; }
n=$(($(printf '%s\n' "$good" | wc -l) + 1))

bad_conf "paralel = 4"
expect_fail "unknown key: env list" 1 "^vpool: $CONF:$n: unknown key 'paralel'\$" vpool env list
expect_fail "unknown key: pool create" 1 "^vpool: $CONF:$n: unknown key 'paralel'\$" \
    vpool pool create tcfg3 --image guest --env "$HOSTA" --profile pc-ide --size 1
expect_fail "unknown key: migrate" 1 "^vpool: $CONF:$n: unknown key 'paralel'\$" vpool migrate tcfg --to "$HOSTA"
expect_fail "unknown key: config show" 1 "^vpool: $CONF:$n: unknown key 'paralel'\$" vpool config show
expect_fail "unknown key: even with every value given as an option" 1 "^vpool: $CONF:$n: unknown key 'paralel'\$" \
    vpool --catalog "$CATALOG" pool create tcfg3 --image guest --env "$HOSTA" --profile pc-ide --size 1

bad_conf "# fine" "parallel 4"
expect_fail "malformed line" 1 "^vpool: $CONF:$((n + 1)): expected 'key = value', got 'parallel 4'\$" vpool env list
printf '%s\n' "$good" | sed 's/^   parallel=3$/parallel = 0/' >"$CONF"
expect_fail "parallelism zero" 1 "^vpool: $CONF:5: parallelism '0' is out of range: must be between 1 and 256\$" \
    vpool migrate tcfg --to "$HOSTA"
printf '%s\n' "$good" | sed 's/^   parallel=3$/parallel = four/' >"$CONF"
expect_fail "parallelism not a number" 1 "^vpool: $CONF:5: invalid parallelism 'four': expected a whole number\$" \
    vpool migrate tcfg --to "$HOSTA"
bad_conf "parallel = 4"
expect_fail "a key set twice" 1 "^vpool: $CONF:$n: key 'parallel' is set twice \\(first on line 5\\)\$" vpool env list
printf '%s\n' "$good" | sed 's/^shutdown_timeout = 7$/shutdown_timeout = -1/' >"$CONF"
expect_fail "negative shutdown timeout" 1 "^vpool: $CONF:6: invalid shutdown timeout '-1'" vpool env list
printf '%s\n' "$good" | sed 's/^profile = pc-ide$/profile = ..\/pc-ide/' >"$CONF"
expect_fail "bad profile name" 1 "^vpool: $CONF:7: invalid profile name '../pc-ide'" \
    vpool pool create tcfg3 --image guest --env "$HOSTA" --size 1
printf '%s\n' "$good" | sed 's/^storage = .*$/storage = relative\/dir/' >"$CONF"
expect_fail "relative storage root" 1 "^vpool: $CONF:4: storage root 'relative/dir' must be an absolute path\$" vpool init

printf '%s\n' "$good" >"$CONF"
expect_fail "bad VPOOL_PARALLEL" 1 \
    "^vpool: environment variable VPOOL_PARALLEL: invalid parallelism 'abc': expected a whole number\$" \
    env VPOOL_PARALLEL=abc "$VPOOL_BIN" migrate tcfg --to "$HOSTA"
expect_fail "VPOOL_PARALLEL out of range" 1 "^vpool: environment variable VPOOL_PARALLEL: parallelism '300' is out of range" \
    env VPOOL_PARALLEL=300 "$VPOOL_BIN" env list
expect_fail "bad VPOOL_PROFILE" 1 "^vpool: environment variable VPOOL_PROFILE: invalid profile name" \
    env VPOOL_PROFILE=-x "$VPOOL_BIN" pool create tcfg3 --image guest --env "$HOSTA" --size 1
expect_fail "bad --parallel with a good file" 1 "parallelism '0' is out of range" vpool migrate tcfg --to "$HOSTA" --parallel 0
expect_fail "VPOOL_CONFIG naming a missing file" 1 "^vpool: cannot read configuration file $WORK/nope.conf: No such file" \
    env VPOOL_CONFIG="$WORK/nope.conf" "$VPOOL_BIN" env list
expect_fail "--config naming a missing file" 1 "^vpool: cannot read configuration file $WORK/nope.conf: No such file" \
    vpool --config "$WORK/nope.conf" env list
expect_fail "--config naming a directory" 1 "^vpool: configuration file $WORK is a directory\$" \
    vpool --config "$WORK" env list

# A broken file stops init before it creates a catalog or a storage root.
cat >"$WORK/fresh.conf" <<EOF
catalog = $WORK/fresh/catalog.db
storage = $WORK/fresh-storage
paralel = 4
EOF
err=$(vpool --config "$WORK/fresh.conf" init 2>&1 >/dev/null)
rc=$?
check_eq "init with a broken file fails naming line 3" "1 vpool: $WORK/fresh.conf:3: unknown key 'paralel'" "$rc $err"
check "init with a broken file created no catalog and no storage root" \
    test ! -e "$WORK/fresh" -a ! -e "$WORK/fresh-storage"
sed -i '/^paralel/d' "$WORK/fresh.conf"
check "the same init once the line is fixed" vpool --config "$WORK/fresh.conf" init
check "now the catalog and storage root exist" test -f "$WORK/fresh/catalog.db" -a -d "$WORK/fresh-storage/deltas"

# With no storage root anywhere, init still asks for one.
printf '' >"$WORK/empty.conf"
expect_fail "init with no storage root configured" 2 "^vpool: missing --storage DIR \\(no storage root is configured\\)" \
    vpool --config "$WORK/empty.conf" --catalog "$WORK/fresh2.db" init
check "and created no catalog" test ! -e "$WORK/fresh2.db"

# ---- the shipped file ---------------------------------------------------------

out=$(vpool --config "$top/etc/vpool.conf" config show --json)
check_eq "the shipped vpool.conf is valid and sets nothing" "default default default default default" \
    "$(field '"\(.catalog.source) \(.storage.source) \(.parallel.source) \(.shutdown_timeout.source) \(.profile.source)"' <<<"$out")"

check "pool rm" vpool pool rm tcfg
finish
