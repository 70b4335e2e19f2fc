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
#   ERLBOOT_OTP27_ROOT  root of a Debian tree with OTP 27 (default /var/lib/erlboot/otp27)
#   ERLBOOT_OTP29_ROOT  root of a Debian tree with OTP 29 (default /var/lib/erlboot/otp29), made with
#                       debootstrap --variant=minbase --include=erlang-base sid /var/lib/erlboot/otp29
#   ERLBOOT_CLIENT_TIMEOUT  seconds a client node may take (default 60)
# OTP 25 is the host's. Scenarios named otpNN-* run their server with OTP NN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OTP27_ROOT=${ERLBOOT_OTP27_ROOT:-/var/lib/erlboot/otp27}
OTP29_ROOT=${ERLBOOT_OTP29_ROOT:-/var/lib/erlboot/otp29}
CLIENT_TIMEOUT=${ERLBOOT_CLIENT_TIMEOUT:-60}
SCENARIOS=(otp25-boot otp25-requests otp27-boot otp27-requests otp29-boot otp25-files
           otp25-no-server otp25-not-allowed otp25-version-mismatch
           otp25-malformed otp25-server-restart otp25-slave-peer otp25-elixir otp25-sasl)

# Fixed paths as seen by the Erlang nodes (inside the chroot for OTP 27), so that the
# replies (get_cwd, list_dir, file names) are the same on every recording.
SERVER_CWD=/tmp/erlboot-capture-cwd     # master's cwd, recreated empty every time
CLIENT_CWD=/tmp/erlboot-capture-client  # client's cwd, recreated empty every time
NODE_HOME=/tmp/erlboot-capture-home     # HOME of both nodes (no .erlang), recreated empty
FS_DIR=/tmp/erlboot-capture-fs          # directory listed/read by the *-requests scenarios
EDGE_DIR=/tmp/erlboot-capture-edge      # directory of the otp25-files scenario
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

# otp25-files: every request kind over every name of EDGE_DIR (made by make_edge_fs), one
# kind after the other, then get_cwd(). The file named "latin1-" ++ [233] in Latin-1 is not
# valid UTF-8: a node asks for the name in UTF-8 and does not find it, and list_dir leaves it
# out. (Naming it as a raw binary crashes the server's connection process, and the node then
# reconnects and resends the same request forever; otp25-malformed has a binary
# name on a connection of its own.) "relative.txt" is resolved in the server's cwd. Printed
# as in REQUESTS_EVAL, big binaries as {Size, MD5}.
FILES_EVAL='ok = logger:set_primary_config(level, none),
D = "/tmp/erlboot-capture-edge/",
Names = [D, D ++ "empty", D ++ "big", D ++ [233], D ++ "latin1-" ++ [233],
         D ++ "link", D ++ "dangling", D ++ "dir-link", D ++ "dir", D ++ "dir/sub",
         D ++ "missing", "relative.txt", D ++ "unreadable", D ++ "locked-dir"],
P = erl_prim_loader,
Calls = [{Fun, [N]} || Fun <- [get_file, list_dir, read_file_info, read_link_info], N <- Names]
        ++ [{get_cwd, []}],
Results = [{Fun, Args, catch apply(P, Fun, Args)} || {Fun, Args} <- Calls],
Show = fun({ok, Bin, Name}) when byte_size(Bin) > 64 ->
               {ok, {byte_size(Bin), erlang:md5(Bin)}, Name};
          (R) -> R end,
ok = io:setopts([{encoding, unicode}]),
[io:format("erl_prim_loader:~s(~w) => ~w~n", [Fun, Args, Show(R)]) || {Fun, Args, R} <- Results],
init:stop().'

# otp25-server-restart: boot, say so, idle while the server restarts, then make requests.
RESTART_EVAL='io:format("booted~n"), timer:sleep(3000),
R = [code:ensure_loaded(epp), erl_prim_loader:list_dir("/usr/lib/erlang/releases"),
     element(1, erl_prim_loader:get_file("/usr/lib/erlang/releases/start_erl.data"))],
io:format("~w~n", [R]), init:stop().'

