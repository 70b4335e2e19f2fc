#!/usr/bin/env bash
# Record pcaps of real Erlang/OTP nodes booting with `-loader inet` from OTP's own
# erl_boot_server, and (re)write their entries in manifest.toml.
#
# Usage (as root):  captures/record.sh SCENARIO...   or   captures/record.sh all
#                   captures/record.sh --list
#
# Every recording runs inside a private network namespace created for it; the only
# traffic is on that namespace's loopback (127.0.0.1). The namespace is deleted at the end.
#
# Environment:
#   ERLBOOT_OTP27_ROOT  root of a Debian trixie chroot with OTP 27 (default /work/otp/trixie)
#   ERLBOOT_CLIENT_TIMEOUT  seconds the client node may take (default 60)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OTP27_ROOT=${ERLBOOT_OTP27_ROOT:-/work/otp/trixie}
CLIENT_TIMEOUT=${ERLBOOT_CLIENT_TIMEOUT:-60}
SCENARIOS=(otp25-boot otp25-requests otp27-boot otp27-requests)

# Fixed paths as seen by the Erlang nodes (inside the chroot for OTP 27), so that the
# replies (get_cwd, list_dir, file names) are the same on every recording.
SERVER_CWD=/tmp/erlboot-capture-cwd     # master's cwd, recreated empty every time
CLIENT_CWD=/tmp/erlboot-capture-client  # client's cwd, recreated empty every time
NODE_HOME=/tmp/erlboot-capture-home     # HOME of both nodes (no .erlang), recreated empty
FS_DIR=/tmp/erlboot-capture-fs          # directory listed/read by the *-requests scenarios
NODE_PATH=/usr/local/bin:/usr/bin:/bin

SERVER_EVAL='{ok,_} = erl_boot_server:start(["127.0.0.1"]), io:format("ready~n"), receive after infinity -> ok end.'

BOOT_EVAL='io:format("~p~n",[lists:seq(1,3)]), init:stop().'

# All requests are made first (so they are contiguous on the wire: printing loads modules
# on demand, which makes more requests), then printed one per line as
#   <call> => <result printed with ~w>
# ~w prints strings as lists of code points and binaries as <<bytes>>: ASCII, unambiguous.
# The eval text is pure ASCII: non-ASCII names are built from code points.
# Logging is switched off first: erl_prim_loader logs eisdir/enotsup errors, and formatting
# those reports loads modules over the same connection, between the explicit requests.
REQUESTS_EVAL='ok = logger:set_primary_config(level, none),
D = "/tmp/erlboot-capture-fs",
F = D ++ "/file.txt", L = D ++ "/link", DL = D ++ "/dangling",
Euro = D ++ [$/, 8364, $x], Sub = D ++ "/subdir",
Missing = D ++ "/missing", MissingDir = D ++ "/missing-dir",
P = erl_prim_loader,
Calls = [{list_dir, [D]},
         {read_file_info, [F]}, {read_file_info, [L]}, {read_file_info, [DL]},
         {read_link_info, [F]}, {read_link_info, [L]}, {read_link_info, [DL]},
         {get_file, [F]}, {get_file, [Missing]}, {get_file, [Sub]}, {get_file, [Euro]},
         {get_cwd, []}, {get_cwd, ["c:"]},
         {list_dir, [MissingDir]}],
Results = [{Fun, Args, catch apply(P, Fun, Args)} || {Fun, Args} <- Calls],
ok = io:setopts([{encoding, unicode}]),
[io:format("erl_prim_loader:~s(~ts) => ~w~n",
           [Fun, lists:join(",", [io_lib:format("\"~ts\"", [A]) || A <- Args]), R])
 || {Fun, Args, R} <- Results],
init:stop().'

log() { printf '[record %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for FILE REGEX SECONDS PID: wait until FILE has a line matching REGEX, while PID lives.
wait_for() {
    local file=$1 re=$2 secs=$3 pid=$4 i
    for ((i = 0; i < secs * 10; i++)); do
        grep -qE "$re" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2 || true; die "process $pid exited before '$re' appeared in $file"; }
        sleep 0.1
    done
    cat "$file" >&2 || true
    die "timed out after ${secs}s waiting for '$re' in $file"
}

