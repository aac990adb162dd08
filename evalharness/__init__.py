"""evalharness: trustworthy LIBERO evaluation for vision-language-action policies."""

__version__ = "0.1.0"
