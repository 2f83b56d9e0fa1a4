# The tables of vpool's JSON references (docs/json.md, docs/api.md) as one
# spec, and the check of a document against it. Sourced by the suites that
# check output: test-json.sh (the CLI's --json), test-daemon.sh (the API).

# json_spec FILE...: the tables of the files as one JSON spec:
# {"commands": {COMMAND: PRINTS}, "routes": {"METHOD PATH": ANSWERS},
#  "shapes": {NAME: {"includes": [...],
#  "fields": {KEY: {"type": TYPE, "nullable": BOOL}}}}}
json_spec() {
    awk '
    function cell(s) { gsub(/`/, "", s); gsub(/^ +| +$/, "", s); gsub(/"/, "\\\"", s); return s }
    FNR == 1 { section = ""; shape = "" }
    /^## / { section = $0; shape = ""; next }
    /^### `[a-z_]+`/ { shape = $2; gsub(/`/, "", shape); printf "{\"shape\":\"%s\"}\n", shape; next }
    shape != "" && /^Every key of `[a-z_]+`/ {
        inc = $4; gsub(/[`,]/, "", inc); printf "{\"shape\":\"%s\",\"include\":\"%s\"}\n", shape, inc; next }
    /^\|/ && !/^\|---/ && !/^\| (command|key|route) \|/ {
        n = split($0, c, "|")
        if (section == "## Commands")
            printf "{\"command\":\"%s\",\"prints\":\"%s\"}\n", cell(c[2]), cell(c[3])
        else if (section == "## Routes")
            printf "{\"route\":\"%s\",\"answers\":\"%s\"}\n", cell(c[2]), cell(c[3])
        else if (shape != "")
            printf "{\"shape\":\"%s\",\"key\":\"%s\",\"type\":\"%s\",\"nullable\":%s}\n", shape, cell(c[2]),
                cell(c[3]), cell(c[4]) == "never" ? "false" : "true"
    }' "$@" | jq -s '
    { commands: (map(select(.command)) | map({ key: .command, value: .prints }) | from_entries),
      routes: (map(select(.route)) | map({ key: .route, value: .answers }) | from_entries),
      shapes: (map(select(.shape)) | group_by(.shape) | map({ key: .[0].shape, value: {
          includes: map(select(.include) | .include),
          fields: (map(select(.key)) | map({ key: .key, value: { type, nullable } }) | from_entries) } })
          | from_entries) }'
}

# ---- the check of one document ------------------------------------------------------
# Prints "shape NAME" for each document checked, and each problem as
# "PATH: WHAT".
validator='
def prim($t):
    if $t == "string" then type == "string"
    elif $t == "integer" then type == "number" and . == floor
    elif $t == "number" then type == "number"
    elif $t == "boolean" then type == "boolean"
    elif $t == "any" then true
    else error("docs/json.md: unknown type \($t)") end;
def fields($s): ($spec.shapes[$s].includes | map(fields(.)) | add // {}) + $spec.shapes[$s].fields;
# [[problems], [shapes seen]] of . as a T at path P
def check($t; $p):
    def one($a):
        if $spec.shapes[$a] then
            if type != "object" then [["\($p): \(type), not a `\($a)` object"], []]
            else fields($a) as $f | . as $o
                | [ (keys[] | select($f[.] == null) | "\($p).\(.): not a key of `\($a)`"),
                    ($f | keys[] | select(. as $k | $o | has($k) | not) | "\($p).\(.): missing from `\($a)`") ] as $keys
                | [ $f | to_entries[] | select(.key as $k | $o | has($k)) | .key as $k | .value as $v
                    | if $o[$k] == null then
                          (if $v.nullable then [[], []] else [["\($p).\($k): null, documented never null"], []] end)
                      else $o[$k] | check($v.type; "\($p).\($k)") end ] as $vals
                | [$keys + ($vals | map(.[0][])), ["shape \($a)"] + ($vals | map(.[1][]))]
            end
        elif prim($a) then [[], []]
        else [["\($p): \(type) \(tojson | .[0:60]), not \($a)"], []] end;
    if ($t | startswith("array of ")) then
        if type != "array" then [["\($p): \(type), not an array"], []]
        else [to_entries[] | .key as $i | .value | check($t[9:]; "\($p)[\($i)]")]
            | [map(.[0][]), map(.[1][])] end
    else [($t | split(" or "))[] as $a | one($a)] as $r
        | if any($r[]; .[0] == []) then [[], ($r | map(select(.[0] == []) | .[1][]))]
          else ($r | min_by(.[0] | length)) end
    end;
check($type; "$") | (.[1][], .[0][])
'

# validate TYPE FILE: the document in FILE is a TYPE; its problems on stdout.
validate() {
    jq -r --argjson spec "$spec" --arg type "$1" "$validator" "$2" 2>&1 >"$WORK/v.out" || echo "not JSON: $(head -c 200 "$2")"
    grep '^shape ' "$WORK/v.out" >>"$WORK/seen"
    grep -v '^shape ' "$WORK/v.out"
}