# Create the directory of the *-requests scenarios under ROOTFS (empty for the host).
make_fs() {
    local d=$1$FS_DIR stamp='2024-01-02 03:04:05 UTC'
    rm -rf "$d"
    mkdir -p "$d/subdir"
    printf 'hello from erlboot\n' >"$d/file.txt"
    printf 'e acute\n' >"$d/"$'\xc3\xa9'            # "é", UTF-8 on disk
    printf 'euro x\n' >"$d/"$'\xe2\x82\xac'x        # "€x", UTF-8 on disk
    ln -s file.txt "$d/link"
    ln -s does-not-exist "$d/dangling"
    chmod 0644 "$d/file.txt" "$d/"$'\xc3\xa9' "$d/"$'\xe2\x82\xac'x
    chmod 0755 "$d" "$d/subdir"
    touch -h -d "$stamp" "$d/file.txt" "$d/"$'\xc3\xa9' "$d/"$'\xe2\x82\xac'x \
        "$d/link" "$d/dangling" "$d/subdir"
    touch -d "$stamp" "$d"
}

NS=
TMP=
cleanup() {
    local rc=$?
    # Only our own processes, by pid.
    for p in ${CLIENT_PID:-} ${MASTER_PID:-} ${TCPDUMP_PID:-}; do
        kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true
    done
    sleep 0.2
    for p in ${CLIENT_PID:-} ${MASTER_PID:-} ${TCPDUMP_PID:-}; do
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    done
    [[ -n $NS ]] && ip netns delete "$NS" 2>/dev/null || true
    [[ -n $TMP && $rc -eq 0 ]] && rm -rf "$TMP"
    [[ -n $TMP && $rc -ne 0 ]] && log "logs kept in $TMP"
    NS= TMP= CLIENT_PID= MASTER_PID= TCPDUMP_PID=
    return $rc
}

