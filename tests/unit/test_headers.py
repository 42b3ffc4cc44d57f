"""Tests for hyper.common.headers.HTTPHeaderMap."""

from __future__ import annotations

import pytest

from hyper.common.exceptions import InvalidRequest
from hyper.common.headers import UNSPLIT_HEADERS, HTTPHeaderMap

# -- Construction -------------------------------------------------------------------------------


def test_empty_map() -> None:
    headers = HTTPHeaderMap()
    assert len(headers) == 0
    assert not headers
    assert list(headers) == []
    assert list(headers.iter_raw()) == []


def test_from_list_of_pairs_keeps_order_and_duplicates() -> None:
    headers = HTTPHeaderMap([("Accept", "a"), (b"Host", b"example.com"), ("accept", "b")])
    assert list(headers.iter_raw()) == [
        (b"Accept", b"a"),
        (b"Host", b"example.com"),
        (b"accept", b"b"),
    ]
    assert headers["accept"] == [b"a", b"b"]


def test_from_dict_and_kwargs() -> None:
    headers = HTTPHeaderMap({"Host": "example.com", b"X-A": b"1"}, user_agent="hyper")
    assert list(headers.iter_raw()) == [
        (b"Host", b"example.com"),
        (b"X-A", b"1"),
        (b"user_agent", b"hyper"),
    ]


def test_from_dict_with_list_values() -> None:
    headers = HTTPHeaderMap({"Accept": ["a", b"b"]})
    assert headers["accept"] == [b"a", b"b"]
    assert list(headers.iter_raw()) == [(b"Accept", b"a"), (b"Accept", b"b")]


def test_from_other_map_is_a_copy() -> None:
    first = HTTPHeaderMap([("A", "1")])
    second = HTTPHeaderMap(first)
    second["A"] = "2"
    assert first["a"] == [b"1"]
    assert second["a"] == [b"1", b"2"]


def test_constructor_merges_several_sources_in_turn() -> None:
    # hyper 0.7's documented HTTPHeaderMap(*args, **kwargs): each source is merged in turn.
    pairs = [(b"k1", b"v2"), (b"k2", b"v2")]
    assert list(HTTPHeaderMap(pairs, pairs, pairs).iter_raw()) == pairs * 3
    mixed = HTTPHeaderMap(pairs, {"k3": "v4"}, HTTPHeaderMap([("k4", "v5")]), k5="v6")
    assert [name for name, _ in mixed.iter_raw()] == [b"k1", b"k2", b"k3", b"k4", b"k5"]


def test_str_is_encoded_as_utf8_and_output_is_bytes() -> None:
    headers = HTTPHeaderMap([("X-Name", "caf\u00e9")])
    assert headers["x-name"] == ["caf\u00e9".encode()]
    for name, value in headers:
        assert type(name) is bytes
        assert type(value) is bytes


# -- Reading ------------------------------------------------------------------------------------


def test_getitem_is_case_insensitive_for_str_and_bytes() -> None:
    headers = HTTPHeaderMap([("Content-Type", "text/html")])
    for name in ("content-type", "CONTENT-TYPE", b"Content-Type", b"cOnTeNt-TyPe"):
        assert headers[name] == [b"text/html"]


def test_getitem_missing_raises_key_error() -> None:
    headers = HTTPHeaderMap([("A", "1")])
    with pytest.raises(KeyError):
        headers["b"]
    with pytest.raises(KeyError):
        headers[42]  # not a name at all


def test_get_returns_list_or_default() -> None:
    headers = HTTPHeaderMap([("A", "1"), ("a", "2")])
    assert headers.get("A") == [b"1", b"2"]
    assert headers.get("missing") is None
    assert headers.get("missing", "fallback") == "fallback"


