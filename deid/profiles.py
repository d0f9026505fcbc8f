"""Load the generated PS3.15 tables and user profiles; compile them into tag → action.

A profile is data: the shipped ``profiles/*.yaml`` name a set of options over the generated
Table E.1-1 (``profiles/generated/table_e1_1.yaml``); a user's YAML file extends one of them::

    extends: basic                       # a shipped profile
    options: [retain-safe-private]       # PS3.15 options, kebab-case
    residual_guard: true                 # the residual-identity guard (default on)
    actions:                             # overrides by keyword or tag
      PatientSex: K
      "(0010,1010)": K
    private:                             # overrides of private elements
      - {group: "0029", creator: "SIEMENS CSA HEADER", element: "10", action: K}

Decisions the standard leaves open (see README "Decisions"):

* When several selected options fill the same row, ``C`` wins over ``K`` (the 11 rows where
  Retain Device Identity says K and Modified Dates says C are modified).
* The two longitudinal options exclude each other.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydicom.datadict import tag_for_keyword

from deid.config import ProfileSpec
from deid.errors import ProfileError

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ActionCode(str, enum.Enum):
    """Action codes of PS3.15 Table E.1-1a."""

    D = "D"
    Z = "Z"
    X = "X"
    K = "K"
    C = "C"
    U = "U"
    Z_D = "Z/D"
    X_Z = "X/Z"
    X_D = "X/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"


class ProfileOption(str, enum.Enum):
    """The option columns of Table E.1-1, by their command-line names."""

    RETAIN_SAFE_PRIVATE = "retain-safe-private"
    RETAIN_UIDS = "retain-uids"
    RETAIN_DEVICE_IDENTITY = "retain-device-identity"
    RETAIN_INSTITUTION_IDENTITY = "retain-institution-identity"
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"
    RETAIN_LONGITUDINAL_FULL_DATES = "retain-longitudinal-full-dates"
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain-longitudinal-modified-dates"
    CLEAN_DESCRIPTORS = "clean-descriptors"
    CLEAN_STRUCTURED_CONTENT = "clean-structured-content"
    CLEAN_GRAPHICS = "clean-graphics"


_OPTION_HELP = {
    ProfileOption.RETAIN_SAFE_PRIVATE: "keep private attributes of Table E.3.10-1 (E.3.10)",
    ProfileOption.RETAIN_UIDS: "keep UIDs (E.3.9)",
    ProfileOption.RETAIN_DEVICE_IDENTITY: "keep device identity (E.3.8)",
    ProfileOption.RETAIN_INSTITUTION_IDENTITY: "keep institution identity (E.3.11)",
    ProfileOption.RETAIN_PATIENT_CHARACTERISTICS: "keep age, sex, size, weight... (E.3.7)",
    ProfileOption.RETAIN_LONGITUDINAL_FULL_DATES: "keep dates and times (E.3.6)",
    ProfileOption.RETAIN_LONGITUDINAL_MODIFIED_DATES: "shift dates per patient (E.3.6)",
    ProfileOption.CLEAN_DESCRIPTORS: "keep descriptions, cleaned of identifying text (E.3.5)",
    ProfileOption.CLEAN_STRUCTURED_CONTENT: "keep SR content trees, cleaned (E.3.4)",
    ProfileOption.CLEAN_GRAPHICS: "keep graphic annotations, cleaned (E.3.3)",
}

_LONGITUDINAL = {
    ProfileOption.RETAIN_LONGITUDINAL_FULL_DATES,
    ProfileOption.RETAIN_LONGITUDINAL_MODIFIED_DATES,
}


def _profiles_dir() -> Any:
    return resources.files("deid._profiles")


@functools.lru_cache(maxsize=1)
def load_table() -> dict[str, Any]:
    """The generated Table E.1-1 (``profiles/generated/table_e1_1.yaml``)."""
    text = (_profiles_dir() / "generated" / "table_e1_1.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.load(text, Loader=_LOADER)
    return data


@functools.lru_cache(maxsize=1)
def load_safe_private() -> frozenset[tuple[int, str, int]]:
    """Table E.3.10-1 as ``(group, private creator, element offset)`` keys."""
    text = (_profiles_dir() / "generated" / "safe_private.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_LOADER)
    return frozenset(
        (int(r["group"], 16), r["creator"].strip(), int(r["element"], 16)) for r in data["rows"]
    )


@functools.lru_cache(maxsize=1)
def load_method_codes() -> dict[str, tuple[str, str]]:
    """CID 7050: option name (or ``basic``/pixel codes) → (code value, code meaning)."""
    text = (_profiles_dir() / "generated" / "method_codes.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_LOADER)
    codes: dict[str, tuple[str, str]] = {}
    for row in data["rows"]:
        key = row["option"] or row["code_value"]
        codes[key] = (row["code_value"], row["code_meaning"])
    return codes


@functools.lru_cache(maxsize=1)
def _conformance_overrides() -> dict[str, ActionCode]:
    """``profiles/conformance.yaml``: X → Z or D for attributes PS3.3 requires (Type 2 / 1)."""
    text = (_profiles_dir() / "conformance.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_LOADER) or {}
    found = {k: ActionCode.Z for k in data.get("type2") or []}
    found.update({k: ActionCode.D for k in data.get("type1") or []})
    return found


def _named_profile(name: str) -> dict[str, Any]:
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ProfileError(f"unknown profile {name!r}; see 'deid profiles'.")
    path = _profiles_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ProfileError(f"unknown profile {name!r}; see 'deid profiles'.")
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    return data


def list_profiles() -> list[tuple[str, str]]:
    """(name, description) of each shipped profile."""
    found = []
    for entry in sorted(_profiles_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = yaml.load(entry.read_text(encoding="utf-8"), Loader=_LOADER)
            if isinstance(data, dict) and "name" in data:
                found.append((data["name"], data.get("description", "")))
    return found


def list_options() -> list[tuple[str, str]]:
    """(name, description) of each PS3.15 option."""
    return [(o.value, _OPTION_HELP[o]) for o in ProfileOption]


def resolve_profile_spec(profile: str, options: tuple[str, ...] = ()) -> ProfileSpec:
    """Turn ``--profile NAME_OR_FILE`` and ``--option``s into a :class:`ProfileSpec` (data only,
    so that it travels to remote workers); validates everything up front."""
    user_yaml = None
    base = profile
    path = Path(profile)
    if profile.endswith((".yaml", ".yml")) or path.is_file():
        try:
            user_yaml = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError):
            raise ProfileError(f"{profile}: cannot read profile file.") from None
        base = "basic"
    spec = ProfileSpec(base=base, options=tuple(sorted(set(options))), user_yaml=user_yaml)
    compile_profile(spec)  # fail early, in the client, with a clear message
    return spec


@dataclass(frozen=True)
class CompiledProfile:  # noqa: PLR0904
    """A profile ready to apply: every option and override folded into one action per tag."""

    name: str
    options: tuple[ProfileOption, ...]
    exact: Mapping[int, ActionCode]
    masks: tuple[tuple[int, int, ActionCode], ...]
    """(mask, value, action): ``tag & mask == value`` for repeating groups (even groups only)."""
    private_action: ActionCode
    """Action on private elements not otherwise named: X, or C with Retain Safe Private."""
    safe_private: frozenset[tuple[int, str, int]]
    private_overrides: Mapping[tuple[int, str, int], ActionCode]
    residual_guard: bool = True
    method_codes: tuple[tuple[str, str], ...] = field(default=())

    @functools.cached_property
    def kept_tags(self) -> frozenset[int]:
        """Public tags the profile keeps unchanged (K): not identifying for the guard."""
        return frozenset(t for t, a in self.exact.items() if a is ActionCode.K)

    def has(self, option: ProfileOption) -> bool:
        return option in self.options

    @property
    def longitudinal(self) -> str:
        """Value of (0028,0303) LongitudinalTemporalInformationModified."""
        if self.has(ProfileOption.RETAIN_LONGITUDINAL_FULL_DATES):
            return "UNMODIFIED"
        if self.has(ProfileOption.RETAIN_LONGITUDINAL_MODIFIED_DATES):
            return "MODIFIED"
        return "REMOVED"

    def action_for(self, tag: int) -> ActionCode | None:
        """The action of a public tag, or ``None`` when the table does not list it."""
        action = self.exact.get(tag)
        if action is not None:
            return action
        for mask, value, masked_action in self.masks:
            if tag & mask == value and not (tag >> 16) & 1:
                return masked_action
        return None

    def private_action_for(self, group: int, creator: str, offset: int) -> ActionCode:
        """The action of a private element of ``creator``'s block at element offset ``offset``."""
        key = (group, creator.strip(), offset)
        override = self.private_overrides.get(key)
        if override is not None:
            return override
        if self.private_action is ActionCode.C:
            return ActionCode.K if key in self.safe_private else ActionCode.X
        return ActionCode.X


