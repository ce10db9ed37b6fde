"""The shop the agent's tools read: a catalog, orders and policies, seeded data shipped with the
service (agent/data/shop.json), loaded once and read-only."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

SIZES = ("XS", "S", "M", "L", "XL", "XXL", "ONE SIZE")
_WORD = re.compile(r"[a-z0-9]+")
_PLURAL = re.compile(r"(?<=[a-z])s$")


def _words(text: str) -> set[str]:
    """Lower-case words without a plural s, and hyphenated words joined (t-shirt -> tshirt)."""
    lowered = text.lower()
    found = set(_WORD.findall(lowered)) | {w.replace("-", "") for w in lowered.split()}
    return {_PLURAL.sub("", w) for w in found if w}


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    kind: str
    colour: str
    aliases: tuple[str, ...]
    price: float
    material: str
    stock: Mapping[str, int]

    def keywords(self) -> set[str]:
        return _words(" ".join((self.name, self.kind, self.colour, *self.aliases)))

    def brief(self, currency: str) -> dict:
        return {
            "product_id": self.id,
            "name": self.name,
            "colour": self.colour,
            "price": f"{self.price:.2f} {currency}",
            "sizes_in_stock": [size for size, count in self.stock.items() if count > 0],
        }


@dataclass(frozen=True)
class Shop:
    name: str
    currency: str
    products: tuple[Product, ...]
    orders: Mapping[str, Mapping]
    policies: Mapping[str, str]

    def find_products(self, query: str, limit: int = 5) -> list[Product]:
        """Products whose name, kind, colour or aliases contain every word of the query that
        names something in the catalog (so "the Splunk t-shirt please" finds the Splunk one),
        best first; a product id matches exactly."""
        wanted = query.strip().upper()
        exact = [p for p in self.products if p.id == wanted]
        if exact:
            return exact
        words = _words(query)
        vocabulary = set().union(*(p.keywords() for p in self.products))
        known = words & vocabulary
        if not known:
            return []
        matches = [p for p in self.products if known <= p.keywords()]
        if not matches:  # no product has all of them: the ones with the most
            scored = [(len(known & p.keywords()), p) for p in self.products]
            best = max(score for score, _ in scored)
            matches = [p for score, p in scored if score == best]
        return matches[:limit]

    def order(self, order_id: str) -> Mapping | None:
        """An order by its number: "1042", "#1042" and "A-1042" are the same order."""
        digits = re.sub(r"\D", "", order_id)
        return self.orders.get(digits) if digits else None


def parse_shop(data: Mapping) -> Shop:
    products = tuple(
        Product(
            id=p["id"],
            name=p["name"],
            kind=p["kind"],
            colour=p["colour"],
            aliases=tuple(p["aliases"]),
            price=float(p["price"]),
            material=p["material"],
            stock={size: int(count) for size, count in p["stock"].items()},
        )
        for p in data["products"]
    )
    for product in products:
        unknown = set(product.stock) - set(SIZES)
        if unknown:
            raise ValueError(f"product {product.id}: unknown sizes {sorted(unknown)}")
    return Shop(
        name=data["shop"],
        currency=data["currency"],
        products=products,
        orders={o["id"]: o for o in data["orders"]},
        policies=dict(data["policies"]),
    )


@cache
def load_shop() -> Shop:
    text = resources.files("assistant.agent").joinpath("data/shop.json").read_text("utf-8")
    return parse_shop(json.loads(text))