# otp25-slave-peer: the distributed master serves the boot and starts a slave and a peer node
# at the same moment, so that the two boots overlap.
SLAVE_PEER_EVAL='{ok,_} = erl_boot_server:start(["127.0.0.1"]),
{ok, Host} = inet:gethostname(),
Self = self(),
spawn_link(fun() -> Self ! {slave, slave:start(Host, s1, "-loader inet -hosts 127.0.0.1")} end),
spawn_link(fun() -> Self ! {peer, peer:start(#{name => p1, args => ["-loader", "inet", "-hosts", "127.0.0.1"]})} end),
{ok, S} = receive {slave, R1} -> R1 end,
{ok, P, N} = receive {peer, R2} -> R2 end,
io:format("slave ~s otp ~s~n", [S, rpc:call(S, erlang, system_info, [otp_release])]),
io:format("peer ~s otp ~s~n", [N, rpc:call(N, erlang, system_info, [otp_release])]),
ok = slave:stop(S),
ok = peer:stop(P),
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

# The directory of the otp25-files scenario: one of every kind of file a boot server can be
# asked about. Owned by root; the server of that scenario runs as nobody (65534), so that
# the 0000 entries are really unreadable to it.
make_edge_fs() {
    local d=$1$EDGE_DIR stamp='2024-01-02 03:04:05 UTC'
    rm -rf "$d"
    mkdir -p "$d/dir/sub" "$d/locked-dir"
    : >"$d/empty"
    seq 1 1000000 >"$d/big"                         # 3 MB of text: misordered bytes show
    truncate -s 3145728 "$d/big"
    printf 'e acute\n' >"$d/"$'\xc3\xa9'              # "é" in UTF-8
    printf 'latin-1 e acute\n' >"$d/latin1-"$'\xe9'   # "é" in Latin-1: not valid UTF-8
    printf 'in dir\n' >"$d/dir/file"
    printf 'secret\n' >"$d/unreadable"
    ln -s empty "$d/link"
    ln -s does-not-exist "$d/dangling"
    ln -s dir "$d/dir-link"
    chmod 0644 "$d/empty" "$d/big" "$d/"$'\xc3\xa9' "$d/latin1-"$'\xe9' "$d/dir/file"
    chmod 0000 "$d/unreadable" "$d/locked-dir"
    chmod 0755 "$d" "$d/dir" "$d/dir/sub"
    find "$d" -mindepth 1 -exec touch -h -d "$stamp" {} +
    touch -d "$stamp" "$d"
}

NS=
TMP=
CLIENT_PIDS=()
cleanup() {
    local rc=$?
    # Only our own processes, by pid.
    local -a pids=(${CLIENT_PIDS[@]+"${CLIENT_PIDS[@]}"} ${MASTER_PID:-} ${TCPDUMP_PID:-})
    for p in ${pids[@]+"${pids[@]}"}; do
        kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true
    done
    sleep 0.2
    for p in ${pids[@]+"${pids[@]}"}; do
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    done
    # Whatever still runs in our namespace was started by us (nodes survive their timeout
    # wrapper when it is killed).
    if [[ -n $NS ]]; then
        for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns delete "$NS" 2>/dev/null || true
    fi
    [[ -n $TMP && $rc -eq 0 ]] && rm -rf "$TMP"
    [[ -n $TMP && $rc -ne 0 ]] && log "logs kept in $TMP"
    NS= TMP= MASTER_PID= TCPDUMP_PID=
    CLIENT_PIDS=()
    return $rc
}

# The path prefix of a release's tree: empty for the host's OTP 25, a chroot for 27 and 29.
root_of() {
    case $1 in
        25) echo "" ;;
        27) echo "$OTP27_ROOT" ;;
        29) echo "$OTP29_ROOT" ;;
        *) die "no OTP $1" ;;
    esac
}

# in_root RELEASE CMD...: run CMD in the release's tree.
in_root() {
    local root
    root=$(root_of "$1"); shift
    if [[ -n $root ]]; then chroot "$root" "$@"; else "$@"; fi
}

