"""The `kestrel` command line: local administration (serve, tokens) and an HTTP client for any Kestrel."""
