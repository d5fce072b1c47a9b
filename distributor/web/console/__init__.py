"""The operator console under /dashboard: sign-in, pages and actions (docs/console.md)."""
