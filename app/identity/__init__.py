"""Identity and access: OAuth 2.0 bearer tokens from an OpenID Provider, the caller, permissions."""
