"""The Relight service: command line, config, store, sync loop."""
