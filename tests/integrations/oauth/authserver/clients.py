"""Who the test authorization server knows: its users and registered client applications.

Plain constants, shared by the server process and the tests (no Django import here).
"""

PROVIDER_USER = "alice"
PROVIDER_PASSWORD = "provider-password-alice"

# The hub under Django's test client is served as http://testserver; the provider must see the exact URI.
HUB_REDIRECT_URI = "http://testserver/oauth/callback/"

CODE_CLIENT_ID = "hub-code-client"
CODE_CLIENT_SECRET = "hub-code-secret-5f1c2a9e7b3d4c6a8e0f"
CC_CLIENT_ID = "hub-cc-client"
CC_CLIENT_SECRET = "hub-cc-secret-0a9b8c7d6e5f4a3b2c1d"
