"""Synthetic shops for the benchmarks: realistic order records, seeded and reproducible.

``generate_orders(n, seed=..., now=...)`` returns ``n`` order records in the rules contract's (docs/RULES.md) shape (plain
dicts, as a shop would write them to DynamoDB or JSON Lines), sorted by ``created_at``:

- buyers: about ``n / 3``; orders per buyer follow a truncated Zipf law (most buyers order once or
  twice, a few order dozens of times), and a buyer's orders cluster into same-day sessions;
- status: about 70 % paid, 27 % unpaid, 3 % closed;
- about 5 % from the distribution channel, 5 % cash on delivery, 1-2 % blocked / low-credit
  buyers, about 1.5 % large orders (amount >= 1000);
- phones: Chinese mobiles (E.164 mostly, some national or spaced), about 10 % US buyers (+1), and
  about 1 % of buyers with a number that is not a valid phone number (the record itself is fine);
- ``created_at`` spread over the 72 h before ``now``, written with the shop's +08:00 offset mostly,
  else UTC (``+00:00`` / ``Z``) or -05:00; ``amount`` as a string, an int or a float;
- about 30 % carry a ``closes_at`` (24 h or 48 h after creation, some already past).

Only ``random.Random(seed)`` is used, never a set's iteration order or the wall clock: the same
``(n, seed, now)`` always gives the same list.
"""

from __future__ import annotations

import bisect
import itertools
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["SHARES", "generate_orders", "is_deliberately_invalid_phone", "orders_per_buyer_weights"]

# The target shares the generator draws with (tests check the output against them).
SHARES = {
    "paid": 0.70,
    "closed": 0.03,  # the rest is unpaid
    "distribution": 0.05,
    "cod": 0.05,
    "large": 0.01,  # drawn on purpose; the amount distribution adds a few more >= 1000
    "blocked": 0.01,  # of buyers
    "low_credit": 0.01,  # of buyers
    "us": 0.10,  # of buyers
    "invalid_phone": 0.01,  # of buyers
    "closes_at": 0.30,
    "same_session": 0.55,  # a buyer's next order follows the previous one within hours
}
ORDERS_PER_BUYER_TARGET = 3.0
MAX_ORDERS_PER_BUYER = 40
SPAN = timedelta(hours=72)

SHOP_TZ = timezone(timedelta(hours=8))
US_EAST = timezone(timedelta(hours=-5))

CN_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "166", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "198", "199",
)  # fmt: skip
# Area codes across the US zones (Eastern ... Hawaii): the buyer's night differs per zone.
US_AREA_CODES = (212, 305, 404, 617, 718, 312, 512, 713, 303, 480, 206, 213, 415, 503, 619, 702, 907, 808)

# Numbers a shop may really hold that are not valid phone numbers (they parse as records).
_INVALID_PHONE_FORMS = (
    lambda r: "+86" + r.choice(CN_MOBILE_PREFIXES) + _digits(r, 5),  # too short
    lambda r: r.choice(CN_MOBILE_PREFIXES) + _digits(r, 7),  # national, a digit missing
    lambda r: "+86" + r.choice(CN_MOBILE_PREFIXES) + _digits(r, 11),  # too long
    lambda r: "+1555" + _digits(r, 7),  # no such US area code
    lambda r: _digits(r, 5),  # a placeholder typed into the form
    lambda r: "000-0000-0000",
)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = (
    "芳",
    "伟",
    "娜",
    "敏",
    "静",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "婷",
    "雪",
    "晨",
    "浩",
    "欣怡",
    "子涵",
    "一鸣",
)
_EN_FIRST = (
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Mia",
    "Lucas",
    "Amelia",
    "James",
    "Grace",
    "Wei",
    "Ming",
)
_EN_LAST = ("Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Chen", "Wang", "Lee", "Nguyen")
_ITEMS = (
    "羊毛围巾 燕麦色",
    "手冲咖啡滤纸 100张",
    "保温杯 黑色 500ml",
    "帆布袋",
    "无线蓝牙耳机 降噪版",
    "纯棉四件套 1.8米床 灰蓝",
    "儿童绘本套装（全10册）",
    "有机红枣 500g*2袋",
    "机械键盘 87键 茶轴",
    "防晒霜 SPF50+ 50ml",
    "瑜伽垫 加厚 10mm 防滑",
    "陶瓷马克杯 手绘款",
    # long titles: the SMS renderer must trim them to the segment cap
    "【官方旗舰】2026新款冬季加厚羽绒服女中长款过膝连帽大毛领韩版宽松白鸭绒外套 雾霾蓝 L码",
    "Stainless steel pour-over coffee kettle, 1.2 L, gooseneck spout, with thermometer",
)