@pytest.mark.parametrize("name", [None, 42, bytearray(b"a"), ("a",)])
def test_get_of_something_that_is_no_name_returns_the_default(name: object) -> None:
    """As for any Mapping: get() never raises for a key that is not there, whatever it is."""
    headers = HTTPHeaderMap([("A", "1")])
    assert headers.get(name, "fallback") == "fallback"  # type: ignore[arg-type]
    assert headers.get(name) is None  # type: ignore[arg-type]


def test_get_of_a_field_with_an_empty_value_is_not_the_default() -> None:
    headers = HTTPHeaderMap([("A", "")])
    assert headers.get("a", "fallback") == [b""]


def test_contains_is_case_insensitive() -> None:
    headers = HTTPHeaderMap([("X-Thing", "1")])
    assert "x-thing" in headers
    assert b"X-THING" in headers
    assert "x-other" not in headers
    assert 12 not in headers
    assert ("x-thing", b"1") not in headers


def test_lowercase_lookup_on_lowercase_storage() -> None:
    # The HTTP/2 case: names arrive lower-case and are looked up lower-case.
    headers = HTTPHeaderMap.from_trusted([(b":status", b"200"), (b"server", b"x")])
    assert headers[b":status"] == [b"200"]
    assert headers["server"] == [b"x"]


def test_comma_joined_values_are_split_and_stripped() -> None:
    headers = HTTPHeaderMap([("Accept", " text/html ,text/plain,\t*/* ")])
    assert headers["accept"] == [b"text/html", b"text/plain", b"*/*"]


def test_values_keep_order_across_fields() -> None:
    headers = HTTPHeaderMap([("Via", "1.1 a, 1.1 b"), ("Other", "x"), ("VIA", "1.1 c")])
    assert headers["via"] == [b"1.1 a", b"1.1 b", b"1.1 c"]


def test_single_values_are_stripped() -> None:
    headers = HTTPHeaderMap([("X-A", "  padded\t")])
    assert headers["x-a"] == [b"padded"]


def test_commas_inside_quoted_strings_do_not_split() -> None:
    headers = HTTPHeaderMap(
        [("Link", '<a>; title="one, two", <b>; rel=next'), ("X-Q", r'"a\", b", c')]
    )
    assert headers["link"] == [b'<a>; title="one, two"', b"<b>; rel=next"]
    # An escaped quote does not end the quoted string.
    assert headers["x-q"] == [rb'"a\", b"', b"c"]


def test_unterminated_quote_runs_to_the_end() -> None:
    headers = HTTPHeaderMap([("X-Q", 'a, "b, c')])
    assert headers["x-q"] == [b"a", b'"b, c']


def test_empty_list_elements_are_dropped_but_a_value_remains() -> None:
    headers = HTTPHeaderMap([("X-A", "a, , b,"), ("X-B", ","), ("X-C", "")])
    assert headers["x-a"] == [b"a", b"b"]
    assert headers["x-b"] == [b""]
    assert headers["x-c"] == [b""]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Set-Cookie", "id=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/"),
        ("Date", "Tue, 15 Nov 1994 08:12:31 GMT"),
        ("Expires", "Thu, 01 Dec 1994 16:00:00 GMT"),
        ("Last-Modified", "Tue, 15 Nov 1994 12:45:26 GMT"),
        ("If-Modified-Since", "Sat, 29 Oct 1994 19:43:31 GMT"),
        ("Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT"),
        ("WWW-Authenticate", 'Digest realm="x", nonce="y", qop="auth"'),
        ("Proxy-Authenticate", "Basic realm=a, charset=UTF-8"),
        ("Authorization", 'Digest username="a", realm="b"'),
        ("User-Agent", "Mozilla/5.0 (X11, Linux x86_64)"),
        ("Cookie", "a=1, b=2"),
        ("Location", "https://example.com/a,b?c=d,e"),
    ],
)
def test_unsplit_headers_keep_commas(name: str, value: str) -> None:
    headers = HTTPHeaderMap([(name, value)])
    assert headers[name] == [value.encode()]
    assert headers.items() == [(name.lower().encode(), value.encode())]
    assert len(headers) == 1


