"""workflows/*.yaml -> checked document -> frozen :class:`Definition`.

Every problem is collected (not just the first) and names the file and the path
inside it: ``workflows/candidacy.yaml: transitions[3].dest: unknown state 'labeled'``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ti_workflow.definitions.forms import parse_form
from ti_workflow.definitions.timers import parse_case_timers, parse_notifications
from ti_workflow.domain import (  # noqa: F401  (register their guards)
    amendments,
    declared,
    postlabel,
)
from ti_workflow.domain.actors import ROLES
from ti_workflow.domain.definition import PAYLOAD_TYPES, Definition, PayloadField, State, Transition
from ti_workflow.domain.rules import EFFECTS, FORMS, GUARDS
from ti_workflow.domain.text import MAX_DEPTH, id_problem
from ti_workflow.errors import InvalidDefinition

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
YAML11_BOOLEAN_WORDS = frozenset(
    {"y", "yes", "n", "no", "on", "off", "true", "false"}
)  # names a YAML 1.1 reader would turn into true/false


class _StrictLoader(yaml.SafeLoader):
    """Safe loader that keeps ``on``/``no``/``yes``... as strings and refuses duplicate keys."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.2: only true/false are booleans; yes/no/on/off stay strings (and are refused as names).
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_timestamp(loader: _StrictLoader, node: yaml.ScalarNode) -> Any:
    """A date that does not exist (2023-02-30) is an error at its line, not a traceback."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a valid date or instant ({exc})", node.start_mark
        ) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a file that is not UTF-8 text is a YAMLError."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise yaml.YAMLError(f"the file is not UTF-8 text (byte {exc.start + 1})") from None
    return parse_yaml_text(text)


def parse_yaml_text(text: str) -> Any:
    """Load with the strict loader, after checking how deep the document nests (the
    parser is iterative, the composer recursive: a deep file would overflow the stack)."""
    depth = 0
    for event in yaml.parse(text, Loader=_StrictLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(
                    problem=f"nested more than {MAX_DEPTH} levels deep",
                    problem_mark=event.start_mark,  # type: ignore[arg-type]
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return yaml.load(text, Loader=_StrictLoader)


def content_version(document: Any) -> str:
    """A definition version: SHA-256 of the document's canonical JSON (comments don't count)."""
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}")

    def name(self, value: Any, path: str, what: str) -> str | None:
        """A name (state, trigger, guard...): a plain identifier, never a YAML boolean."""
        if isinstance(value, bool):
            self.error(path, f"{what} is the boolean {str(value).lower()}, not a name; quote it")
            return None
        if not isinstance(value, str) or not value:
            self.error(path, f"{what} must be a non-empty string, got {value!r}")
            return None
        if value.lower() in YAML11_BOOLEAN_WORDS:
            self.error(
                path,
                f"{what} {value!r} is a boolean in YAML 1.1 (yes/no/on/off...): "
                f"choose another name",
            )
            return None
        if not NAME_RE.match(value):
            self.error(
                path, f"{what} {value!r}: ASCII letters, digits and '_', starting with a letter"
            )
            return None
        return value

    def keys(self, mapping: dict[str, Any], path: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in mapping:
            if key not in allowed:
                self.error(
                    f"{path}.{key}" if path else str(key),
                    f"unknown key (allowed: {', '.join(allowed)})",
                )

    def names(self, value: Any, path: str, what: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            sub = f"{path}[{i}]" if isinstance(value, list) else path
            n = self.name(item, sub, what)
            if n:
                out.append(n)
        return tuple(out)


TOP_KEYS = (
    "workflow", "title", "initial", "form", "create", "editable_in", "states",
    "transitions", "timers", "notifications",
)  # fmt: skip
TRANSITION_KEYS = (
    "trigger", "source", "dest", "roles", "guards", "effects", "payload",
    "reason_required", "automatic", "label_fr",
)  # fmt: skip
STATE_KEYS = ("final", "label_fr", "label_en")
FIELD_KEYS = ("type", "required", "choices", "max_length")


def parse_definition(document: Any, file: str) -> Definition:
    """Check a loaded YAML document and build its frozen model, or raise with every error."""
    c = _Checker(file)
    if not isinstance(document, dict):
        raise InvalidDefinition([f"{file}: the file must hold a mapping (workflow:, states:...)"])
    c.keys(document, "", TOP_KEYS)
    for required in ("workflow", "initial", "form", "states", "transitions"):
        if required not in document:
            c.error(required, "required key is missing")
    name = c.name(document.get("workflow"), "workflow", "workflow name") or "?"
    if name != "?" and (problem := id_problem(name, "workflow")):
        c.error("workflow", problem)

    form = document.get("form")
    form_spec = None
    if isinstance(form, dict):  # declared fields
        form_spec = parse_form(form, c.error)
        form = name
    elif form is not None and form not in FORMS:
        c.error("form", f"unknown form {form!r} (known: {', '.join(FORMS)}, or declare fields)")

    states: list[State] = []
    raw_states = document.get("states") or {}
    if not isinstance(raw_states, dict):
        c.error("states", "must be a mapping of state name to its options")
        raw_states = {}
    for key, options in raw_states.items():
        path = f"states.{key}"
        sname = c.name(key, path, "state name")
        options = options or {}
        if not isinstance(options, dict):
            c.error(path, "state options must be a mapping (final:, label_fr:)")
            continue
        c.keys(options, path, STATE_KEYS)
        if sname:
            states.append(
                State(
                    sname,
                    final=options.get("final") is True,
                    label_fr=str(options.get("label_fr", "")),
                    label_en=str(options.get("label_en", "")),
                )
            )
    known_states = {s.name for s in states}

    def check_state(value: str, path: str) -> None:
        if known_states and value not in known_states:
            c.error(path, f"unknown state {value!r} (known: {', '.join(sorted(known_states))})")

    initial = c.name(document.get("initial"), "initial", "initial state") or ""
    if initial:
        check_state(initial, "initial")

    def check_guards(raw: Any, path: str) -> tuple[str, ...]:
        guards = c.names(raw, path, "guard")
        for j, g in enumerate(guards):
            if g not in GUARDS:
                c.error(f"{path}[{j}]", f"unknown guard {g!r} (known: {', '.join(sorted(GUARDS))})")
        return guards

    def check_roles(value: Any, path: str) -> tuple[str, ...]:
        roles = c.names(value, path, "role")
        for i, role in enumerate(roles):
            if role not in ROLES:
                c.error(f"{path}[{i}]", f"unknown role {role!r} (known: {', '.join(ROLES)})")
        if not roles:
            c.error(path, "at least one role is needed")
        return roles

    create = document.get("create") or {}
    if not isinstance(create, dict):
        c.error("create", "must be a mapping with roles:")
        create = {}
    c.keys(create, "create", ("roles", "guards"))
    create_roles = check_roles(create.get("roles", []), "create.roles")
    create_guards = check_guards(create.get("guards", []), "create.guards")

    editable_in = c.names(document.get("editable_in", []), "editable_in", "state")
    for i, s in enumerate(editable_in):
        check_state(s, f"editable_in[{i}]")

    transitions: list[Transition] = []
    raw_transitions = document.get("transitions") or []
    if not isinstance(raw_transitions, list):
        c.error("transitions", "must be a list")
        raw_transitions = []
    seen_pairs: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(raw_transitions):
        path = f"transitions[{i}]"
        if not isinstance(raw, dict):
            c.error(path, "each transition must be a mapping (trigger:, source:, dest:, roles:)")
            continue
        c.keys(raw, path, TRANSITION_KEYS)
        for required in ("trigger", "source", "dest", "roles"):
            if required not in raw:
                c.error(f"{path}.{required}", "required key is missing")
        trigger = c.name(raw.get("trigger"), f"{path}.trigger", "trigger") or ""
        sources = c.names(raw.get("source", []), f"{path}.source", "state")
        for j, s in enumerate(sources):
            spath = (
                f"{path}.source[{j}]" if isinstance(raw.get("source"), list) else f"{path}.source"
            )
            check_state(s, spath)
            if trigger:
                if (trigger, s) in seen_pairs:
                    c.error(
                        f"{path}.trigger",
                        f"duplicate trigger {trigger!r} from state {s!r} "
                        f"(already in transitions[{seen_pairs[(trigger, s)]}])",
                    )
                seen_pairs.setdefault((trigger, s), i)
        dest = c.name(raw.get("dest"), f"{path}.dest", "state") or ""
        if dest:
            check_state(dest, f"{path}.dest")
        roles = check_roles(raw.get("roles", []), f"{path}.roles")
        guards = check_guards(raw.get("guards", []), f"{path}.guards")
        effects = c.names(raw.get("effects", []), f"{path}.effects", "effect")
        for j, e in enumerate(effects):
            if e not in EFFECTS:
                c.error(
                    f"{path}.effects[{j}]",
                    f"unknown effect {e!r} (known: {', '.join(sorted(EFFECTS))})",
                )
        payload = _payload(c, raw.get("payload") or {}, f"{path}.payload")
        for flag in ("reason_required", "automatic"):
            if flag in raw and not isinstance(raw[flag], bool):
                c.error(f"{path}.{flag}", f"must be true or false, got {raw[flag]!r}")
        automatic = raw.get("automatic") is True
        if automatic and roles != ("system",):
            c.error(
                f"{path}.roles", "an automatic transition is taken by the system: roles: [system]"
            )
        transitions.append(
            Transition(
                trigger=trigger,
                sources=sources,
                dest=dest,
                roles=roles,
                guards=guards,
                effects=effects,
                payload=payload,
                reason_required=raw.get("reason_required") is True,
                automatic=automatic,
                label_fr=str(raw.get("label_fr", "")),
            )
        )

    _check_graph(c, initial, states, transitions)
    triggers = tuple(dict.fromkeys(t.trigger for t in transitions))
    notes = parse_notifications(document.get("notifications"), c.error, triggers)
    parse_case_timers(
        document.get("timers"), c.error, triggers, tuple(known_states), [n.name for n in notes]
    )
    if c.errors:
        raise InvalidDefinition(c.errors)
    return Definition(
        name=name,
        version=content_version(document),
        source=file,
        title=str(document.get("title", "")),
        initial=initial,
        form=str(form),
        create_roles=create_roles,
        create_guards=create_guards,
        editable_in=editable_in,
        states=tuple(states),
        transitions=tuple(transitions),
        timers=tuple(document.get("timers") or ()),
        notifications=tuple(document.get("notifications") or ()),
        form_spec=form_spec,
    )


def _payload(c: _Checker, raw: Any, path: str) -> tuple[PayloadField, ...]:
    if not isinstance(raw, dict):
        c.error(path, "must be a mapping of field name to {type:, required:}")
        return ()
    fields = []
    for key, spec in raw.items():
        fpath = f"{path}.{key}"
        fname = c.name(key, fpath, "payload field")
        if not isinstance(spec, dict):
            c.error(fpath, "must be a mapping (type:, required:, choices:)")
            continue
        c.keys(spec, fpath, FIELD_KEYS)
        ftype = spec.get("type")
        if ftype not in PAYLOAD_TYPES:
            c.error(f"{fpath}.type", f"unknown type {ftype!r} (known: {', '.join(PAYLOAD_TYPES)})")
            continue
        choices = c.names(spec.get("choices", []), f"{fpath}.choices", "choice")
        if ftype == "choice" and not choices:
            c.error(f"{fpath}.choices", "a choice field lists its choices")
        if fname:
            fields.append(
                PayloadField(
                    fname,
                    ftype,
                    required=spec.get("required", True) is True,
                    choices=choices,
                    max_length=int(spec.get("max_length", 10_000)),
                )
            )
    return tuple(fields)


def _check_graph(
    c: _Checker, initial: str, states: list[State], transitions: list[Transition]
) -> None:
    if not initial or not states:
        return
    edges: dict[str, set[str]] = {s.name: set() for s in states}
    for t in transitions:
        for s in t.sources:
            if s in edges and t.dest:
                edges[s].add(t.dest)
    reached = {initial}
    queue = deque([initial])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in reached:
                reached.add(nxt)
                queue.append(nxt)
    for state in states:
        if state.name not in reached:
            c.error(
                f"states.{state.name}",
                f"unreachable state: no transition leads there from {initial!r}",
            )
        leaves = any(dest != state.name for dest in edges.get(state.name, ()))
        if not state.final and not leaves:
            c.error(
                f"states.{state.name}",
                "dead end: a state that is not final needs a transition leaving it "
                "(or mark it final: true)",
            )
        if state.final and any(dest != state.name for dest in edges.get(state.name, ())):
            c.error(
                f"states.{state.name}",
                "a final state cannot have outgoing transitions (only to itself: follow-up)",
            )


def load_definition(path: Path, display: str | None = None) -> Definition:
    file = display or str(path)
    try:
        document = read_yaml(path)
    except OSError as exc:
        raise InvalidDefinition([f"{file}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise InvalidDefinition([f"{file}: {yaml_problem(exc)}"]) from None
    return parse_definition(document, file)


def yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{UNREADABLE}{where}: {problem}"


UNREADABLE = "not valid YAML"
"""How every error of a file that cannot be read as YAML data begins (after its name)."""


def load_definitions(paths: Iterable[Path]) -> list[Definition]:
    """Load several files, gathering every error of every file before raising."""
    out: list[Definition] = []
    errors: list[str] = []
    for path in paths:
        try:
            out.append(load_definition(path))
        except InvalidDefinition as exc:
            errors.extend(exc.errors)
    names: dict[str, str] = {}
    for d in out:
        if d.name in names:
            errors.append(f"{d.source}: workflow {d.name!r} is already defined in {names[d.name]}")
        names[d.name] = d.source
    if errors:
        raise InvalidDefinition(errors)
    return out
