"""margay: open log management and analytics for Kubernetes network security."""

__version__ = "0.1.0"