def _digits(r: random.Random, k: int) -> str:
    return "".join(r.choice("0123456789") for _ in range(k))


def orders_per_buyer_weights(
    target_mean: float = ORDERS_PER_BUYER_TARGET, k_max: int = MAX_ORDERS_PER_BUYER
) -> list[float]:
    """Cumulative weights of a Zipf law P(k) ~ k^-s on 1..k_max, with s chosen so the mean is
    ``target_mean`` (bisection; the mean falls as s grows)."""
    ks = range(1, k_max + 1)

    def mean(s: float) -> float:
        w = [k**-s for k in ks]
        return sum(k * x for k, x in zip(ks, w, strict=True)) / sum(w)

    lo, hi = 0.5, 4.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean(mid) > target_mean else (lo, mid)
    return list(itertools.accumulate(k**-lo for k in ks))


def is_deliberately_invalid_phone(phone: str) -> bool:
    """True for the numbers ``_INVALID_PHONE_FORMS`` makes (the tests check phonenumbers agrees)."""
    compact = ("+" if phone.startswith("+") else "") + "".join(ch for ch in phone if ch.isdigit())
    if compact.startswith("+86"):
        return len(compact) != 14
    if compact.startswith("+1"):
        return compact.startswith("+1555")
    return len(compact) != 11 or set(compact) == {"0"}


def _phone(r: random.Random, us: bool) -> str:
    if us:
        number = f"+1{r.choice(US_AREA_CODES)}{r.randint(2, 9)}{_digits(r, 2)}{_digits(r, 4)}"
        return number if r.random() < 0.9 else f"+1 ({number[2:5]}) {number[5:8]}-{number[8:]}"
    prefix, rest = r.choice(CN_MOBILE_PREFIXES), _digits(r, 8)
    form = r.random()
    if form < 0.80:
        return f"+86{prefix}{rest}"
    if form < 0.95:
        return f"{prefix}{rest}"  # national: read with the shop's default region CN
    return f"+86 {prefix} {rest[:4]} {rest[4:]}"


def _name(r: random.Random, us: bool) -> str | None:
    if r.random() < 0.15:
        return None
    if us:
        return f"{r.choice(_EN_FIRST)} {r.choice(_EN_LAST)}"
    return r.choice(_SURNAMES) + r.choice(_GIVEN)


def _iso(instant: datetime, r: random.Random) -> str:
    """The instant as a shop would write it: mostly +08:00, sometimes UTC or US Eastern."""
    x = r.random()
    if x < 0.85:
        return instant.astimezone(SHOP_TZ).isoformat(timespec="seconds")
    if x < 0.95:
        return instant.astimezone(UTC).isoformat(timespec="seconds")
    if x < 0.98:
        return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return instant.astimezone(US_EAST).isoformat(timespec="seconds")


def _amount(r: random.Random) -> Any:
    if r.random() < SHARES["large"]:
        value = round(r.uniform(1000, 6000), 2)
    else:
        value = round(min(r.lognormvariate(4.6, 0.75), 20000.0), 2)  # median ~100
    form = r.random()
    if form < 0.60:
        return f"{value:.2f}"
    if form < 0.80:
        return round(value)
    return value  # a float, as JSON numbers are read


