"""The shop agent's pure parts: the seeded shop, the tools' schema validation, the tool-call
assembler, and the tool-fault syntax."""

from __future__ import annotations

import json

import pytest

from assistant.agent.faults import parse_tool_faults
from assistant.agent.shop import load_shop
from assistant.agent.tools import DEFINITIONS, ShopTools
from assistant.agent.turn import ToolCallAssembler
from harness.prereq import ROOT

SHOP = json.loads(
    (ROOT / "services/assistant/src/assistant/agent/data/shop.json").read_text("utf-8")
)
TOOL_NAMES = [d["name"] for d in DEFINITIONS]


@pytest.fixture(scope="module")
def tools() -> ShopTools:
    return ShopTools(load_shop())


def run(tools: ShopTools, name: str, **arguments) -> tuple[dict, str | None]:
    result = tools.run(name, json.dumps(arguments))
    return json.loads(result.content), result.error_type


def test_inventory_answers_from_the_seeded_stock(tools):
    document, error = run(tools, "check_inventory", product="t-shirt", size="XL")
    assert error is None and document["found"] is True
    shirts = [p for p in SHOP["products"] if p["kind"] == "t-shirt"]
    assert {p["product_id"]: p["in_stock"] for p in document["products"]} == {
        p["id"]: p["stock"]["XL"] for p in shirts
    }
    # words that name something narrow the match: the Splunk one only
    document, _ = run(tools, "check_inventory", product="the Splunk T-shirts")
    assert [p["product_id"] for p in document["products"]] == ["TS-100"]
    assert document["products"][0]["stock"] == SHOP["products"][0]["stock"]
    document, _ = run(tools, "check_inventory", product="hoodie", size="XS")
    assert document["products"][0]["in_stock"] == 0  # not made in XS
    assert "not made" in document["products"][0]["note"]
    document, error = run(tools, "check_inventory", product="kayak")
    assert error is None and document == {"product": "kayak", "found": False, "products": []}


def test_orders_and_policies_come_from_the_seeded_data(tools):
    order = next(o for o in SHOP["orders"] if o["id"] == "1042")
    for spelling in ("1042", "#1042", "A1042", "A-1042"):
        document, error = run(tools, "get_order_status", order_id=spelling)
        assert error is None and document["found"] is True, spelling
        assert document["status"] == order["status"]
        assert document["tracking"] == order["tracking"]
    document, error = run(tools, "get_order_status", order_id="7777")
    assert error is None and document["found"] is False
    for topic, text in SHOP["policies"].items():
        assert run(tools, "get_policy", topic=topic) == ({"topic": topic, "policy": text}, None)
    document, _ = run(tools, "search_products", query="black")
    assert {p["product_id"] for p in document["products"]} == {
        p["id"] for p in SHOP["products"] if p["colour"] == "black"
    }


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("get_policy", '{"topic": "discounts"}', "invalid_arguments"),
        ("get_policy", "{}", "invalid_arguments"),
        ("get_order_status", '{"order_id": "DROP TABLE"}', "invalid_arguments"),
        ("get_order_status", '{"order_id": 1042}', "invalid_arguments"),
        ("check_inventory", '{"product": "tee", "size": "XXXXL"}', "invalid_arguments"),
        ("check_inventory", '{"product": "tee", "colour": "red"}', "invalid_arguments"),
        ("check_inventory", '{"product": ""}', "invalid_arguments"),
        ("search_products", '{"query": "tee"', "invalid_json"),
        ("search_products", "[1, 2]", "invalid_arguments"),
        ("search_products", "'query': 'tee'", "invalid_json"),
        ("refund_everything", "{}", "unknown_tool"),
    ],
)
def test_bad_arguments_are_tool_errors_for_the_model(tools, name, arguments, error):
    result = tools.run(name, arguments)
    assert result.error_type == error and not result.ok
    document = json.loads(result.content)  # the model gets a JSON error it can read
    assert document["error"]["type"] == error and document["error"]["message"]
    # the user's summary never echoes argument values (content, shown only with capture)
    for value in ("discounts", "DROP", "XXXXL", "red", "refund_everything"):
        assert value not in result.summary


def test_the_assembler_joins_fragments_of_parallel_calls():
    def chunk(*entries):
        return {"choices": [{"index": 0, "delta": {"tool_calls": list(entries)}}]}

    assembler = ToolCallAssembler()
    started = assembler.add(
        chunk({"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_policy"}})
    )
    assert [(c.index, c.id, c.name) for c in started] == [(0, "call_a", "get_policy")]
    assert assembler.add(chunk({"index": 0, "function": {"arguments": '{"to'}})) == []
    second = assembler.add(
        chunk(
            {"index": 1, "id": "call_b", "function": {"name": "get_order_status", "arguments": ""}}
        )
    )
    assert [c.id for c in second] == ["call_b"]
    assembler.add(chunk({"index": 1, "function": {"arguments": '{"order_id":"1042"}'}}))
    assembler.add(chunk({"index": 0, "function": {"arguments": 'pic":"shipping"}'}}))
    assembler.add({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    assembler.add({"choices": [], "usage": {"prompt_tokens": 1}})
    assembler.add("not a chunk")
    calls = assembler.assembled()
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("call_a", "get_policy", {"topic": "shipping"}),
        ("call_b", "get_order_status", {"order_id": "1042"}),
    ]


def test_tool_fault_syntax():
    faults = parse_tool_faults("get_order_status=error@0.5, check_inventory=delay:2", TOOL_NAMES)
    assert faults["get_order_status"].error and faults["get_order_status"].rate == 0.5
    assert not faults["check_inventory"].error and faults["check_inventory"].delay_s == 2.0
    assert faults["check_inventory"].rate == 1.0
    assert parse_tool_faults("", TOOL_NAMES) == {}
    for bad in ("get_policy=explode", "nope=error", "get_policy=error@2", "get_policy=delay:61"):
        with pytest.raises(ValueError):
            parse_tool_faults(bad, TOOL_NAMES)
