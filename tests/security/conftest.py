"""The misuse suite of docs/security.md: every attack there, as a test that fails without the defence.

Each module names the attack it replays. Tests needing a real deployment start one themselves;
a missing tool or service makes them fail, never skip.
"""
