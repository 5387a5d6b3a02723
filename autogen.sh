#!/bin/sh
# Regenerate the build system from a git checkout: ./autogen.sh && ./configure && make
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
autoreconf -fi
# automake's TAP driver counts every GTest case; it is not copied by autoreconf itself.
for dir in /usr/share/automake-*; do
  if [ -f "$dir/tap-driver.sh" ]; then
    cp "$dir/tap-driver.sh" build-aux/tap-driver.sh
    break
  fi
done
test -f build-aux/tap-driver.sh || { echo "autogen.sh: tap-driver.sh not found (install automake)" >&2; exit 1; }
