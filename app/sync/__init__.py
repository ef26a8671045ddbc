"""Label Studio client and sync engine (no Qt)."""
