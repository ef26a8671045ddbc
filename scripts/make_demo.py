#!/usr/bin/env python3
"""Generate the bundled ReviewDesk demo project ("Support ticket triage").

Writes, deterministically (seeded numpy Generator, fixed dates, no clock):

    app/resources/demo/config.xml    Label Studio labeling config
    app/resources/demo/tasks.json    Label Studio JSON export (320 tasks, annotations, predictions)
    app/resources/demo/media/*.png   procedurally drawn app screenshots (240x160)
    app/resources/demo/media/*.wav   short mono voicemail clips (8 kHz, 16-bit)
    app/resources/demo/README.md     what the demo contains

Running it twice gives byte-identical files.

Usage:
    python scripts/make_demo.py            # regenerate app/resources/demo, then validate it
    python scripts/make_demo.py --check    # only validate the files on disk and print a summary
    python scripts/make_demo.py --out DIR  # write somewhere else (e.g. to compare two runs)

Only the standard library and numpy are used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import struct
import sys
import wave
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 20260311  # picked so the ground-truth sample shows the intended profiles clearly
N_TASKS = 320
N_IMAGES = 40
N_CLIPS = 24
GT_SHARE = 0.30
PROJECT_ID = 1
FIRST_TASK_ID = 1001
FIRST_ANNOTATION_ID = 5001
FIRST_PREDICTION_ID = 90001
START = dt.datetime(2026, 2, 2, 8, 0, 0)  # Monday; tasks arrive over six weeks
SPAN_DAYS = 42
LLM_BATCH = dt.datetime(2026, 3, 18, 2, 0, 0)  # the LLM model was run on all tasks in one batch
IMG_W, IMG_H = 240, 160
SAMPLE_RATE = 8000

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "app" / "resources" / "demo"

CATEGORIES = ["Billing", "Technical", "Account", "Shipping", "Other"]
ENTITY_LABELS = ["PRODUCT", "AMOUNT", "DATE", "ORG"]
BOX_LABELS = ["Error dialog", "Button", "Text field"]
SEGMENT_LABELS = ["Speech", "Noise"]

# --------------------------------------------------------------------------------------
# Labeling config
# --------------------------------------------------------------------------------------

CONFIG_XML = """\
<View>
  <Header value="Support ticket triage"/>
  <Text name="ticket" value="$text"/>
  <Labels name="entities" toName="ticket">
    <Label value="PRODUCT" hotkey="q" background="#1f77b4"/>
    <Label value="AMOUNT" hotkey="w" background="#2ca02c"/>
    <Label value="DATE" hotkey="e" background="#ff7f0e"/>
    <Label value="ORG" hotkey="r" background="#9467bd"/>
  </Labels>
  <Header value="Category"/>
  <Choices name="category" toName="ticket" choice="single" showInline="true" required="true">
    <Choice value="Billing" hotkey="1"/>
    <Choice value="Technical" hotkey="2"/>
    <Choice value="Account" hotkey="3"/>
    <Choice value="Shipping" hotkey="4"/>
    <Choice value="Other" hotkey="5"/>
  </Choices>
  <Header value="Urgency"/>
  <Rating name="urgency" toName="ticket" maxRating="5"/>
  <Header value="Screenshot attachment"/>
  <Image name="screenshot" value="$image" zoom="true"/>
  <RectangleLabels name="regions" toName="screenshot" strokeWidth="2">
    <Label value="Error dialog" hotkey="z" background="#d62728"/>
    <Label value="Button" hotkey="x" background="#17becf"/>
    <Label value="Text field" hotkey="c" background="#bcbd22"/>
  </RectangleLabels>
  <Header value="Voicemail"/>
  <Audio name="voicemail" value="$audio"/>
  <Labels name="segments" toName="voicemail">
    <Label value="Speech" hotkey="t" background="#8c564b"/>
    <Label value="Noise" hotkey="y" background="#7f7f7f"/>
  </Labels>