# The OTP and erts versions of RELEASE, checked against its major number.
versions_of() {
    local rel=$1 otp erts root
    root=$(root_of "$rel")
    [[ -z $root || -x $root/usr/bin/erl ]] || die "no OTP $rel at $root (see ERLBOOT_OTP${rel}_ROOT)"
    read -r otp erts < <(in_root "$rel" env -i PATH=$NODE_PATH HOME=/tmp \
        timeout 30 erl -noshell -eval \
        '{ok,V} = file:read_file(filename:join([code:root_dir(),"releases",erlang:system_info(otp_release),"OTP_VERSION"])), io:format("~s ~s~n",[string:trim(V), erlang:system_info(version)]), halt().')
    [[ $otp == "$rel".* ]] || die "expected OTP $rel, found $otp"
    printf '%s %s\n' "$otp" "$erts"
}

# The environment of every node.
NODE_VARS=(PATH=$NODE_PATH HOME=$NODE_HOME TZ=UTC LANG=C.UTF-8)

# node_cmd RELEASE CWD [PREFIX...] -- CMD...: sets NODE_CMD, which runs CMD in the namespace
# and the release's tree, in CWD, with NODE_VARS only (PREFIX, e.g. setpriv, goes first).
node_cmd() {
    local rel=$1 cwd=$2 root
    shift 2
    local -a as=()
    while [[ $1 != -- ]]; do as+=("$1"); shift; done
    shift
    root=$(root_of "$rel")
    NODE_CMD=(ip netns exec "$NS")
    [[ -n $root ]] && NODE_CMD+=(chroot "$root")
    NODE_CMD+=(${as[@]+"${as[@]}"} env -i -C "$cwd" "${NODE_VARS[@]}" "$@")
}

# step TEXT: one line of the manifest's `steps`, in the order things were done.
step() { STEPS+=("$1"); }

# start_master RELEASE ALLOW [PREFIX...]: OTP's erl_boot_server allowing ALLOW (an Erlang
# list of address strings), started in SERVER_CWD; returns once it listens.
start_master() {
    local rel=$1 allow=$2
    shift 2
    local eval="{ok,_} = erl_boot_server:start($allow), io:format(\"ready~n\"), receive after infinity -> ok end."
    local -a cmd=(erl -noshell -eval "$eval")
    node_cmd "$rel" "$SERVER_CWD" "$@" -- "${cmd[@]}"
    MASTERS=$((MASTERS + 1))
    timeout 300 "${NODE_CMD[@]}" </dev/null >"$TMP/master$MASTERS.out" 2>"$TMP/master$MASTERS.err" &
    MASTER_PID=$!
    wait_for "$TMP/master$MASTERS.out" '^ready$' 30 "$MASTER_PID"
    [[ -n $SERVER_COMMAND ]] || SERVER_COMMAND=$(shell_join "$@" "${cmd[@]}")
    step "server (OTP $rel): $(shell_join "$@" "${cmd[@]}")"
    log "$NAME: boot server $MASTERS up (OTP $rel)"
}

stop_master() {
    kill -TERM "$MASTER_PID"
    local rc=0
    wait "$MASTER_PID" || rc=$?
    MASTER_PID=
    step "server stopped (SIGTERM)"
    [[ $rc -eq 0 ]] || log "$NAME: master exited with status $rc"
}

# start_client RELEASE LABEL SECONDS SIGNAL CMD...: a node in the background, sent SIGNAL
# after SECONDS; its output goes to $TMP/LABEL.out and .err.
start_client() {
    local rel=$1 label=$2 secs=$3 sig=$4
    shift 4
    node_cmd "$rel" "$CLIENT_CWD" -- "$@"
    timeout -s "$sig" -k 5 "$secs" "${NODE_CMD[@]}" </dev/null >"$TMP/$label.out" 2>"$TMP/$label.err" &
    CLIENT_PIDS+=($!)
    [[ -n $CLIENT_COMMAND ]] || CLIENT_COMMAND=$(shell_join "$@")
    local killed=
    [[ $sig == KILL ]] && killed=", SIGKILL after $secs s"
    step "$label (OTP $rel$killed): $(shell_join "$@")"
}

