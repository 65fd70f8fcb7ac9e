"""Who is calling: a person (user + groups, as Kubernetes sees them) or a writer bound to one cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

MASTERS = "system:masters"  # Kubernetes' superuser group: RBAC never denies it
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Identity:
    """An authenticated caller. `cluster` is set only for writer tokens, which may only write that cluster."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    cluster: str | None = None

    @property
    def is_writer(self) -> bool:
        return self.cluster is not None

    @property
    def is_admin(self) -> bool:
        return MASTERS in self.groups

    def describe(self) -> str:
        return f"cluster:{self.cluster}" if self.cluster is not None else self.name


def person(name: str, groups: list[str] | tuple[str, ...] = (), *, uid: str = "",
           extra: dict[str, list[str]] | None = None, add_system_groups: bool = True) -> Identity:
    """A person or service account, with the groups Kubernetes adds to every authenticated user."""
    gs = list(dict.fromkeys(groups))
    if add_system_groups:
        if name.startswith(SA_PREFIX):
            parts = name[len(SA_PREFIX):].split(":")
            if len(parts) == 2 and all(parts):
                gs += ["system:serviceaccounts", f"system:serviceaccounts:{parts[0]}"]
        gs.append(AUTHENTICATED)
    return Identity(name=name, groups=tuple(dict.fromkeys(gs)), uid=uid,
                    extra=tuple(sorted((k, tuple(v)) for k, v in (extra or {}).items())))


def writer(cluster: str) -> Identity:
    return Identity(name=f"margay:cluster:{cluster}", cluster=cluster)


# With authentication off (development, in-process tests) every caller is this administrator.
NO_AUTH = Identity(name="margay:no-auth", groups=(MASTERS, AUTHENTICATED))
ADMIN_NAME = "margay-admin"
