#!/bin/bash
# The catalog as a whole: a catalog with a migration cut short exported
# from SQLite, imported into PostgreSQL (tests/pg.sh's own server), the
# migration resumed there, then exported again and brought back into
# SQLite: the same rows each way, ids kept, the journal and the history
# included. What import must refuse is refused with nothing written; the
# backups of both engines are what their tools read.
. "$(dirname "$0")/lib.sh"

TEST_PREFIX=tcat
require_hosts "$HOSTA" "$HOSTB"
# This suite runs both engines itself: its first catalog is SQLite's.
VPOOL_TEST_CATALOG=sqlite
setup_workdir
standard_setup

pg_dir=$(mktemp -d /var/tmp/vpool-cat-pg.XXXXXX)
pg=$("$top/tests/pg.sh" start "$pg_dir") || bail "cannot start PostgreSQL"
trap '"$top/tests/pg.sh" stop "$pg_dir"; cleanup_workdir' EXIT

# Rows of every table but the history, which an import adds its own line to.
tables_of() { jq -S '.tables | del(.history)' "$1"; }
history_of() { jq -c '.tables.history.rows' "$1"; }

check "pool tcat of 3 VMs on $HOSTA" vpool pool create tcat --image guest --env "$HOSTA" --profile pc-ide --size 3
VPOOL_FAULT=migrate.locked vpool migrate start tcat --to "$HOSTB" --parallel 1 >/dev/null 2>&1
check_eq "a migration killed after its first lock" 137 "$?"
mig=$(vpool migrate list --json | jq -r 'last | .id')

# ---- SQLite → PostgreSQL ------------------------------------------------------------------
check "catalog export from SQLite" vpool catalog export "$WORK/a.json"
check_eq "the export says where it came from" "vpool-catalog 1 sqlite" \
    "$(jq -r '"\(.format) \(.version) \(.engine)"' "$WORK/a.json")"
check_eq "its journal holds the lock of the migration cut short" "1" \
    "$(jq --argjson m "$mig" '[.tables.journal.rows[] | select(.[2] == $m and .[3] == "locked")] | length' "$WORK/a.json")"
check "vpool init of a PostgreSQL catalog" vpool --catalog "$pg" init --storage "$STORAGE"
check "catalog import into it" vpool --catalog "$pg" catalog import "$WORK/a.json"
check "catalog export from PostgreSQL" vpool --catalog "$pg" catalog export "$WORK/b.json"
check_eq "every table the same, ids kept" "$(tables_of "$WORK/a.json")" "$(tables_of "$WORK/b.json")"
check_eq "the history the same, and the import's own line after it" \
    "$(jq -c '.[]' <<<"$(history_of "$WORK/a.json")" | wc -l) catalog import" \
    "$(( $(jq -c '.[]' <<<"$(history_of "$WORK/b.json")" | wc -l) - 1 )) $(vpool --catalog "$pg" history --json |
        jq -r '[.[] | select(.type == "command")] | last | "\(.noun) \(.verb)"')"
check_eq "vm list the same on both" "$(vpool vm list --json)" "$(vpool --catalog "$pg" vm list --json)"

check "the migration resumes on PostgreSQL" vpool --catalog "$pg" migrate resume "$mig"
check_eq "it is done" done "$(vpool --catalog "$pg" migrate status "$mig" --json | jq -r .state)"
check_eq "every VM on $HOSTB" "$HOSTB $HOSTB $HOSTB" \
    "$(vpool --catalog "$pg" vm list --pool tcat --json | jq -r '.[].env' | xargs)"
check "fsck on PostgreSQL: clean" vpool --catalog "$pg" fsck
check "a new pool's ids follow the imported ones" \
    vpool --catalog "$pg" pool create tcat2 --image guest --env "$HOSTA" --profile pc-ide --size 1

# ---- PostgreSQL → SQLite ------------------------------------------------------------------
check "catalog export from PostgreSQL again" vpool --catalog "$pg" catalog export "$WORK/c.json"
check "vpool init of a new SQLite catalog" vpool --catalog "$WORK/back.db" init --storage "$STORAGE"
check "catalog import back into SQLite" vpool --catalog "$WORK/back.db" catalog import "$WORK/c.json"
check "catalog export of it" vpool --catalog "$WORK/back.db" catalog export "$WORK/d.json"
check_eq "every table the same back in SQLite" "$(tables_of "$WORK/c.json")" "$(tables_of "$WORK/d.json")"
check_eq "migrate status the same" "$(vpool --catalog "$pg" migrate status "$mig" --json)" \
    "$(vpool --catalog "$WORK/back.db" migrate status "$mig" --json)"
