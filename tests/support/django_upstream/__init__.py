"""A third-party OAuth upstream for end-to-end tests: Django + django-oauth-toolkit + Django REST framework.

`start_django_upstream(redirect_uris)` serves, on a loopback port (uvicorn in a thread, like
support.servers), an items API whose routes need the OAuth scope `read` (GET) or `write` (POST, PATCH,
DELETE), django-oauth-toolkit's authorization server (PKCE required, refresh tokens rotate) under /o/,
and drf-spectacular's OpenAPI document at /api/openapi.json. The user `alice` is signed in on its own
(no login page) and the registered client skips the approval page, so the browser stand-in of
support.oauth_client goes straight through. Each start registers a new client and resets the items.

Django's settings are per process: the first start configures them and makes one SQLite database in a
temporary folder (tables straight from the models, well under a second); later starts reuse it (milliseconds).
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from support.servers import Running, run

T = TypeVar("T")

SCOPES = {"read": "Read items", "write": "Create, change and delete items"}
USER = "alice"

_setup_lock = threading.Lock()
_ready = False


def _configure(token_lifetime: int) -> None:
    """Configure and set up Django once per process (settings cannot change afterwards)."""
    global _ready
    with _setup_lock:
        if _ready:
            return
        import django
        from django.apps import apps
        from django.conf import settings
        from django.db import connection

        folder = Path(tempfile.mkdtemp(prefix="castproxy-django-upstream-"))
        settings.configure(
            DEBUG=False,
            SECRET_KEY=secrets.token_urlsafe(32),
            ALLOWED_HOSTS=["127.0.0.1", "localhost"],
            ROOT_URLCONF="support.django_upstream.site",
            USE_TZ=True,
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(folder / "upstream.db")}},
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "oauth2_provider",
                "rest_framework",
                "drf_spectacular",
            ],
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "support.django_upstream.site.sign_in_alice",
            ],
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast: test secrets only
            OAUTH2_PROVIDER={
                "SCOPES": SCOPES,
                "DEFAULT_SCOPES": ["read"],
                "PKCE_REQUIRED": True,
                "ROTATE_REFRESH_TOKEN": True,
                "ACCESS_TOKEN_EXPIRE_SECONDS": token_lifetime,
                "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
                "ALLOWED_SCHEMES": ["http", "https"],
            },
            REST_FRAMEWORK={
                "DEFAULT_AUTHENTICATION_CLASSES": ["oauth2_provider.contrib.rest_framework.OAuth2Authentication"],
                "DEFAULT_PERMISSION_CLASSES": ["oauth2_provider.contrib.rest_framework.TokenHasScope"],
                "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
                "UNAUTHENTICATED_USER": None,
            },
            SPECTACULAR_SETTINGS={"TITLE": "Django items API", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False},
            LOGGING_CONFIG=None,
        )
        django.setup()
        # The tables straight from the models: running the migrations would take seconds, not milliseconds.
        with connection.schema_editor() as editor:
            for model in apps.get_models():
                editor.create_model(model)
        _ready = True


def _off_the_loop(work: Callable[[], T]) -> T:
    """Run Django ORM work in a thread of its own: Django refuses it in a thread running an event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


@dataclass
class DjangoUpstream:
    """A running Django upstream; `client_id`/`client_secret` are castproxy's pre-registered client there."""

    server: Running
    client_id: str
    client_secret: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def authorization_url(self) -> str:
        return f"{self.url}/o/authorize/"

    @property
    def token_url(self) -> str:
        return f"{self.url}/o/token/"

    @property
    def revocation_url(self) -> str:
        return f"{self.url}/o/revoke_token/"

    @property
    def openapi_url(self) -> str:
        return f"{self.url}/api/openapi.json"

    def items(self) -> dict[int, dict[str, Any]]:
        from support.django_upstream import site

        return dict(site.ITEMS)

    def access_token_scopes(self) -> list[list[str]]:
        """The scopes of every access token issued to this client (callable from async tests too)."""
        from oauth2_provider.models import AccessToken

        def query() -> list[list[str]]:
            tokens = AccessToken.objects.filter(application__client_id=self.client_id).order_by("id")
            return [token.scope.split() for token in tokens]

        return _off_the_loop(query)

    def stop(self) -> None:
        self.server.stop()


def start_django_upstream(redirect_uris: list[str], *, token_lifetime: int = 3600) -> DjangoUpstream:
    """Serve the Django upstream on a free loopback port; `redirect_uris` are the client's (castproxy's callback)."""
    _configure(token_lifetime)
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import Application

    from support.django_upstream import site

    user, _ = get_user_model().objects.get_or_create(username=USER)
    secret = secrets.token_urlsafe(32)
    application = Application.objects.create(
        name="castproxy",
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(redirect_uris),
        client_secret=secret,  # stored hashed; the plain value is kept here for castproxy's config
        skip_authorization=True,
        algorithm="",
    )
    site.reset_items()
    from django.core.asgi import get_asgi_application

    # Django answers no ASGI lifespan events.
    return DjangoUpstream(run(get_asgi_application(), lifespan="off"), application.client_id, secret)
