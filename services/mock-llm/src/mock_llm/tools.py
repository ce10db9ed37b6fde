"""Function tools: validate `tools` / `tool_choice` / tool messages, decide (deterministically)
whether the model calls tools and with which arguments, and ground the final answer on the tool
results. chat.py streams what this module plans; see the README's "Tool calls" section.

Intents come from the last user message and are matched to the offered tools through their
JSON-schema property names, so any tool set that uses the usual names works:

- order: `order 1042`, `order #A1042`, `order number 1042`, `#A1042` (ORDER_ID: optional "order"
  prefix, 0-3 letters, 3-12 digits) -> a tool with a property starting with `order` (order_id);
- product: a product noun (PRODUCT_WORDS, with a colour before it) and/or a size (XS..XXXL as
  upper-case words, or `size m` / `size medium`) -> a tool with product/item/sku (strong) or
  query/q/search (weak, needs a product-like tool name) and/or size properties;
- policy: shipping, delivery, return(s), exchange, refund(s), sizing, size guide, warranty,
  privacy -> a tool with a topic/policy/subject property (or query with a policy-like name).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mock_llm.errors import ApiError, bad_request, empty_array, invalid_type, missing_parameter

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128
MAX_CALLS = 8  # tool calls in one answer at most
MAX_DEPTH = 8  # schema nesting followed when filling arguments
CHOICES = ("none", "auto", "required")

ORDER_ID = re.compile(
    r"(?:\borders?(?:\s+(?:number|no\.?|id))?\s*[:#]?\s*|#)([A-Za-z]{0,3}-?\d{3,12})\b", re.I
)
SIZE_WORD = re.compile(r"(?<![\w-])(XXS|XS|S|M|L|XL|XXL|XXXL|2XL|3XL)(?![\w-])")
SIZE_AFTER = re.compile(
    r"\bsize\s+(xxs|xs|s|m|l|xl|xxl|xxxl|2xl|3xl|extra\s+small|small|medium|extra\s+large|large)\b",
    re.I,
)
SIZE_NAMES = {"small": "S", "medium": "M", "large": "L", "extra small": "XS", "extra large": "XL"}
_PRODUCTS = """t-shirt tshirt shirt tee hoodie sweater sweatshirt jumper cardigan jacket coat parka
vest jeans pants trousers shorts leggings dress skirt blouse top shoes sneakers trainers boots
sandals socks hat cap beanie scarf gloves bag backpack belt wallet watch sunglasses mug bottle
umbrella"""
PRODUCT_WORDS = tuple(_PRODUCTS.split())
COLOURS = frozenset(
    re.findall(r"\w+", "black white grey gray red blue navy green yellow orange pink purple brown")
)
PRODUCT = re.compile(
    r"\b(?:(" + "|".join(sorted(COLOURS)) + r")\s+)?(" + "|".join(PRODUCT_WORDS) + r")s?\b", re.I
)
POLICY = re.compile(
    r"\b(shipping|ship|delivery|deliveries|returns?|returning|exchanges?|refunds?|sizing|"
    r"size\s+(?:guide|chart)|warranty|warranties|privacy)\b",
    re.I,
)
TOPICS = {
    "ship": "shipping",
    "delivery": "shipping",
    "deliveries": "shipping",
    "return": "returns",
    "returning": "returns",
    "exchange": "returns",
    "exchanges": "returns",
    "refund": "refunds",
    "warranties": "warranty",
    "size guide": "sizing",
    "size chart": "sizing",
}
HINTS = {
    "order": ("order",),
    "product": ("product", "inventory", "stock", "catalog", "item", "sku", "shop", "store"),
    "policy": ("policy", "policies", "faq", "help", "support", "doc", "knowledge", "kb", "terms"),
}
WEAK = {"query", "q", "search", "searchterm", "keyword", "keywords", "term", "question", "text"}
_FRAGMENT = re.compile(r"[A-Za-z]+|\d{1,3}|\s+|[^A-Za-z\d\s]{1,3}")
_TEXT_TOKEN = re.compile(r"\s*[^\s,.;:!?]+|\s*[,.;:!?]|\s+")  # lossless: "".join == text
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LONG_KEYS = {"text", "answer", "content", "summary", "description", "policy", "details", "body"}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: Mapping  # the JSON schema ({} when none was given)

    @property
    def properties(self) -> Mapping:
        props = self.parameters.get("properties")
        return props if isinstance(props, Mapping) else {}


@dataclass(frozen=True)
class PriorCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolRequest:
    """The tool side of one request: offered tools, the choice and the conversation state."""

    tools: tuple[Tool, ...]
    choice: str  # none | auto | required | function
    forced: str | None  # the function tool_choice names
    parallel: bool
    rounds: int  # assistant tool-call turns since the last user message
    prior: tuple[PriorCall, ...]  # their calls
    results: tuple[tuple[str, str, str], ...]  # trailing tool messages: (call id, name, content)
    canonical: bytes  # everything above, for the tool draws

    def prompt_tokens(self) -> int:
        """Tool definitions and earlier calls, ~4 characters per token like message text."""
        chars = len(json.dumps([t.__dict__ for t in self.tools], sort_keys=True, default=str))
        chars += sum(len(c.name) + len(c.arguments) for c in self.prior)
        return -(-chars // 4) if self.tools or self.prior else 0


def _where(index: int) -> str:
    return f"tools[{index}]"


def _parse_tool(index: int, raw: object) -> Tool:
    where = _where(index)
    if not isinstance(raw, Mapping):
        raise invalid_type(where, "an object", raw)
    kind = raw.get("type")
    if kind is None:
        raise missing_parameter(f"{where}.type")
    if kind != "function":
        raise bad_request(
            f"Invalid value: {str(kind)[:40]!r}. Supported values are: 'function'.",
            f"{where}.type",
            "invalid_value",
        )
    function = raw.get("function")
    if function is None:
        raise missing_parameter(f"{where}.function")
    if not isinstance(function, Mapping):
        raise invalid_type(f"{where}.function", "an object", function)
    name = function.get("name")
    if name is None:
        raise missing_parameter(f"{where}.function.name")
    if not isinstance(name, str):
        raise invalid_type(f"{where}.function.name", "a string", name)
    if not TOOL_NAME.match(name):
        raise bad_request(
            f"Invalid '{where}.function.name': string does not match pattern. Expected a string "
            "that matches the pattern '^[a-zA-Z0-9_-]+$' (at most 64 characters).",
            f"{where}.function.name",
            "invalid_value",
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise invalid_type(f"{where}.function.description", "a string", description)
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid_type(f"{where}.function.strict", "a boolean", strict)
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise invalid_type(f"{where}.function.parameters", "an object", parameters)
    _check_schema(name, parameters, f"{where}.function.parameters")
    return Tool(name, description or "", parameters)


def _schema_error(name: str, detail: str, param: str) -> ApiError:
    return bad_request(
        f"Invalid schema for function '{name}': {detail}", param, "invalid_function_parameters"
    )


def _check_schema(name: str, schema: Mapping, param: str) -> None:
    kind = schema.get("type")
    if kind is not None and kind != "object":
        raise _schema_error(
            name,
            f"schema must be a JSON Schema of 'type: \"object\"', got 'type: {kind!r}'.",
            param,
        )
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, Mapping):
            raise _schema_error(name, "'properties' must be an object.", param)
        for prop, sub in props.items():
            if not isinstance(sub, (Mapping, bool)):
                raise _schema_error(
                    name, f"'properties.{str(prop)[:40]}' must be an object or a boolean.", param
                )
    required = schema.get("required")
    if required is not None and (
        not isinstance(required, list) or not all(isinstance(r, str) for r in required)
    ):
        raise _schema_error(name, "'required' must be an array of strings.", param)


def _parse_choice(raw: object, names: Sequence[str]) -> tuple[str, str | None]:
    if isinstance(raw, str):
        if raw not in CHOICES:
            raise bad_request(
                f"Invalid value: {raw[:40]!r}. Supported values are: 'none', 'auto' and "
                "'required'.",
                "tool_choice",
                "invalid_value",
            )
        return raw, None
    if not isinstance(raw, Mapping):
        raise invalid_type("tool_choice", "one of a string or an object", raw)
    if raw.get("type") != "function":
        raise bad_request(
            "Invalid value for 'tool_choice.type': supported values are: 'function'.",
            "tool_choice.type",
            "invalid_value",
        )
    function = raw.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise missing_parameter("tool_choice.function.name")
    name = function["name"]
    if name not in names:
        raise bad_request(
            f"Invalid value for 'tool_choice': function {name[:64]!r} is not in 'tools'.",
            "tool_choice",
            "invalid_value",
        )
    return "function", name


def _prior_calls(index: int, raw: object) -> tuple[PriorCall, ...]:
    where = f"messages[{index}].tool_calls"
    if not isinstance(raw, list):
        raise invalid_type(where, "an array", raw)
    calls = []
    for n, call in enumerate(raw):
        at = f"{where}[{n}]"
        if not isinstance(call, Mapping):
            raise invalid_type(at, "an object", call)
        if not isinstance(call.get("id"), str):
            raise invalid_type(f"{at}.id", "a string", call.get("id"))
        if call.get("type", "function") != "function":
            raise bad_request(
                "Invalid value. Supported values are: 'function'.", f"{at}.type", "invalid_value"
            )
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise invalid_type(f"{at}.function", "an object", function)
        for key in ("name", "arguments"):
            if not isinstance(function.get(key), str):
                raise invalid_type(f"{at}.function.{key}", "a string", function.get(key))
        calls.append(PriorCall(call["id"], function["name"], function["arguments"]))
    return tuple(calls)


def parse_tools(body: Mapping, raw_messages: Sequence, messages: Sequence[dict]):
    """The request's ToolRequest, or None when it neither offers tools nor carries tool turns (the
    answer is then exactly the mock's usual one). `messages`: the validated, normalised ones."""
    raw_tools = body.get("tools")
    tools: tuple[Tool, ...] = ()
    if raw_tools is not None:
        if not isinstance(raw_tools, list):
            raise invalid_type("tools", "an array", raw_tools)
        if not raw_tools:
            raise empty_array("tools")
        if len(raw_tools) > MAX_TOOLS:
            raise bad_request(
                f"Invalid 'tools': array too long. Expected an array with maximum length "
                f"{MAX_TOOLS}, but got an array with length {len(raw_tools)} instead.",
                "tools",
                "array_above_max_length",
            )
        tools = tuple(_parse_tool(i, t) for i, t in enumerate(raw_tools))
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise bad_request("Tool names must be unique within 'tools'.", "tools", "invalid_value")
    for key in ("tool_choice", "parallel_tool_calls"):
        if body.get(key) is not None and not tools:
            raise bad_request(
                f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.",
                key,
                "invalid_value",
            )
    choice, forced = _parse_choice(body.get("tool_choice", "auto"), [t.name for t in tools])
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid_type("parallel_tool_calls", "a boolean", parallel)

    # the tool-call protocol: each tool message answers a call of the assistant turn before it,
    # and every call of an assistant turn is answered before the conversation goes on
    pending: dict[str, str] = {}  # call id -> tool name, of the open assistant turn
    pending_at = -1
    names_by_id: dict[str, str] = {}
    turns: list[tuple[int, tuple[PriorCall, ...]]] = []
    answered: set[str] = set()
    protocol = False
    for index, raw in enumerate(raw_messages):
        role = raw["role"]
        if role == "tool":
            protocol = True
            call_id = raw.get("tool_call_id")
            if call_id is None:
                raise missing_parameter(f"messages[{index}].tool_call_id")
            if not isinstance(call_id, str):
                raise invalid_type(f"messages[{index}].tool_call_id", "a string", call_id)
            if call_id not in pending:
                raise bad_request(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                    None,
                )
            answered.add(call_id)
            continue
        if pending and set(pending) - answered:
            missing = ", ".join(sorted(set(pending) - answered))
            raise bad_request(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {missing[:300]}",
                f"messages.[{pending_at}].role",
                None,
            )
        pending, answered = {}, set()
        if role == "assistant" and raw.get("tool_calls") is not None:
            calls = _prior_calls(index, raw["tool_calls"])
            if calls:
                protocol = True
                pending = {c.id: c.name for c in calls}
                pending_at = index
                names_by_id.update(pending)
                turns.append((index, calls))
    if pending and set(pending) - answered:
        missing = ", ".join(sorted(set(pending) - answered))
        raise bad_request(
            "An assistant message with 'tool_calls' must be followed by tool messages responding "
            f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
            f"{missing[:300]}",
            f"messages.[{pending_at}].role",
            None,
        )
    if not tools and not protocol:
        return None

    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    since = [calls for index, calls in turns if index > last_user]
    results = []
    for raw, message in zip(reversed(raw_messages), reversed(messages), strict=True):
        if raw["role"] != "tool":
            break
        call_id = raw["tool_call_id"]
        results.append((call_id, names_by_id.get(call_id, ""), _text(message)))
    canonical = json.dumps(
        [
            raw_tools,
            choice,
            forced,
            parallel,
            [[c.__dict__ for c in calls] for _, calls in turns],
            [r["tool_call_id"] for r in raw_messages if r["role"] == "tool"],
        ],
        sort_keys=True,
        default=str,
    ).encode()
    return ToolRequest(
        tools,
        choice,
        forced,
        parallel is not False,
        len(since),
        tuple(c for calls in since for c in calls),
        tuple(reversed(results)),
        canonical,
    )