record() {
    local name=$1 release rootfs otp_release erts_version
    local -a in_root
    case $name in
        otp25-*) release=25 rootfs= in_root=() ;;
        otp27-*) release=27 rootfs=$OTP27_ROOT in_root=(chroot "$OTP27_ROOT")
                 [[ -x $OTP27_ROOT/usr/bin/erl ]] || die "no OTP 27 at $OTP27_ROOT (set ERLBOOT_OTP27_ROOT)" ;;
        *) die "unknown scenario $name (known: ${SCENARIOS[*]})" ;;
    esac
    local client_eval
    case $name in
        *-boot) client_eval=$BOOT_EVAL ;;
        *-requests) client_eval=$REQUESTS_EVAL; make_fs "$rootfs" ;;
        *) die "unknown scenario $name" ;;
    esac

    TMP=$(mktemp -d "/tmp/erlboot-record-$name.XXXXXX")
    # Recorded into TMP and moved into captures/ only when everything succeeded.
    local pcap=$TMP/$name.pcap
    NS=erlboot-cap-$$
    trap cleanup EXIT

    for d in "$SERVER_CWD" "$CLIENT_CWD" "$NODE_HOME"; do
        rm -rf "$rootfs$d"
        mkdir -p "$rootfs$d"
    done

    read -r otp_release erts_version < <("${in_root[@]}" env -i PATH=$NODE_PATH HOME=$NODE_HOME \
        timeout 30 erl -noshell -eval \
        '{ok,V} = file:read_file(filename:join([code:root_dir(),"releases",erlang:system_info(otp_release),"OTP_VERSION"])), io:format("~s ~s~n",[string:trim(V), erlang:system_info(version)]), halt().')
    [[ $otp_release == "$release".* ]] || die "expected OTP $release, found $otp_release"
    log "$name: OTP $otp_release (erts $erts_version)"

    # The environment and commands as run by the nodes (recorded in the manifest).
    local -a node_vars=(PATH=$NODE_PATH HOME=$NODE_HOME TZ=UTC LANG=C.UTF-8)
    local -a server_cmd=(erl -noshell -eval "$SERVER_EVAL")
    local -a client_cmd=(erl -loader inet -hosts 127.0.0.1 -noshell -eval "$client_eval")

    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up

    timeout 300 ip netns exec "$NS" tcpdump -i lo -U -s 0 -B 65536 -Z root -w "$pcap" 'udp port 4368 or tcp' \
        </dev/null >"$TMP/tcpdump.out" 2>"$TMP/tcpdump.err" &
    TCPDUMP_PID=$!
    wait_for "$TMP/tcpdump.err" 'listening on' 20 "$TCPDUMP_PID"

    timeout 300 ip netns exec "$NS" "${in_root[@]}" env -i -C "$SERVER_CWD" "${node_vars[@]}" "${server_cmd[@]}" \
        </dev/null >"$TMP/master.out" 2>"$TMP/master.err" &
    MASTER_PID=$!
    wait_for "$TMP/master.out" '^ready$' 30 "$MASTER_PID"
    log "$name: boot server up, starting client"

    local t0 t1 rc=0
    t0=$(date +%s%N)
    timeout -k 5 "$CLIENT_TIMEOUT" ip netns exec "$NS" "${in_root[@]}" env -i -C "$CLIENT_CWD" "${node_vars[@]}" "${client_cmd[@]}" \
        </dev/null >"$TMP/client.out" 2>"$TMP/client.err" &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=
    t1=$(date +%s%N)
    [[ $rc -eq 0 ]] || { cat "$TMP/client.out" "$TMP/client.err" >&2; die "client exited with status $rc"; }
    log "$name: client done in $(( (t1 - t0) / 1000000 )) ms"

    sleep 0.5   # let the FIN/ACK of the boot connection be captured
    kill -TERM "$MASTER_PID"
    rc=0; wait "$MASTER_PID" || rc=$?
    MASTER_PID=
    [[ $rc -eq 0 ]] || log "$name: master exited with status $rc"
    kill -INT "$TCPDUMP_PID"
    rc=0; wait "$TCPDUMP_PID" || rc=$?
    TCPDUMP_PID=
    [[ $rc -eq 0 ]] || die "tcpdump exited with status $rc: $(cat "$TMP/tcpdump.err")"
    grep -E 'packets (captured|dropped by kernel)' "$TMP/tcpdump.err" | sed "s/^/[record] $name: tcpdump: /" >&2
    grep -q '^0 packets dropped by kernel' "$TMP/tcpdump.err" || die "tcpdump dropped packets"
    ip netns delete "$NS"; NS=

    if grep -q '^\[1,2,3\]$' "$TMP/client.out" || [[ $name == *-requests ]]; then :; else
        cat "$TMP/client.out" >&2; die "unexpected client output"; fi
    if [[ $name == *-requests ]]; then
        [[ $(grep -c '^erl_prim_loader:' "$TMP/client.out") -eq 14 && $(wc -l <"$TMP/client.out") -eq 14 ]] ||
            { cat "$TMP/client.out" >&2; die "expected exactly 14 result lines"; }
    fi
    if [[ -s $TMP/client.err ]]; then log "$name: client stderr:"; cat "$TMP/client.err" >&2; fi

    # Summarise the pcap (tshark reassembly + binary_to_term, independent of the Rust reader).
    local facts
    facts=$(timeout 300 escript "$HERE/summarise.escript" "$pcap") || die "summarise.escript failed on $pcap"

    local block
    block=$(
        printf '[[capture]]\n'
        printf 'file = "%s"\n' "$name.pcap"
        printf 'scenario = "%s"\n' "$name"
        printf 'otp_release = "%s"\n' "$otp_release"
        printf 'erts_version = "%s"\n' "$erts_version"
        printf 'recorded = "%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        [[ -n $rootfs ]] && printf 'chroot = "%s"\n' "$rootfs"
        printf 'environment = %s\n' "$(toml_str "${node_vars[*]}")"
        printf 'server_command = %s\n' "$(toml_str "$(shell_join "${server_cmd[@]}")")"
        printf 'client_command = %s\n' "$(toml_str "$(shell_join "${client_cmd[@]}")")"
        printf 'server_cwd = "%s"\n' "$SERVER_CWD"
        printf 'client_cwd = "%s"\n' "$CLIENT_CWD"
        [[ $name == *-requests ]] && printf 'expected = "%s"\n' "$name.expected.txt"
        printf 'shows = %s\n' "$(toml_str "$(shows "$name" "$otp_release")")"
        printf '%s\n' "$facts"
    )
    mv "$pcap" "$HERE/$name.pcap"
    [[ $name == *-requests ]] && cp "$TMP/client.out" "$HERE/$name.expected.txt"
    update_manifest "$name.pcap" "$block"
    log "$name: wrote $HERE/$name.pcap ($(stat -c %s "$HERE/$name.pcap") bytes) and its manifest entry"
    printf '%s\n' "$block" | grep -E '^(requests|commands) ' | sed "s/^/[record] $name: /" >&2

    trap - EXIT
    cleanup
}

