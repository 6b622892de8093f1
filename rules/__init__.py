"""Pure decision logic: classification, threading, status, stages, drafts. No IO here."""