# wait_clients STATUS: wait for every client; each must exit with STATUS.
wait_clients() {
    local want=$1 p rc
    for p in ${CLIENT_PIDS[@]+"${CLIENT_PIDS[@]}"}; do
        rc=0
        wait "$p" || rc=$?
        [[ $rc -eq $want ]] || { tail -n 20 "$TMP"/*.out "$TMP"/*.err >&2; die "a client exited with status $rc, not $want"; }
    done
    CLIENT_PIDS=()
}

# expect_out LABEL REGEX: the client's stdout has a line matching REGEX.
expect_out() {
    grep -qE "$2" "$TMP/$1.out" || { cat "$TMP/$1.out" "$TMP/$1.err" >&2; die "$1 did not print '$2'"; }
}

# The scenario itself, run while tcpdump records. Sets SHOWS, EXPECTED (the label of a client
# whose output is kept as NAME.expected.txt) and the commands, and calls step().
run_scenario() {
    local -a boot=(erl -loader inet -hosts 127.0.0.1 -noshell)
    case $NAME in
        otp2[579]-boot)
            start_master "$RELEASE" '["127.0.0.1"]'
            start_client "$RELEASE" client "$CLIENT_TIMEOUT" TERM "${boot[@]}" -eval "$BOOT_EVAL"
            wait_clients 0
            expect_out client '^\[1,2,3\]$'
            SHOWS="A complete OTP $OTP_RELEASE boot of an erl -loader inet node from OTP's erl_boot_server on 127.0.0.1: UDP EBOOTQ/EBOOTR discovery, then every boot request (boot script, primLoad, code server scan, on-demand loads) on one {packet,4} TCP connection, closed by the client at init:stop()." ;;
        otp2[57]-requests)
            start_master "$RELEASE" '["127.0.0.1"]'
            start_client "$RELEASE" client "$CLIENT_TIMEOUT" TERM "${boot[@]}" -eval "$REQUESTS_EVAL"
            wait_clients 0
            [[ $(grep -c '^erl_prim_loader:' "$TMP/client.out") -eq 14 && $(wc -l <"$TMP/client.out") -eq 14 ]] ||
                { cat "$TMP/client.out" >&2; die "expected exactly 14 result lines"; }
            EXPECTED=client
            SHOWS="An OTP $OTP_RELEASE boot followed by one explicit erl_prim_loader call of every request type (list_dir, read_file_info, read_link_info, get_file incl. errors and a non-Latin-1 name, get_cwd/0 and get_cwd/1), whose return values are in the .expected.txt file." ;;
        otp25-files)
            start_master 25 '["127.0.0.1"]' setpriv --reuid=65534 --regid=65534 --clear-groups
            start_client 25 client "$CLIENT_TIMEOUT" TERM "${boot[@]}" -eval "$FILES_EVAL"
            wait_clients 0
            [[ $(grep -c '^erl_prim_loader:' "$TMP/client.out") -eq $(wc -l <"$TMP/client.out") ]] ||
                { cat "$TMP/client.out" >&2; die "unexpected output"; }
            EXPECTED=client
            SHOWS="An OTP $OTP_RELEASE boot, then get_file, list_dir, read_file_info and read_link_info (each kind over every name, in that order) of the entries of $EDGE_DIR: an empty file, a 3 MB file, UTF-8 and Latin-1 names (the Latin-1 one, not valid UTF-8, is left out of list_dir and cannot be named), a symlink, a dangling symlink, a symlink to a directory, a directory, a missing name, a relative name (resolved in the server's cwd), an unreadable file and directory (mode 0000; the server runs as nobody), then get_cwd(). What the calls returned is in the .expected.txt file." ;;
        otp25-no-server)
            start_client 25 client 14 KILL "${boot[@]}" -eval "$BOOT_EVAL"
            wait_clients 137
            SHOWS="An OTP $OTP_RELEASE node looking for a boot server when none runs: rounds of 3 EBOOTQ datagrams 500 ms apart, 10 s of sleep between rounds, no answer, no TCP. The node is killed after 14 s." ;;
        otp25-not-allowed)
            start_master 25 '["127.0.0.2"]'
            start_client 25 client 4 KILL "${boot[@]}" -eval "$BOOT_EVAL"
            wait_clients 137
            cat "$TMP/master1.out" "$TMP/master1.err" | grep -q 'is not a valid address' || die "the server did not log the refusal"
            SHOWS="A client on 127.0.0.1, outside the server's allow list (127.0.0.2 only): the server does not answer its EBOOTQ datagrams (it logs an illegal connection attempt), so the client never connects. The node is killed after 4 s." ;;
        otp25-version-mismatch)
            start_master 25 '["127.0.0.1"]'
            start_client 27 client 4 KILL "${boot[@]}" -eval "$BOOT_EVAL"
            wait_clients 137
            cat "$TMP/master1.out" "$TMP/master1.err" | grep -q 'client version is' || die "the server did not log the version mismatch"
            SHOWS="An OTP $CLIENT_OTP_RELEASE client (erts $CLIENT_ERTS_VERSION) and an OTP $OTP_RELEASE server (erts $ERTS_VERSION): the server does not answer EBOOTQ of another erts version (it logs the client's version), so the client never connects. The client is killed after 4 s." ;;
        otp25-malformed)
            start_master 25 '["127.0.0.1"]'
            cp "$HERE/raw_client.escript" "$TMP/raw_client.escript"
            CLIENT_COMMAND="escript captures/raw_client.escript 127.0.0.1"
            start_client 25 client "$CLIENT_TIMEOUT" TERM escript "$TMP/raw_client.escript" 127.0.0.1
            STEPS[-1]="client (OTP 25): $CLIENT_COMMAND"
            wait_clients 0
            expect_out client 'unknown_command'
            EXPECTED=client
            SHOWS="captures/raw_client.escript against erl_boot_server: one EBOOTQ/EBOOTR, then one TCP connection per case, each sending bytes an inet loader never sends: an empty frame, non-ETF bytes, the ETF version byte alone, truncated ETF, a wrong ETF version byte, unknown commands, a get with 3 elements, a compressed get, names of the wrong type (they crash the connection's process: closed without a reply), two requests in one segment, and a length prefix longer than the data. What came back is in the .expected.txt file." ;;
        otp25-server-restart)
            start_master 25 '["127.0.0.1"]'
            # The node notices only when its next request gets no reply in 60 s (the
            # loader's idle timeout: the server's FIN arrived while it was idle).
            start_client 25 client $((CLIENT_TIMEOUT + 90)) TERM "${boot[@]}" -eval "$RESTART_EVAL"
            wait_for "$TMP/client.out" '^booted$' 60 "${CLIENT_PIDS[0]}"
            stop_master
            start_master 25 '["127.0.0.1"]'
            wait_clients 0
            expect_out client '^\[\{module,epp\}'
            SHOWS="An OTP $OTP_RELEASE node boots, then idles for 3 s; meanwhile its erl_boot_server is stopped (which closes the connection) and a new one is started, on a new port. The server's FIN arrives while the node is idle and its loader closes the socket; its next request (for code:ensure_loaded(epp)) is sent nowhere and waits for its 60 s reply timeout; then it discovers the new server, connects again, resends the request and carries on (a list_dir, a get_file, printing)." ;;
        otp25-slave-peer)
            start_client 25 master "$CLIENT_TIMEOUT" TERM erl -sname master -noshell -eval "$SLAVE_PEER_EVAL"
            SERVER_COMMAND=$CLIENT_COMMAND
            CLIENT_COMMAND='slave:start(Host, s1, "-loader inet -hosts 127.0.0.1") and peer:start(#{name => p1, args => ["-loader", "inet", "-hosts", "127.0.0.1"]}) at once, from the master'
            wait_clients 0
            expect_out master '^slave s1@.* otp 25$'
            expect_out master '^peer p1@.* otp 25$'
            SHOWS="Two nodes booting at once: a distributed OTP $OTP_RELEASE master (-sname master) runs erl_boot_server and starts, at the same moment, a slave node (slave:start/3) and a peer node (peer:start/1), both with -loader inet -hosts 127.0.0.1; both boots come from 127.0.0.1 and overlap on the wire. The master then makes an rpc to each and stops them. The capture also holds epmd and distribution traffic, which is not boot traffic." ;;
        otp25-elixir)
            start_master 25 '["127.0.0.1"]'
            start_client 25 client "$CLIENT_TIMEOUT" TERM elixir --erl "-loader inet -hosts 127.0.0.1" -e 'IO.inspect([1, 2, 3])'
            wait_clients 0
            expect_out client '^\[1, 2, 3\]$'
            SHOWS="An Elixir $(elixir --version 2>/dev/null | sed -n 's/^Elixir \([^ ]*\).*/\1/p') node on OTP $OTP_RELEASE (elixir --erl \"-loader inet -hosts 127.0.0.1\") boots from erl_boot_server: the OTP boot, then Elixir's code paths (-pa) scanned and its modules loaded over the same connection." ;;
        otp25-sasl)
            start_master 25 '["127.0.0.1"]'
            start_client 25 client "$CLIENT_TIMEOUT" TERM "${boot[@]}" -boot start_sasl -eval "$BOOT_EVAL"
            wait_clients 0
            expect_out client '^\[1,2,3\]$'
            SHOWS="An OTP $OTP_RELEASE node booted with -boot start_sasl: the start_sasl.boot script, then kernel, stdlib and the sasl application fetched from erl_boot_server." ;;
        *) die "unknown scenario $NAME (known: ${SCENARIOS[*]})" ;;
    esac
}

