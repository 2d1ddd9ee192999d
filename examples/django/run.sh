#!/usr/bin/env bash
# examples/django/run.sh [edge|raw]: the example Django site on loopback and edge-page-cache in front of it,
# in one command; Ctrl-C stops both.
#   edge  (default) the edge alone in front: it caches anonymous pages itself (embedded store, or MEMCACHED)
#   raw   the nginx + memcached pattern from the Django side: Django's pages.rawcache middleware writes
#         anonymous pages raw into MEMCACHED (default 127.0.0.1:11211) and the edge (--format raw) serves
#         them as hits; nginx can serve the same entries (see README.md here)
# Environment: DJANGO_PORT (8000), EDGE_PORT (8080), EDGE_ADMIN_PORT (9091), MEMCACHED, DJANGO_DATA_DIR.
# Uses Debian's python3-django and python3-pymemcache through /usr/bin/python3 (apt-get install -y
# python3-django python3-pymemcache), whatever python3 comes first on the PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
layout=${1:-edge}
django_port=${DJANGO_PORT:-8000}
edge_port=${EDGE_PORT:-8080}
admin_port=${EDGE_ADMIN_PORT:-9091}

case "$layout" in
  edge | raw) ;;
  *) echo "run.sh: layout must be 'edge' or 'raw', got '$layout'" >&2; exit 2 ;;
esac
if ! "$py" -c 'import django, pymemcache' 2>/dev/null; then
  echo "run.sh: $py cannot import django and pymemcache: apt-get install -y python3-django python3-pymemcache" >&2
  exit 1
fi
if [ ! -f "$root/dist/src/cli/main.js" ]; then (cd "$root" && npm run build); fi

edge_flags=(serve --host 127.0.0.1 --port "$edge_port" --admin-port "$admin_port" --origin "http://127.0.0.1:$django_port")
if [ "$layout" = raw ]; then
  export DJANGO_RAW_PAGE_CACHE=${MEMCACHED:-127.0.0.1:11211}
  edge_flags+=(--memcached "$DJANGO_RAW_PAGE_CACHE" --format raw)
elif [ -n "${MEMCACHED:-}" ]; then
  edge_flags+=(--memcached "$MEMCACHED")
fi

cd "$here"
"$py" manage.py migrate --noinput -v 0
"$py" manage.py seedusers

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# Django's own server, threaded, on loopback (--insecure: it serves the admin's static files with DEBUG off).
"$py" manage.py runserver --noreload --insecure "127.0.0.1:$django_port" &
pids+=($!)
node "$root/dist/src/cli/main.js" "${edge_flags[@]}" &
pids+=($!)

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "run.sh: nothing listens on 127.0.0.1:$1" >&2
  return 1
}
wait_port "$django_port"
wait_port "$edge_port"
cat <<TEXT
django example ($layout layout) ready:
  edge     http://127.0.0.1:$edge_port/   (curl -i twice: the second says X-Cache: HIT)
  django   http://127.0.0.1:$django_port/   admin /admin/: user admin, password \$DJANGO_SUPERUSER_PASSWORD
           (default admin-example-password); users alice and bob (\$DJANGO_USER_PASSWORD, default user-example-password)
  stats    http://127.0.0.1:$admin_port/
TEXT
[ "$layout" = raw ] && echo "  memcached $DJANGO_RAW_PAGE_CACHE (Django writes anonymous pages raw; the edge reads them)"
wait -n "${pids[@]}"
