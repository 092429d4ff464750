"""Peewee models of the gateway's tables (mirrored by docs/mysql_schema.sql).

The classes here are unbound templates. ``bind_models(db)`` makes a private set
of subclasses bound to one database, so two stores (a test's SQLite and MySQL,
or two gateway instances in one process) never share a global binding.
"""
import json
import logging
from types import SimpleNamespace

from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DoubleField,
    FixedCharField,
    IntegerField,
    Model,
    TextField,
)

logger = logging.getLogger(__name__)

JOB_STATES = ("queued", "submitted", "running", "done", "failed")
UNFINISHED_STATES = ("queued", "submitted", "running")
FINISHED_STATES = ("done", "failed")


class RawJSON(str):
    """Text that is already JSON: a JSONTextField writes it as it is."""


class JSONTextField(TextField):
    """TEXT column holding JSON; dicts/lists/scalars go in and come out."""

    field_type = "TEXT"

    def db_value(self, value):
        if value is None:
            return None
        if isinstance(value, RawJSON):
            return str(value)  # already JSON text (a waiting job's packed body)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def python_value(self, value):
        if value is None:
            return None
        return json.loads(value)


class LongJSONTextField(JSONTextField):
    """LONGTEXT column holding JSON (SQLite sees it as TEXT affinity)."""

    field_type = "LONGTEXT"


class LongBlobField(BlobField):
    """LONGBLOB column (up to 4 GB in MySQL; BLOB affinity in SQLite): bytes in, bytes out."""

    field_type = "LONGBLOB"

    def python_value(self, value):
        return bytes(value) if value is not None else None


def _default(literal):
    """Also put the Python default into the DDL so hand-written SQL agrees."""
    return [SQL("DEFAULT %s" % literal)]


class BaseModel(Model):
    class Meta:
        database = None
        legacy_table_names = False


class Worker(BaseModel):
    id = AutoField()
    name = CharField(max_length=128)
    url = CharField(max_length=512, unique=True)
    weight = DoubleField(default=1.0, constraints=_default(1))
    enabled = BooleanField(default=True, constraints=_default(1))
    draining = BooleanField(default=False, constraints=_default(0))
    max_queue = IntegerField(default=1, constraints=_default(1))
    auth_username = CharField(max_length=255, null=True)
    auth_password = CharField(max_length=255, null=True)
    created_at = DoubleField()
    updated_at = DoubleField()

    class Meta:
        table_name = "workers"


class Job(BaseModel):
    prompt_id = CharField(max_length=36, primary_key=True)
    gateway_job_id = CharField(max_length=36, unique=True)
    seq = BigIntegerField()
    client_id = CharField(max_length=255, null=True)
    priority = IntegerField(default=0, constraints=_default(0))
    number = DoubleField(null=True)
    state = CharField(max_length=16)
    worker_id = IntegerField(null=True)
    attempts = IntegerField(default=0, constraints=_default(0))
    body = LongJSONTextField()
    history = LongJSONTextField(null=True)
    error = JSONTextField(null=True)
    progress = JSONTextField(null=True)
    webhook = CharField(max_length=1024, null=True)
    created_at = DoubleField(index=True)
    submitted_at = DoubleField(null=True)
    started_at = DoubleField(null=True)
    finished_at = DoubleField(null=True, index=True)  # for job_stats
    updated_at = DoubleField(index=True)  # other instances read what changed since their last look
    epoch = BigIntegerField(null=True)  # the dispatcher lease epoch that wrote the last send intent

    class Meta:
        table_name = "jobs"
        indexes = (
            (("state", "created_at"), False),
            (("worker_id", "created_at"), False),
            (("client_id", "created_at"), False),
        )


class Upload(BaseModel):
    id = AutoField()
    sha256 = FixedCharField(max_length=64, index=True)
    type = CharField(max_length=16)
    subfolder = CharField(max_length=255)
    name = CharField(max_length=255)
    size = BigIntegerField()
    created_at = DoubleField()

    class Meta:
        table_name = "uploads"
        indexes = ((("type", "subfolder", "name"), True),)


class Output(BaseModel):
    id = AutoField()
    prompt_id = CharField(max_length=36, index=True)
    worker_id = IntegerField(null=True)
    type = CharField(max_length=16)
    subfolder = CharField(max_length=255)
    filename = CharField(max_length=255)
    created_at = DoubleField()

    class Meta:
        table_name = "outputs"
        indexes = ((("filename", "subfolder", "type"), False),)


