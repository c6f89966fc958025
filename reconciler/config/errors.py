"""Where config went wrong, and which rule it broke.

Every problem found in a config repo is a `ConfigError` with a `SourceSpan`
(file, 1-based line and column, as editors count) and a stable rule id from
`RULES`. docs/rules.md is generated from `RULES`; a test fails when a rule
has no bad-input case under tests/cases/config/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from reconciler.config.secretscan import redact_text
from reconciler.errors import InputError

# A backstop on one message's length: values are quoted cut (secretscan.quoted) at the
# place that builds the message; this keeps a message that forgot to from printing megabytes.
MAX_MESSAGE_CHARS: Final = 2_000


@dataclass(frozen=True, slots=True, order=True)
class SourceSpan:
    """A position in a file of the config repo."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


RULES: Final[dict[str, str]] = {
    # Loading: what the YAML itself may contain.
    "yaml.syntax": "the file is not well-formed YAML",
    "yaml.encoding": "the file is not valid UTF-8",
    "yaml.too-large": "the file is larger than the loader accepts",
    "yaml.too-deep": "values nest deeper than the loader accepts",
    "yaml.alias-budget": "aliases expand to more nodes than the loader accepts (alias bomb)",
    "yaml.duplicate-key": "a mapping has the same key twice (also after unquoting)",
    "yaml.tag": "a tag other than the YAML 1.2 core ones (!!str, !!int, ...)",
    "yaml.key-type": "a mapping key that is not a string",
    "yaml.merge-key": "'<<' merge keys are not supported; use the layers instead",
    "yaml.multi-document": "a config file holds more than one YAML document",
    # Shape: the JSON Schema of reconciler's own files (generated from the models).
    "schema.unknown-key": "a key that the model does not define",
    "schema.type": "a value of the wrong type",
    "schema.required": "a required key is missing",
    "schema.value": "a value outside what the field accepts",
    # The agents' payload, checked against the repo's schemas/agent.schema.json.
    "payload.schema": "an agent's config payload breaks the repo's payload schema",
    "payload.schema-invalid": "the repo's payload schema is not a valid JSON Schema",
    # Meaning: rules across files.
    "repo.missing-file": "a file the repo must have is missing",
    "repo.symlink": (
        "a config file or directory is a symbolic link (work tree or git mode 120000);"
        " refused unread, never followed"
    ),
    "repo.not-regular": "a config file is not a regular file (a FIFO, socket, device, directory)",
    "repo.too-large": "the repo has more config files or bytes than the caps allow",
    "fleet.empty": "the fleet has no agents",
    "tier.unknown": "an agent names a tier that has no agents/tier-*.yaml file",
    "shard.name-mismatch": "a shard file's `shard:` differs from its file name",
    "agent.duplicate-name": "two agents have the same name",
    "agent.duplicate-target": "two agents write the same (host, port, config_path)",
    "agent.relative-path": "config_path or secrets_path is not an absolute path",
    "agent.unsafe-path": (
        "config_path or secrets_path is not a normalised, printable absolute POSIX path"
        " (no '.', '..' or empty segments, no NUL, control or bidi characters)"
    ),
    "agent.path-not-allowed": (
        "an agent's config_path or secrets path lies under none of fleet.yaml's"
        " connection.allowed_paths"
    ),
    "connection.allowed-paths": (
        "connection.allowed_paths is missing or empty, or an entry is not a normalised,"
        " printable absolute directory"
    ),
    "connection.known-hosts-in-repo": (
        "known_hosts points into the config repo, where a pull request could change it"
    ),
    "state.password-in-url": (
        "fleet.yaml's state: URL holds a password; credentials come from the environment"
        " (PGPASSWORD, RECONCILER_STATE_PASSWORD) or a passfile, never from the repo"
    ),
    "state.not-postgresql": "fleet.yaml's state: is not a postgresql://USER@HOST/DATABASE URL",
    "connection.probe-host": (
        "a health_url or metrics_url names a host other than the agent's own that"
        " connection.allowed_probe_hosts does not list, or a link-local or cloud metadata"
        " address (never allowed)"
    ),
    "wave.invalid": (
        "a wave entry is neither a positive count nor a percentage in (0, 100],"
        " or the failure budget is neither a count nor a percentage in [0, 100]"
    ),
    "wave.order": "wave entries do not increase",
    "wave.last": "the last wave does not reach 100%",
    "secret.undeclared": "a {secret: NAME} reference names no entry of secrets/",
    "alert.unknown-metric": "an alert's metric is not in the catalogue (docs/alerts.md)",
    "alert.condition": (
        "an alert has not exactly one of above/below with its metric, or mixes promql with"
        " metric, above, below, relative_to or by"
    ),
    "alert.selector": (
        "an alert's selector names no agent (tier, shard and labels together), or a label"
        " the alert's level (`by`) does not keep"
    ),
    "alert.relative-to": "relative_to: tier on an alert not judged per agent (by: agent)",
    "alert.unknown-route": "an alert or alerting.default_route names no alerting route",
    "alert.duplicate-name": "two alerts have the same name",
    "route.receiver": "an alerting route has not exactly one of webhook or slack",
    "route.duplicate": "two alerting routes have the same name",
    "prometheus.path": "fleet.yaml prometheus.rules_dir is not a normalised absolute path",
    "prometheus.path-not-allowed": (
        "fleet.yaml prometheus.rules_dir is under none of connection.allowed_paths"
    ),
    "prometheus.url": (
        "fleet.yaml prometheus.url is not an http(s) URL, or names a host that may not be"
        " probed (not the box's own, nor one of connection.allowed_probe_hosts)"
    ),
    "alertmanager.path": "fleet.yaml alertmanager.config_path is not a normalised absolute path",
    "alertmanager.path-not-allowed": (
        "fleet.yaml alertmanager.config_path is under none of connection.allowed_paths"
    ),
    "alertmanager.url": (
        "fleet.yaml alertmanager.url is not an http(s) URL, or names a host that may not be"
        " probed (not the box's own, nor one of connection.allowed_probe_hosts)"
    ),
    "secret.duplicate": "the secrets index declares a name twice",
    "secret.plaintext": (
        "a config value looks like a credential (sk-ant-, sk-, ghp_, xox?-, AKIA..., a PEM"
        " private key); use a {secret: NAME} reference"
    ),
    "secret.entropy": (
        "a payload string of 24+ characters at 4.0+ bits/char (Shannon) in a field not"
        " annotated x-not-secret; use a {secret: NAME} reference or annotate the field"
    ),
    "usage.unknown-tier": "usage.yaml gives traffic for a tier that has no agents/tier-*.yaml",
}


class ConfigError(InputError):
    """Config that breaks a rule; `rule` is a stable id from `RULES`."""

    def __init__(self, where: SourceSpan, rule: str, message: str) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown rule id {rule!r}")
        # One error, one line: `path:line:col: error[RULE]: message`, so tools can parse it.
        message = " ".join(part.strip() for part in message.splitlines())
        # Backstops: a known credential format never prints, nor does a megabyte of value.
        message = redact_text(message)
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[: MAX_MESSAGE_CHARS - 20]}... (message cut)"  # idempotent
        super().__init__(f"{where}: error[{rule}]: {message}")
        self.where = where
        self.rule = rule
        self.message = message

    def __reduce__(self) -> tuple[type[ConfigError], tuple[SourceSpan, str, str]]:
        return (ConfigError, (self.where, self.rule, self.message))

    def sort_key(self) -> tuple[str, int, int, str]:
        """Errors print in file order, then by rule, so output is stable."""
        return (self.where.file, self.where.line, self.where.column, self.rule)


class ConfigErrors(InputError):
    """Every error found in one pass; a repo is refused as a whole, never half-loaded."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(errors, key=ConfigError.sort_key)
        super().__init__("\n".join(str(e) for e in self.errors))
