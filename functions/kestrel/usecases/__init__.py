"""Use cases: what a request does, across the store, the vision code and the ports; routes stay thin."""
