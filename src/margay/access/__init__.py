"""Who may read which logs: bearer tokens, TokenReview, Kubernetes RBAC (local or SubjectAccessReview)."""

from .authorizer import GROUP, Authorizer, KubeAuthorizer, LocalAuthorizer
from .guard import FULL, NONE, Access, Grant, ReadPlan, is_loopback
from .identity import NO_AUTH, Identity, person, writer
from .indices import expand_pattern
from .tokens import TokenFile, hashed

__all__ = ["GROUP", "Authorizer", "KubeAuthorizer", "LocalAuthorizer", "FULL", "NONE", "Access", "Grant",
           "ReadPlan", "is_loopback", "NO_AUTH", "Identity", "person", "writer", "expand_pattern",
           "TokenFile", "hashed"]
