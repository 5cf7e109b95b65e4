"""A minimal single-file Django app for bench/peers.py: settings in code, one JSON view.

``GET /`` returns the same JSON document as apps/flask_json_app.py. No database, no
installed apps, no middleware: the cost measured is Django's request/response cycle
(WSGIHandler, URL resolving, HttpRequest over the environ, JsonResponse). Without
CommonMiddleware Django sets no Content-Length, so servers send the body chunked.
"""
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def index(request):
    return JsonResponse({"message": "Hello, World!", "items": list(range(20)), "ok": True})


urlpatterns = [path("", index)]

app = get_wsgi_application()
