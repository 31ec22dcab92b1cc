"""API keys to tenants: `Authorization: Bearer <key>`, looked up by the key's SHA-256 hash."""

from __future__ import annotations

from . import ids
from .errors import Unauthorized
from .store.tenants import TenantStore


class Authenticator:
    def __init__(self, tenants: TenantStore) -> None:
        self.tenants = tenants

    def tenant(self, authorization: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("Missing bearer API key in the Authorization header.")
        key = authorization[7:].strip()
        tenant = self.tenants.tenant_for_key(ids.hash_api_key(key)) if key else None
        if tenant is None:
            raise Unauthorized("Incorrect API key provided.")
        return tenant
