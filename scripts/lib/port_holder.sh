# Who holds a TCP port: for scripts/dev's message when the address it was
# asked to listen on is taken.

# port_taken_by_someone HOST PORT: succeeds when something listens on PORT.
# Asks the kernel (ss) rather than connecting: whatever listens there is not
# ours to talk to. Without ss, a bare TCP connect to HOST (nothing sent).
port_taken_by_someone() {
    local host="$1" port="$2"
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]
        return
    fi
    case "$host" in 0.0.0.0 | "" | "*") host=127.0.0.1 ;; "[::]") host=::1 ;; esac
    host="${host#[}"
    host="${host%]}"
    timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

# port_holder PORT: prints what listens on PORT ("pid 123: nc -l 8080"),
# as far as this user may see; "an unknown process" when it may not (a
# process of another user, or neither ss nor lsof installed).
port_holder() {
    local port="$1" pids=() pid found=""
    if command -v ss >/dev/null 2>&1; then
        mapfile -t pids < <(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
    fi
    if [ ${#pids[@]} -eq 0 ] && command -v lsof >/dev/null 2>&1; then
        mapfile -t pids < <(lsof -nP -t -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | sort -u)
    fi
    for pid in "${pids[@]}"; do
        [ -n "$found" ] && found+=", "
        found+="pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | sed 's/ *$//')"
    done
    printf '%s\n' "${found:-an unknown process (of another user, or ss/lsof cannot tell)}"
}
