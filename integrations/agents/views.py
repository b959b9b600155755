"""Dashboard pages: the agent profiles, and one profile's tools, grants, scope and remaining quota."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from integrations.agents.describe import describe_access
from integrations.agents.models import AgentProfile
from integrations.agents.services import access_for_profile


@require_GET
@login_required
def profile_list(request: HttpRequest) -> HttpResponse:
    profiles = AgentProfile.objects.visible_to(request.user).prefetch_related("grants").order_by("generated", "name")
    return render(request, "agents/list.html", {"profiles": profiles})


@require_GET
@login_required
def profile_detail(request: HttpRequest, pk: int) -> HttpResponse:
    profile = get_object_or_404(AgentProfile.objects.visible_to(request.user), pk=pk)
    described = describe_access(access_for_profile(profile))
    tokens = profile.tokens.active().order_by("-created_at")[:50]
    return render(request, "agents/detail.html", {"profile": profile, "described": described, "tokens": tokens})
