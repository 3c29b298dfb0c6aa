from importlib import resources

from foundry.adapters.redis.runner import _lua_folder, library


def test_the_lua_folder_is_the_one_importlib_resources_gives() -> None:
    assert _lua_folder() == resources.files("foundry.adapters.redis") / "lua"
    assert library().text.startswith(f"#!lua name={library().name}\n")
