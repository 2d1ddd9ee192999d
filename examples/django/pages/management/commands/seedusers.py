"""`manage.py seedusers`: the superuser `admin` and two users, `alice` and `bob`, created if missing.

Passwords come from DJANGO_SUPERUSER_PASSWORD (admin) and DJANGO_USER_PASSWORD (alice, bob); the defaults
are for trying the example on loopback only.
"""
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = 'Create the example superuser (admin) and users (alice, bob) if they do not exist.'

    def handle(self, *args, **options):
        users = get_user_model()
        admin_password = os.environ.get('DJANGO_SUPERUSER_PASSWORD', 'admin-example-password')
        user_password = os.environ.get('DJANGO_USER_PASSWORD', 'user-example-password')
        if not users.objects.filter(username='admin').exists():
            users.objects.create_superuser('admin', 'admin@example.com', admin_password)
        for name in ('alice', 'bob'):
            if not users.objects.filter(username=name).exists():
                users.objects.create_user(name, f'{name}@example.com', user_password)
