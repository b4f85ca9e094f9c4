"""Pieces every app shares: the domain-error base, publishing tasks after commit, the
read-only admin. ``core`` imports no app of this project (an import-linter contract)."""