def test_unsplit_headers_constant_is_lowercase_bytes() -> None:
    assert b"set-cookie" in UNSPLIT_HEADERS
    assert b"date" in UNSPLIT_HEADERS
    assert b"accept" not in UNSPLIT_HEADERS
    assert all(name == name.lower() for name in UNSPLIT_HEADERS)


def test_repeated_set_cookie_stays_separate() -> None:
    headers = HTTPHeaderMap([("Set-Cookie", "a=1; Path=/"), ("set-cookie", "b=2, c")])
    assert headers["set-cookie"] == [b"a=1; Path=/", b"b=2, c"]


# -- Iteration and views ------------------------------------------------------------------------


def test_iteration_yields_canonical_pairs() -> None:
    headers = HTTPHeaderMap([("Accept", "a, b"), ("Host", "h"), ("X-Dup", "1"), ("x-dup", "2")])
    expected = [
        (b"accept", b"a"),
        (b"accept", b"b"),
        (b"host", b"h"),
        (b"x-dup", b"1"),
        (b"x-dup", b"2"),
    ]
    assert list(headers) == expected
    assert headers.items() == expected
    assert headers.keys() == [b"accept", b"accept", b"host", b"x-dup", b"x-dup"]
    assert headers.values() == [b"a", b"b", b"h", b"1", b"2"]
    assert len(headers) == 5
    assert isinstance(headers.items(), list)
    assert isinstance(headers.keys(), list)
    assert isinstance(headers.values(), list)


def test_iter_raw_round_trips_the_header_block() -> None:
    block = (
        b"Content-Type: text/html\r\n"
        b"Accept: a, b\r\n"
        b"Set-Cookie: x=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT\r\n"
        b"ACCEPT: c\r\n"
    )
    pairs = []
    for line in block.split(b"\r\n")[:-1]:
        name, _, value = line.partition(b": ")
        pairs.append((name, value))
    headers = HTTPHeaderMap(pairs)
    rebuilt = b"".join(name + b": " + value + b"\r\n" for name, value in headers.iter_raw())
    assert rebuilt == block
    assert headers["accept"] == [b"a", b"b", b"c"]


def test_bool_reflects_content() -> None:
    headers = HTTPHeaderMap()
    headers["a"] = "1"
    assert headers
    headers.clear()
    assert not headers


# -- Changing -----------------------------------------------------------------------------------


def test_setitem_appends() -> None:
    headers = HTTPHeaderMap()
    headers["Accept"] = "a"
    headers[b"accept"] = b"b"
    assert headers["ACCEPT"] == [b"a", b"b"]
    assert list(headers.iter_raw()) == [(b"Accept", b"a"), (b"accept", b"b")]


def test_replace_takes_the_place_of_the_first_field_and_removes_the_others() -> None:
    headers = HTTPHeaderMap([("A", "1"), ("B", "x"), ("a", "2"), ("C", "y")])
    headers.replace("A", "3")
    assert list(headers.iter_raw()) == [(b"A", b"3"), (b"B", b"x"), (b"C", b"y")]
    headers.replace("D", "new")  # absent: added at the end
    assert list(headers.iter_raw())[-1] == (b"D", b"new")


def test_replace_with_invalid_value_leaves_map_unchanged() -> None:
    headers = HTTPHeaderMap([("A", "1")])
    with pytest.raises(InvalidRequest):
        headers.replace("A", "bad\r\nvalue")
    assert headers["a"] == [b"1"]


def test_delitem_removes_every_field_of_the_name() -> None:
    headers = HTTPHeaderMap([("A", "1"), ("B", "2"), ("a", "3")])
    del headers["A"]
    assert "a" not in headers
    assert list(headers.iter_raw()) == [(b"B", b"2")]
    with pytest.raises(KeyError):
        del headers["a"]


