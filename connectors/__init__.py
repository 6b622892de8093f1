"""Mailbox access: one connector per kind, all behind `connectors.base.SyncConnector`."""
