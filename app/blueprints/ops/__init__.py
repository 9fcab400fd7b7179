"""/ops: the operators' page (administrators only)."""

from app.blueprints.ops.views import bp

__all__ = ["bp"]
