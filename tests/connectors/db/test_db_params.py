"""Named parameters become each driver's style without touching literals, comments or casts."""

from __future__ import annotations

import pytest

from connectors.db.params import bind, convert
from connectors.errors import Category, ConnectorError


def test_postgresql_skips_literals_comments_dollar_quotes_and_casts() -> None:
    sql = "SELECT ':a', :a::text, $$ :b $$, $t$ :c $t$, E'\\' :d', \"col:e\" -- :f\n /* :g */ , '5%' , :h"
    converted = convert(sql, "postgresql", "pyformat")
    assert converted.names == ("a", "h")
    assert converted.sql == (
        "SELECT ':a', %s::text, $$ :b $$, $t$ :c $t$, E'\\' :d', \"col:e\" -- :f\n /* :g */ , '5%%' , %s"
    )


def test_mysql_knows_backslash_escapes_backticks_and_hash_comments() -> None:
    converted = convert("SELECT 'it\\'s :a', `:b`, \"x:c\", :d # :e\n, :d", "mysql", "pyformat")
    assert converted.names == ("d", "d")
    assert converted.sql == "SELECT 'it\\'s :a', `:b`, \"x:c\", %s # :e\n, %s"


def test_sqlite_keeps_its_native_named_style() -> None:
    converted = convert("SELECT :a, ':b', [c:d], '%'", "sqlite", "named")
    assert converted.sql == "SELECT :a, ':b', [c:d], '%'" and converted.names == ("a",)


def test_bind_orders_values_and_repeats_them() -> None:
    sql, values = bind("SELECT :x, :y, :x", {"y": 2, "x": 1}, "postgresql", "pyformat")
    assert sql == "SELECT %s, %s, %s" and values == (1, 2, 1)


@pytest.mark.parametrize(
    "params, message",
    [({}, ":x"), ({"x": 1, "z": 2}, "z"), ([1], "mapping")],
)
def test_bad_parameters_are_invalid(params: object, message: str) -> None:
    with pytest.raises(ConnectorError) as info:
        bind("SELECT :x", params, "postgresql", "pyformat")  # type: ignore[arg-type]
    assert info.value.category == Category.INVALID and message in info.value.message
