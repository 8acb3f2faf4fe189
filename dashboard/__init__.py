"""The dashboard project (settings, URLs, WSGI) and its home app: users signed in through Entra ID,
their token caches, and the registry of flexible servers."""
