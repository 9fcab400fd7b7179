"""Public pages: the latest articles, one article, the popular ones; writing and editing.

Also the site-wide parts every page shares: the layout's context and filters
(``templating``) and the HTML error pages (``errors``).
"""

from app.blueprints.pages.views import bp

__all__ = ["bp"]