</View>
"""

# --------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------

LEAD = {"id": 1, "email": "lead@example.com", "first_name": "Sam", "last_name": "Whitfield"}


@dataclass(frozen=True)
class Annotator:
    id: int
    email: str
    first_name: str
    last_name: str
    coverage: float  # share of tasks this person annotates
    cat_err: tuple[float, float]  # category error rate in weeks 1-3, weeks 4-6
    other_skew: tuple[float, float]  # when wrong: share of errors that go to "Other"
    urg_err: tuple[float, float]  # urgency off-by-one rate
    urg_mid: float  # when wrong: share that collapses to 3 (low effort)
    span_miss: tuple[float, float]
    span_bound: tuple[float, float]
    span_label: float
    span_extra: float
    box_sd: tuple[float, float]  # jitter (percent of image size) per edge
    box_miss: tuple[float, float]
    box_label: float
    seg_sd: tuple[float, float]  # seconds
    seg_miss: float
    speed: tuple[float, float]  # median lead time (s) for an average task, early / late
    int_completed_by: float  # share of annotations exported with a bare int completed_by

    @property
    def member(self) -> dict:
        return {"id": self.id, "email": self.email, "first_name": self.first_name,
                "last_name": self.last_name}


ANNOTATORS = [
    # careful and slow
    Annotator(2, "priya.nair@example.com", "Priya", "Nair", coverage=0.86,
              cat_err=(0.07, 0.07), other_skew=(0.1, 0.1), urg_err=(0.08, 0.08), urg_mid=0.0,
              span_miss=(0.02, 0.02), span_bound=(0.05, 0.05), span_label=0.02, span_extra=0.01,
              box_sd=(0.4, 0.4), box_miss=(0.02, 0.02), box_label=0.01,
              seg_sd=(0.035, 0.035), seg_miss=0.02, speed=(105.0, 100.0), int_completed_by=0.15),
    # average
    Annotator(3, "tom.becker@example.com", "Tom", "Becker", coverage=0.90,
              cat_err=(0.14, 0.14), other_skew=(0.15, 0.15), urg_err=(0.16, 0.16), urg_mid=0.1,
              span_miss=(0.07, 0.07), span_bound=(0.13, 0.13), span_label=0.05, span_extra=0.03,
              box_sd=(0.8, 0.8), box_miss=(0.07, 0.07), box_label=0.04,
              seg_sd=(0.08, 0.08), seg_miss=0.05, speed=(70.0, 66.0), int_completed_by=0.25),
    # average, different habits (sloppier span boundaries, looser boxes)
    Annotator(4, "lena.okafor@example.com", "Lena", "Okafor", coverage=0.78,
              cat_err=(0.15, 0.15), other_skew=(0.1, 0.1), urg_err=(0.12, 0.12), urg_mid=0.0,
              span_miss=(0.05, 0.05), span_bound=(0.17, 0.17), span_label=0.04, span_extra=0.02,
              box_sd=(1.1, 1.1), box_miss=(0.05, 0.05), box_label=0.03,
              seg_sd=(0.07, 0.07), seg_miss=0.04, speed=(85.0, 80.0), int_completed_by=0.2),
    # drifts: good in weeks 1-3, then worse, faster and skewed to "Other"
    Annotator(5, "diego.santos@example.com", "Diego", "Santos", coverage=0.88,
              cat_err=(0.09, 0.32), other_skew=(0.3, 0.6), urg_err=(0.14, 0.30), urg_mid=0.6,
              span_miss=(0.06, 0.20), span_bound=(0.12, 0.22), span_label=0.06, span_extra=0.02,
              box_sd=(0.8, 1.7), box_miss=(0.06, 0.20), box_label=0.05,
              seg_sd=(0.08, 0.18), seg_miss=0.12, speed=(55.0, 30.0), int_completed_by=0.2),
]

# --------------------------------------------------------------------------------------
# Ticket texts
# --------------------------------------------------------------------------------------

# (category, base urgency, difficulty multiplier, confusable category, template)
# Slots: {PRODUCT}, {AMOUNT}, {DATE}, {ORG:pool} (a digit after the kind makes a second slot of the
# kind; after a colon: which ORG pool, or "past" for a DATE long before the ticket).
TEMPLATES: list[tuple[str, int, float, str | None, str]] = [
    ("Billing", 3, 0.5, None, "I was charged twice for my {PRODUCT} subscription this month and still have no reply to my emails."),
    ("Billing", 3, 0.8, None, "My card was billed {AMOUNT} on {DATE} but my plan is supposed to cost less. Please refund the difference."),
    ("Billing", 2, 0.8, "Account", "The invoice dated {DATE} shows {AMOUNT} for {PRODUCT}, which we cancelled last quarter."),
    ("Billing", 3, 1.6, "Technical", "{ORG:pay} declined my payment for {PRODUCT} even though the card works everywhere else."),
    ("Billing", 1, 0.6, "Other", "Can I get a VAT invoice for the {AMOUNT} I paid on {DATE}? Our finance team at {ORG:company} needs it."),
    ("Billing", 2, 0.7, "Account", "We upgraded to {PRODUCT} on {DATE} and were charged {AMOUNT} instead of the prorated amount."),
    ("Billing", 2, 0.9, "Other", "Why did my renewal price go up to {AMOUNT}? Nobody told me about a price change."),
    ("Billing", 4, 0.5, None, "I cancelled {PRODUCT} on {DATE} but you charged me {AMOUNT} again today."),
    ("Billing", 4, 2.2, "Account", "Our account at {ORG:company} is locked because of an unpaid invoice of {AMOUNT}, but we paid it on {DATE}."),
    ("Technical", 3, 0.4, None, "{PRODUCT} crashes with an error dialog every time I open the settings page."),
    ("Technical", 3, 0.6, None, "Since the update on {DATE}, {PRODUCT} no longer syncs with my phone."),
    ("Technical", 3, 0.5, None, "The {PRODUCT} app shows 'Error 503' when I try to upload files larger than 2 GB."),
    ("Technical", 2, 0.6, "Shipping", "After installing the latest firmware, my {PRODUCT} keeps disconnecting from Wi-Fi every few minutes."),
    ("Technical", 5, 0.7, "Account", "Our whole team at {ORG:company} cannot connect to {PRODUCT} since {DATE}. This is blocking our release."),
    ("Technical", 2, 0.6, None, "The export button in {PRODUCT} does nothing. I tried two browsers and cleared the cache."),
    ("Technical", 3, 2.4, "Billing", "The payment page freezes when I click Pay for {PRODUCT} and the spinner never stops."),
    ("Technical", 3, 2.2, "Account", "I can't log in to {PRODUCT}; the password reset link opens a blank page."),
    ("Technical", 2, 0.7, None, "{PRODUCT} has been extremely slow since {DATE}, pages take over a minute to load."),
    ("Account", 2, 0.8, None, "Please change the email address on my {PRODUCT} account; I no longer work at {ORG:company}."),
    ("Account", 4, 1.8, "Technical", "I'm locked out of my account after too many login attempts. Please unlock it."),
    ("Account", 1, 1.6, "Billing", "How do I add two colleagues from {ORG:company} to our {PRODUCT} team plan?"),
    ("Account", 2, 0.5, "Other", "Please delete my account and all my personal data as required by GDPR."),
    ("Account", 5, 0.5, None, "Someone changed my account password on {DATE} and it wasn't me."),
    ("Account", 2, 1.7, "Billing", "I want to transfer the {PRODUCT} licence from my personal account to my account at {ORG:company}."),
    ("Account", 4, 1.9, "Technical", "My two-factor codes stopped working after I changed phones on {DATE}."),
    ("Account", 1, 0.6, None, "Can you merge my two accounts? I accidentally signed up twice for {PRODUCT}."),
    ("Shipping", 3, 0.4, None, "My order of {PRODUCT} was supposed to arrive on {DATE} but the {ORG:carrier} tracking hasn't updated in a week."),
    ("Shipping", 3, 0.9, "Other", "The {PRODUCT} I received is damaged; the box was crushed by {ORG:carrier}."),
    ("Shipping", 3, 2.4, "Billing", "I paid {AMOUNT} for express shipping but the package arrived on {DATE}, four days late."),
    ("Shipping", 2, 0.6, None, "Can you change the delivery address for my {PRODUCT} order before it ships?"),
    ("Shipping", 4, 0.5, None, "{ORG:carrier} says the package was delivered on {DATE}, but nothing arrived."),
    ("Shipping", 3, 0.8, "Other", "I got the wrong item: I ordered {PRODUCT} but received a charging cable."),
    ("Shipping", 1, 2.0, "Billing", "How much does shipping to Canada cost for an order of {AMOUNT}?"),
    ("Shipping", 2, 1.3, "Billing", "I'd like to return the {PRODUCT} I bought on {DATE}. How do I get a return label?"),
    ("Other", 1, 1.9, "Billing", "Do you offer a discount for non-profits like {ORG:nonprofit}?"),
    ("Other", 1, 0.5, None, "Just wanted to say the new {PRODUCT} is great, thanks to the whole team!"),
    ("Other", 1, 2.0, "Technical", "Is {PRODUCT} compatible with devices from {ORG:brand}?"),
    ("Other", 1, 0.5, None, "Are you hiring support staff in Lisbon? I'd love to work with you."),
    ("Other", 1, 1.6, "Technical", "Where can I find the user manual for {PRODUCT} in Spanish?"),
    ("Other", 2, 1.5, "Account", "Please stop sending me marketing emails about {PRODUCT}."),
    ("Other", 1, 1.0, None, "We are {ORG:company} and would like to discuss a partnership around {PRODUCT}."),
]

PRODUCTS = ["Nimbus Pro", "CloudVault", "PixelPad 3", "SyncHub", "Orbit Router X2", "LumaCam",
            "TaskFlow Premium", "EchoBuds", "DataForge", "Helix Thermostat", "Quanta Keyboard",
            "StreamBox 4K", "Nimbus Basic", "CloudVault Teams"]
ORGS = {
    "pay": ["PayPal", "Visa", "Mastercard", "Brightwell Bank", "American Express", "Revolut"],
    "company": ["Globex", "Initech", "Northwind Traders", "Contoso Ltd", "Stark Analytics",
                "Umbrella Health", "Hooli", "Fabrikam"],
    "carrier": ["DHL", "FedEx", "UPS", "Royal Mail", "DPD", "Acme Logistics"],
    "nonprofit": ["Save the Rivers", "Open Food Trust", "Tidewater School", "Red Cross"],
    "brand": ["Samsung", "Apple", "Google", "Philips", "Xiaomi"],
}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
MONTH_ABBR = [m[:3] for m in MONTHS]

GREETINGS = ["", "", "", "Hi, ", "Hello, ", "Hi support, ", "Good morning, ", "Dear team, "]
FOLLOW_UPS = [
    ("", 0), ("", 0), ("", 0),
    (" My ticket number is #{num}.", 0),
    (" I have been a customer since {DATE2:past}.", 0),
    (" I already contacted you on {DATE2} about this.", 1),
    (" This is the third time I am writing.", 1),
]
CLOSINGS = [("", 0), ("", 0), (" Thanks.", 0), (" Thank you!", 0), (" Please advise.", 0),
            (" Please help ASAP.", 1), (" This is urgent!", 1), (" Kind regards", 0)]
LOWER_FIRST = {"My", "The", "Our", "Can", "Please", "Why", "How", "Since", "After", "Someone",
               "Do", "Is", "Are", "Where", "We", "Just"}


def pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def make_amount(rng: np.random.Generator) -> str:
    v = float(pick(rng, [9.99, 12.0, 14.99, 19.0, 29.99, 49.99, 59.0, 89.0, 120.0, 149.5, 249.0, 399.0]))
    style = int(rng.integers(5))
    if style == 0:
        return f"${v:.2f}"
    if style == 1:
        return f"€{v:.2f}"
    if style == 2:
        return f"£{v:g}"
    if style == 3:
        return f"USD {v:.2f}"
    return f"${v:g}"


def make_date(rng: np.random.Generator, base: dt.datetime) -> str:
    d = base - dt.timedelta(days=int(rng.integers(1, 40)))
    style = int(rng.integers(5))
    m = d.month - 1
    if style == 0:
        return f"{MONTHS[m]} {d.day}"
    if style == 1:
        return f"{d.day} {MONTHS[m]}"
    if style == 2:
        return d.strftime("%Y-%m-%d")
    if style == 3:
        suffix = "th" if 11 <= d.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
        return f"{MONTH_ABBR[m]} {d.day}{suffix}"
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


SLOT_RE = re.compile(r"\{(PRODUCT|AMOUNT|DATE|ORG)(\d?)(?::(\w+))?\}|\{num\}")


@dataclass
class Ticket:
    text: str
    category: str
    urgency: int
    difficulty: float
    confuse: str | None
    spans: list[tuple[int, int, str]]  # (start, end, label)


def make_ticket(rng: np.random.Generator, when: dt.datetime) -> Ticket:
    cat, urg, diff, confuse, tpl = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    greet = pick(rng, GREETINGS)
    follow, f_urg = FOLLOW_UPS[int(rng.integers(len(FOLLOW_UPS)))]
    close, c_urg = CLOSINGS[int(rng.integers(len(CLOSINGS)))]
    if close == " Kind regards":
        close = f" Kind regards, {pick(rng, ['Anna', 'Marek', 'Yusuf', 'Claire', 'Ben', 'Mei'])}."
    body = tpl
    if greet:
        first = body.split(" ", 1)[0]
        if first in LOWER_FIRST:
            body = body[0].lower() + body[1:]
    full = greet + body + follow + close
    values: dict[str, str] = {}
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    length = 0
    for m in SLOT_RE.finditer(full):
        out.append(full[pos:m.start()])
        length += m.start() - pos
        if m.group(0) == "{num}":
            val = str(int(rng.integers(10000, 99999)))
            label = None
        else:
            label = m.group(1)
            key = m.group(0)
            if key not in values:
                if label == "PRODUCT":
                    values[key] = pick(rng, PRODUCTS)
                elif label == "AMOUNT":
                    values[key] = make_amount(rng)
                elif label == "DATE" and m.group(3) == "past":
                    year = int(rng.integers(2015, 2025))
                    values[key] = pick(rng, [f"{pick(rng, MONTHS)} {year}", str(year)])
                elif label == "DATE":
                    values[key] = make_date(rng, when)
                else:
                    values[key] = pick(rng, ORGS[m.group(3)])
            val = values[key]
        if label is not None:
            spans.append((length, length + len(val), label))
        out.append(val)
        length += len(val)
        pos = m.end()
    out.append(full[pos:])
    text = "".join(out)
    text = text[0].upper() + text[1:]
    urgency = urg + f_urg + c_urg
    r = rng.random()
    if r < 0.08:
        urgency -= 1
    elif r < 0.16:
        urgency += 1
    urgency = int(min(5, max(1, urgency)))
    for s, e, _ in spans:
        assert text[s:e] in values.values(), (text, s, e)
    return Ticket(text, cat, urgency, diff, confuse, spans)


# --------------------------------------------------------------------------------------
# Screenshots (PNG via zlib + struct)
# --------------------------------------------------------------------------------------


def png_bytes(img: np.ndarray) -> bytes:
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def fill(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, color) -> None:
    img[y0:y1, x0:x1] = color


def frame(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, color, t: int = 1) -> None:
    img[y0:y0 + t, x0:x1] = color
    img[y1 - t:y1, x0:x1] = color
    img[y0:y1, x0:x0 + t] = color
    img[y0:y1, x1 - t:x1] = color


def text_bar(img, rng, x0, y0, max_w, color, h=3):
    """Draw 'words' as short dark bars, like unreadable text."""
    x = x0
    while x < x0 + max_w - 4:
        w = int(rng.integers(4, 12))
        if x + w > x0 + max_w:
            break
        fill(img, x, y0, x + w, y0 + h, color)
        x += w + 2


@dataclass
class Screen:
    name: str
    boxes: list[tuple[int, int, int, int, str]]  # pixel x0, y0, x1, y1 (exclusive), label
    png: bytes = b""


def make_screen(rng: np.random.Generator, idx: int) -> Screen:
    img = np.zeros((IMG_H, IMG_W, 3), dtype=np.uint8)
    desk = pick(rng, [(38, 92, 110), (70, 80, 96), (52, 110, 82), (94, 76, 120)])
    img[:, :] = desk
    boxes: list[tuple[int, int, int, int, str]] = []
    wx0, wy0 = int(rng.integers(4, 16)), int(rng.integers(4, 12))
    wx1, wy1 = IMG_W - int(rng.integers(4, 16)), IMG_H - int(rng.integers(4, 12))
    fill(img, wx0, wy0, wx1, wy1, (236, 236, 236))
    frame(img, wx0, wy0, wx1, wy1, (120, 120, 120))
    title = pick(rng, [(44, 86, 160), (60, 60, 70), (30, 120, 110)])
    fill(img, wx0, wy0, wx1, wy0 + 12, title)
    text_bar(img, rng, wx0 + 6, wy0 + 5, 60, (235, 235, 235))
    for k in range(3):  # window controls
        fill(img, wx1 - 10 - 8 * k, wy0 + 3, wx1 - 4 - 8 * k, wy0 + 9, (210, 210, 210))
    has_dialog = rng.random() < 0.6
    n_fields = int(rng.integers(1, 4))
    cy = wy0 + 20
    field_x = wx0 + 8 + 34
    for i in range(n_fields):
        y = cy + 22 * i
        text_bar(img, rng, wx0 + 8, y + 5, int(rng.integers(18, 30)), (70, 70, 70))
        w = int(rng.integers(40, 60)) if has_dialog else int(rng.integers(50, 90))
        fill(img, field_x, y, field_x + w, y + 13, (255, 255, 255))
        frame(img, field_x, y, field_x + w, y + 13, (150, 150, 150))
        if rng.random() < 0.6:
            text_bar(img, rng, field_x + 3, y + 5, w - 10, (90, 90, 90))
        boxes.append((field_x, y, field_x + w, y + 13, "Text field"))
    # bottom-right buttons
    n_buttons = int(rng.integers(1, 3))
    by0 = wy1 - 8 - 15
    bx1 = wx1 - 8
    for i in range(n_buttons):
        w = int(rng.integers(34, 48))
        primary = i == 0
        col = (47, 111, 214) if primary else (200, 200, 200)
        fill(img, bx1 - w, by0, bx1, by0 + 15, col)
        frame(img, bx1 - w, by0, bx1, by0 + 15, (40, 70, 140) if primary else (130, 130, 130))
        text_bar(img, rng, bx1 - w + 8, by0 + 6, w - 14, (255, 255, 255) if primary else (40, 40, 40))
        boxes.append((bx1 - w, by0, bx1, by0 + 15, "Button"))
        bx1 = bx1 - w - 6
    if has_dialog:
        left = field_x + 60 + 6
        dw, dh = int(rng.integers(76, 92)), int(rng.integers(46, 60))
        dx0 = int(rng.integers(left, max(left + 1, wx1 - 6 - dw)))
        dy_hi = by0 - 6 - dh
        dy0 = int(rng.integers(cy - 4, max(cy - 3, dy_hi)))
        dx1, dy1 = dx0 + dw, dy0 + dh
        fill(img, dx0 + 3, dy0 + 3, dx1 + 3, dy1 + 3, (150, 150, 150))  # shadow
        fill(img, dx0, dy0, dx1, dy1, (255, 255, 255))
        fill(img, dx0, dy0, dx1, dy0 + 11, (208, 52, 44))
        frame(img, dx0, dy0, dx1, dy1, (170, 30, 30), 2)
        text_bar(img, rng, dx0 + 5, dy0 + 4, 40, (255, 230, 230))
        fill(img, dx0 + 6, dy0 + 17, dx0 + 16, dy0 + 27, (208, 52, 44))  # warning icon
        fill(img, dx0 + 10, dy0 + 19, dx0 + 12, dy0 + 24, (255, 255, 255))
        text_bar(img, rng, dx0 + 20, dy0 + 18, dw - 26, (60, 60, 60))
        text_bar(img, rng, dx0 + 20, dy0 + 24, dw - 36, (60, 60, 60))
        ow = int(rng.integers(24, 32))
        ox1, oy1 = dx1 - 6, dy1 - 6
        fill(img, ox1 - ow, oy1 - 12, ox1, oy1, (47, 111, 214))
        frame(img, ox1 - ow, oy1 - 12, ox1, oy1, (40, 70, 140))
        text_bar(img, rng, ox1 - ow + 8, oy1 - 8, ow - 14, (255, 255, 255))
        boxes.append((dx0, dy0, dx1, dy1, "Error dialog"))
        boxes.append((ox1 - ow, oy1 - 12, ox1, oy1, "Button"))
    s = Screen(f"screen_{idx:02d}.png", boxes)
    s.png = png_bytes(img)
    return s


# --------------------------------------------------------------------------------------
# Voicemail clips (WAV via the wave module)
# --------------------------------------------------------------------------------------


@dataclass
class Clip:
    name: str
    duration: float
    segments: list[tuple[float, float, str]]
    wav: bytes = b""


def make_clip(rng: np.random.Generator, idx: int) -> Clip:
    while True:
        t = round(float(rng.uniform(0.1, 0.4)), 2)
        segs: list[tuple[float, float, str]] = []
        n = int(rng.integers(1, 4))
        kinds = ["Speech"] + [("Noise" if rng.random() < 0.45 else "Speech") for _ in range(n - 1)]
        order = rng.permutation(n)
        for k in order:
            kind = kinds[int(k)]
            length = float(rng.uniform(0.6, 1.4) if kind == "Speech" else rng.uniform(0.3, 0.8))
            s, e = round(t, 2), round(t + length, 2)
            segs.append((s, e, kind))
            t = e + float(rng.uniform(0.15, 0.4))
        dur = round(t + float(rng.uniform(0.0, 0.3)), 1)
        if 2.0 <= dur <= 4.0:
            break
        if dur < 2.0:
            dur = 2.0
            break
    n_samp = int(round(dur * SAMPLE_RATE))
    tt = np.arange(n_samp) / SAMPLE_RATE
    sig = rng.normal(0.0, 0.004, n_samp)  # line hiss
    for s, e, kind in segs:
        i0, i1 = int(s * SAMPLE_RATE), int(e * SAMPLE_RATE)
        seg_t = tt[i0:i1] - s
        if kind == "Speech":
            f0 = float(rng.uniform(110, 220))
            pitch = f0 * (1 + 0.06 * np.sin(2 * np.pi * float(rng.uniform(0.8, 2.0)) * seg_t))
            phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
            voiced = sum(np.sin(k * phase) / k for k in range(1, 7))
            rate = float(rng.uniform(3.0, 5.0))
            env = np.abs(np.sin(np.pi * rate * seg_t)) ** 0.6
            x = 0.28 * voiced * env
        else:
            white = rng.normal(0.0, 1.0, i1 - i0)
            kern = np.ones(4) / 4
            x = 0.25 * np.convolve(white, kern, mode="same")
        ramp = min(80, len(x) // 4)
        if ramp:
            win = np.ones(len(x))
            win[:ramp] = np.linspace(0, 1, ramp)
            win[-ramp:] = np.linspace(1, 0, ramp)
            x = x * win
        sig[i0:i1] += x
    pcm = np.clip(sig, -0.98, 0.98)
    data = (pcm * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(data)
    c = Clip(f"voicemail_{idx:02d}.wav", dur, segs)
    c.wav = buf.getvalue()
    return c


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def region_id(rng: np.random.Generator) -> str:
    return "".join(ID_ALPHABET[int(i)] for i in rng.integers(0, len(ID_ALPHABET), 10))


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def r_choice(rng, cat, origin="manual"):
    item = {"id": region_id(rng), "from_name": "category", "to_name": "ticket", "type": "choices",
            "value": {"choices": [cat]}}
    if origin:
        item["origin"] = origin
    return item


def r_rating(rng, val, origin="manual"):
    item = {"id": region_id(rng), "from_name": "urgency", "to_name": "ticket", "type": "rating",
            "value": {"rating": int(val)}}
    if origin:
        item["origin"] = origin
    return item


def r_span(rng, text, s, e, label, origin="manual", score=None):
    item = {"id": region_id(rng), "from_name": "entities", "to_name": "ticket", "type": "labels",
            "value": {"start": int(s), "end": int(e), "text": text[s:e], "labels": [label]}}
    if origin:
        item["origin"] = origin
    if score is not None:
        item["score"] = score
    return item


def r_box(rng, x0, y0, x1, y1, label, origin="manual", score=None):
    """x0..y1 in percent."""
    x0, x1 = sorted((min(100.0, max(0.0, x0)), min(100.0, max(0.0, x1))))
    y0, y1 = sorted((min(100.0, max(0.0, y0)), min(100.0, max(0.0, y1))))
    x, y = round(x0, 2), round(y0, 2)
    w = round(min(x1 - x0, 100.0 - x), 2)
    h = round(min(y1 - y0, 100.0 - y), 2)
    item = {"id": region_id(rng), "from_name": "regions", "to_name": "screenshot",
            "type": "rectanglelabels", "original_width": IMG_W, "original_height": IMG_H,
            "image_rotation": 0,
            "value": {"x": x, "y": y, "width": max(w, 0.5), "height": max(h, 0.5), "rotation": 0,
                      "rectanglelabels": [label]}}
    if item["value"]["x"] + item["value"]["width"] > 100:
        item["value"]["x"] = round(100 - item["value"]["width"], 2)
    if item["value"]["y"] + item["value"]["height"] > 100:
        item["value"]["y"] = round(100 - item["value"]["height"], 2)
    if origin:
        item["origin"] = origin
    if score is not None:
        item["score"] = score
    return item


def r_segment(rng, s, e, label, origin="manual", score=None):
    item = {"id": region_id(rng), "from_name": "segments", "to_name": "voicemail", "type": "labels",
            "value": {"start": round(float(s), 3), "end": round(float(e), 3), "channel": 0,
                      "labels": [label]}}
    if origin:
        item["origin"] = origin
    if score is not None:
        item["score"] = score
    return item


def truth_result(rng, ticket: Ticket, screen: Screen, clip: Clip) -> list[dict]:
    res = [r_choice(rng, ticket.category), r_rating(rng, ticket.urgency)]
    res += [r_span(rng, ticket.text, s, e, lab) for s, e, lab in ticket.spans]
    res += [r_box(rng, 100 * x0 / IMG_W, 100 * y0 / IMG_H, 100 * x1 / IMG_W, 100 * y1 / IMG_H, lab)
            for x0, y0, x1, y1, lab in screen.boxes]
    res += [r_segment(rng, s, e, lab) for s, e, lab in clip.segments]
    return res


WORD_RE = re.compile(r"\S+")


def shift_span(rng, text: str, s: int, e: int) -> tuple[int, int]:
    """A plausible boundary mistake: one word too many/few, a stray character."""
    for _ in range(6):
        op = int(rng.integers(5))
        ns, ne = s, e
        if op == 0:  # drag one word too far
            m = WORD_RE.search(text, e)
            if m and m.start() - e <= 1:
                ne = m.end()
        elif op == 1:  # include the preceding word ("the DHL", "on March 3")
            prev = text.rfind(" ", 0, max(0, s - 1))
            ns = prev + 1 if prev >= 0 else 0
        elif op == 2:  # drop the last word of a multi-word entity
            sp = text.rfind(" ", s, e)
            if sp > s:
                ne = sp
        elif op == 3:  # stray character at the end (punctuation or space)
            ne = min(len(text), e + 1)
        else:  # miss the first character ("$" or capital letter)
            ns = s + 1 if e - s > 2 else s
        if (ns, ne) != (s, e) and ne > ns:
            return ns, ne
    return s, e


def extra_span_candidates(text: str, spans) -> list[tuple[int, int]]:
    cands = []
    for m in re.finditer(r"\b[A-Z][A-Za-z0-9-]{2,}\b", text):
        if m.start() == 0 or m.group(0) in {"Hi", "Hello", "Dear", "Good", "Thanks", "Thank",
                                             "Please", "Kind", "This", "The", "How", "Why",
                                             "Can", "My", "Our"}:
            continue
        if any(not (m.end() <= s or m.start() >= e) for s, e, _ in spans):
            continue
        cands.append((m.start(), m.end()))
    return cands


def wrong_category(rng, ticket: Ticket, other_skew: float, towards: str | None = None,
                   towards_p: float = 0.0) -> str:
    if towards and towards != ticket.category and rng.random() < towards_p:
        return towards
    if ticket.category != "Other" and rng.random() < other_skew:
        return "Other"
    if ticket.confuse and rng.random() < 0.7:
        return ticket.confuse
    return pick(rng, [c for c in CATEGORIES if c != ticket.category])


def noisy_result(rng, ticket: Ticket, screen: Screen, clip: Clip, p: dict,
                 origin: str | None = "manual", scored: bool = False) -> tuple[list[dict], bool]:
    """Return (result, category_correct) for one evaluator with error profile p."""
    res = []
    # category: errors scale with how ambiguous the ticket is
    p_err = min(0.9, p["cat_err"] * ticket.difficulty)
    cat_ok = rng.random() >= p_err
    cat = ticket.category if cat_ok else wrong_category(rng, ticket, p["other_skew"], p.get("towards"),
                                                         p.get("towards_p", 0.0))
    res.append(r_choice(rng, cat, origin))
    # urgency: mostly exact, otherwise off by one (or collapsed to the middle)
    urg = ticket.urgency
    if rng.random() < p.get("urg_bias_p", 0.0):
        urg = min(5, urg + 1)
    elif rng.random() < p["urg_err"]:
        if rng.random() < p.get("urg_mid", 0.0) and urg != 3:
            urg = 3
        else:
            urg = urg + (1 if rng.random() < 0.5 else -1)
            if urg < 1 or urg > 5:
                urg = ticket.urgency - (urg - ticket.urgency)
    res.append(r_rating(rng, urg, origin))
    # entity spans
    text = ticket.text
    for s, e, lab in ticket.spans:
        miss = p["span_miss"] * (p.get("miss_by_label", {}).get(lab, 1.0))
        if rng.random() < miss:
            continue
        if rng.random() < p["span_bound"] * p.get("bound_by_label", {}).get(lab, 1.0):
            s, e = shift_span(rng, text, s, e)
        if rng.random() < p["span_label"]:
            lab = {"PRODUCT": "ORG", "ORG": "PRODUCT", "DATE": "AMOUNT", "AMOUNT": "DATE"}[lab]
        sc = round(float(rng.beta(8, 2)), 3) if scored else None
        res.append(r_span(rng, text, s, e, lab, origin, sc))
    if rng.random() < p["span_extra"]:
        cands = extra_span_candidates(text, ticket.spans)
        if cands:
            s, e = cands[int(rng.integers(len(cands)))]
            sc = round(float(rng.beta(3, 4)), 3) if scored else None
            res.append(r_span(rng, text, s, e, pick(rng, ["ORG", "PRODUCT"]), origin, sc))
    # rectangles: jitter each edge, sometimes miss, sometimes swap Button/Text field
    sd = p["box_sd"]
    for x0, y0, x1, y1, lab in screen.boxes:
        if rng.random() < p["box_miss"] * (0.3 if lab == "Error dialog" else 1.0):
            continue
        if lab != "Error dialog" and rng.random() < p["box_label"]:
            lab = "Text field" if lab == "Button" else "Button"
        j = rng.normal(0.0, sd, 4) + p.get("box_grow", 0.0) * np.array([-1, -1, 1, 1])
        sc = round(float(rng.beta(9, 2)), 3) if scored else None
        res.append(r_box(rng, 100 * x0 / IMG_W + j[0], 100 * y0 / IMG_H + j[1],
                         100 * x1 / IMG_W + j[2], 100 * y1 / IMG_H + j[3], lab, origin, sc))
    if rng.random() < p.get("box_extra", 0.0):
        bx, by = float(rng.uniform(5, 70)), float(rng.uniform(5, 75))
        sc = round(float(rng.beta(2, 5)), 3) if scored else None
        res.append(r_box(rng, bx, by, bx + float(rng.uniform(10, 25)), by + float(rng.uniform(6, 12)),
                         pick(rng, ["Button", "Text field"]), origin, sc))
    # audio segments
    for s, e, lab in clip.segments:
        if rng.random() < p["seg_miss"] * (p.get("noise_miss_mult", 1.0) if lab == "Noise" else 1.0):
            continue
        if lab == "Noise" and rng.random() < p.get("noise_as_speech", 0.0):
            lab = "Speech"
        ss = max(0.0, s + float(rng.normal(0.0, p["seg_sd"])))
        ee = min(clip.duration, e + float(rng.normal(0.0, p["seg_sd"])))
        if ee - ss < 0.1:
            ss, ee = s, e
        sc = round(float(rng.beta(8, 2)), 3) if scored else None
        res.append(r_segment(rng, ss, ee, lab, origin, sc))
    return res, cat_ok


def annotator_params(a: Annotator, late: bool) -> dict:
    k = 1 if late else 0
    return {"cat_err": a.cat_err[k], "other_skew": a.other_skew[k], "urg_err": a.urg_err[k],
            "urg_mid": a.urg_mid if late else a.urg_mid * 0.3,
            "span_miss": a.span_miss[k], "span_bound": a.span_bound[k], "span_label": a.span_label,
            "span_extra": a.span_extra, "box_sd": a.box_sd[k], "box_miss": a.box_miss[k],
            "box_label": a.box_label, "seg_sd": a.seg_sd[k], "seg_miss": a.seg_miss}


# Two model versions with different error profiles.
MODEL_CLF = {  # a fine-tuned multi-head classifier/detector: solid, misses ORGs, tight boxes
    "cat_err": 0.14, "other_skew": 0.05, "urg_err": 0.30, "urg_mid": 0.5,
    "span_miss": 0.06, "miss_by_label": {"ORG": 4.0, "AMOUNT": 0.2, "DATE": 0.3},
    "span_bound": 0.10, "bound_by_label": {"AMOUNT": 0.1, "DATE": 0.2, "PRODUCT": 2.5},
    "span_label": 0.03, "span_extra": 0.04,
    "box_sd": 0.6, "box_miss": 0.08, "box_label": 0.03, "box_extra": 0.05,
    "seg_sd": 0.06, "seg_miss": 0.05, "noise_miss_mult": 5.0,
}
MODEL_LLM = {  # a prompted multimodal LLM: over-calls Technical, inflates urgency, loose boxes
    "cat_err": 0.16, "other_skew": 0.0, "towards": "Technical", "towards_p": 0.55,
    "urg_err": 0.12, "urg_bias_p": 0.30,
    "span_miss": 0.04, "span_bound": 0.30, "bound_by_label": {"ORG": 0.3},
    "span_label": 0.06, "span_extra": 0.15,
    "box_sd": 1.8, "box_grow": 0.9, "box_miss": 0.12, "box_label": 0.12, "box_extra": 0.15,
    "seg_sd": 0.12, "seg_miss": 0.03, "noise_as_speech": 0.45,
}


# --------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------


def build(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    media = out / "media"
    media.mkdir(parents=True, exist_ok=True)
    for old in media.glob("*"):
        if old.suffix in {".png", ".wav"}:
            old.unlink()

    screens = [make_screen(rng, i + 1) for i in range(N_IMAGES)]
    clips = [make_clip(rng, i + 1) for i in range(N_CLIPS)]
    for s in screens:
        (media / s.name).write_bytes(s.png)
    for c in clips:
        (media / c.name).write_bytes(c.wav)
    (out / "config.xml").write_text(CONFIG_XML, encoding="utf-8")

    # tasks arrive over six weeks, in working hours, oldest first
    offs = np.sort(rng.uniform(0, SPAN_DAYS, N_TASKS))
    gt_idx = set(int(i) for i in rng.choice(N_TASKS, size=int(round(GT_SHARE * N_TASKS)), replace=False))

    tasks = []
    annotations = []  # (created, task_index, annotation dict) -> ids assigned chronologically
    hidden: dict[str, list[int]] = {}  # category agreement with the generating truth, all tasks
    for i in range(N_TASKS):
        day = int(offs[i])
        created = START + dt.timedelta(days=day, hours=float(rng.uniform(0, 10)),
                                       microseconds=int(rng.integers(0, 1_000_000)))
        ticket = make_ticket(rng, created)
        screen = screens[int(rng.integers(N_IMAGES))]
        clip = clips[int(rng.integers(N_CLIPS))]
        complexity = 0.6 + 0.08 * len(screen.boxes) + 0.06 * len(ticket.spans) + len(ticket.text) / 500
        task = {
            "id": FIRST_TASK_ID + i,
            "data": {"text": ticket.text, "image": f"media/{screen.name}", "audio": f"media/{clip.name}"},
            "meta": {},
            "created_at": iso(created),
            "updated_at": iso(created),
            "inner_id": i + 1,
            "project": PROJECT_ID,
            "file_upload": "support-tickets-2026Q1.json",
            "annotations": [],
            "predictions": [],
        }
        tasks.append((task, ticket, screen, clip))

        # annotators: uneven coverage, at least two per task
        present = [a for a in ANNOTATORS if rng.random() < a.coverage]
        while len(present) < 2:
            extra = ANNOTATORS[int(rng.integers(len(ANNOTATORS)))]
            if extra not in present:
                present.append(extra)
        present.sort(key=lambda a: a.id)
        last = created
        for a in present:
            ann_t = created + dt.timedelta(hours=float(rng.gamma(2.0, 9.0)),
                                           microseconds=int(rng.integers(0, 1_000_000)))
            late = (ann_t - START).days >= 21
            res, ok = noisy_result(rng, ticket, screen, clip, annotator_params(a, late))
            hidden.setdefault(a.email, []).append(int(ok))
            if a.cat_err[0] != a.cat_err[1]:
                hidden.setdefault(f"{a.email} w{'4-6' if late else '1-3'}", []).append(int(ok))
            lead = float(a.speed[1 if late else 0] * complexity * rng.lognormal(0.0, 0.35))
            updated = ann_t
            if rng.random() < 0.1:
                updated = ann_t + dt.timedelta(minutes=float(rng.uniform(2, 600)))
            cb = a.id if rng.random() < a.int_completed_by else a.member
            annotations.append((ann_t, i, {
                "id": None, "completed_by": cb, "result": res, "was_cancelled": False,
                "ground_truth": False, "created_at": iso(ann_t), "updated_at": iso(updated),
                "lead_time": round(lead, 3), "task": task["id"], "project": PROJECT_ID,
            }))
            last = max(last, updated)
        if i in gt_idx:
            gt_t = last + dt.timedelta(hours=float(rng.uniform(4, 60)),
                                       microseconds=int(rng.integers(0, 1_000_000)))
            lead = float(140 * complexity * rng.lognormal(0.0, 0.3))
            annotations.append((gt_t, i, {
                "id": None, "completed_by": dict(LEAD), "result": truth_result(rng, ticket, screen, clip),
                "was_cancelled": False, "ground_truth": True, "created_at": iso(gt_t),
                "updated_at": iso(gt_t), "lead_time": round(lead, 3), "task": task["id"],
                "project": PROJECT_ID,
            }))

        # predictions from two model versions
        for mv, prof, when in (
            ("triage-clf-v2", MODEL_CLF, created + dt.timedelta(seconds=float(rng.uniform(20, 300)))),
            ("triage-llm-v1", MODEL_LLM, LLM_BATCH + dt.timedelta(seconds=float(i * 7 + rng.uniform(0, 6)))),
        ):
            res, ok = noisy_result(rng, ticket, screen, clip, prof, origin=None, scored=True)
            hidden.setdefault(mv, []).append(int(ok))
            score = float(rng.beta(9, 2) if ok else rng.beta(4, 3))
            task["predictions"].append({
                "id": None, "model_version": mv, "score": round(score, 4), "result": res,
                "created_at": iso(when), "updated_at": iso(when), "task": task["id"],
                "project": PROJECT_ID,
            })

    annotations.sort(key=lambda x: (x[0], x[1]))
    for n, (_, i, ann) in enumerate(annotations):
        ann["id"] = FIRST_ANNOTATION_ID + n
        tasks[i][0]["annotations"].append(ann)
    pid = FIRST_PREDICTION_ID
    for task, *_ in tasks:
        task["annotations"].sort(key=lambda a: a["id"])
        for p in sorted(task["predictions"], key=lambda p: p["created_at"]):
            p["id"] = pid
            pid += 1
        stamps = [task["created_at"]] + [a["updated_at"] for a in task["annotations"]] + \
                 [p["updated_at"] for p in task["predictions"]]
        task["updated_at"] = max(stamps)
        task["total_annotations"] = len(task["annotations"])
        task["cancelled_annotations"] = 0
        task["total_predictions"] = len(task["predictions"])

    lines = [json.dumps(t, ensure_ascii=False, separators=(",", ":")) for t, *_ in tasks]
    (out / "tasks.json").write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    (out / "README.md").write_text(README, encoding="utf-8")
    print(f"wrote {out}")
    print("category agreement with the generating truth (all tasks):")
    for who, v in sorted(hidden.items()):
        print(f"  {who:32s} {100 * np.mean(v):5.1f} %  (n={len(v)})")


README = """\
# Demo project: Support ticket triage

