"""Models and data shared by the end-to-end tests."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import List, Optional

from pydantic import BaseModel


class Tier(str, Enum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class Location(BaseModel):
    city: str
    lat: float
    lon: Optional[float] = None


class Event(BaseModel):
    user_id: str
    category: str
    value: float
    count: int
    flag: bool
    at: datetime
    day: date
    note: Optional[str] = None
    tags: List[str]
    scores: List[Optional[int]]
    tier: Tier
    location: Location


BASE_TIME = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def make_events(n: int, seed: int = 7) -> List[Event]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        events.append(Event(
            user_id=f"u{i:05d}",
            category=rng.choice(["a", "b", "c", "d"]),
            value=round(rng.uniform(-100, 100), 3),
            count=rng.randint(-1000, 1000),
            flag=rng.random() < 0.3,
            at=BASE_TIME + timedelta(seconds=i, microseconds=i),
            day=date(2025, 1, 1) + timedelta(days=i % 60),
            note=None if i % 4 == 0 else f"note {i} ✓",
            tags=[f"t{j}" for j in range(i % 3)],
            scores=[None if (i + j) % 5 == 0 else j for j in range(i % 4)],
            tier=list(Tier)[i % 3],
            location=Location(city=rng.choice(["Oslo", "Lima", "Pune"]), lat=i / 10, lon=None if i % 7 == 0 else -i / 10),
        ))
    return events