def generate_orders(n: int, *, seed: int, now: datetime) -> list[dict[str, Any]]:
    """``n`` order records of one shop, created in the 72 h before ``now`` (see the module doc)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    r = random.Random(seed)
    cum = orders_per_buyer_weights()
    total_weight = cum[-1]
    now = now.astimezone(UTC).replace(microsecond=0)
    span_s = int(SPAN.total_seconds()) - 60  # stay clear of the 72 h expiry boundary

    drafts: list[tuple[datetime, int, dict[str, Any]]] = []
    buyer_no = 0
    while len(drafts) < n:
        buyer_no += 1
        count = min(bisect.bisect_left(cum, r.random() * total_weight) + 1, n - len(drafts))
        us = r.random() < SHARES["us"]
        phone = r.choice(_INVALID_PHONE_FORMS)(r) if r.random() < SHARES["invalid_phone"] else _phone(r, us)
        flags: list[str] = []
        if r.random() < SHARES["blocked"]:
            flags.append("blocked")
        if r.random() < SHARES["low_credit"]:
            flags.append("low_credit")
        if r.random() < 0.03:
            flags.append("vip")  # a flag the rules ignore
        buyer = {"buyer_id": f"b{buyer_no:06d}", "phone": phone, "name": _name(r, us), "flags": flags}

        earliest = now - timedelta(seconds=span_s)
        created = now - timedelta(seconds=r.randint(1, span_s))
        for _ in range(count):
            drafts.append((created, len(drafts), _order(r, buyer, created, now)))
            following = None
            if r.random() < SHARES["same_session"]:
                # the next order follows within minutes to a few hours (mostly the same day)
                step = timedelta(seconds=r.randint(120, 4 * 3600))
                following = created + step if r.random() < 0.7 else created - step
            if following is None or not earliest <= following < now:
                following = now - timedelta(seconds=r.randint(1, span_s))
            created = following

    drafts.sort(key=lambda d: (d[0], d[1]))
    out = []
    for number, (_, _, record) in enumerate(drafts, start=1):
        order_id = f"o{number:07d}"
        record = {"order_id": order_id, **record}
        if "pay_url" in record:
            record["pay_url"] = f"https://shop.example/p/{order_id}"
        out.append(record)
    return out


def _order(r: random.Random, buyer: dict[str, Any], created: datetime, now: datetime) -> dict[str, Any]:
    x = r.random()
    status = "paid" if x < SHARES["paid"] else "closed" if x < SHARES["paid"] + SHARES["closed"] else "unpaid"
    rec: dict[str, Any] = {
        "buyer_id": buyer["buyer_id"],
        "phone": buyer["phone"],
        "status": status,
        "created_at": _iso(created, r),
        "amount": _amount(r),
    }
    if status == "paid":
        rec["paid_at"] = _iso(min(created + timedelta(seconds=r.randint(30, 1800)), now), r)
    if r.random() < SHARES["closes_at"]:
        rec["closes_at"] = _iso(created + timedelta(hours=r.choice((24, 48))), r)
    if r.random() < 0.05:
        rec["currency"] = "CNY"
    c = r.random()
    if c < SHARES["distribution"]:
        rec["channel"] = "distribution"
    elif c < 0.20:
        rec["channel"] = "mini_program"
    elif c < 0.50:
        rec["channel"] = "direct"
    p = r.random()
    if p < SHARES["cod"]:
        rec["payment_method"] = "cod"
    elif p < 0.50:
        rec["payment_method"] = "online"
    if buyer["flags"]:
        rec["buyer_flags"] = list(buyer["flags"])
    if buyer["name"]:
        rec["buyer_name"] = buyer["name"]
    if r.random() < 0.9:
        rec["item_title"] = r.choice(_ITEMS)
    if r.random() < 0.8:
        rec["pay_url"] = ""  # filled in with the order id once ids are assigned
    return rec
