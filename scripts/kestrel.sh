#!/bin/bash
#
# kestrel.sh {start|stop|restart|force-reload|status}: init script for kestreld.
# Copy it to /etc/init.d/kestrel. See docs/operations.md.
#
### BEGIN INIT INFO
# Provides:          kestrel
# Required-Start:    $remote_fs $network
# Required-Stop:     $remote_fs $network
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: kestrel-c message queue server
# Description:       kestreld, a Kestrel-compatible message queue server.
### END INIT INFO
#
# Settings, from the environment or from the shell fragments /etc/default/kestrel (Debian's
# place) and /etc/sysconfig/kestrel (Red Hat's), read in that order when present, or only
# $KESTREL_DEFAULTS when that is set; the environment wins:
#   KESTRELD             the server binary (default: kestreld on PATH, else /usr/local/bin/kestreld)
#   KESTREL_CONFIG       config file (default /etc/kestrel/production.conf, else
#                        PREFIX/etc/kestrel/production.conf next to the binary's PREFIX/bin)
#   KESTREL_PIDFILE      pid file (default /var/run/kestrel/kestrel.pid)
#   KESTREL_ADMIN_PORT   admin HTTP port asked for /shutdown.txt by stop (default: the config's
#                        adminHttpPort, else 2223); when set, also passed as --admin-port.
#                        0: stop goes straight to SIGTERM.
#   KESTREL_ADMIN_HOST   address of the admin port (default 127.0.0.1)
#   KESTREL_QUEUE_PATH   passed as --queue-path when set
#   KESTREL_LOG          passed as --log-file when set
#   KESTREL_STOP_TIMEOUT seconds stop waits after /shutdown.txt (default 15), and again after
#                        SIGTERM, before SIGKILL
#   KESTREL_FD_LIMIT     open file limit for the server (default 262144, if allowed)
#   KESTREL_CURL         curl binary (default curl; without it bash's /dev/tcp is used)
#
# force-reload is restart: kestreld rereads its config file only when it starts (queue
# settings also reload with the memcache `reload` command).
#
# Exit status (LSB): 0 success; status: 0 running, 1 dead with a pid file left, 3 stopped;
# 1 a start or stop failed; 2 unknown action.

name=kestreld
if [ -n "$KESTREL_DEFAULTS" ]; then
  defaults_files=("$KESTREL_DEFAULTS")
else
  defaults_files=(/etc/default/kestrel /etc/sysconfig/kestrel)
fi
# The environment overrides the files: remember what it set.
# shellcheck disable=SC2153
saved_env=$(declare -p KESTRELD KESTREL_CONFIG KESTREL_PIDFILE KESTREL_ADMIN_PORT \
  KESTREL_ADMIN_HOST KESTREL_QUEUE_PATH KESTREL_LOG KESTREL_STOP_TIMEOUT KESTREL_FD_LIMIT \
  KESTREL_CURL 2>/dev/null)
for defaults in "${defaults_files[@]}"; do
  # shellcheck source=/dev/null
  [ -r "$defaults" ] && . "$defaults"
done
eval "$saved_env"

KESTRELD=${KESTRELD:-$(command -v kestreld || echo /usr/local/bin/kestreld)}
if [ -z "$KESTREL_CONFIG" ]; then
  KESTREL_CONFIG=/etc/kestrel/production.conf
  prefix=$(dirname "$(dirname "$KESTRELD")")
  if [ ! -r "$KESTREL_CONFIG" ] && [ -r "$prefix/etc/kestrel/production.conf" ]; then
    KESTREL_CONFIG=$prefix/etc/kestrel/production.conf
  fi
fi
pidfile=${KESTREL_PIDFILE:-/var/run/kestrel/kestrel.pid}
admin_host=${KESTREL_ADMIN_HOST:-127.0.0.1}
stop_timeout=${KESTREL_STOP_TIMEOUT:-15}
fd_limit=${KESTREL_FD_LIMIT:-262144}
curl=${KESTREL_CURL:-curl}

# adminHttpPort from the [server] group of the config file, if it is there.
config_admin_port() {
  [ -r "$KESTREL_CONFIG" ] || return
  awk '
    /^[ \t]*\[/ { in_server = ($0 ~ /^[ \t]*\[server\][ \t]*$/); next }
    in_server && /^[ \t]*adminHttpPort[ \t]*=/ {
      sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t]*$/, ""); port = $0
    }
    END { if (port != "") print port }
  ' "$KESTREL_CONFIG"
}

admin_port() {
  local port=${KESTREL_ADMIN_PORT:-$(config_admin_port)}
  case $port in
    none|None|NONE) port=0 ;;
    '') port=2223 ;;
  esac
  echo "$port"
}

read_pid() {
  local pid
  [ -r "$pidfile" ] || return 1
  read -r pid < "$pidfile" || [ -n "$pid" ] || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  echo "$pid"
}

