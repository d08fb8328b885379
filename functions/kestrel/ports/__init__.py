"""Ports: what the handlers need from the outside world, as protocols with two adapters each."""
