"""Result (de)serialisation and geometry/span maths: fix -> serialise -> parse round trips per control type."""

from __future__ import annotations

import json
import math

import pytest

from app.models.config import parse_config, validate_result
from app.services.results import (
    Box,
    Classification,
    KeyPoint,
    Layer,
    PolygonShape,
    ResultDoc,
    Span,
    TimeRange,
    Unknown,
    compare,
    index_to_utf16,
    parse_item,
    points_from_px,
    points_to_px,
    rect_corners,
    rect_from_px,
    rect_to_px,
    regions_match,
    resolve_span,
    stable_id,
    utf16_to_index,
)

CONFIG = parse_config("""<View>
  <Text name="ticket" value="$text"/>
  <Labels name="entities" toName="ticket"><Label value="ORG" hotkey="r"/><Label value="DATE" hotkey="e"/></Labels>
  <Choices name="category" toName="ticket" choice="single"><Choice value="Billing"/><Choice value="Other"/></Choices>
  <Choices name="tags" toName="ticket" choice="multiple"><Choice value="a"/><Choice value="b"/><Choice value="c"/></Choices>
  <TextArea name="summary" toName="ticket"/>
  <Rating name="urgency" toName="ticket" maxRating="5"/>
  <Number name="count" toName="ticket" min="0" max="100"/>
  <Text name="left" value="$left"/><Text name="right" value="$right"/>
  <Pairwise name="better" toName="left,right"/>
  <Image name="img" value="$image"/>
  <RectangleLabels name="boxes" toName="img"><Label value="Button"/><Label value="Dialog"/></RectangleLabels>
  <PolygonLabels name="polys" toName="img"><Label value="Area"/></PolygonLabels>
  <KeyPointLabels name="points" toName="img"><Label value="Eye"/></KeyPointLabels>
  <Audio name="voice" value="$audio"/>
  <Labels name="segments" toName="voice"><Label value="Speech"/><Label value="Noise"/></Labels>
  <TimeSeries name="ts" value="$csv" valueType="url" timeColumn="time"><Channel column="v"/></TimeSeries>
  <TimeSeriesLabels name="events" toName="ts"><Label value="Spike"/></TimeSeriesLabels>
</View>""")
TEXT = "Hi, Open Food Trust wrote on January 28 😀 about Acme Corp."


def roundtrip(doc: ResultDoc) -> list:
    result = doc.to_result()
    assert validate_result(CONFIG, result, strict=True) == []
    again = json.loads(json.dumps(result))
    assert again == result
    return again


def only(result: list, name: str) -> dict:
    items = [i for i in result if i["from_name"] == name]
    assert len(items) == 1, items
    return items[0]


def test_choices_single_and_multiple_roundtrip() -> None:
    doc = ResultDoc(CONFIG)
    doc.toggle_choice("category", "Billing")
    doc.toggle_choice("category", "Other")  # single: replaces
    doc.toggle_choice("tags", "c")
    doc.toggle_choice("tags", "a")          # multiple: config order kept
    out = roundtrip(doc)
    cat, tags = only(out, "category"), only(out, "tags")
    assert cat["type"] == "choices" and cat["value"] == {"choices": ["Other"]} and cat["to_name"] == "ticket"
    assert parse_item(tags).shape == Classification(values=("a", "c"))
    doc.toggle_choice("category", "Other")  # toggling the chosen one clears the control
    assert not [i for i in doc.to_result() if i["from_name"] == "category"]
    with pytest.raises(ValueError):
        doc.set_choices("category", ["Billing", "Other"])
    with pytest.raises(ValueError):
        doc.set_choices("category", ["Nope"])


def test_text_span_roundtrip_offsets_and_text() -> None:
    doc = ResultDoc(CONFIG)
    start = TEXT.index("Open Food Trust")
    iid = doc.add_span("entities", TEXT, start - 1, start + len("Open Food Trust") + 1, "ORG")  # spaces trimmed
    acme = TEXT.index("Acme")
    doc.add_span("entities", TEXT, acme, acme + 9, "ORG")  # after the emoji: code points
    out = roundtrip(doc)
    item = next(i for i in out if i["id"] == iid)
    assert item["type"] == "labels"
    assert item["value"] == {"start": start, "end": start + 15, "text": "Open Food Trust", "labels": ["ORG"]}
    acme_item = [i for i in out if i["value"]["text"] == "Acme Corp"][0]
    assert TEXT[acme_item["value"]["start"]:acme_item["value"]["end"]] == "Acme Corp"
    p = parse_item(item)
    assert p.shape == Span(start, start + 15, ("ORG",), "Open Food Trust", None)
    doc.set_labels(iid, ["DATE"])
    assert doc.item(iid)["value"]["labels"] == ["DATE"]
    with pytest.raises(ValueError):
        doc.add_span("entities", TEXT, 5, 500, "ORG")


