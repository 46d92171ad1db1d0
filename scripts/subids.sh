#!/usr/bin/env bash
# Gives a user (default: the invoking one) 65536 subordinate uids and gids
# when it has none in /etc/subuid or /etc/subgid: every guarded build runs
# in a user namespace mapped to that range (as root too), and buildguard
# never picks a range of its own, which could be another user's. The range
# starts above every range and every uid this machine has. Run as root;
# `buildguard doctor` says the same thing to a user who runs it by hand.
set -euo pipefail
user="${1:-$(id -un)}"
uid="$(id -u "$user")"
# has FILE: the user has a range of at least 65536 ids there (buildguard
# uses the first such range).
has() {
  awk -F: -v u="$user" -v id="$uid" '($1 == u || $1 == id) && NF == 3 && $3 >= 65536 { found = 1 } END { exit !found }' "$1" 2>/dev/null
}
if has /etc/subuid && has /etc/subgid; then
  exit 0
fi
top=$( { cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'NF==3 {print $2+$3}'
         getent passwd | awk -F: '{print $3+1}'
         echo 100000; } | sort -n | tail -1)
start=$(( (top + 65535) / 65536 * 65536 ))
end=$(( start + 65535 ))
args=()
has /etc/subuid || args+=(--add-subuids "$start-$end")
has /etc/subgid || args+=(--add-subgids "$start-$end")
echo "giving $user the subordinate ids $start-$end for the build's user namespace (usermod ${args[*]} $user)"
usermod "${args[@]}" "$user"
