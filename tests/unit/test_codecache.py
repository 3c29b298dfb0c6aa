from pathlib import Path

from foundry.entrypoints.codecache import CodeCache
from tests.process_support import python_lines

_CLASSES = """
import attrs

@attrs.frozen
class Point:
    x: int
    y: int = 0

@attrs.frozen
class Other:
    x: int
    y: int = 0

p = Point(1, 2)
print(p, p == Point(1, 2), p != Point(1, 3), Point.__init__.__annotations__)
print(hash(p) == hash((hash("<attrs generated hash __main__.Point>"), 1, 2)))
print(hash(Other(1, 2)) == hash((hash("<attrs generated hash __main__.Other>"), 1, 2)))
"""


def _cached(path: Path) -> str:
    return (
        "from foundry.entrypoints import codecache\n"
        f"cache = codecache.install({str(path)!r})\n"
        f"{_CLASSES}\n"
        "print('misses', cache.misses)\n"
    )


def test_attrs_classes_made_from_the_cache_behave_as_compiled_ones(tmp_path: Path) -> None:
    path = tmp_path / "methods.attrs"
    plain = python_lines(_CLASSES)

    first = python_lines(_cached(path))
    second = python_lines(_cached(path))  # another process: another salt for hash()

    assert plain[-1] == "True"
    assert first[:-1] == plain
    assert second[:-1] == plain
    assert first[-1] != "misses 0"
    assert second[-1] == "misses 0"


def test_a_changed_script_is_compiled_and_the_kept_code_is_the_compiled_code(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "cache")
    script = "def f(a: int) -> int:\n    return a + 1\n"
    cache = CodeCache(path)
    cache.compile(script, "<generated>", "exec")
    cache.save()

    again = CodeCache(path)
    code = again.compile(script, "<generated>", "exec")
    changed = again.compile(script.replace("1", "2"), "<generated>", "exec")

    assert code == compile(script, "<generated>", "exec", dont_inherit=True)
    assert changed == compile(script.replace("1", "2"), "<generated>", "exec", dont_inherit=True)
    assert again.misses == 1


def test_an_unreadable_cache_is_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    path.write_bytes(b"not a cache")
    cache = CodeCache(str(path))

    cache.compile("x = 1\n", "<generated>", "exec")

    assert cache.misses == 1
