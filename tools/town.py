#!/usr/bin/env python3
"""Writes NDJSON files of a synthetic town for `tournee-server import`: delivery points,
customers, items (valid S10 numbers), devices and today's rounds.

    python3 tools/town.py OUT_DIR --points 1000 --items-per-point 2 --postmen 4 [--date YYYY-MM-DD]

Load them in this order: delivery-points, customers, items, devices, rounds (each kind refers to
the ones before it). Used by the README's walk-through and by BENCHMARKS.md's import figures.
"""
import argparse
import datetime
import json
import os

STREETS = ["RUE DES LILAS", "AVENUE DU PORT", "RUE VICTOR HUGO", "PLACE DE LA MAIRIE", "CHEMIN DES VIGNES"]


def s10(serial: int) -> str:
    digits = f"{serial % 100_000_000:08d}"
    total = sum(int(d) * w for d, w in zip(digits, [8, 6, 4, 2, 3, 5, 9, 7]))
    check = 11 - total % 11
    check = 0 if check == 10 else 5 if check == 11 else check
    return f"RR{digits}{check}FR"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--items-per-point", type=int, default=2)
    parser.add_argument("--postmen", type=int, default=4)
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    parser.add_argument("--prefix", default="town")
    parser.add_argument("--first-item", type=int, default=10_000_000, help="the first item's S10 serial (towns loaded into one database need their own ranges)")
    a = parser.parse_args()
    os.makedirs(a.out, exist_ok=True)

    def path(kind: str) -> str:
        return os.path.join(a.out, f"{kind}.ndjson")

    def point_id(p: int) -> str:
        return f"dp-{a.prefix}-{p:07d}"

    with open(path("delivery-points"), "w") as f:
        for p in range(a.points):
            number = 1 + p % 180
            street = STREETS[p // 180 % len(STREETS)]
            f.write(json.dumps({
                "id": point_id(p),
                "lines": [f"M OU MME HABITANT {p}", f"{number} {street}", "33000 BORDEAUX"],
                "house_number": str(number),
                "street": street,
                "postcode": "33000",
                "city": "BORDEAUX",
                "pin": {"lat": round(44.83 + (p % 300) * 0.0001, 6), "lon": round(-0.60 + (p // 300 % 300) * 0.0001, 6)},
                "access": {"door_code": f"{p % 10000:04d}A"},
            }) + "\n")
    with open(path("customers"), "w") as f:
        for p in range(0, a.points, 2):
            f.write(json.dumps({
                "id": f"cust-{a.prefix}-{p:07d}",
                "display_name": f"Habitant {p}",
                "contacts": [{"channel": "email", "address": f"habitant{p}@example.org", "consent": p % 3 != 0}],
                "delivery_points": [point_id(p)],
            }) + "\n")
    with open(path("items"), "w") as f:
        for p in range(a.points):
            for i in range(a.items_per_point):
                n = p * a.items_per_point + i
                f.write(json.dumps({
                    "s10": s10(a.first_item + n),
                    "delivery_point": point_id(p),
                    "requirements": {"signature": n % 5 == 0, "id_check": False, "age_check": False, "cash_on_delivery_cents": None},
                    "sender": "LIBRAIRIE MOLLAT",
                    "arrived_at": f"{a.date}T06:30:00+01:00",
                }) + "\n")
    with open(path("devices"), "w") as f:
        for m in range(a.postmen):
            f.write(json.dumps({"id": f"dev-{a.prefix}-{m}", "postman": f"pm-{a.prefix}-{m}"}) + "\n")
    per_round = max(1, a.points // max(1, a.postmen))
    with open(path("rounds"), "w") as f:
        for m in range(a.postmen):
            first, last = m * per_round, min(a.points, (m + 1) * per_round)
            if first >= last:
                break
            f.write(json.dumps({
                "id": f"round-{a.prefix}-{a.date}-{m}",
                "date": a.date,
                "office": f"cdis-{a.prefix}",
                "postman": f"pm-{a.prefix}-{m}",
                "devices": [f"dev-{a.prefix}-{m}"],
                "stops": [
                    {"delivery_point": point_id(p), "items": [s10(a.first_item + p * a.items_per_point + i) for i in range(a.items_per_point)]}
                    for p in range(first, last)
                ],
            }) + "\n")


if __name__ == "__main__":
    main()