def test_pop() -> None:
    headers = HTTPHeaderMap([("A", "1, 2"), ("B", "x"), ("a", "3")])
    assert headers.pop("a") == [b"1", b"2", b"3"]
    assert "a" not in headers
    assert headers.pop("a", None) is None
    assert headers.pop("a", "d") == "d"
    with pytest.raises(KeyError):
        headers.pop("a")
    with pytest.raises(TypeError):
        headers.pop("a", 1, 2)


def test_popitem_removes_first_name_entirely() -> None:
    headers = HTTPHeaderMap([("A", "1"), ("B", "2"), ("a", "3")])
    assert headers.popitem() == (b"a", [b"1", b"3"])
    assert headers.popitem() == (b"b", [b"2"])
    with pytest.raises(KeyError):
        headers.popitem()


def test_clear() -> None:
    headers = HTTPHeaderMap([("A", "1"), ("B", "2")])
    headers.clear()
    assert len(headers) == 0
    assert "a" not in headers


def test_setdefault() -> None:
    headers = HTTPHeaderMap([("A", "1")])
    assert headers.setdefault("a", "2") == [b"1"]
    assert headers["a"] == [b"1"]
    assert headers.setdefault("B", "x, y") == [b"x", b"y"]
    assert list(headers.iter_raw()) == [(b"A", b"1"), (b"B", b"x, y")]
    with pytest.raises(InvalidRequest):
        headers.setdefault("C", "bad\n")


def test_update_appends() -> None:
    headers = HTTPHeaderMap([("A", "1")])
    headers.update({"A": "2"}, B="3")
    headers.update([("a", "4")])
    headers.update(HTTPHeaderMap([("A", "5")]))
    assert headers["a"] == [b"1", b"2", b"4", b"5"]
    assert headers["b"] == [b"3"]
    with pytest.raises(TypeError):
        headers.update({}, {})  # type: ignore[call-arg]


def test_merging_a_map_into_itself_changes_nothing() -> None:
    headers = HTTPHeaderMap([("hi", "there")])
    headers.merge(headers)
    assert list(headers.iter_raw()) == [(b"hi", b"there")]


def test_merge_from_every_source() -> None:
    headers = HTTPHeaderMap([("A", "1")])
    headers.merge(HTTPHeaderMap([("A", "2")]))
    headers.merge({"a": "3", "B": ["4", "5"]})
    headers.merge([(b"A", b"6")])
    headers.merge(iter([("C", "7")]))
    assert headers["a"] == [b"1", b"2", b"3", b"6"]
    assert headers["b"] == [b"4", b"5"]
    assert headers["c"] == [b"7"]


def test_copy_is_independent() -> None:
    headers = HTTPHeaderMap([("A", "1")])
    clone = headers.copy()
    clone["A"] = "2"
    assert headers["a"] == [b"1"]
    assert clone["a"] == [b"1", b"2"]
    assert type(clone) is HTTPHeaderMap


def test_from_trusted_stores_the_list_unchecked() -> None:
    pairs = [(b"Content-Length", b"3")]
    headers = HTTPHeaderMap.from_trusted(pairs)
    assert headers["content-length"] == [b"3"]
    # Not copied: the map uses the list it was given.
    pairs.append((b"X-Late", b"1"))
    assert headers["x-late"] == [b"1"]
    # Not validated: received data is the protocol layer's business.
    odd = HTTPHeaderMap.from_trusted([(b"bad name", b"v")])
    assert odd[b"bad name"] == [b"v"]


# -- Validation ---------------------------------------------------------------------------------

