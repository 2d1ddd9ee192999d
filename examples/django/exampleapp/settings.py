"""Settings of the example Django site behind edge-page-cache: sessions, CSRF, the admin, sqlite.

Environment (run.sh sets them):
  DJANGO_DATA_DIR       where db.sqlite3 lives (default: examples/django/data)
  DJANGO_ALLOWED_HOSTS  comma-separated (default: 127.0.0.1,localhost)
  DJANGO_RAW_PAGE_CACHE memcached nodes 'host:port[,host:port...]': turns on pages.rawcache, which writes
                        anonymous pages raw under md5(host + request_uri) for the edge (--format raw) and nginx
  DJANGO_RAW_PAGE_CACHE_SECONDS  expiry of those entries (default 300)
  DJANGO_RAW_PAGE_CACHE_GZIP     '1' (default) stores pages gzip with memcached flag 2, '0' as they are
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get('DJANGO_DATA_DIR', str(BASE_DIR / 'data')))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'example-only-change-me-in-production')
DEBUG = os.environ.get('DJANGO_DEBUG') == '1'
ALLOWED_HOSTS = os.environ.get('DJANGO_ALLOWED_HOSTS', '127.0.0.1,localhost').split(',')

INSTALLED_APPS = [
    'django.contrib.admin',
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.messages',
    'django.contrib.staticfiles',
    'pages',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    'django.contrib.messages.middleware.MessageMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

RAW_PAGE_CACHE = os.environ.get('DJANGO_RAW_PAGE_CACHE', '')
RAW_PAGE_CACHE_SECONDS = int(os.environ.get('DJANGO_RAW_PAGE_CACHE_SECONDS', '300'))
RAW_PAGE_CACHE_GZIP = os.environ.get('DJANGO_RAW_PAGE_CACHE_GZIP', '1') == '1'
RAW_PAGE_CACHE_GZIP_FLAG = 2  # nginx's memcached_gzip_flag, the edge's --gzip-flag
if RAW_PAGE_CACHE:
    # Outermost, so it sees the response after the session and CSRF middlewares added cookies and Vary.
    MIDDLEWARE.insert(0, 'pages.rawcache.RawPageCacheMiddleware')

ROOT_URLCONF = 'exampleapp.urls'
TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [],
        'APP_DIRS': True,
        'OPTIONS': {
            'context_processors': [
                'django.template.context_processors.request',
                'django.contrib.auth.context_processors.auth',
                'django.contrib.messages.context_processors.messages',
            ],
        },
    },
]
WSGI_APPLICATION = 'exampleapp.wsgi.application'

DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': str(DATA_DIR / 'db.sqlite3')}}
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'
USE_I18N = False
USE_TZ = True
STATIC_URL = '/static/'
LOGIN_REDIRECT_URL = '/account/'
LOGOUT_REDIRECT_URL = '/'