shows() {
    case $1 in
        *-boot) echo "A complete OTP $2 boot of an erl -loader inet node from OTP's erl_boot_server on 127.0.0.1: UDP EBOOTQ/EBOOTR discovery, then every boot request (boot script, primLoad, code server scan, on-demand loads) on one {packet,4} TCP connection, closed by the client at init:stop()." ;;
        *-requests) echo "An OTP $2 boot followed by one explicit erl_prim_loader call of every request type (list_dir, read_file_info, read_link_info, get_file incl. errors and a non-Latin-1 name, get_cwd/0 and get_cwd/1), whose return values are in the .expected.txt file." ;;
    esac
}

# Quote words for a POSIX shell (single quotes where needed).
shell_join() {
    local out= w
    for w in "$@"; do
        if [[ $w =~ ^[A-Za-z0-9_./:=,-]+$ ]]; then out+="$w "; else out+="'${w//\'/\'\\\'\'}' "; fi
    done
    printf '%s' "${out% }"
}

# A TOML basic string.
toml_str() {
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

# Replace the [[capture]] block whose file = FILE, or append it; keeps the order of scenarios.
update_manifest() {
    local file=$1 block=$2 m=$HERE/manifest.toml
    [[ -f $m ]] || printf '%s\n' \
        '# Packet captures of real Erlang/OTP nodes. Written by record.sh; see README.md.' \
        '# Counts are of {packet,4} frames on the boot TCP connection(s), decoded with binary_to_term.' >"$m"
    BLOCK=$block FILE=$file awk '
        function flush() { if (inblk) { if (!replaced && cur == ENVIRON["FILE"]) { print ENVIRON["BLOCK"]; print ""; replaced = 1 } else printf "%s", buf } buf = ""; inblk = 0; cur = "" }
        /^\[\[capture\]\]/ { flush(); inblk = 1 }
        inblk { buf = buf $0 "\n"; if ($0 ~ /^file = "/) { cur = $0; sub(/^file = "/, "", cur); sub(/".*/, "", cur) }; next }
        { print }
        END { flush(); if (!replaced) { print ENVIRON["BLOCK"]; print "" } }
    ' "$m" >"$m.new"
    mv "$m.new" "$m"
}

main() {
    [[ $# -ge 1 ]] || { echo "usage: $0 SCENARIO...|all|--list  (scenarios: ${SCENARIOS[*]})" >&2; exit 2; }
    if [[ $1 == --list ]]; then printf '%s\n' "${SCENARIOS[@]}"; exit 0; fi
    [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, tcpdump, chroot)"
    for tool in ip tcpdump tshark erl escript timeout awk; do
        command -v "$tool" >/dev/null || die "missing $tool"
    done
    local -a todo=()
    for a in "$@"; do
        if [[ $a == all ]]; then todo+=("${SCENARIOS[@]}"); else todo+=("$a"); fi
    done
    for s in "${todo[@]}"; do
        if [[ $s == otp27-* && ! -x $OTP27_ROOT/usr/bin/erl ]]; then
            [[ " $* " == *" all "* ]] && { log "skipping $s: no OTP 27 chroot at $OTP27_ROOT"; continue; }
        fi
        record "$s"
    done
}

main "$@"