def test_utf16_offsets_and_legacy_spans() -> None:
    s = "a😀b"
    assert index_to_utf16(s, 2) == 3 and utf16_to_index(s, 3) == 2 and utf16_to_index(s, 2) == 1
    acme = TEXT.index("Acme")
    u16 = index_to_utf16(TEXT, acme)
    assert u16 == acme + 1
    assert resolve_span(TEXT, u16, u16 + 4, "Acme") == (acme, acme + 4, True)   # old JS offsets recognised
    assert resolve_span(TEXT, acme, acme + 4, "Acme") == (acme, acme + 4, True)
    assert resolve_span(TEXT, 0, 2, "zz")[2] is False


def test_textarea_rating_number_pairwise_roundtrip() -> None:
    doc = ResultDoc(CONFIG)
    doc.set_textarea("summary", ["asks for a discount", "", "  "])
    doc.set_rating("urgency", 4)
    doc.set_number("count", 3.0)
    doc.set_pairwise("better", "right")
    out = roundtrip(doc)
    assert only(out, "summary")["value"] == {"text": ["asks for a discount"]}
    assert only(out, "urgency")["value"] == {"rating": 4} and only(out, "urgency")["type"] == "rating"
    assert only(out, "count")["value"] == {"number": 3} and isinstance(only(out, "count")["value"]["number"], int)
    pw = only(out, "better")
    assert pw["type"] == "pairwise" and pw["value"] == {"selected": "right"} and pw["to_name"] == "left"
    doc.set_rating("urgency", 2)  # edits the same item, keeps its id
    assert only(doc.to_result(), "urgency")["id"] == only(out, "urgency")["id"]
    with pytest.raises(ValueError):
        doc.set_rating("urgency", 6)
    with pytest.raises(ValueError):
        doc.set_number("count", 101)
    with pytest.raises(ValueError):
        doc.set_pairwise("better", "middle")


def test_rectangle_roundtrip_percent_and_original_size() -> None:
    doc = ResultDoc(CONFIG)
    v = rect_from_px(400, 300, 800, 600, 4000, 3000, rotation=-30)
    iid = doc.add_box("boxes", v["x"], v["y"], v["width"], v["height"], "Button", original_width=4000,
                      original_height=3000, rotation=v["rotation"])
    out = roundtrip(doc)
    item = next(i for i in out if i["id"] == iid)
    assert item["type"] == "rectanglelabels"
    assert item["original_width"] == 4000 and item["original_height"] == 3000
    assert item["value"] == {"x": 10.0, "y": 10.0, "width": 20.0, "height": 20.0, "rotation": 330.0,
                             "rectanglelabels": ["Button"]}
    shape = parse_item(item).shape
    assert isinstance(shape, Box) and shape.rotation == 330.0
    assert rect_to_px(item["value"], 4000, 3000) == pytest.approx((400, 300, 800, 600, 330))
    doc.update(iid, x=12.5, rotation=15.0)
    assert doc.item(iid)["value"]["x"] == 12.5 and doc.item(iid)["id"] == iid


def test_rotation_is_about_the_top_left_corner() -> None:
    c = rect_corners(10, 10, 100, 50, 90)
    assert c[0] == (10, 10)
    assert c[1] == pytest.approx((10, 110))      # clockwise on screen (y down)
    assert c[2] == pytest.approx((-40, 110))
    assert math.dist(c[0], c[2]) == pytest.approx(math.hypot(100, 50))


def test_polygon_and_keypoint_roundtrip() -> None:
    doc = ResultDoc(CONFIG)
    px = [(100, 100), (300, 120), (250, 400)]
    pid = doc.add_polygon("polys", points_from_px(px, 1000, 500), "Area", original_width=1000, original_height=500)
    kid = doc.add_keypoint("points", 50.0, 25.0, "Eye", original_width=1000, original_height=500)
    out = roundtrip(doc)
    poly = next(i for i in out if i["id"] == pid)
    assert poly["type"] == "polygonlabels" and poly["value"]["closed"] is True
    assert poly["value"]["points"] == [[10.0, 20.0], [30.0, 24.0], [25.0, 80.0]]
    assert [c for p in points_to_px(poly["value"]["points"], 1000, 500) for c in p] == pytest.approx(
        [c for p in px for c in p])
    assert isinstance(parse_item(poly).shape, PolygonShape)
    kp = next(i for i in out if i["id"] == kid)
    assert kp["type"] == "keypointlabels" and parse_item(kp).shape == KeyPoint(50.0, 25.0, 1.0, ("Eye",))


def test_audio_segment_and_timeseries_roundtrip() -> None:
    doc = ResultDoc(CONFIG)
    sid = doc.add_segment("segments", 3.4, 1.2, "Speech")  # reversed edges are sorted
    tid = doc.add_segment("events", 10, 12.5, "Spike")
    out = roundtrip(doc)
    seg = next(i for i in out if i["id"] == sid)
    assert seg["type"] == "labels" and seg["to_name"] == "voice"
    assert seg["value"] == {"start": 1.2, "end": 3.4, "channel": 0, "labels": ["Speech"]}
    assert parse_item(seg).shape == Span(1.2, 3.4, ("Speech",), None, 0)
    ts = next(i for i in out if i["id"] == tid)
    assert ts["type"] == "timeserieslabels"
    assert parse_item(ts).shape == TimeRange(10.0, 12.5, False, ("Spike",))


