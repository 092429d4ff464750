"""The workers: registry, health checks, one monitor socket each, and the HTTP client that talks to them."""
