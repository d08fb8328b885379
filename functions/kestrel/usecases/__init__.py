"""Use cases: what one request asks of Kestrel (classify, train, upload), free of HTTP.

Routes parse the request, call a use case with ports and plain values, and render its result."""