A small, fully synthetic Label Studio project bundled with ReviewDesk (`reviewdesk --demo`).
Everything here is generated by `scripts/make_demo.py`; do not edit the files by hand.

## Files

| file | content |
|---|---|
| `config.xml` | Label Studio labeling config |
| `tasks.json` | Label Studio JSON export: 320 tasks with annotations and predictions (full objects), one task per line |
| `media/screen_NN.png` | 40 procedurally drawn 240x160 app screenshots (window, text fields, buttons, red error dialogs) |
| `media/voicemail_NN.wav` | 24 mono 8 kHz 16-bit clips of 2-4 s (harmonic tone bursts = speech, filtered noise = noise) |

`data.image` and `data.audio` are paths relative to the folder of `tasks.json`; tasks reuse media.

## Dimensions (controls)

| control | type | on object | values |
|---|---|---|---|
| `category` | Choices (single) | `ticket` (Text, `$text`) | Billing, Technical, Account, Shipping, Other (hotkeys 1-5) |
| `entities` | Labels | `ticket` | PRODUCT, AMOUNT, DATE, ORG (hotkeys q, w, e, r) — character offsets |
| `urgency` | Rating (`maxRating` 5) | `ticket` | 1-5 |
| `regions` | RectangleLabels | `screenshot` (Image, `$image`) | Error dialog, Button, Text field — percent of 240x160 |
| `segments` | Labels | `voicemail` (Audio, `$audio`) | Speech, Noise — seconds, channel 0 |

