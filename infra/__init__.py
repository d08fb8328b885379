"""Kestrel's AWS infrastructure as a CDK app: one construct module per concern, wired by
:mod:`infra.stack`. ``app.py`` at the repository root is the entry point the CDK CLI runs."""