def _text(message: Mapping) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p.get("text"), str))
    return ""


# --- intents and arguments -------------------------------------------------------------------


def _norm(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _slot(prop: str) -> tuple[str | None, bool]:
    """The slot a property takes (order_id, product, size, topic) and whether it is weak
    (query-like: product or topic, decided by the tool's name)."""
    n = _norm(prop)
    if n.startswith("order"):
        return "order_id", False
    if n in ("size", "sizes") or (n.endswith("size") and not n.startswith("page")):
        return "size", False
    if n.startswith(("product", "item")) or n in ("sku", "article"):
        return "product", False
    if n.startswith(("topic", "policy")) or n == "subject":
        return "topic", False
    if n in WEAK:
        return "query", True
    return None, False


@dataclass(frozen=True)
class Intent:
    kind: str  # order | product | policy
    position: int
    slots: Mapping[str, str]  # order_id, product, size, topic -> value


def intents(question: str) -> list[Intent]:
    """What the question asks for, in the order it mentions them."""
    found: list[Intent] = []
    seen: set[str] = set()
    for match in ORDER_ID.finditer(question):
        order_id = match.group(1).upper()
        if order_id not in seen:
            seen.add(order_id)
            found.append(Intent("order", match.start(), {"order_id": order_id}))
    product_slots: dict[str, str] = {}
    position = None
    product = PRODUCT.search(question)
    if product:
        product_slots["product"] = product.group(0).lower()
        position = product.start()
    size = SIZE_AFTER.search(question)
    size_value = None
    if size:
        word = re.sub(r"\s+", " ", size.group(1).lower())
        size_value = SIZE_NAMES.get(word, word.upper())
    else:
        size = SIZE_WORD.search(question)
        size_value = size.group(1) if size else None
    if size_value:
        product_slots["size"] = size_value
        position = size.start() if position is None else min(position, size.start())
    if product_slots:
        found.append(Intent("product", position or 0, product_slots))
    topics: set[str] = set()
    for match in POLICY.finditer(question):
        word = re.sub(r"\s+", " ", match.group(1).lower())
        topic = TOPICS.get(word, word)
        if topic not in topics:
            topics.add(topic)
            found.append(Intent("policy", match.start(), {"topic": topic}))
    return sorted(found, key=lambda intent: intent.position)


def _score(tool: Tool, intent: Intent) -> int:
    wanted = {"order": {"order_id"}, "product": {"product", "size"}, "policy": {"topic"}}
    strong = weak = 0
    for prop in tool.properties:
        slot, is_weak = _slot(prop)
        if is_weak:
            weak += 1
        elif (slot in wanted[intent.kind] and slot in intent.slots) or (
            slot == "product" and intent.kind == "product"
        ):
            strong += 1
    text = f"{tool.name} {tool.description}".lower()
    hint = any(word in text for word in HINTS[intent.kind])
    if not strong and not (weak and hint):
        return 0
    return 10 * strong + 3 * hint + weak


def best_tool(tools: Sequence[Tool], intent: Intent) -> Tool | None:
    scored = [(_score(tool, intent), -i, tool) for i, tool in enumerate(tools)]
    scored = [item for item in scored if item[0] > 0]
    return max(scored, key=lambda item: item[:2])[2] if scored else None


class _Filler:
    """Arguments for a schema: known slot values where a property takes them, the schema's own
    default / enum / type-shaped value for the other required properties."""

    def __init__(self, root: Mapping, slots: Mapping[str, str], tool: Tool) -> None:
        self.root, self.slots = root, slots
        text = f"{tool.name} {tool.description}".lower()
        self.query = slots.get("topic") if any(h in text for h in HINTS["policy"]) else None
        self.query = self.query or slots.get("product") or slots.get("topic")
        if "product" not in slots and "size" in slots and self.query is None:
            self.query = slots["size"]

    def resolve(self, schema: object, depth: int) -> Mapping:
        for _ in range(MAX_DEPTH):
            if not isinstance(schema, Mapping):
                return {}
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                target: object = self.root
                for part in ref[2:].split("/"):
                    target = target.get(part) if isinstance(target, Mapping) else None
                schema = target
                continue
            for key in ("anyOf", "oneOf", "allOf"):
                options = schema.get(key)
                if isinstance(options, list) and options and "type" not in schema:
                    typed = [
                        o for o in options if isinstance(o, Mapping) and o.get("type") != "null"
                    ]
                    schema = typed[0] if typed else options[0]
                    break
            else:
                return schema
        return {}

    @staticmethod
    def _type(schema: Mapping) -> str | None:
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null" and isinstance(k, str)]
            return kinds[0] if kinds else None
        return kind if isinstance(kind, str) else None

    def obj(self, schema: object, depth: int = 0) -> dict:
        schema = self.resolve(schema, depth)
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required")
        required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        out: dict = {}
        for name, sub in props.items():
            slot, _ = _slot(name)
            value = self.query if slot == "query" else self.slots.get(slot) if slot else None
            if value is not None and depth == 0:
                out[name] = self.coerce(sub, value, depth + 1)
            elif name in required:
                out[name] = self.default(sub, depth + 1)
        for name in required:
            out.setdefault(name, "unknown")
        return out

    def coerce(self, schema: object, value: str, depth: int) -> object:
        if depth > MAX_DEPTH:
            return value
        schema = self.resolve(schema, depth)
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            low = value.lower()
            for option in enum:
                if str(option).lower() == low:
                    return option
            stem = low.rstrip("s")
            for option in enum:
                text = str(option).lower()
                if stem and (stem in text or text.rstrip("s") in low):
                    return option
            return enum[0]
        kind = self._type(schema)
        if kind in ("integer", "number"):
            digits = re.sub(r"\D", "", value)
            return self._number(schema, int(digits) if digits else None, kind)
        if kind == "array":
            return [self.coerce(schema.get("items"), value, depth + 1)]
        if kind == "boolean":
            return True
        if kind == "object":
            return self.default(schema, depth)
        return self._string(schema, value)

    @staticmethod
    def _number(schema: Mapping, value: int | None, kind: str) -> int | float:
        low, high = schema.get("minimum"), schema.get("maximum")
        number = value if value is not None else (low if isinstance(low, (int, float)) else 1)
        if isinstance(low, (int, float)) and not isinstance(low, bool):
            number = max(number, low)
        if isinstance(high, (int, float)) and not isinstance(high, bool):
            number = min(number, high)
        return int(number) if kind == "integer" else float(number)

    @staticmethod
    def _string(schema: Mapping, value: str) -> str:
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and not isinstance(low, bool) and len(value) < low:
            value = value + "x" * min(low - len(value), 1000)
        if isinstance(high, int) and not isinstance(high, bool) and high >= 0:
            value = value[:high]
        return value

    def default(self, schema: object, depth: int) -> object:
        if depth > MAX_DEPTH:
            return None
        schema = self.resolve(schema, depth)
        if "const" in schema:
            return schema["const"]
        if "default" in schema:
            return schema["default"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        kind = self._type(schema)
        if kind == "string":
            formats = {"date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z"}
            return self._string(schema, formats.get(schema.get("format"), "example"))
        if kind in ("integer", "number"):
            return self._number(schema, None, kind)
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        if kind == "array":
            count = schema.get("minItems")
            count = min(count, 10) if isinstance(count, int) and not isinstance(count, bool) else 0
            return [self.default(schema.get("items"), depth + 1) for _ in range(count)]
        if kind == "object" or "properties" in schema:
            return self.obj(schema, depth)
        return ""


def arguments(tool: Tool, slots: Mapping[str, str]) -> str:
    """The call's arguments: compact JSON valid for the tool's schema."""
    values = _Filler(tool.parameters, slots, tool).obj(tool.parameters)
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def malformed(arguments_json: str, rng) -> str:
    """The same arguments as invalid JSON: a missing closing brace, a trailing comma or single
    quotes, as models get them wrong."""
    forms = [arguments_json[:-1], arguments_json[:-1] + ",}", arguments_json.replace('"', "'")]
    text = forms[int(rng.random() * 3) % 3]
    try:
        json.loads(text)
    except ValueError:
        return text
    return arguments_json[:-1] if arguments_json else "{"


# --- the turn ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    index: int
    id: str
    name: str
    arguments: str


@dataclass
class ToolTurn:
    """What the model does with the tools in this answer: call them (calls), answer grounded on
    the tool results (text), or neither (the usual generated answer)."""

    request: ToolRequest
    calls: tuple[ToolCall, ...] = ()
    text: str | None = None
    traits: list[str] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    pieces: tuple[str, ...] = ()  # per call: its name (the header chunk), then argument fragments
    owners: tuple[tuple[int, bool], ...] = ()  # per piece: (call index, is the header)

    def __post_init__(self) -> None:
        pieces, owners = [], []
        for call in self.calls:
            pieces.append(call.name)
            owners.append((call.index, True))
            for fragment in _FRAGMENT.findall(call.arguments) or [""]:
                pieces.append(fragment)
                owners.append((call.index, False))
        self.pieces, self.owners = tuple(pieces), tuple(owners)

    def text_tokens(self) -> list[str]:
        return _TEXT_TOKEN.findall(self.text or "")

    def delta(self, position: int, with_role: bool) -> str:
        """The JSON delta of the piece at `position` (a tool-call chunk)."""
        call_index, header = self.owners[position]
        call = self.calls[call_index]
        if header:
            entry = {
                "index": call.index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
        else:
            entry = {"index": call.index, "function": {"arguments": self.pieces[position]}}
        delta: dict = {"role": "assistant", "content": None} if with_role else {}
        delta["tool_calls"] = [entry]
        if with_role:
            delta["refusal"] = None
        return json.dumps(delta, separators=(",", ":"), ensure_ascii=False)

    def sent_calls(self, sent: int) -> list[dict]:
        """The calls as a non-streaming message carries them, from the first `sent` pieces."""
        calls: dict[int, dict] = {}
        for (call_index, header), piece in zip(self.owners[:sent], self.pieces[:sent], strict=True):
            call = self.calls[call_index]
            if header:
                calls[call_index] = {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            else:
                calls[call_index]["function"]["arguments"] += piece
        return list(calls.values())

    def summary(self) -> dict:
        """The request log's `tools` field (ground truth)."""
        return {
            "offered": [t.name for t in self.request.tools],
            "tool_choice": self.request.forced or self.request.choice,
            "parallel_tool_calls": self.request.parallel,
            "intents": list(self.intents),
            "calls": [
                {"index": c.index, "id": c.id, "name": c.name, "arguments": c.arguments}
                for c in self.calls
            ],
            "arguments_valid": [_valid_json(c.arguments) for c in self.calls],
            "traits": list(self.traits),
            "round": self.request.rounds + 1,
            "grounded": self.text is not None,
            "grounded_on": [r[0] for r in self.request.results] if self.text is not None else [],
        }


def _valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _call_id(digest: bytes, index: int) -> str:
    raw = hashlib.sha256(digest + b"tool-call-id" + index.to_bytes(2, "big")).digest()
    return "call_" + "".join(_ID_CHARS[b % len(_ID_CHARS)] for b in raw[:24])


def _planned(req: ToolRequest, question: str) -> tuple[list[tuple[Tool, str]], list[str]]:
    """(tool, arguments) per intent the offered tools can serve, and the intents' names."""
    found = intents(question)
    planned: list[tuple[Tool, str]] = []
    for intent in found:
        tool = best_tool(req.tools, intent)
        if tool is None:
            continue
        call = (tool, arguments(tool, intent.slots))
        if all((t.name, a) != (call[0].name, call[1]) for t, a in planned):
            planned.append(call)
    return planned[:MAX_CALLS], [i.kind for i in found]


def _all_slots(question: str) -> dict[str, str]:
    slots: dict[str, str] = {}
    for intent in intents(question):
        for key, value in intent.slots.items():
            slots.setdefault(key, value)
    return slots


def plan_turn(
    req: ToolRequest,
    digest: bytes,
    question: str,
    rates: Mapping[str, float],
    fault: str | None,
    rng_for,
) -> ToolTurn:
    """Decide this answer's tool behaviour. `rng_for(purpose)`: the request's seeded RNG."""
    rng = rng_for("tools")
    uniforms = {t: rng.random() for t in ("wrong_tool", "malformed_arguments", "extra_step")}
    drawn = [t for t, u in uniforms.items() if u < rates.get(t, 0.0)]
    loop = fault == "tool_call_loop"
    can_call = bool(req.tools) and req.choice != "none"
    planned, kinds = _planned(req, question) if can_call else ([], [])
    traits: list[str] = []
    calls: list[tuple[str, str]] = []
    tools_by_name = {t.name: t for t in req.tools}

    def fallback() -> list[tuple[str, str]]:
        tool = tools_by_name.get(req.forced or "", req.tools[0])
        return [(tool.name, arguments(tool, _all_slots(question)))]

    forced = fallback() if req.choice == "function" and can_call else None
    if req.results:  # the last messages are tool results
        extra = "extra_step" in drawn and req.rounds == 1 and can_call
        if can_call and (req.choice in ("required", "function") or loop or extra):
            if forced:
                calls = forced
            elif loop:
                calls = (
                    [(t.name, a) for t, a in planned]
                    or [(c.name, c.arguments) for c in req.prior if c.name in tools_by_name]
                    or fallback()
                )
            elif req.choice == "required" and not extra:
                calls = [(t.name, a) for t, a in planned] or fallback()
            else:
                called = {c.name for c in req.prior}
                fresh = [(t.name, a) for t, a in planned if t.name not in called]
                last = [(c.name, c.arguments) for c in req.prior[-1:] if c.name in tools_by_name]
                calls = fresh[:1] or last or fallback()
                traits.append("extra_step")
            if loop:
                traits.append("tool_call_loop")
        else:
            return ToolTurn(req, text=grounded_text(req.results), intents=kinds)
    elif can_call:
        calls = forced or [(t.name, a) for t, a in planned]
        if not calls and (req.choice == "required" or loop):
            calls = fallback()
            if loop and req.choice != "required":
                traits.append("tool_call_loop")
    if not calls:
        return ToolTurn(req, intents=kinds)
    if not req.parallel and not forced:
        calls = calls[:1]
    if "wrong_tool" in drawn and len(req.tools) > 1 and not forced:
        others = [t for t in req.tools if t.name != calls[0][0]]
        wrong = others[int(rng.random() * len(others)) % len(others)]
        calls[0] = (wrong.name, arguments(wrong, _all_slots(question)))
        traits.append("wrong_tool")
    if "malformed_arguments" in drawn or fault == "malformed_tool_arguments":
        calls = [(name, malformed(args, rng)) for name, args in calls]
        traits.append("malformed_arguments" if fault != "malformed_tool_arguments" else fault)
    made = tuple(
        ToolCall(i, _call_id(digest, i), name, args) for i, (name, args) in enumerate(calls)
    )
    return ToolTurn(req, calls=made, traits=traits, intents=kinds)


# --- the grounded answer -----------------------------------------------------------------------


def _facts(value: object, prefix: str = "", depth: int = 0) -> list[tuple[str, object]]:
    if depth > 3:
        return []
    if isinstance(value, Mapping):
        facts = []
        for key, item in value.items():
            facts.extend(_facts(item, str(key), depth + 1))
        return facts
    if isinstance(value, list):
        if all(not isinstance(v, (Mapping, list)) for v in value):
            return [(prefix, ", ".join(_render(v) for v in value))] if value else []
        return [f for item in value for f in _facts(item, prefix, depth + 1)]
    if value is None:
        return []
    return [(prefix, value)]


def _render(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def grounded_text(results: Sequence[tuple[str, str, str]]) -> str:
    """An answer quoting each tool result's facts verbatim: every scalar of a JSON result (its
    long texts in quotes), or the whole result when it is not JSON."""
    sentences: list[str] = []
    for _, name, content in results:
        label = name.replace("_", " ") or "the tool"
        try:
            document = json.loads(content)
        except (ValueError, RecursionError):
            document = None
        facts = _facts(document)[:20] if isinstance(document, (Mapping, list)) else []
        text = content.strip()[:2000]
        if not facts and not text:
            sentences.append(f"The {label} tool returned no result.")
            continue
        sentences.append(f"Here is what {label} returned:")
        if not facts:
            sentences.append(f'"{text}"')
        for key, value in facts:
            words = key.replace("_", " ") or "result"
            rendered = _render(value)
            if key.lower() in _LONG_KEYS or len(rendered) > 40:
                sentences.append(f'The {words} says: "{rendered}"')
            else:
                sentences.append(f"The {words} is {rendered}.")
    sentences.append("Let me know if there is anything else I can help with.")
    return " ".join(sentences)