def test_unknown_and_broken_items_parse_as_unknown() -> None:
    assert isinstance(parse_item({"type": "brushlabels", "value": {"rle": [1, 2]}}).shape, Unknown)
    assert isinstance(parse_item({"type": "rectanglelabels", "value": {"x": "a"}}).shape, Unknown)
    assert isinstance(parse_item({"type": "choices", "value": None}).shape, Unknown)


def test_edits_keep_ids_unknown_keys_and_mark_prediction_changes() -> None:
    original = [{"id": "abc", "from_name": "boxes", "to_name": "img", "type": "rectanglelabels",
                 "original_width": 200, "original_height": 100, "image_rotation": 0,
                 "value": {"x": 1, "y": 2, "width": 3, "height": 4, "rotation": 0, "rectanglelabels": ["Button"]},
                 "origin": "prediction", "score": 0.9, "meta": {"text": ["note"]}}]
    doc = ResultDoc(CONFIG, original)
    assert doc.to_result() == original  # untouched: byte-identical
    doc.update("abc", x=5.0)
    out = doc.to_result()[0]
    assert out["id"] == "abc" and out["score"] == 0.9 and out["meta"] == {"text": ["note"]}
    assert out["origin"] == "prediction-changed" and out["value"]["x"] == 5.0
    assert original[0]["value"]["x"] == 1  # the input was not mutated
    doc.remove("abc")
    assert doc.to_result() == []


def test_stable_ids() -> None:
    assert stable_id("a", 1) == stable_id("a", 1) != stable_id("a", 2)
    assert len(stable_id("x")) == 10
    d1, d2 = ResultDoc(CONFIG), ResultDoc(CONFIG)
    assert d1.add_span("entities", TEXT, 4, 8, "ORG") == d2.add_span("entities", TEXT, 4, 8, "ORG")
    # same value twice in one doc: still distinct ids
    assert d1.add_span("entities", TEXT, 4, 8, "ORG") != d1.items[0]["id"]


def _box(iid: str, x: float, label: str = "Button") -> dict:
    return {"id": iid, "from_name": "boxes", "to_name": "img", "type": "rectanglelabels", "original_width": 100,
            "original_height": 100, "value": {"x": x, "y": 10, "width": 20, "height": 20, "rotation": 0,
                                              "rectanglelabels": [label]}}


def test_compare_flags_differing_choices_and_unmatched_boxes() -> None:
    def choice(v: str) -> dict:
        return {"id": f"c{v}", "from_name": "category", "to_name": "ticket", "type": "choices",
                "value": {"choices": [v]}}

    a = Layer("a:1", "ann", (choice("Billing"), _box("b1", 10), _box("b2", 60)))
    b = Layer("a:2", "bob", (choice("Other"), _box("x1", 11), _box("x2", 60, "Dialog")))
    c = Layer("p:3", "model", (choice("Billing"), _box("y1", 10.5), _box("y2", 61)), prediction=True)
    cmp = compare(CONFIG, [a, b, c], "a:1")
    cat = cmp.controls["category"]
    assert not cat.agree and cat.differs == {"a:2"}
    boxes = cmp.controls["boxes"]
    assert boxes.unmatched["a:1"] == {"b2"}          # bob labelled it Dialog
    assert boxes.unmatched["a:2"] == {"x2"}
    assert boxes.unmatched["p:3"] == frozenset()
    assert cmp.unmatched("a:2") == {"x2"}
    same = compare(CONFIG, [a, Layer("a:9", "twin", a.result)], "a:1")
    assert all(d.agree for d in same.controls.values())


def test_regions_match_rotated_boxes_and_spans() -> None:
    r1, r2 = _box("1", 10), _box("2", 10)
    r2["value"]["rotation"] = 45
    assert regions_match(r1, _box("3", 12))
    assert not regions_match(r1, r2)  # rotated by 45° about the corner: IoU < 0.5
    s1 = {"type": "labels", "value": {"start": 1, "end": 5, "text": "abcd", "labels": ["ORG"]}}
    s2 = {"type": "labels", "value": {"start": 1, "end": 6, "text": "abcde", "labels": ["ORG"]}}
    assert regions_match(s1, s1) and not regions_match(s1, s2)
    a1 = {"type": "labels", "value": {"start": 1.0, "end": 2.0, "channel": 0, "labels": ["Speech"]}}
    a2 = {"type": "labels", "value": {"start": 1.1, "end": 2.0, "channel": 0, "labels": ["Speech"]}}
    assert regions_match(a1, a2)