def parse_tag(text: str) -> int:
    """``(0010,0010)``, ``0010,0010`` or ``00100010`` → int."""
    match = re.fullmatch(r"\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4})\s*\)?", text.strip())
    if not match:
        raise ProfileError(f"invalid tag {text!r}; write it as (gggg,eeee).")
    return int(match.group(1) + match.group(2), 16)


def _mask_for(tag: str) -> tuple[int, int]:
    digits = tag.strip("()").replace(",", "")
    mask = int("".join("0" if c in "xX" else "F" for c in digits), 16)
    value = int("".join("0" if c in "xX" else c for c in digits), 16)
    return mask, value


def _merge_option_cells(cells: list[str]) -> str | None:
    if not cells:
        return None
    return "C" if "C" in cells else cells[0]


@functools.lru_cache(maxsize=16)
def compile_profile(spec: ProfileSpec) -> CompiledProfile:
    """Compile ``spec`` (cached per process: workers compile once)."""
    user: dict[str, Any] = {}
    base_name = spec.base
    if spec.user_yaml is not None:
        try:
            loaded = yaml.load(spec.user_yaml, Loader=_LOADER)
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
            raise ProfileError(f"profile file is not valid YAML (line {line}).") from None
        if not isinstance(loaded, dict):
            raise ProfileError("profile file must be a YAML mapping (extends:, options:, ...).")
        unknown = set(loaded) - {"extends", "options", "actions", "private", "residual_guard",
                                 "name", "description"}
        if unknown:
            raise ProfileError(f"profile file has unknown keys: {', '.join(sorted(unknown))}.")
        user = loaded
        base_name = str(user.get("extends", "basic"))
    base = _named_profile(base_name)
    option_names = list(base.get("options") or []) + list(user.get("options") or [])
    option_names += list(spec.options)
    try:
        chosen = {ProfileOption(o) for o in option_names}
        options = tuple(o for o in ProfileOption if o in chosen)
    except ValueError:
        bad = [o for o in option_names if o not in {p.value for p in ProfileOption}]
        raise ProfileError(
            f"unknown option {bad[0]!r}; see 'deid profiles' for the list."
        ) from None
    if _LONGITUDINAL <= set(options):
        raise ProfileError(
            "retain-longitudinal-full-dates and retain-longitudinal-modified-dates exclude "
            "each other; choose one."
        )

    table = load_table()
    exact: dict[int, ActionCode] = {}
    masks: list[tuple[int, int, ActionCode]] = []
    private_action = ActionCode.X
    for row in table["rows"]:
        cells = [row.get("options", {}).get(o.value) for o in options]
        merged = _merge_option_cells([c for c in cells if c])
        action = ActionCode(merged or row["basic"])
        if row["kind"] == "exact":
            exact[parse_tag(row["tag"])] = action
        elif row["kind"] == "repeating_group":
            mask, value = _mask_for(row["tag"])
            masks.append((mask, value, action))
        elif row["kind"] == "private":
            private_action = action

    for keyword, code in _conformance_overrides().items():
        tag = tag_for_keyword(keyword)
        if tag is not None and exact.get(tag) is ActionCode.X:
            exact[tag] = code

    for key, code in (user.get("actions") or {}).items():
        action = _parse_action(code, str(key))
        tag = tag_for_keyword(str(key)) if not str(key).startswith("(") else None
        if tag is None:
            tag = parse_tag(str(key))
        if (tag >> 16) & 1:
            raise ProfileError(f"{key}: private tags go under 'private:' with their creator.")
        exact[tag] = action

    overrides: dict[tuple[int, str, int], ActionCode] = {}
    for entry in user.get("private") or []:
        try:
            group = int(str(entry["group"]), 16)
            element = int(str(entry["element"]).lower().replace("xx", ""), 16) & 0xFF
            creator = str(entry["creator"]).strip()
            action = _parse_action(entry["action"], f"private {entry['group']}")
        except (KeyError, TypeError, ValueError):
            raise ProfileError(
                "each 'private:' entry needs group (hex), creator, element (hex offset) and action."
            ) from None
        if not group & 1:
            raise ProfileError(f"private group {group:04X} is even; private groups are odd.")
        overrides[(group, creator, element)] = action

    codes = load_method_codes()
    method_codes = [codes["basic"]] + [codes[o.value] for o in options]
    residual = user.get("residual_guard", base.get("residual_guard", True))
    return CompiledProfile(
        name=str(user.get("name", base_name)),
        options=options,
        exact=exact,
        masks=tuple(masks),
        private_action=private_action,
        safe_private=load_safe_private(),
        private_overrides=overrides,
        residual_guard=bool(residual),
        method_codes=tuple(method_codes),
    )


def _parse_action(code: Any, where: str) -> ActionCode:
    try:
        return ActionCode(str(code).strip().upper() if str(code) != "X/Z/U*" else "X/Z/U*")
    except ValueError:
        allowed = ", ".join(a.value for a in ActionCode)
        raise ProfileError(f"{where}: unknown action {code!r}; use one of {allowed}.") from None