## Evaluators

| member id | who | profile |
|---|---|---|
| 1 | Sam Whitfield, `lead@example.com` (QA lead) | `ground_truth: true` annotation holding the true labels on 30 % of tasks |
| 2 | Priya Nair, `priya.nair@example.com` | careful and slow: ~92 % category agreement with the truth, tight boxes |
| 3 | Tom Becker, `tom.becker@example.com` | average (~80-85 %) |
| 4 | Lena Okafor, `lena.okafor@example.com` | average (~80-85 %), sloppier span boundaries and looser boxes |
| 5 | Diego Santos, `diego.santos@example.com` | drifts: good in weeks 1-3, then faster, skews to "Other", misses boxes and spans |
| model | `triage-clf-v2` | decent; misses ORG spans, clips product names, tight boxes, misses noise segments |
| model | `triage-llm-v1` | over-calls Technical, inflates urgency, loose boxes, calls noise speech, extra spans |

Each annotator covers 78-90 % of tasks (at least two annotators per task), so overlap is uneven.
Ambiguous tickets (e.g. a payment page that freezes: Technical or Billing?) draw more disagreement
than plain ones, and categories are harder to agree on than urgency. `completed_by` is an object
on most annotations and a bare member id on some, as in real exports. Tasks were created between
2 February and 15 March 2026; `triage-llm-v1` was run on all tasks on 18 March 2026.

