"""The Django side of OAuth2, in two layers.

- ``store``: where an integration's token set lives (encrypted in its credentials) and the lock that
  makes a refresh happen once across processes. Below the service layer, which builds token providers
  over it (``integrations.services.tokens``).
- ``views`` (with ``urls``): the authorization-code start and callback, above the service layer.
"""

from integrations.oauth.store import DjangoTokenStore, oauth2_config_for, token_status

__all__ = ["DjangoTokenStore", "oauth2_config_for", "token_status"]
