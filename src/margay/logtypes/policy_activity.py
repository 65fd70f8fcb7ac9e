"""Policy activity (Linseed's PolicyActivity, `linseed/pkg/apis/v1/policy.go`): one document per policy rule
Felix evaluated, with when it last did — what Calico's policy board reads to show unused rules."""

from __future__ import annotations

from .base import Field, Kind, LogType, f

K = Kind.KEYWORD

FIELDS: tuple[Field, ...] = (
    # Linseed's PolicyInfo: `namespace` is empty for global policies.
    f("policy", Kind.STRUCT, "the policy the rule belongs to", children=(
        Field("kind", K), Field("namespace", K), Field("name", K))),
    f("rule", K, "the rule, as Felix names it: `<generation>|<direction>|<index>` (e.g. `3|ingress|0`)"),
    f("last_evaluated", Kind.TIMESTAMP, "when the rule was last evaluated; the time field", required=True),
)

LOGTYPE = LogType(
    name="policy_activity",
    rbac=("policyactivity",),  # lma.tigera.io resourceName of Linseed's policy handler
    index_prefix="tigera_secure_ee_policy_activity",
    time_field="last_evaluated",
    fields=FIELDS,
    retention_days=91,  # the operator's fixed ILM for tigera_secure_ee_policy_activity (no LogStorage key)
    retention_setting=None,
    aliases={"timestamp": "last_evaluated"},
    # Linseed keeps one document per (cluster, policy, rule), its id a hash of them, overwritten only by a
    # strictly newer last_evaluated (backend/legacy/policy: genDeterministicID, Create): the newest answers.
    latest_of=("policy.kind", "policy.namespace", "policy.name", "rule"),
    bulk_path="/policy_activity/logs/bulk",
    query_path="/policy_activity/logs",
)

SAMPLES: list[str] = [
    '{"policy":{"kind":"NetworkPolicy","namespace":"shop","name":"default.web-ingress"},"rule":"4|ingress|0",'
    '"last_evaluated":"2023-11-14T22:13:20.460223952Z"}',
    '{"policy":{"kind":"GlobalNetworkPolicy","namespace":"","name":"security.block-egress"},"rule":"1|egress|2",'
    '"last_evaluated":"2023-11-14T22:14:02Z"}',
]
