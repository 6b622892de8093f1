"""Benchmarks of Relight's sync against a private Dovecot on loopback (`make bench`)."""
