"""Writes rendered anonymous pages into memcached raw, as nginx's memcached module and the edge read them.

The classic nginx + memcached page cache from the Django side. The key is md5(host + request_uri) in hex
(nginx: set_md5 $memcached_key "$host$request_uri"), the value the body alone, and the memcached flags say
how it is encoded: 0 for a plain body, RAW_PAGE_CACHE_GZIP_FLAG (2, nginx's memcached_gzip_flag and the
edge's --gzip-flag) for a gzip body. Django's own cache framework pickles values, so nginx could not serve
them; this writes bytes with pymemcache (Debian's python3-pymemcache) and a ring of its own over the same
nodes, in the same order, that nginx's `hash $memcached_key consistent` picks.

Only pages that are the same for every visitor are written: GET, status 200, text/html, a request without
any cookie or Authorization, a response without Set-Cookie, without Cache-Control private / no-store /
no-cache / max-age=0, and with no Vary other than Cookie and Accept-Encoding. The response then carries
X-Edge-Page-Cache-Stored: 1, so an edge in front does not write the page again (the edge removes it).
"""
import bisect
import gzip
import hashlib
import logging
import zlib

from django.conf import settings
from django.utils.cache import get_max_age
from pymemcache.client.base import Client

log = logging.getLogger(__name__)

_PRIVATE_DIRECTIVES = ('private', 'no-store', 'no-cache')
_ALLOWED_VARY = {'cookie', 'accept-encoding'}


class KetamaRing:
    """nginx's `hash $memcached_key consistent`: 160 points per server, each crc32(host "\\0" port, previous
    point as 4 little-endian bytes); a key goes to the first point >= crc32(key), wrapping around. The same
    ring as the edge's src/core/ring.ts, so all three find a page on the same node."""

    def __init__(self, names):
        points = {}
        for index, name in enumerate(names):
            host, _, port = name.rpartition(':')
            base = zlib.crc32(port.encode(), zlib.crc32(b'\0', zlib.crc32(host.encode())))
            prev = 0
            for _ in range(160):
                prev = zlib.crc32(prev.to_bytes(4, 'little'), base)
                points.setdefault(prev, index)  # nginx drops later points with an equal hash
        self.hashes = sorted(points)
        self.owners = [points[h] for h in self.hashes]
        self.size = len(names)

    def node_for(self, key):
        if self.size == 1:
            return 0
        i = bisect.bisect_left(self.hashes, zlib.crc32(key.encode()))
        return self.owners[i % len(self.hashes)]


def page_key(host, request_uri):
    """The contract key: md5 hex of $host (lower-case, no port) and $request_uri as received."""
    return hashlib.md5((host + request_uri).encode('latin-1', 'replace')).hexdigest()


def _host(request):
    host = request.META.get('HTTP_HOST', '').lower()
    if host.startswith('['):
        return host[: host.index(']') + 1] if ']' in host else host
    return host.split(':', 1)[0]


def _request_uri(request):
    # nginx's $request_uri is the target as received; gunicorn gives RAW_URI, uWSGI REQUEST_URI. Django's
    # own server has neither: get_full_path() re-quotes the decoded path, the same for plain paths; where
    # it differs the entry is just never found (a miss), never a wrong page.
    return request.META.get('RAW_URI') or request.META.get('REQUEST_URI') or request.get_full_path()


def _shareable(request, response):
    if request.method != 'GET' or response.status_code != 200 or response.streaming:
        return False
    if request.COOKIES or request.META.get('HTTP_COOKIE') or request.META.get('HTTP_AUTHORIZATION'):
        return False
    if response.cookies or not response.get('Content-Type', '').startswith('text/html'):
        return False
    cache_control = response.get('Cache-Control', '').lower()
    if any(d in cache_control for d in _PRIVATE_DIRECTIVES) or get_max_age(response) == 0:
        return False
    vary = {v.strip().lower() for v in response.get('Vary', '').split(',') if v.strip()}
    return vary <= _ALLOWED_VARY and response.get('Content-Encoding', 'identity') in ('identity', 'gzip')


class RawPageCacheMiddleware:
    """Outermost middleware: after Django has rendered a page, store it raw for nginx and the edge."""

    def __init__(self, get_response):
        self.get_response = get_response
        names = [n.strip() for n in settings.RAW_PAGE_CACHE.split(',') if n.strip()]
        self.ring = KetamaRing(names)
        self.clients = []
        for name in names:
            host, _, port = name.rpartition(':')
            # Short timeouts: a slow or dead memcached costs the page a few ms, never an error.
            self.clients.append(Client((host, int(port)), connect_timeout=0.1, timeout=0.1, no_delay=True))

    def __call__(self, request):
        response = self.get_response(request)
        if _shareable(request, response):
            self.store(request, response)
        return response

    def store(self, request, response):
        body = response.content
        flags = 0
        if response.get('Content-Encoding') == 'gzip':
            flags = settings.RAW_PAGE_CACHE_GZIP_FLAG
        elif settings.RAW_PAGE_CACHE_GZIP:
            body = gzip.compress(body, 6)
            flags = settings.RAW_PAGE_CACHE_GZIP_FLAG
        max_age = get_max_age(response)
        expire = max_age if max_age else settings.RAW_PAGE_CACHE_SECONDS
        key = page_key(_host(request), _request_uri(request))
        try:
            self.clients[self.ring.node_for(key)].set(key, body, expire=expire, flags=flags, noreply=False)
        except Exception as err:  # a cache fault is a miss for the next reader, never an error here
            log.warning('raw page cache: not stored %s: %s', key, err)
            return
        response['X-Edge-Page-Cache-Stored'] = '1'
