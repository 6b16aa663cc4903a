"""The Cactus gateway protocol: signing, messages and the HTTP client (no Qt)."""
