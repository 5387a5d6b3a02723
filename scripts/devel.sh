#!/bin/sh
# Runs kestreld in the foreground with config/development.conf, journals in ./spool of the
# checkout (KESTREL_QUEUE_PATH overrides). Nothing is installed or built: build first with
# scripts/build (or use scripts/run). Extra arguments go to kestreld, e.g.
#   scripts/devel.sh --memcache-port 22144
# KESTRELD names another binary (default: build/normal/src/server/kestreld, else an in-tree
# build's src/server/kestreld).
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$KESTRELD" ]; then
  for candidate in "$top/build/normal/src/server/kestreld" "$top/src/server/kestreld"; do
    if [ -x "$candidate" ]; then
      KESTRELD=$candidate
      break
    fi
  done
fi
if [ -z "$KESTRELD" ] || [ ! -x "$KESTRELD" ]; then
  echo "devel.sh: kestreld is not built${KESTRELD:+ ($KESTRELD is missing)}." >&2
  echo "devel.sh: build it with 'scripts/build' (or set KESTRELD=/path/to/kestreld)." >&2
  exit 1
fi
queue_path=${KESTREL_QUEUE_PATH:-$top/spool}
mkdir -p "$queue_path" || exit 1
echo "Starting kestreld in development mode..."
exec "$KESTRELD" -f "$top/config/development.conf" --queue-path "$queue_path" "$@"
