"""The example's pages. Each says how many times the site rendered it, so a cached copy is easy to spot.

/ and /posts/N/ look at request.user (the session): anonymous visitors get the public page (Django adds
Vary: Cookie, no Set-Cookie), which the edge caches; a signed-in visitor sends the sessionid cookie, which
the edge passes to the site. /contact/ has a form with a CSRF token (Set-Cookie: csrftoken), /account/ is
only for signed-in users, and Django's login form and admin send Cache-Control: private, no-store.
"""
import itertools
import threading

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

_renders = itertools.count(1)
_lock = threading.Lock()


def _render(request, template, context):
    with _lock:
        n = next(_renders)
    return render(request, template, {**context, 'render': n})


def home(request):
    return _render(request, 'pages/home.html', {'posts': range(1, 4)})


def post(request, post_id):
    return _render(request, 'pages/post.html', {'post_id': post_id})


def contact(request):
    sent = request.method == 'POST'
    return _render(request, 'pages/contact.html', {'sent': sent})


@login_required
def account(request):
    return _render(request, 'pages/account.html', {})