check "fsck on the SQLite copy: clean" vpool --catalog "$WORK/back.db" fsck

# ---- refusals: nothing written ---------------------------------------------------------------
# refused DESCRIPTION REGEX FILE: import of FILE into back.db fails with one
# line matching REGEX, and back.db exports as before.
refused() {
    local out rc
    out=$(vpool --catalog "$WORK/back.db" catalog import "$3" 2>&1)
    rc=$?
    vpool --catalog "$WORK/back.db" catalog export "$WORK/after.json" >/dev/null 2>&1
    if [ "$rc" = 1 ] && [[ $out =~ $2 ]] && [ "$(wc -l <<<"$out")" = 1 ] &&
        [ "$(tables_of "$WORK/d.json")" = "$(tables_of "$WORK/after.json")" ]; then
        ok "$1"
    else
        not_ok "$1" "exit $rc" "$out"
    fi
    rm -f "$WORK/after.json"
}
refused "import into a catalog that is not new" "catalog '.*back\.db' is not empty \(its table 'envs' has [0-9]+ rows\)" \
    "$WORK/a.json"
vpool --catalog "$WORK/new.db" init --storage "$STORAGE" >/dev/null || bail "init new.db"
refused_new() {
    local out rc
    out=$(vpool --catalog "$WORK/new.db" catalog import "$3" 2>&1)
    rc=$?
    if [ "$rc" = 1 ] && [[ $out =~ $2 ]] && [ "$(vpool --catalog "$WORK/new.db" env list --json | jq length)" = 0 ]; then
        ok "$1"
    else
        not_ok "$1" "exit $rc" "$out"
    fi
}
printf '{"format": "vpool-catalog",' >"$WORK/bad.json"
refused_new "a file cut short" "'.*bad\.json' is not JSON: it ends before its document does" "$WORK/bad.json"
jq '.schema = 99' "$WORK/a.json" >"$WORK/bad.json"
refused_new "an export of another schema" "of schema 99; this vpool's is [0-9]+" "$WORK/bad.json"
jq '.tables.envs.columns[1] = "label"' "$WORK/a.json" >"$WORK/bad.json"
refused_new "a table whose columns are not this vpool's" "table 'envs': its columns are not this vpool's" "$WORK/bad.json"
jq '.tables.vms.rows[0][0] = "one"' "$WORK/a.json" >"$WORK/bad.json"
refused_new "a value of the wrong type" "table 'vms', row 1: column 'id' must be an integer or null" "$WORK/bad.json"
jq '.tables.spare = .tables.envs' "$WORK/a.json" >"$WORK/bad.json"
refused_new "a table this vpool does not know" "tables this vpool does not know" "$WORK/bad.json"
jq '.tables.vms.rows[0][2] = 999' "$WORK/a.json" >"$WORK/bad.json"
refused_new "a row naming a pool that is not there: nothing of it kept" "cannot be written" "$WORK/bad.json"
check_eq "new.db: its history has no import" "" \
    "$(vpool --catalog "$WORK/new.db" history --json | jq -r '.[] | select(.command | test("catalog import")) | .id')"
out=$(vpool catalog export "$WORK/a.json" 2>&1)
check_eq "export over an existing file: refused" "1 vpool: cannot create '$WORK/a.json': File exists" "$? $out"
out=$(vpool catalog backup "$WORK/a.json" 2>&1)
check_eq "backup over an existing file: refused" "1 vpool: cannot create '$WORK/a.json': File exists" "$? $out"

# ---- backups -------------------------------------------------------------------------------
check "catalog backup of SQLite" vpool catalog backup "$WORK/bk.db"
check_eq "the backup is a catalog vpool opens, the same" "$(vpool vm list --json)" \
    "$(vpool --catalog "$WORK/bk.db" vm list --json)"
check "catalog backup of PostgreSQL (pg_dump)" vpool --catalog "$pg" catalog backup "$WORK/pg.dump"
check "pg_restore reads it: the catalog's tables" \
    grep -q "TABLE public vms" <<<"$(pg_restore --list "$WORK/pg.dump" 2>&1)"

finish