## Regenerate and check

```
python scripts/make_demo.py          # rewrite app/resources/demo deterministically, then validate it
python scripts/make_demo.py --check  # validate only and print a summary
```

The script needs only Python 3.11+ and numpy; two runs give byte-identical files.
"""


# --------------------------------------------------------------------------------------
# Check
# --------------------------------------------------------------------------------------

EXPECTED_TYPE = {"Choices": "choices", "Labels": "labels", "RectangleLabels": "rectanglelabels",
                 "Rating": "rating"}
OBJECT_TAGS = {"Text", "Image", "Audio"}


def check(out: Path) -> int:
    errors: list[str] = []
    root = ET.parse(out / "config.xml").getroot()
    objects = {el.get("name"): el for el in root.iter() if el.tag in OBJECT_TAGS}
    controls = {el.get("name"): el for el in root.iter() if el.tag in EXPECTED_TYPE}
    options = {n: {c.get("value") for c in el if c.tag in ("Choice", "Label")} for n, el in controls.items()}
    for n, el in controls.items():
        if el.get("toName") not in objects:
            errors.append(f"config: control {n} points to unknown object {el.get('toName')}")
    max_rating = int(controls["urgency"].get("maxRating", "5"))

    tasks = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
    durations: dict[str, float] = {}
    sizes: dict[str, tuple[int, int]] = {}
    media_bytes = 0
    for f in sorted((out / "media").iterdir()):
        media_bytes += f.stat().st_size
        if f.suffix == ".wav":
            with wave.open(str(f), "rb") as w:
                durations["media/" + f.name] = w.getnframes() / w.getframerate()
        elif f.suffix == ".png":
            b = f.read_bytes()
            sizes["media/" + f.name] = struct.unpack(">II", b[16:24])

    per_member: dict[str, int] = {}
    cat_vs_gt: dict[str, list[int]] = {}
    drift: dict[str, list[int]] = {}
    models: dict[str, int] = {}
    n_gt = 0
    ann_ids, pred_ids, task_ids = set(), set(), set()
    names = {a.id: a.email for a in ANNOTATORS}
    names[LEAD["id"]] = LEAD["email"]

    def check_result(where: str, res: list, task: dict) -> None:
        text = task["data"]["text"]
        for it in res:
            fn, tn = it.get("from_name"), it.get("to_name")
            if fn not in controls:
                errors.append(f"{where}: unknown from_name {fn}")
                continue
            if tn not in objects or controls[fn].get("toName") != tn:
                errors.append(f"{where}: to_name {tn} does not match control {fn}")
            if it.get("type") != EXPECTED_TYPE[controls[fn].tag]:
                errors.append(f"{where}: type {it.get('type')} for {fn}")
            v = it["value"]
            if it["type"] == "choices":
                if not set(v["choices"]) <= options[fn]:
                    errors.append(f"{where}: bad choice {v['choices']}")
            elif it["type"] == "rating":
                if not 1 <= v["rating"] <= max_rating:
                    errors.append(f"{where}: rating {v['rating']}")
            elif it["type"] == "labels" and tn == "ticket":
                if not (0 <= v["start"] < v["end"] <= len(text)) or text[v["start"]:v["end"]] != v["text"]:
                    errors.append(f"{where}: span text mismatch {v}")
                if not set(v["labels"]) <= options[fn]:
                    errors.append(f"{where}: bad label {v['labels']}")
            elif it["type"] == "labels":
                dur = durations.get(task["data"]["audio"], 0.0)
                if not (0 <= v["start"] < v["end"] <= dur + 1e-6) or v.get("channel") != 0:
                    errors.append(f"{where}: audio segment out of range {v}")
                if not set(v["labels"]) <= options[fn]:
                    errors.append(f"{where}: bad label {v['labels']}")
            elif it["type"] == "rectanglelabels":
                x, y, w, h = v["x"], v["y"], v["width"], v["height"]
                if not (0 <= x <= 100 and 0 <= y <= 100 and 0 < w <= 100 and 0 < h <= 100
                        and x + w <= 100.0001 and y + h <= 100.0001):
                    errors.append(f"{where}: rectangle out of range {v}")
                if (it.get("original_width"), it.get("original_height")) != sizes.get(task["data"]["image"]):
                    errors.append(f"{where}: original size does not match the image")
                if not set(v["rectanglelabels"]) <= options[fn]:
                    errors.append(f"{where}: bad label {v['rectanglelabels']}")

    for ti, task in enumerate(tasks):
        where = f"task[{ti}] id={task.get('id')}"
        if task["id"] in task_ids:
            errors.append(f"{where}: duplicate task id")
        task_ids.add(task["id"])
        for key in ("image", "audio"):
            if not (out / task["data"][key]).is_file():
                errors.append(f"{where}: missing media {task['data'][key]}")
        gt = [a for a in task["annotations"] if a["ground_truth"]]
        n_gt += bool(gt)
        gt_cat = None
        if gt:
            gt_cat = next(it["value"]["choices"][0] for it in gt[0]["result"] if it["from_name"] == "category")
        for a in task["annotations"]:
            if a["id"] in ann_ids:
                errors.append(f"{where}: duplicate annotation id {a['id']}")
            ann_ids.add(a["id"])
            if a["task"] != task["id"]:
                errors.append(f"{where}: annotation {a['id']} task field mismatch")
            cb = a["completed_by"]
            mid = cb["id"] if isinstance(cb, dict) else cb
            who = names.get(mid, str(mid))
            per_member[who] = per_member.get(who, 0) + 1
            check_result(f"{where} annotation {a['id']}", a["result"], task)
            if gt_cat is not None and not a["ground_truth"]:
                cat = next(it["value"]["choices"][0] for it in a["result"] if it["from_name"] == "category")
                cat_vs_gt.setdefault(who, []).append(int(cat == gt_cat))
                week = (dt.datetime.strptime(a["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ") - START).days // 7
                drift.setdefault(f"{who} w{'1-3' if week < 3 else '4-6'}", []).append(int(cat == gt_cat))
        for p in task["predictions"]:
            if p["id"] in pred_ids:
                errors.append(f"{where}: duplicate prediction id {p['id']}")
            pred_ids.add(p["id"])
            models[p["model_version"]] = models.get(p["model_version"], 0) + 1
            if not 0 <= p["score"] <= 1:
                errors.append(f"{where}: prediction score {p['score']}")
            check_result(f"{where} prediction {p['id']}", p["result"], task)
            if gt_cat is not None:
                cat = next(it["value"]["choices"][0] for it in p["result"] if it["from_name"] == "category")
                cat_vs_gt.setdefault(p["model_version"], []).append(int(cat == gt_cat))

    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"tasks: {len(tasks)}   annotations: {len(ann_ids)}   predictions: {len(pred_ids)}")
    print(f"ground truth on {n_gt} tasks ({100 * n_gt / len(tasks):.1f} %)")
    print("annotations per member:")
    for who, n in sorted(per_member.items()):
        print(f"  {who:32s} {n}")
    print("predictions per model version: " + ", ".join(f"{k} {v}" for k, v in sorted(models.items())))
    print("category agreement with ground truth (tasks with ground truth):")
    for who, v in sorted(cat_vs_gt.items()):
        print(f"  {who:32s} {100 * np.mean(v):5.1f} %  (n={len(v)})")
    for who, v in sorted(drift.items()):
        if who.startswith("diego"):
            print(f"  {who:32s} {100 * np.mean(v):5.1f} %  (n={len(v)})")
    print(f"media: {len(sizes)} PNG + {len(durations)} WAV = {media_bytes / 1e6:.2f} MB; "
          f"app/resources/demo total {total / 1e6:.2f} MB")
    if errors:
        print(f"{len(errors)} problem(s):", file=sys.stderr)
        for e in errors[:50]:
            print("  " + e, file=sys.stderr)
        return 1
    print("check: OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only validate the files and print a summary")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default app/resources/demo)")
    args = ap.parse_args(argv)
    if not args.check:
        build(args.out)
    return check(args.out)


if __name__ == "__main__":
    sys.exit(main())
