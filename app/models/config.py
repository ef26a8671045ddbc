"""Label Studio labeling-config parser (untrusted XML, read with ``defusedxml``).

Produces frozen dataclasses: the *objects* (what is shown: ``Text``, ``Image``, ...), the
*controls* (dimensions of judgment: ``Choices``, ``Labels``, ...) and any *unknown* named tag,
which is kept (and shown raw later) instead of failing. Malformed XML raises
:class:`ConfigError` with the line and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

OBJECT_TAGS = frozenset(
    {"Text", "HyperText", "Image", "Audio", "AudioPlus", "Video", "TimeSeries", "Paragraphs", "Table", "Pdf",
     "List", "Markdown", "Chat"}
)
CONTROL_TAGS = frozenset(
    {"Choices", "Labels", "RectangleLabels", "Rectangle", "PolygonLabels", "Polygon", "KeyPointLabels",
     "KeyPoint", "BrushLabels", "Brush", "EllipseLabels", "Ellipse", "TextArea", "Rating", "Number",
     "Pairwise", "Taxonomy", "TimeSeriesLabels", "HyperTextLabels", "ParagraphLabels", "DateTime",
     "Ranker", "VideoRectangle", "MagicWand", "BitmaskLabels", "Bitmask"}
)
# Tags that only arrange or decorate; never reported as unknown.
LAYOUT_TAGS = frozenset(
    {"View", "Header", "Style", "Collapse", "Panel", "Filter", "Relations", "Relation", "Choice", "Label",
     "Shortcut", "Path", "Item", "Bucket", "Repeater", "Script"}
)
OPTION_TAGS = frozenset({"Choice", "Label"})
AUTO_HOTKEYS = "1234567890"


class ConfigError(ValueError):
    """The labeling config cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Option:
    value: str
    hotkey: str | None = None
    hotkey_auto: bool = False
    background: str | None = None
    alias: str | None = None
    attrs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    children: tuple[Option, ...] = ()  # nested Choice (Taxonomy)


@dataclass(frozen=True)
class ConfigTag:
    kind: str  # "object" | "control" | "unknown"
    tag: str
    name: str
    to_name: tuple[str, ...] = ()
    value: str | None = None  # "$key" for objects
    attrs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    options: tuple[Option, ...] = ()
    position: int = 0

    @property
    def result_type(self) -> str:
        """The ``type`` that result items of this tag carry (Label Studio lower-cases the tag)."""
        return self.tag.lower()

    @property
    def data_key(self) -> str | None:
        if self.value and self.value.startswith("$"):
            return self.value[1:]
        return None

    @property
    def multiple(self) -> bool:
        return self.attrs.get("choice") == "multiple" or self.tag == "Taxonomy"

    def option_values(self) -> tuple[str, ...]:
        out: list[str] = []

        def walk(opts: Iterable[Option]) -> None:
            for o in opts:
                out.append(o.alias or o.value)
                walk(o.children)

        walk(self.options)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tag": self.tag,
            "name": self.name,
            "to_name": list(self.to_name),
            "value": self.value,
            "attrs": dict(self.attrs),
            "options": [_option_dict(o) for o in self.options],
        }


def _option_dict(o: Option) -> dict[str, Any]:
    d: dict[str, Any] = {"value": o.value}
    if o.hotkey:
        d["hotkey"] = o.hotkey
    if o.background:
        d["background"] = o.background
    if o.alias:
        d["alias"] = o.alias
    if o.children:
        d["children"] = [_option_dict(c) for c in o.children]
    return d


