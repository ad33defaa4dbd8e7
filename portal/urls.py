from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal.operations import views as operations
from portal.selfcare import views

selfcare_patterns = (
    [
        path("", views.dashboard, name="dashboard"),
        path("lines/<int:line_id>/", views.line_detail, name="line-detail"),
    ],
    "selfcare",
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="selfcare:dashboard", permanent=False)),
    path("selfcare/", include(selfcare_patterns)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("charging.api.urls")),
    path("api/", include("catalog.api_urls")),
    path("shop/", include("catalog.urls")),
    path("enterprise/", include("enterprise.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health/", operations.health, name="health"),
    path("ready/", operations.ready, name="ready"),
    path("metrics", operations.metrics, name="metrics"),
]
