"""Use cases: what a request asks for, done with the ports and the store, testable without HTTP.

Routes parse a request, call one use case and render its result; nothing here knows HTTP."""