@dataclass(frozen=True)
class LabelingConfig:
    xml: str
    objects: tuple[ConfigTag, ...]
    controls: tuple[ConfigTag, ...]
    unknown: tuple[ConfigTag, ...]

    def tag(self, name: str) -> ConfigTag | None:
        for t in (*self.controls, *self.objects, *self.unknown):
            if t.name == name:
                return t
        return None

    def control(self, name: str) -> ConfigTag | None:
        return next((c for c in self.controls if c.name == name), None)

    def object(self, name: str) -> ConfigTag | None:
        return next((o for o in self.objects if o.name == name), None)

    @property
    def all_tags(self) -> tuple[ConfigTag, ...]:
        return (*self.objects, *self.controls, *self.unknown)

    def hotkeys(self) -> dict[str, tuple[str, str]]:
        """hotkey -> (control name, option value)."""
        out: dict[str, tuple[str, str]] = {}
        for c in self.controls:
            for o in c.options:
                if o.hotkey:
                    out.setdefault(o.hotkey, (c.name, o.value))
        return out


def parse_config(xml: str) -> LabelingConfig:
    """Parse a labeling config. Raises :class:`ConfigError` on malformed or unusable XML."""
    if not isinstance(xml, str) or not xml.strip():
        raise ConfigError("The labeling config is empty.")
    try:
        root = fromstring(xml)
    except ParseError as exc:
        line, col = exc.position
        raise ConfigError(f"The labeling config is not well-formed XML (line {line}, column {col + 1}): {exc}") from exc
    except DefusedXmlException as exc:
        raise ConfigError(f"The labeling config uses forbidden XML features ({type(exc).__name__}).") from exc
    if root.tag != "View":
        raise ConfigError(f"The labeling config must start with <View>, not <{root.tag}>.")

    objects: list[ConfigTag] = []
    controls: list[ConfigTag] = []
    unknown: list[ConfigTag] = []
    names: set[str] = set()
    pos = 0
    for el in root.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        name = el.attrib.get("name")
        if tag in OPTION_TAGS or (tag in LAYOUT_TAGS and tag not in CONTROL_TAGS):
            continue
        if not name:
            if tag in OBJECT_TAGS or tag in CONTROL_TAGS:
                raise ConfigError(f"<{tag}> needs a name attribute.")
            continue
        if name in names:
            raise ConfigError(f"The name {name!r} is used by more than one tag.")
        names.add(name)
        attrs = MappingProxyType({k: v for k, v in el.attrib.items() if k not in ("name", "toName", "value")})
        to_name = tuple(t.strip() for t in el.attrib.get("toName", "").split(",") if t.strip())
        if tag in OBJECT_TAGS:
            kind = "object"
        elif tag in CONTROL_TAGS:
            kind = "control"
        else:
            kind = "unknown"
        t = ConfigTag(
            kind=kind,
            tag=tag,
            name=name,
            to_name=to_name,
            value=el.attrib.get("value"),
            attrs=attrs,
            options=_options(el),
            position=pos,
        )
        pos += 1
        {"object": objects, "control": controls, "unknown": unknown}[kind].append(t)

    for c in controls:
        if not c.to_name:
            raise ConfigError(f"<{c.tag} name={c.name!r}> needs a toName attribute.")
        for target in c.to_name:
            if target not in names:
                raise ConfigError(f"<{c.tag} name={c.name!r}> points at {target!r}, which no tag is named.")
    controls = _auto_hotkeys(controls)
    return LabelingConfig(xml=xml, objects=tuple(objects), controls=tuple(controls), unknown=tuple(unknown))


def _options(el: Element) -> tuple[Option, ...]:
    out = []
    for child in el:
        if child.tag not in OPTION_TAGS:
            continue
        value = child.attrib.get("value")
        if value is None:
            continue
        out.append(
            Option(
                value=value,
                hotkey=child.attrib.get("hotkey") or None,
                background=child.attrib.get("background"),
                alias=child.attrib.get("alias"),
                attrs=MappingProxyType(dict(child.attrib)),
                children=_options(child),
            )
        )
    return tuple(out)


