import hashlib
from datetime import timedelta

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2 import Server

from tests.integrations.oauth.authserver.counting import stats_view

_refusing = {"all": False}


def me(request: HttpRequest) -> HttpResponse:
    """A protected API resource: 200 with a valid bearer token, 401 otherwise (like a provider's API)."""
    valid, oauthlib_request = OAuthLibCore(Server(OAuth2Validator())).verify_request(request, scopes=[])
    if not valid or _refusing["all"]:
        return HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    token = oauthlib_request.access_token
    return JsonResponse(
        {
            "user": token.user.username if token.user else None,
            "client_id": token.application.client_id,
            "scope": token.scope,
        }
    )


@csrf_exempt
def expire(request: HttpRequest) -> HttpResponse:
    """Test control: make an access token expire now at the provider (its clock ran ahead of ours)."""
    checksum = hashlib.sha256(request.POST["token"].encode()).hexdigest()
    tokens = get_access_token_model().objects.filter(token_checksum=checksum)
    updated = tokens.update(expires=timezone.now() - timedelta(seconds=1))
    return JsonResponse({"expired": updated})


@csrf_exempt
def refuse(request: HttpRequest) -> HttpResponse:
    """Test control: the API answers 401 to every token, fresh ones too (the app's API access was
    withdrawn while its tokens are still issued), until called with on=0."""
    _refusing["all"] = request.POST.get("on", "1") == "1"
    return JsonResponse(_refusing)


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("api/me", me),
    path("test/stats", csrf_exempt(stats_view)),
    path("test/expire", expire),
    path("test/refuse", refuse),
]
