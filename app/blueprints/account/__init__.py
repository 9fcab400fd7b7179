"""The logged-in user's page: their articles and API keys."""

from app.blueprints.account.views import bp

__all__ = ["bp"]
