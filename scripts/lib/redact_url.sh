# redact_url URL: prints URL with its password (if any) replaced by
# <redacted>, so that a database URL can be shown. Only the password goes:
# postgres://user:secret@host/db -> postgres://user:<redacted>@host/db,
# postgres://user@host/db is printed as it is, and so is a `password=`
# query parameter's value.

redact_url() {
    local url="$1"
    local userinfo_re='^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@(.*)$'
    if [[ "$url" =~ $userinfo_re ]]; then
        url="${BASH_REMATCH[1]}:<redacted>@${BASH_REMATCH[2]}"
    fi
    local query_re='^(.*[?&]password=)[^&#]*(.*)$'
    if [[ "$url" =~ $query_re ]]; then
        url="${BASH_REMATCH[1]}<redacted>${BASH_REMATCH[2]}"
    fi
    printf '%s\n' "$url"
}
