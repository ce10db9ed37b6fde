"""The agent's function tools: their OpenAI definitions, argument validation against the schemas
(jsonschema), and their execution on the shop (read-only).

A tool never raises: bad JSON, arguments that break the schema, an unknown tool, or an injected
fault (agent/faults.py) become a `ToolResult` with an `error_type`, whose content is sent back to
the model as the tool message (so the model can correct itself or explain), never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from jsonschema import Draft202012Validator

from assistant.agent.shop import SIZES, Shop

ERROR_INVALID_JSON = "invalid_json"
ERROR_INVALID_ARGUMENTS = "invalid_arguments"
ERROR_UNKNOWN_TOOL = "unknown_tool"
RESULT_MAX_CHARS = 4000  # what one tool message may carry to the model

POLICY_TOPICS = ("shipping", "returns", "refunds", "sizing", "warranty", "privacy")
DEFINITIONS: tuple[dict, ...] = (
    {
        "name": "search_products",
        "description": "Search the shop's product catalog by name, kind or colour; returns the "
        "matching products with their prices and the sizes in stock.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 80},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
    {
        "name": "check_inventory",
        "description": "Stock of a product in the shop's inventory, for one size or all sizes.",
        "parameters": {
            "type": "object",
            "properties": {
                "product": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 80,
                    "description": "Product name, kind (t-shirt, hoodie) or product id.",
                },
                "size": {"type": "string", "enum": list(SIZES)},
            },
            "required": ["product"],
            "additionalProperties": False,
        },
    },
    {
        "name": "get_order_status",
        "description": "Status, items and tracking of a shop order by its order number.",
        "parameters": {
            "type": "object",
            "properties": {
                "order_id": {
                    "type": "string",
                    "pattern": "^#?[A-Za-z]{0,3}-?[0-9]{3,12}$",
                    "description": "The order number, for example 1042.",
                },
            },
            "required": ["order_id"],
            "additionalProperties": False,
        },
    },
    {
        "name": "get_policy",
        "description": "The shop's policy text on shipping, returns, refunds, sizing, warranty "
        "or privacy.",
        "parameters": {
            "type": "object",
            "properties": {"topic": {"type": "string", "enum": list(POLICY_TOPICS)}},
            "required": ["topic"],
            "additionalProperties": False,
        },
    },
)
# The `tools` array of a chat completions request, and its functions as JSON (content capture).
TOOLS: tuple[dict, ...] = tuple({"type": "function", "function": d} for d in DEFINITIONS)
DEFINITIONS_JSON = json.dumps(DEFINITIONS, separators=(",", ":"))


@dataclass(frozen=True)
class ToolResult:
    """What one tool call gave: `content` goes back to the model, `summary` to the user (no
    argument values in it: those are content, shown only with content capture)."""

    content: str  # JSON
    summary: str
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None


def _result(document: dict, summary: str) -> ToolResult:
    content = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return ToolResult(content[:RESULT_MAX_CHARS], summary)


def tool_error(error_type: str, message: str, summary: str | None = None) -> ToolResult:
    document = {"error": {"type": error_type, "message": message}}
    return ToolResult(json.dumps(document, ensure_ascii=False), summary or message, error_type)


class ShopTools:
    """The four tools on one shop; `run` is safe to call from many threads (read-only data)."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self._validators = {d["name"]: Draft202012Validator(d["parameters"]) for d in DEFINITIONS}
        self._handlers: Mapping[str, Callable[[dict], ToolResult]] = {
            "search_products": self._search_products,
            "check_inventory": self._check_inventory,
            "get_order_status": self._get_order_status,
            "get_policy": self._get_policy,
        }
        self.descriptions = {d["name"]: d["description"] for d in DEFINITIONS}

    def run(self, name: str, arguments: str) -> ToolResult:
        handler = self._handlers.get(name)
        if handler is None:
            return tool_error(
                ERROR_UNKNOWN_TOOL, f"There is no tool named {name[:64]!r}.", "no such tool"
            )
        try:
            values = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return tool_error(ERROR_INVALID_JSON, "The arguments are not valid JSON.")
        errors = sorted(self._validators[name].iter_errors(values), key=lambda e: list(e.path))
        if errors:
            error = errors[0]
            where = ".".join(str(p) for p in error.absolute_path) or "arguments"
            return tool_error(
                ERROR_INVALID_ARGUMENTS,
                f"{where}: {error.message[:200]}",
                f"invalid arguments ({where[:64]})",
            )
        return handler(values)

    # --- the tools ----------------------------------------------------------------------------

    def _search_products(self, args: dict) -> ToolResult:
        query = args["query"]
        found = self.shop.find_products(query)
        currency = self.shop.currency
        document = {"query": query, "products": [p.brief(currency) for p in found]}
        if not found:
            return _result(document, "no product found")
        return _result(document, f"{len(found)} product(s) found")

    def _check_inventory(self, args: dict) -> ToolResult:
        query, size = args["product"], args.get("size")
        found = self.shop.find_products(query)
        if not found:
            return _result(
                {"product": query, "found": False, "products": []},
                "no product found",
            )
        items = []
        for product in found:
            item: dict = {"product_id": product.id, "name": product.name}
            if size is None:
                item["stock"] = dict(product.stock)
            elif size in product.stock:
                item["size"] = size
                item["in_stock"] = product.stock[size]
            else:
                item["size"] = size
                item["in_stock"] = 0
                item["note"] = f"not made in size {size}"
            items.append(item)
        document = {"product": query, "found": True, "products": items}
        if size is None:
            return _result(document, f"stock of {len(found)} product(s)")
        available = sum(1 for item in items if item["in_stock"] > 0)
        return _result(document, f"{size}: in stock for {available} of {len(items)} product(s)")

    def _get_order_status(self, args: dict) -> ToolResult:
        order_id = args["order_id"]
        order = self.shop.order(order_id)
        if order is None:
            return _result(
                {"order_id": order_id, "found": False, "message": "No order with this number."},
                "no such order",
            )
        document = {"order_id": order["id"], "found": True}
        document.update({k: v for k, v in order.items() if k != "id" and v is not None})
        return _result(document, f"order found: {order['status']}")

    def _get_policy(self, args: dict) -> ToolResult:
        topic = args["topic"]
        return _result({"topic": topic, "policy": self.shop.policies[topic]}, f"{topic} policy")