record() {
    NAME=$1
    local client_rel= root rel
    [[ " ${SCENARIOS[*]} " == *" $NAME "* ]] || die "unknown scenario $NAME (known: ${SCENARIOS[*]})"
    RELEASE=${NAME#otp}
    RELEASE=${RELEASE%%-*}
    [[ $NAME == otp25-version-mismatch ]] && client_rel=27

    TMP=$(mktemp -d "/tmp/erlboot-record-$NAME.XXXXXX")
    # Recorded into TMP and moved into captures/ only when everything succeeded.
    local pcap=$TMP/$NAME.pcap
    NS=erlboot-cap-$$
    trap cleanup EXIT
    STEPS=() SHOWS= EXPECTED= SERVER_COMMAND= CLIENT_COMMAND= MASTERS=0

    read -r OTP_RELEASE ERTS_VERSION < <(versions_of "$RELEASE")
    [[ -n $OTP_RELEASE ]] || die "no OTP $RELEASE"
    log "$NAME: OTP $OTP_RELEASE (erts $ERTS_VERSION)"
    CLIENT_OTP_RELEASE= CLIENT_ERTS_VERSION=
    if [[ -n $client_rel ]]; then
        read -r CLIENT_OTP_RELEASE CLIENT_ERTS_VERSION < <(versions_of "$client_rel")
        [[ -n $CLIENT_OTP_RELEASE ]] || die "no OTP $client_rel"
        log "$NAME: client OTP $CLIENT_OTP_RELEASE (erts $CLIENT_ERTS_VERSION)"
    fi
    for rel in $RELEASE $client_rel; do
        root=$(root_of "$rel")
        for d in "$SERVER_CWD" "$CLIENT_CWD" "$NODE_HOME"; do
            rm -rf "$root$d"
            mkdir -p "$root$d"
        done
        case $NAME in
            *-requests) make_fs "$root" ;;
            otp25-files)
                make_edge_fs "$root"
                printf 'relative to the server cwd\n' >"$root$SERVER_CWD/relative.txt"
                touch -d '2024-01-02 03:04:05 UTC' "$root$SERVER_CWD/relative.txt"
                chown 65534:65534 "$root$SERVER_CWD" ;;
        esac
    done

    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up

    timeout 300 ip netns exec "$NS" tcpdump -i lo -U -s 0 -B 65536 -Z root -w "$pcap" 'udp port 4368 or tcp' \
        </dev/null >"$TMP/tcpdump.out" 2>"$TMP/tcpdump.err" &
    TCPDUMP_PID=$!
    wait_for "$TMP/tcpdump.err" 'listening on' 20 "$TCPDUMP_PID"

    local t0 t1
    t0=$(date +%s%N)
    run_scenario
    t1=$(date +%s%N)
    log "$NAME: scenario done in $(( (t1 - t0) / 1000000 )) ms"

    sleep 0.5   # let the last FIN/ACKs be captured
    [[ -n ${MASTER_PID:-} ]] && stop_master
    kill -INT "$TCPDUMP_PID"
    local rc=0
    wait "$TCPDUMP_PID" || rc=$?
    TCPDUMP_PID=
    [[ $rc -eq 0 ]] || die "tcpdump exited with status $rc: $(cat "$TMP/tcpdump.err")"
    grep -E 'packets (captured|dropped by kernel)' "$TMP/tcpdump.err" | sed "s/^/[record] $NAME: tcpdump: /" >&2
    grep -q '^0 packets dropped by kernel' "$TMP/tcpdump.err" || die "tcpdump dropped packets"
    # epmd, started by a distributed node, outlives it; it is ours too.
    for p in $(ip netns pids "$NS"); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns delete "$NS"
    NS=
    local f
    for f in "$TMP"/*.err; do
        [[ -s $f && $f != */tcpdump.err ]] && { log "$NAME: $(basename "$f"):"; head -n 20 "$f" >&2; }
    done

    # Summarise the pcap (tshark reassembly + binary_to_term, independent of the Rust reader).
    local facts
    facts=$(timeout 300 escript "$HERE/summarise.escript" "$pcap") || die "summarise.escript failed on $pcap"

    local block
    block=$(
        printf '[[capture]]\n'
        printf 'file = "%s"\n' "$NAME.pcap"
        printf 'scenario = "%s"\n' "$NAME"
        printf 'otp_release = "%s"\n' "$OTP_RELEASE"
        printf 'erts_version = "%s"\n' "$ERTS_VERSION"
        if [[ -n $CLIENT_OTP_RELEASE ]]; then
            printf 'client_otp_release = "%s"\n' "$CLIENT_OTP_RELEASE"
            printf 'client_erts_version = "%s"\n' "$CLIENT_ERTS_VERSION"
        fi
        printf 'recorded = "%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        for rel in $RELEASE $client_rel; do
            root=$(root_of "$rel")
            if [[ -n $root ]]; then printf 'chroot = "%s"\n' "$root"; fi
        done
        printf 'environment = %s\n' "$(toml_str "${NODE_VARS[*]}")"
        if [[ -n $SERVER_COMMAND ]]; then printf 'server_command = %s\n' "$(toml_str "$SERVER_COMMAND")"; fi
        printf 'client_command = %s\n' "$(toml_str "$CLIENT_COMMAND")"
        printf 'steps = [%s]\n' "$(for s in "${STEPS[@]}"; do printf '%s, ' "$(toml_str "$s")"; done | sed 's/, $//')"
        printf 'server_cwd = "%s"\n' "$SERVER_CWD"
        printf 'client_cwd = "%s"\n' "$CLIENT_CWD"
        if [[ -n $EXPECTED ]]; then printf 'expected = "%s"\n' "$NAME.expected.txt"; fi
        printf 'shows = %s\n' "$(toml_str "$SHOWS")"
        printf '%s\n' "$facts"
    )
    mv "$pcap" "$HERE/$NAME.pcap"
    if [[ -n $EXPECTED ]]; then cp "$TMP/$EXPECTED.out" "$HERE/$NAME.expected.txt"; fi
    update_manifest "$NAME.pcap" "$block"
    log "$NAME: wrote $HERE/$NAME.pcap ($(stat -c %s "$HERE/$NAME.pcap") bytes) and its manifest entry"
    printf '%s\n' "$block" | grep -E '^(requests|commands|tcp_streams) ' | sed "s/^/[record] $NAME: /" >&2

    trap - EXIT
    cleanup
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
    for tool in ip tcpdump tshark erl escript elixir setpriv timeout awk; do
        command -v "$tool" >/dev/null || die "missing $tool"
    done
    local -a todo=()
    for a in "$@"; do
        if [[ $a == all ]]; then todo+=("${SCENARIOS[@]}"); else todo+=("$a"); fi
    done
    for s in "${todo[@]}"; do
        local root=
        case $s in
            otp27-* | otp25-version-mismatch) root=$OTP27_ROOT ;;
            otp29-*) root=$OTP29_ROOT ;;
        esac
        if [[ -n $root && ! -x $root/usr/bin/erl && " $* " == *" all "* ]]; then
            log "skipping $s: no OTP tree at $root"
            continue
        fi
        record "$s"
    done
}

main "$@"