BAD_NAMES = ["", "bad name", "bad:name", "bad\r\nname", "nul\x00", "caf\u00e9", "a(b)", "x,y"]
BAD_VALUES = ["a\rb", "a\nb", "a\x00b", "a\r\nInjected: yes", b"\n"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_rejected(name: str) -> None:
    headers = HTTPHeaderMap()
    with pytest.raises(InvalidRequest):
        headers[name] = "v"
    with pytest.raises(InvalidRequest):
        headers.replace(name, "v")
    with pytest.raises(InvalidRequest):
        headers.merge([(name, "v")])
    with pytest.raises(InvalidRequest):
        HTTPHeaderMap([(name, "v")])
    assert list(headers.iter_raw()) == []


@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_values_are_rejected(value: str | bytes) -> None:
    headers = HTTPHeaderMap()
    with pytest.raises(InvalidRequest):
        headers["X-A"] = value
    with pytest.raises(InvalidRequest):
        headers.replace("X-A", value)
    with pytest.raises(InvalidRequest):
        headers.merge({"X-A": value})
    with pytest.raises(InvalidRequest):
        HTTPHeaderMap(x_a=value)
    with pytest.raises(InvalidRequest):
        headers.update([("X-A", value)])
    assert list(headers.iter_raw()) == []


def test_token_characters_are_accepted() -> None:
    name = "!#$%&'*+-.^_`|~09azAZ"
    headers = HTTPHeaderMap([(name, "v\tw \x7f")])
    assert headers[name] == [b"v\tw \x7f"]


def test_non_text_values_are_rejected() -> None:
    with pytest.raises(InvalidRequest):
        HTTPHeaderMap([("X-A", 5)])  # type: ignore[list-item]
    with pytest.raises(InvalidRequest):
        HTTPHeaderMap([(5, "v")])  # type: ignore[list-item]


def test_invalid_request_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        HTTPHeaderMap([("X-A", "a\nb")])


# -- Equality and repr --------------------------------------------------------------------------


def test_equal_maps_ignore_order_between_names_and_case() -> None:
    first = HTTPHeaderMap([("A", "1"), ("B", "2"), ("a", "3")])
    second = HTTPHeaderMap([("b", "2"), ("A", "1"), ("a", "3")])
    assert first == second
    assert (first != second) is False


def test_fields_are_compared_as_stored() -> None:
    # As in hyper 0.7: one field "1, 3" is not the two fields "1" and "3".
    assert HTTPHeaderMap([("A", "1"), ("a", "3")]) != HTTPHeaderMap([("A", "1, 3")])


def test_order_within_a_name_matters() -> None:
    assert HTTPHeaderMap([("A", "1"), ("A", "2")]) != HTTPHeaderMap([("A", "2"), ("A", "1")])


def test_equal_to_dicts() -> None:
    headers = HTTPHeaderMap([("Content-Type", "text/html"), ("Accept", "a, b")])
    assert headers == {"content-type": "text/html", "accept": "a, b"}
    assert headers == {b"Content-Type": b"text/html", b"ACCEPT": [b"a, b"]}
    assert headers != {"content-type": "text/html", "accept": ["a", "b"]}  # two fields
    assert headers != {"content-type": "text/html"}
    assert headers != {"content-type": "text/plain", "accept": "a, b"}


def test_equal_to_list_of_pairs() -> None:
    headers = HTTPHeaderMap([("A", "1"), ("B", "2")])
    assert headers == [("b", "2"), (b"a", b"1")]
    assert headers != [("a", "1")]


def test_equality_with_invalid_or_other_types() -> None:
    headers = HTTPHeaderMap([("A", "1")])
    assert headers != {"a": 1}
    assert headers != [("a\n", "1")]
    assert headers != "a: 1"
    assert headers != 1
    assert headers.__eq__(1) is NotImplemented
    assert headers.__eq__(("a", "1")) is NotImplemented


def test_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(HTTPHeaderMap())


def test_repr_shows_raw_pairs() -> None:
    headers = HTTPHeaderMap([("Host", "example.com"), ("Accept", "a, b")])
    assert repr(headers) == "HTTPHeaderMap([(b'Host', b'example.com'), (b'Accept', b'a, b')])"
    assert repr(HTTPHeaderMap()) == "HTTPHeaderMap([])"
