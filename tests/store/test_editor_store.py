"""The editor's user data in the store, on SQLite and on MariaDB (store fixture); two stores on one
MariaDB database stand for two gateway instances."""
import asyncio
import json

from gateway.store import Store

from .services import temporary_mysql_database

USER = "default"


async def test_files_folders_and_listing(store):
    assert await store.editor_has_data(USER) is False
    outcome, info = await store.editor_put(USER, "workflows/a_b/x.json", b'{"a": 1}', True)
    assert outcome == "ok"
    assert info["path"] == "workflows/a_b/x.json" and info["size"] == 8 and info["is_dir"] is False
    assert await store.editor_has_data(USER) is True
    folder = await store.editor_get(USER, "workflows/a_b")
    assert folder["is_dir"] is True and folder["content"] is None
    row = await store.editor_get(USER, "workflows/a_b/x.json")
    assert row["content"] == b'{"a": 1}' and isinstance(row["content"], bytes)
    await store.editor_put(USER, "workflows/aXb/y.json", "ünï 🎨".encode(), True)
    # "_" is no wildcard: the folder a_b holds only its own file
    assert [r["path"] for r in await store.editor_tree(USER, "workflows/a_b")] == ["workflows/a_b/x.json"]
    assert sorted(r["path"] for r in await store.editor_tree(USER, "workflows")) == [
        "workflows/aXb", "workflows/aXb/y.json", "workflows/a_b", "workflows/a_b/x.json"]
    assert "content" not in (await store.editor_tree(USER, ""))[0]
    assert await store.editor_tree("someone-else", "") == []


async def test_overwrite_conflicts_and_blocked_paths(store):
    assert (await store.editor_put(USER, "w/x.json", b"1", True))[0] == "ok"
    assert await store.editor_put(USER, "w/x.json", b"2", False) == ("exists", None)
    assert (await store.editor_get(USER, "w/x.json"))["content"] == b"1"
    assert (await store.editor_put(USER, "w/x.json", b"22", True))[1]["size"] == 2
    assert await store.editor_put(USER, "w", b"x", True) == ("is_dir", None)
    assert await store.editor_put(USER, "w/x.json/inner", b"x", True) == ("blocked", "w/x.json")


async def test_delete_and_move(store):
    await store.editor_put(USER, "w/a.json", b"a", True)
    await store.editor_put(USER, "w/sub/b.json", b"b", True)
    assert await store.editor_delete(USER, "w/none.json") == "missing"
    assert await store.editor_delete(USER, "w/sub") == "is_dir"
    outcome, info = await store.editor_move(USER, "w/a.json", "renamed/a2.json", False)
    assert outcome == "ok" and info["path"] == "renamed/a2.json"
    assert await store.editor_get(USER, "w/a.json") is None
    assert (await store.editor_get(USER, "renamed/a2.json"))["content"] == b"a"
    await store.editor_put(USER, "w/c.json", b"c", True)
    assert await store.editor_move(USER, "w/c.json", "renamed/a2.json", False) == ("exists", None)
    assert (await store.editor_move(USER, "w/c.json", "renamed/a2.json", True))[0] == "ok"
    assert (await store.editor_get(USER, "renamed/a2.json"))["content"] == b"c"
    assert await store.editor_move(USER, "renamed/a2.json", "renamed/a2.json", False) == ("exists", None)
    outcome, info = await store.editor_move(USER, "renamed/a2.json", "renamed/a2.json", True)  # found by fuzzing
    assert outcome == "ok" and info["path"] == "renamed/a2.json"
    assert (await store.editor_get(USER, "renamed/a2.json"))["content"] == b"c"
    assert await store.editor_move(USER, "w", "w/deeper", True) == ("into_itself", None)
    assert (await store.editor_move(USER, "w", "moved", True))[0] == "ok"
    assert (await store.editor_get(USER, "moved/sub/b.json"))["content"] == b"b"
    assert await store.editor_delete(USER, "moved/sub/b.json") == "ok"
    assert (await store.editor_get(USER, "moved/sub"))["is_dir"] is True  # folders outlive their files


async def test_merge_json_keeps_every_change(store):
    await store.editor_merge_json(USER, "comfy.settings.json", {"a": 1})
    result = await asyncio.gather(*(store.editor_merge_json(USER, "comfy.settings.json", {f"k{i}": i})
                                    for i in range(10)))
    assert result[-1]["a"] == 1
    stored = json.loads((await store.editor_get(USER, "comfy.settings.json"))["content"])
    assert stored == {"a": 1, **{f"k{i}": i for i in range(10)}}


async def test_a_folder_in_the_way_of_the_settings_is_reported(store):
    await store.editor_put(USER, "comfy.settings.json/x", b"1", True)
    assert await store.editor_merge_json(USER, "comfy.settings.json", {"a": 1}) is None


async def test_two_instances_on_one_mysql_database_see_the_same_data():
    with temporary_mysql_database() as mysql:
        await _two_instances({"kind": "mysql", "mysql": mysql})


async def _two_instances(config):
    first, second = Store(**config), Store(**config)
    await first.open()
    await second.open()
    try:
        await first.editor_put(USER, "workflows/shared.json", b"{}", True)
        assert (await second.editor_get(USER, "workflows/shared.json"))["content"] == b"{}"
        # Both instances change settings at once: the row lock keeps every change.
        await asyncio.gather(*(inst.editor_merge_json(USER, "comfy.settings.json", {f"{n}{i}": i})
                               for i in range(8) for n, inst in (("a", first), ("b", second))))
        stored = json.loads((await first.editor_get(USER, "comfy.settings.json"))["content"])
        assert len(stored) == 16
    finally:
        await first.close()
        await second.close()
