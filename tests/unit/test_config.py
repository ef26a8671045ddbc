from __future__ import annotations

import pytest

from app.models.config import ConfigError, parse_config, validate_result
from tests.conftest import DEMO, SMALL_CONFIG, choice


def test_parses_objects_controls_options_and_hotkeys() -> None:
    cfg = parse_config(SMALL_CONFIG)
    assert [o.name for o in cfg.objects] == ["text"]
    assert cfg.objects[0].data_key == "text"
    assert [c.name for c in cfg.controls] == ["sentiment", "ner", "quality"]
    s = cfg.control("sentiment")
    assert s is not None and s.to_name == ("text",) and s.result_type == "choices" and not s.multiple
    assert [(o.value, o.hotkey, o.hotkey_auto) for o in s.options] == [
        ("pos", "1", False), ("neg", "2", False), ("neutral", "3", False)]
    ner = cfg.control("ner")
    assert ner is not None
    # Labels without hotkeys are auto-numbered with digits nobody else uses
    assert [(o.hotkey, o.hotkey_auto) for o in ner.options] == [("4", True), ("5", True)]
    assert cfg.control("quality").attrs["maxRating"] == "5"  # type: ignore[union-attr]


def test_demo_config_parses() -> None:
    cfg = parse_config((DEMO / "config.xml").read_text())
    names = {c.name for c in cfg.controls}
    assert {"category", "entities", "regions", "segments", "urgency"} <= names
    assert {o.tag for o in cfg.objects} >= {"Text", "Image", "Audio"}


def test_unknown_tags_are_kept_not_fatal() -> None:
    cfg = parse_config('<View><Text name="t" value="$t"/><Sparkle name="s" toName="t" power="9"/>'
                       '<Choices name="c" toName="t" choice="multiple"><Choice value="a"/></Choices></View>')
    assert [u.tag for u in cfg.unknown] == ["Sparkle"]
    assert cfg.unknown[0].attrs["power"] == "9"
    assert cfg.control("c").multiple  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("", "empty"),
        ("<View><Text name='t' value='$t'></View>", "line 1"),
        ("<Foo/>", "must start with <View>"),
        ("<View><Choices name='c'><Choice value='a'/></Choices></View>", "needs a toName"),
        ("<View><Choices name='c' toName='nowhere'/></View>", "no tag is named"),
        ("<View><Text value='$t'/></View>", "needs a name"),
        ("<View><Text name='t' value='$t'/><Text name='t' value='$u'/></View>", "more than one tag"),
        ('<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
         "<View><Header value='&b;'/></View>", "forbidden XML"),
    ],
)
def test_malformed_configs_get_clear_errors(xml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(xml)


def test_validate_result_names_unknown_controls_and_bad_values() -> None:
    cfg = parse_config(SMALL_CONFIG)
    assert validate_result(cfg, [choice("pos")], strict=True) == []
    assert "does not have" in validate_result(cfg, [choice("pos", name="ghost")])[0]
    assert "not an option" in validate_result(cfg, [choice("maybe")], strict=True)[0]
    assert validate_result(cfg, [choice("maybe")]) == []  # lenient on import: configs evolve
    two = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos", "neg"]}}
    assert "allows one" in validate_result(cfg, [two], strict=True)[0]
    bad_rating = {"from_name": "quality", "to_name": "text", "type": "rating", "value": {"rating": 9}}
    assert "outside" in validate_result(cfg, [bad_rating], strict=True)[0]
    wrong_target = {"from_name": "sentiment", "to_name": "image", "type": "choices", "value": {"choices": ["pos"]}}
    assert "points at" in validate_result(cfg, [wrong_target])[0]
    assert "list" in validate_result(cfg, {"not": "a list"})[0]
