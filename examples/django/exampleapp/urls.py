"""URLs: public pages (cached by the edge), the account page and the login form (never), the admin (never)."""
from django.contrib import admin
from django.urls import include, path

from pages import views

urlpatterns = [
    path('', views.home, name='home'),
    path('posts/<int:post_id>/', views.post, name='post'),
    path('contact/', views.contact, name='contact'),
    path('account/', views.account, name='account'),
    path('accounts/', include('django.contrib.auth.urls')),
    path('admin/', admin.site.urls),
]
