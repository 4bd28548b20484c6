"""The Django upstream's URLs and views (imported by Django once support.django_upstream configured it).

Items live in memory; every route needs an OAuth access token from this server, with scope `read` for
GET and `write` for the others (django-oauth-toolkit's TokenHasScope reading `required_scopes`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework import serializers, status
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

ITEMS: dict[int, dict[str, Any]] = {}
_lock = threading.Lock()
_next_id = [1]


def reset_items() -> None:
    with _lock:
        ITEMS.clear()
        ITEMS.update({1: {"id": 1, "name": "Widget"}, 2: {"id": 2, "name": "Gadget"}})
        _next_id[0] = 3


def sign_in_alice(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: the authorization page sees the user `alice` signed in (no login form in tests)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/o/authorize") and not request.user.is_authenticated:
            request.user = get_user_model().objects.get(username="alice")
        return get_response(request)

    return middleware


class ItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)


class MeSerializer(serializers.Serializer):
    user = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())


class _Scoped(APIView):
    @property
    def required_scopes(self) -> list[str]:
        return ["read"] if self.request.method in SAFE_METHODS else ["write"]


class ItemList(_Scoped):
    @extend_schema(operation_id="listItems", responses=ItemSerializer(many=True))
    def get(self, request: Request) -> Response:
        with _lock:
            return Response(list(ITEMS.values()))

    @extend_schema(operation_id="createItem", request=ItemSerializer, responses={201: ItemSerializer})
    def post(self, request: Request) -> Response:
        serializer = ItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with _lock:
            item = {"id": _next_id[0], "name": serializer.validated_data["name"]}
            ITEMS[item["id"]] = item
            _next_id[0] += 1
        return Response(item, status=status.HTTP_201_CREATED)


class ItemDetail(_Scoped):
    @extend_schema(operation_id="getItem", responses=ItemSerializer)
    def get(self, request: Request, item_id: int) -> Response:
        item = ITEMS.get(item_id)
        return Response(item) if item else Response({"detail": "no such item"}, status=404)

    @extend_schema(operation_id="deleteItem", responses={204: None})
    def delete(self, request: Request, item_id: int) -> Response:
        with _lock:
            gone = ITEMS.pop(item_id, None)
        return Response(status=204) if gone else Response({"detail": "no such item"}, status=404)


class Me(_Scoped):
    @extend_schema(operation_id="getCurrentUser", responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response({"user": request.user.get_username(), "scopes": request.auth.scope.split()})


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/openapi.json", SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[])),
    path("api/items/", ItemList.as_view()),
    path("api/items/<int:item_id>/", ItemDetail.as_view()),
    path("api/me/", Me.as_view()),
]
