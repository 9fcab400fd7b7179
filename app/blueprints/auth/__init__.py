"""Registration, login and logout with HTML forms (server-side sessions, see app.auth)."""

from app.blueprints.auth.views import bp

__all__ = ["bp"]
