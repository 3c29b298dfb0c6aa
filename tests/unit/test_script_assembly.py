"""Each queue script carries only the _lib.lua helpers it names (directly or through another)."""

from __future__ import annotations

from adapters.redis.scripts import assemble

LIB = """local JOBS = KEYS[1]

-- Says hello.
local function hello()
  return "hello"
end

local function greet()
  return hello() .. "!"
end

-- Never named by the script below except in a comment: left out.
local function unused()
  return 1
end
"""


def test_a_script_gets_the_preamble_and_the_helpers_it_names_transitively() -> None:
    source = assemble(LIB, "-- unused() is not called\nreturn greet()\n")

    assert source.startswith("local JOBS = KEYS[1]\n")
    assert "local function hello()" in source
    assert source.index("local function hello()") < source.index("local function greet()")
    assert "-- Says hello." in source
    assert "local function unused()" not in source
    assert source.endswith("return greet()\n")


def test_a_script_that_names_no_helper_gets_only_the_preamble() -> None:
    assert assemble(LIB, "return 1") == "local JOBS = KEYS[1]\n\n\nreturn 1"
