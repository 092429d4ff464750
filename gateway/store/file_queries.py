"""Blocking queries on uploads, outputs and settings (run on the store thread)."""
import logging

from .common import check_fields, first_dict, now

logger = logging.getLogger(__name__)


def add_upload(m, fields):
    """Record an upload (replacing the row of the same type/subfolder/name)."""
    row = check_fields(m.Upload, fields)
    row.pop("id", None)
    row.setdefault("subfolder", "")
    row.setdefault("created_at", now())
    m.Upload.replace(row).execute()
    return find_upload(m, row["type"], row["subfolder"], row["name"])


def find_upload(m, type_, subfolder, name):
    """The upload stored under type/subfolder/name, or None."""
    up = m.Upload
    return first_dict(up.select().where(
        (up.type == type_) & (up.subfolder == subfolder) & (up.name == name)))


def list_uploads(m):
    """Every upload row (the gateway keeps this index in memory)."""
    up = m.Upload
    return [dict(row) for row in up.select().order_by(up.id).dicts()]


def find_upload_by_hash(m, sha256):
    """The newest upload with this content hash, or None."""
    up = m.Upload
    return first_dict(up.select().where(up.sha256 == sha256)
                      .order_by(up.created_at.desc(), up.id.desc()))


def add_outputs(m, prompt_id, worker_id, files):
    """Remember which worker produced each output file; returns the count."""
    stamp = now()
    rows = [{"prompt_id": prompt_id, "worker_id": worker_id,
             "type": f.get("type") or "output",
             "subfolder": f.get("subfolder") or "",
             "filename": f["filename"], "created_at": stamp}
            for f in files]
    if rows:
        with m.Output._meta.database.atomic():
            m.Output.insert_many(rows).execute()
    return len(rows)


def find_output(m, filename, subfolder, type_):
    """``{prompt_id, worker_id}`` of the newest job that wrote this file."""
    out = m.Output
    return first_dict(
        out.select(out.prompt_id, out.worker_id)
        .where((out.filename == filename) & (out.subfolder == subfolder)
               & (out.type == type_))
        .order_by(out.created_at.desc(), out.id.desc()))


def get_settings(m):
    """All settings as ``{key: value}``."""
    return {row.key: row.value for row in m.Setting.select()}


def set_settings(m, values):
    """Insert or replace each key of ``values``; a None value deletes the key."""
    if not values:
        return
    st = m.Setting
    with st._meta.database.atomic():
        for key, value in values.items():
            if value is None:
                st.delete().where(st.key == key).execute()
            else:
                st.replace(key=key, value=value).execute()


def uploads_since(m, last_id):
    """Upload rows added after row id `last_id` (another instance's uploads), oldest first."""
    up = m.Upload
    return list(up.select().where(up.id > last_id).order_by(up.id).dicts())


def upload_blob_parts(m, sha256):
    """How many parts of an upload's bytes the store holds."""
    blob = m.UploadBlob
    return blob.select().where(blob.sha256 == sha256).count()


def put_upload_blob(m, sha256, path, part_size):
    """Copy a file's bytes into the store in parts of `part_size` (one transaction; kept once per hash)."""
    blob = m.UploadBlob
    db = blob._meta.database
    with db.atomic():
        if blob.select().where(blob.sha256 == sha256).exists():
            return False
        with open(path, "rb") as handle:
            part = 0
            while True:
                data = handle.read(part_size)
                if not data and part:
                    break
                blob.insert(sha256=sha256, part=part, data=data).execute()
                part += 1
                if len(data) < part_size:
                    break
    return True


def export_upload_blob(m, sha256, target):
    """Write an upload's stored bytes to the file `target`; False when the store does not hold them."""
    blob = m.UploadBlob
    query = blob.select(blob.data).where(blob.sha256 == sha256).order_by(blob.part).tuples()
    found = False
    with open(target, "wb") as handle:
        for (data,) in query.iterator():
            handle.write(bytes(data))
            found = True
    return found
