"""WSGI entry point (for a WSGI server in production; run.sh uses Django's own server on loopback)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'exampleapp.settings')
application = get_wsgi_application()
