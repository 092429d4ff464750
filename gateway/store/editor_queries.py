"""Blocking queries on the ComfyUI editor's user data (run on the store thread).

A user's files and folders are rows keyed by (user, path); ``path`` is relative to the user's root,
"/"-separated and already checked by the caller (gateway/editor/paths.py). A folder is a row of its
own, created for every parent of a file written (as ``os.makedirs`` would), so it outlives its files.
Each function that changes rows does so in one transaction: every gateway instance on the same
database sees a change whole or not at all.
"""
import json
import logging

from peewee import IntegrityError, OperationalError, fn

from .common import now

logger = logging.getLogger(__name__)

INFO_COLUMNS = ("path", "is_dir", "size", "created_at", "modified_at")
RETRIES = 5
RETRY_ERRORS = (1213, 1205)  # MySQL deadlock, lock wait timeout: the transaction may simply run again


def _retrying(work):
    """Run a transaction again when another instance's transaction collided with it (MySQL)."""
    for attempt in range(RETRIES):
        try:
            return work()
        except IntegrityError:
            if attempt == RETRIES - 1:
                raise  # both inserted the same new row: the second try finds the first one's row
        except OperationalError as exc:
            if not exc.args or exc.args[0] not in RETRY_ERRORS or attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _info(row):
    return {name: row[name] for name in INFO_COLUMNS}


def _parents(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _under(ef, folder):
    """Rows inside folder. SUBSTR, not LIKE: "_" and "%" in a name are no wildcards."""
    prefix = folder + "/"
    return fn.SUBSTR(ef.path, 1, len(prefix)) == prefix


def _select_one(m, user, path, lock=False):
    ef = m.EditorFile
    query = ef.select().where((ef.user == user) & (ef.path == path))
    if lock and m.EditorFile._meta.database.for_update:
        query = query.for_update()  # MySQL: other instances wait for this transaction
    rows = list(query.limit(1).dicts())
    return rows[0] if rows else None


def get_file(m, user, path):
    """The row at path (with content), or None."""
    return _select_one(m, user, path)


def has_data(m, user):
    """True when the user has stored anything (ComfyUI's "migrated")."""
    ef = m.EditorFile
    return ef.select(ef.id).where(ef.user == user).limit(1).exists()


def list_tree(m, user, folder):
    """Info rows (no content) of everything inside folder ("" is the root), ordered by path."""
    ef = m.EditorFile
    columns = [getattr(ef, name) for name in INFO_COLUMNS]
    query = ef.select(*columns).where(ef.user == user)
    if folder:
        query = query.where(_under(ef, folder))
    return [dict(row) for row in query.order_by(ef.path).dicts()]


def _make_parents(m, user, path, stamp):
    """Create missing parent folders; the first parent that is a file is returned (None when fine)."""
    for parent in _parents(path):
        row = _select_one(m, user, parent)
        if row is None:
            m.EditorFile.insert(user=user, path=parent, is_dir=True, content=None, size=0,
                                created_at=stamp, modified_at=stamp).execute()
        elif not row["is_dir"]:
            return parent
    return None


def put_file(m, user, path, content, overwrite):
    """Write a file. Returns ("ok", info), ("exists", None), ("is_dir", None) or ("blocked", parent)."""
    return _retrying(lambda: _put_file(m, user, path, content, overwrite))


def _put_file(m, user, path, content, overwrite):
    ef = m.EditorFile
    stamp = now()
    with ef._meta.database.atomic():
        row = _select_one(m, user, path, lock=True)
        if row is not None and row["is_dir"]:
            return "is_dir", None
        if row is not None and not overwrite:
            return "exists", None
        blocked = _make_parents(m, user, path, stamp)
        if blocked is not None:
            return "blocked", blocked
        if row is None:
            ef.insert(user=user, path=path, is_dir=False, content=content, size=len(content),
                      created_at=stamp, modified_at=stamp).execute()
        else:
            ef.update(content=content, size=len(content), modified_at=stamp).where(ef.id == row["id"]).execute()
    return "ok", _info(_select_one(m, user, path))


def delete_file(m, user, path):
    """Delete a file. Returns "ok", "missing" or "is_dir"."""
    return _retrying(lambda: _delete_file(m, user, path))


def _delete_file(m, user, path):
    ef = m.EditorFile
    with ef._meta.database.atomic():
        row = _select_one(m, user, path, lock=True)
        if row is None:
            return "missing"
        if row["is_dir"]:
            return "is_dir"
        ef.delete().where(ef.id == row["id"]).execute()
    return "ok"


def move(m, user, source, dest, overwrite):
    """Move a file or a folder with its content. Returns ("ok", info), ("missing", None),
    ("exists", None), ("into_itself", None) or ("blocked", parent)."""
    return _retrying(lambda: _move(m, user, source, dest, overwrite))


def _move(m, user, source, dest, overwrite):
    ef = m.EditorFile
    stamp = now()
    with ef._meta.database.atomic():
        row = _select_one(m, user, source, lock=True)
        if row is None:
            return "missing", None
        if row["is_dir"] and dest.startswith(source + "/"):
            return "into_itself", None
        target = _select_one(m, user, dest, lock=True)
        if target is not None and not overwrite:
            return "exists", None
        if source == dest:
            return "ok", _info(row)  # onto itself with overwrite: nothing moves (as shutil.move does)
        if target is not None and target["is_dir"] != row["is_dir"]:
            return "exists", None  # a file never replaces a folder, nor a folder a file
        blocked = _make_parents(m, user, dest, stamp)
        if blocked is not None:
            return "blocked", blocked
        if target is not None:
            ef.delete().where((ef.user == user) & ((ef.path == dest) | _under(ef, dest))).execute()
        if row["is_dir"]:
            for child in list(ef.select(ef.id, ef.path).where((ef.user == user) & _under(ef, source)).dicts()):
                ef.update(path=dest + child["path"][len(source):]).where(ef.id == child["id"]).execute()
        ef.update(path=dest, modified_at=stamp).where(ef.id == row["id"]).execute()
    return "ok", _info(_select_one(m, user, dest))


def merge_json(m, user, path, changes, indent=4):
    """Read the JSON object stored at path (or {}), update it with changes, write it back, in one
    transaction (locked on MySQL, so two instances never lose each other's change). Returns the result,
    or None when a folder has that name."""
    return _retrying(lambda: _merge_json(m, user, path, changes, indent))


def _merge_json(m, user, path, changes, indent=4):
    ef = m.EditorFile
    stamp = now()
    with ef._meta.database.atomic():
        row = _select_one(m, user, path, lock=True)
        if row is not None and row["is_dir"]:
            return None  # a folder is in the way
        current = {}
        if row is not None:
            try:
                loaded = json.loads(bytes(row["content"] or b"{}").decode("utf-8"))
                current = loaded if isinstance(loaded, dict) else {}
            except (ValueError, UnicodeDecodeError):
                logger.warning("editor data %s of %s was not a JSON object; starting afresh", path, user)
        current.update(changes)
        content = json.dumps(current, indent=indent, ensure_ascii=False).encode("utf-8")
        if row is None:
            _make_parents(m, user, path, stamp)
            ef.insert(user=user, path=path, is_dir=False, content=content, size=len(content),
                      created_at=stamp, modified_at=stamp).execute()
        else:
            ef.update(content=content, size=len(content), modified_at=stamp).where(ef.id == row["id"]).execute()
    return current