# True if process $1 exists and, where /proc tells, is alive (an exited server whose parent
# has not reaped it yet is a zombie) and runs the server binary (a pid file left by a crash
# may name a pid since reused by another program).
is_server() {
  local pid=$1 comm want stat
  kill -0 "$pid" 2>/dev/null || [ -d "/proc/$pid" ] || return 1
  if [ -r "/proc/$pid/stat" ] && read -r stat < "/proc/$pid/stat" 2>/dev/null; then
    stat=${stat##*) }
    [ "${stat%% *}" = Z ] && return 1
  fi
  if [ -r "/proc/$pid/comm" ] && read -r comm < "/proc/$pid/comm" 2>/dev/null; then
    want=$(basename "$KESTRELD")
    [ "$comm" = "${want:0:15}" ] || return 1
  fi
  return 0
}

running() {
  local pid
  pid=$(read_pid) && is_server "$pid"
}

# Wait up to $2 seconds for process $1 to end; polls every 0.1 s.
wait_gone() {
  local pid=$1 ticks=$(($2 * 10))
  while is_server "$pid"; do
    [ "$ticks" -le 0 ] && return 1
    ticks=$((ticks - 1))
    sleep 0.1
  done
  return 0
}

# GET http://HOST:PORT/shutdown.txt; succeeds if an HTTP answer came back.
ask_shutdown() {
  local port=$1 url="http://$admin_host:$1/shutdown.txt"
  if command -v "$curl" >/dev/null 2>&1; then
    "$curl" -s -m 5 -o /dev/null "$url"
    return
  fi
  # No curl: a plain HTTP/1.0 request over bash's /dev/tcp, limited to 5 seconds.
  # shellcheck disable=SC2016
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET /shutdown.txt HTTP/1.0\r\nHost: %s:%s\r\n\r\n" "$1" "$2" >&3
    IFS= read -r status <&3 || exit 1
    case $status in HTTP/*) exit 0 ;; *) exit 1 ;; esac
  ' ask-shutdown "$admin_host" "$port" 2>/dev/null
}

do_start() {
  local pid args
  echo -n "Starting $name... "
  if running; then
    echo "already running (pid $(read_pid))."
    return 0
  fi
  if [ ! -x "$KESTRELD" ]; then
    echo "FAIL"
    echo "*** $KESTRELD is missing or not executable (set KESTRELD)"
    return 1
  fi
  if [ ! -r "$KESTREL_CONFIG" ]; then
    echo "FAIL"
    echo "*** config file $KESTREL_CONFIG is not readable (set KESTREL_CONFIG)"
    return 1
  fi
  rm -f "$pidfile"
  mkdir -p "$(dirname "$pidfile")" || { echo "FAIL"; return 1; }
  args=(-f "$KESTREL_CONFIG" --daemonize --pidfile "$pidfile")
  [ -n "$KESTREL_QUEUE_PATH" ] && args+=(--queue-path "$KESTREL_QUEUE_PATH")
  [ -n "$KESTREL_LOG" ] && args+=(--log-file "$KESTREL_LOG")
  [ -n "$KESTREL_ADMIN_PORT" ] && args+=(--admin-port "$KESTREL_ADMIN_PORT")
  ulimit -n "$fd_limit" 2>/dev/null || echo -n "(open file limit stays $(ulimit -n)) "
  # --daemonize returns once the server listens and the pid file is written, or prints
  # why it could not start.
  if ! "$KESTRELD" "${args[@]}"; then
    echo "FAIL"
    return 1
  fi
  pid=$(read_pid) || { echo "FAIL (no pid file $pidfile)"; return 1; }
  echo "done (pid $pid)."
}

do_stop() {
  local pid port
  echo -n "Stopping $name... "
  pid=$(read_pid)
  if [ -z "$pid" ] || ! is_server "$pid"; then
    rm -f "$pidfile"
    echo "wasn't running."
    return 0
  fi
  port=$(admin_port)
  if [ "$port" != 0 ]; then
    if ask_shutdown "$port"; then
      echo -n "asked http://$admin_host:$port/shutdown.txt... "
      wait_gone "$pid" "$stop_timeout" && { echo "done."; return 0; }
      echo -n "still running; "
    else
      echo -n "no answer on admin port $port; "
    fi
  fi
  echo -n "sending SIGTERM... "
  kill -TERM "$pid" 2>/dev/null
  if wait_gone "$pid" "$stop_timeout"; then
    echo "done."
    return 0
  fi
  echo -n "still running; sending SIGKILL... "
  kill -KILL "$pid" 2>/dev/null
  if wait_gone "$pid" 5; then
    rm -f "$pidfile"   # a killed server cannot remove its own
    echo "killed."
    return 0
  fi
  echo "FAIL: pid $pid survived SIGKILL"
  return 1
}

do_status() {
  local pid
  if pid=$(read_pid); then
    if is_server "$pid"; then
      echo "$name is running (pid $pid)."
      return 0
    fi
    echo "$name is not running, but the pid file $pidfile exists."
    return 1
  fi
  echo "$name is not running."
  return 3
}

case "$1" in
  start) do_start ;;
  stop) do_stop ;;
  restart|force-reload) do_stop && do_start ;;
  status) do_status ;;
  *)
    echo "Usage: $0 {start|stop|restart|force-reload|status}" >&2
    exit 2
    ;;
esac