def _auto_hotkeys(controls: list[ConfigTag]) -> list[ConfigTag]:
    """Number options that have no hotkey with free digits, as the Label Studio UI does."""
    used = {o.hotkey for c in controls for o in c.options if o.hotkey}
    free = [k for k in AUTO_HOTKEYS if k not in used]
    out = []
    for c in controls:
        if c.options and all(o.hotkey is None for o in c.options) and len(free) >= len(c.options):
            opts = []
            for o in c.options:
                key = free.pop(0)
                opts.append(
                    Option(o.value, key, True, o.background, o.alias, o.attrs, o.children)
                )
            c = ConfigTag(c.kind, c.tag, c.name, c.to_name, c.value, c.attrs, tuple(opts), c.position)
        out.append(c)
    return out


# Result ``type`` values a control may produce besides its own lower-cased tag.
_EXTRA_TYPES = {"Rectangle": {"rectanglelabels"}, "RectangleLabels": {"rectangle"},
                "Polygon": {"polygonlabels"}, "PolygonLabels": {"polygon"},
                "KeyPoint": {"keypointlabels"}, "KeyPointLabels": {"keypoint"},
                "Labels": {"hypertextlabels", "paragraphlabels", "timeserieslabels"}}
_VALUE_KEY = {"choices": "choices", "labels": "labels", "rectanglelabels": "rectanglelabels",
              "polygonlabels": "polygonlabels", "keypointlabels": "keypointlabels", "textarea": "text",
              "rating": "rating", "number": "number", "pairwise": "selected", "taxonomy": "taxonomy",
              "timeserieslabels": "timeserieslabels", "hypertextlabels": "hypertextlabels",
              "paragraphlabels": "paragraphlabels"}


def validate_result(cfg: LabelingConfig, result: Any, *, strict: bool = False) -> list[str]:
    """Check a result (list of LS result items) against the config; return problems (empty = fine).

    Always checked: the shape, that ``from_name`` names a tag of the config and ``to_name`` one of its
    targets. With ``strict`` (fixes made in ReviewDesk) also the ``type``, the value key and that
    chosen options exist in the control.
    """
    if not isinstance(result, list):
        return [f"a result must be a list of items, not {type(result).__name__}"]
    problems: list[str] = []
    for i, item in enumerate(result):
        if not isinstance(item, dict):
            problems.append(f"item {i} is not an object")
            continue
        if item.get("type") == "relation":
            continue
        from_name = item.get("from_name")
        tag = cfg.tag(from_name) if isinstance(from_name, str) else None
        if tag is None:
            problems.append(f"item {i} names control {from_name!r}, which the labeling config does not have")
            continue
        to_name = item.get("to_name")
        if tag.to_name and to_name not in tag.to_name:
            problems.append(f"item {i} ({from_name}) points at {to_name!r}, expected one of {list(tag.to_name)}")
        if not isinstance(item.get("value", {}), dict):
            problems.append(f"item {i} ({from_name}) has a value that is not an object")
            continue
        if not strict or tag.kind != "control":
            continue
        rtype = item.get("type")
        allowed = {tag.result_type} | _EXTRA_TYPES.get(tag.tag, set())
        if rtype not in allowed:
            problems.append(f"item {i} ({from_name}) has type {rtype!r}, expected {tag.result_type!r}")
            continue
        key = _VALUE_KEY.get(str(rtype))
        value = item.get("value", {})
        if key and key not in value:
            problems.append(f"item {i} ({from_name}) has no value.{key}")
            continue
        if key and tag.options and key not in ("text", "rating", "number", "selected", "taxonomy"):
            known = set(tag.option_values())
            chosen = value[key] if isinstance(value[key], list) else [value[key]]
            for v in chosen:
                if v not in known:
                    problems.append(f"item {i} ({from_name}) uses {v!r}, which is not an option of {from_name}")
        if rtype == "rating":
            r = value.get("rating")
            mx = int(tag.attrs.get("maxRating", "5"))
            if not isinstance(r, int | float) or not 0 <= r <= mx:
                problems.append(f"item {i} ({from_name}) rating {r!r} is outside 0..{mx}")
        if rtype == "choices" and not tag.multiple and len(value.get("choices", [])) > 1:
            problems.append(f"item {i} ({from_name}) picks several choices but the control allows one")
    return problems