class JobEvent(BaseModel):
    """One step of a job's life (queued, sent to a worker, started, worker lost, done, failed): its timeline."""

    id = AutoField()
    prompt_id = CharField(max_length=36, index=True)
    at = DoubleField()
    kind = CharField(max_length=16)
    worker_id = IntegerField(null=True)
    worker = CharField(max_length=255, null=True)  # the worker's name then (it may be renamed or deleted later)
    detail = CharField(max_length=255, null=True)

    class Meta:
        table_name = "job_events"


class Setting(BaseModel):
    key = CharField(max_length=64, primary_key=True)
    value = JSONTextField()

    class Meta:
        table_name = "settings"


class Lease(BaseModel):
    """A lease held by one gateway instance (the dispatcher); expiry is in the database's own clock."""

    name = CharField(max_length=32, primary_key=True)
    holder = CharField(max_length=64, null=True)
    holder_name = CharField(max_length=255, null=True)
    epoch = BigIntegerField(default=0, constraints=_default(0))
    expires_at = DoubleField(default=0, constraints=_default(0))
    acquired_at = DoubleField(null=True)

    class Meta:
        table_name = "gateway_lease"


class Instance(BaseModel):
    """One running (or recently running) gateway process of the cluster."""

    id = CharField(max_length=64, primary_key=True)
    name = CharField(max_length=255)
    address = CharField(max_length=512, null=True)
    version = CharField(max_length=32)
    role = CharField(max_length=16)
    pid = IntegerField(null=True)
    started_at = DoubleField()
    heartbeat_at = DoubleField(index=True)

    class Meta:
        table_name = "gateway_instances"


class Counter(BaseModel):
    """Cluster-wide counters (the arrival order of jobs)."""

    name = CharField(max_length=32, primary_key=True)
    value = BigIntegerField(default=0, constraints=_default(0))

    class Meta:
        table_name = "gateway_counters"


class WorkerStatus(BaseModel):
    """What the dispatcher last saw of a worker (health, load, node list), for every instance and restarts."""

    worker_id = IntegerField(primary_key=True)
    status = JSONTextField()
    object_info_hash = FixedCharField(max_length=64, null=True)
    updated_at = DoubleField(index=True)

    class Meta:
        table_name = "worker_status"


class ObjectInfo(BaseModel):
    """A worker's /object_info, zlib-compressed JSON, stored once per content hash."""

    hash = FixedCharField(max_length=64, primary_key=True)
    body = LongBlobField()
    created_at = DoubleField()

    class Meta:
        table_name = "object_infos"


class UploadBlob(BaseModel):
    """The bytes of an upload in parts, so every instance reaches them (MySQL store only)."""

    id = AutoField()
    sha256 = FixedCharField(max_length=64)
    part = IntegerField()
    data = LongBlobField()

    class Meta:
        table_name = "upload_blobs"
        indexes = ((("sha256", "part"), True),)


class WebhookDelivery(BaseModel):
    """A webhook notification not delivered yet (the durable outbox): retried with back-off, across restarts."""

    id = AutoField()
    prompt_id = CharField(max_length=36)
    url = CharField(max_length=1024)
    payload = LongJSONTextField()
    attempts = IntegerField(default=0, constraints=_default(0))
    next_attempt_at = DoubleField(index=True)
    last_error = CharField(max_length=255, null=True)
    created_at = DoubleField()

    class Meta:
        table_name = "webhook_outbox"


class EditorFile(BaseModel):
    """A file or folder of the ComfyUI editor's user data (/api/userdata): workflows, settings, ..."""

    id = AutoField()
    user = CharField(max_length=64)
    path = CharField(max_length=512)  # relative to the user's root, "/"-separated, normalised
    is_dir = BooleanField(default=False, constraints=_default(0))
    content = LongBlobField(null=True)  # NULL for a folder
    size = BigIntegerField(default=0, constraints=_default(0))
    created_at = DoubleField()
    modified_at = DoubleField()

    class Meta:
        table_name = "editor_files"
        indexes = ((("user", "path"), True),)


MODELS = (Worker, Job, Upload, Output, JobEvent, Setting, Lease, Instance, Counter, WorkerStatus, ObjectInfo, UploadBlob,
          WebhookDelivery, EditorFile)


def bind_models(db):
    """Return a namespace of model subclasses bound to ``db`` (one per table)."""
    bound = {}
    for base in MODELS:
        meta = type("Meta", (), {"database": db,
                                 "table_name": base._meta.table_name})
        bound[base.__name__] = type(base.__name__, (base,),
                                    {"Meta": meta,
                                     "__module__": base.__module__})
    ns = SimpleNamespace(**bound)
    ns.all = tuple(bound[base.__name__] for base in MODELS)
    return ns
