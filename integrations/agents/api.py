"""REST: /api/agent-profiles (read: staff, or a signed-in user for the profiles whose every grant is on an
integration they can see; writes and token minting: staff).

GET/POST          /api/agent-profiles
GET/PUT/PATCH/DEL /api/agent-profiles/{id}      grants are replaced as a whole on PUT/PATCH
POST              /api/agent-profiles/{id}/tokens   {"ttl_seconds", "on_behalf_of"?} -> the token, once
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.agents import quotas
from integrations.agents.models import AgentProfile, AgentProfileQuerySet, GrantAccess, ProfileGrant
from integrations.agents.services import access_for_profile
from integrations.agents.validation import unknown_tools, validate_grant
from integrations.models import Integration


class StaffWrites(BasePermission):
    message = "Changing agent profiles or minting tokens needs a staff account."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or bool(user.is_staff)


class GrantSerializer(serializers.Serializer):
    integration = serializers.CharField(max_length=63)
    access = serializers.ChoiceField(choices=GrantAccess.choices, default=GrantAccess.READ)
    hris = serializers.JSONField(required=False, default=dict)
    database = serializers.JSONField(required=False, default=dict)


class ProfileSerializer(serializers.ModelSerializer):
    grants = GrantSerializer(many=True, required=False)
    tools = serializers.JSONField(required=False, allow_null=True, default=None)

    class Meta:
        model = AgentProfile
        fields = [
            "id",
            "name",
            "description",
            "tools",
            "max_token_ttl",
            "calls_per_minute",
            "rows_per_day",
            "writes_per_day",
            "generated",
            "grants",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["generated", "created_at", "updated_at"]

    def to_representation(self, instance: AgentProfile) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["grants"] = [
            {"integration": g.integration_id, "access": g.access, "hris": g.hris, "database": g.database}
            for g in instance.grants.all().order_by("integration_id")
        ]
        return data

    def validate_tools(self, value: Any) -> Any:
        problems = unknown_tools(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_grants(self, value: list[dict[str, Any]]) -> list[ProfileGrant]:
        ids = [g["integration"] for g in value]
        found = {i.pk: i for i in Integration.objects.filter(pk__in=ids)}
        errors: list[Any] = []
        grants: list[ProfileGrant] = []
        seen: set[str] = set()
        for item in value:
            integration = found.get(item["integration"])
            if integration is None:
                errors.append({"integration": [f"no integration {item['integration']!r}"]})
                continue
            if integration.pk in seen:
                errors.append({"integration": [f"{integration.pk} is granted twice"]})
                continue
            seen.add(integration.pk)
            grant = ProfileGrant(
                integration=integration, access=item["access"], hris=item["hris"] or {}, database=item["database"] or {}
            )
            problems = validate_grant(grant)
            errors.append(problems)
            grants.append(grant)
        if any(errors):
            raise serializers.ValidationError(errors)
        return grants

    @transaction.atomic
    def create(self, validated_data: dict[str, Any]) -> AgentProfile:
        grants = validated_data.pop("grants", [])
        profile = AgentProfile.objects.create(**validated_data)
        self._save_grants(profile, grants)
        return profile

    @transaction.atomic
    def update(self, instance: AgentProfile, validated_data: dict[str, Any]) -> AgentProfile:
        grants = validated_data.pop("grants", None)
        for key, value in validated_data.items():
            setattr(instance, key, value)
        instance.save()
        if grants is not None:
            instance.grants.all().delete()
            self._save_grants(instance, grants)
        return instance

    @staticmethod
    def _save_grants(profile: AgentProfile, grants: list[ProfileGrant]) -> None:
        for grant in grants:
            grant.profile = profile
            grant.save()


class MintSerializer(serializers.Serializer):
    ttl_seconds = serializers.IntegerField(min_value=1)
    on_behalf_of = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class AgentProfileViewSet(viewsets.ModelViewSet):
    queryset = AgentProfile.objects.all().prefetch_related("grants")
    serializer_class = ProfileSerializer
    permission_classes = [StaffWrites]
    pagination_class = None

    def get_queryset(self) -> Any:
        # A clone of ``queryset`` (AgentProfile.objects, an AgentProfileQuerySet); DRF's stubs say QuerySet.
        return cast(AgentProfileQuerySet, super().get_queryset()).visible_to(self.request.user)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().destroy(request, *args, **kwargs)
        except ProtectedError:
            raise exceptions.ValidationError(
                {"detail": "agent tokens still belong to this profile: revoke or move them first"}
            ) from None

    @extend_schema(
        summary="Mint a short-lived agent token from this profile (shown once)",
        request=MintSerializer,
        responses={
            201: inline_serializer(
                "MintedToken",
                {
                    "id": serializers.IntegerField(),
                    "token": serializers.CharField(),
                    "expires_at": serializers.DateTimeField(),
                    "on_behalf_of": serializers.CharField(),
                },
            ),
            400: OpenApiResponse(description="ttl_seconds above the profile's max_token_ttl"),
        },
    )
    @action(detail=True, methods=["post"], url_path="tokens")
    def tokens(self, request: Request, pk: str | None = None) -> Response:
        from integrations.tools.models import AgentToken

        profile = self.get_object()
        body = MintSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ttl = body.validated_data["ttl_seconds"]
        if ttl > profile.max_token_ttl:
            raise exceptions.ValidationError(
                {"ttl_seconds": [f"at most {profile.max_token_ttl} seconds for profile {profile.name!r}"]}
            )
        on_behalf_of = body.validated_data["on_behalf_of"]
        token, raw = AgentToken.issue(
            name=f"{profile.name}: {on_behalf_of}" if on_behalf_of else profile.name,
            profile=profile,
            created_by=request.user if getattr(request.user, "pk", None) else None,
            expires_at=timezone.now() + dt.timedelta(seconds=ttl),
            on_behalf_of=on_behalf_of,
        )
        return Response(
            {"id": token.pk, "token": raw, "expires_at": token.expires_at, "on_behalf_of": on_behalf_of},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(summary="The profile's remaining quota now")
    @action(detail=True, methods=["get"], url_path="quota")
    def quota(self, request: Request, pk: str | None = None) -> Response:
        profile = self.get_object()
        access = access_for_profile(profile)
        return Response(quotas.remaining(access.quota_key, access.quotas))
