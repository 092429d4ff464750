"""Small helpers shared by the blocking query modules."""
import logging
import time

logger = logging.getLogger(__name__)


def now():
    """Current time as epoch seconds (float)."""
    return time.time()


def check_fields(model, fields):
    """Raise ValueError naming any key of ``fields`` that is not a column."""
    unknown = fields.keys() - model._meta.fields.keys()
    if unknown:
        raise ValueError("unknown %s field(s): %s"
                         % (model._meta.table_name, ", ".join(sorted(unknown))))
    return dict(fields)


def first_dict(query):
    """The first row of a query as a dict, or None."""
    rows = list(query.limit(1).dicts())
    return rows[0] if rows else None
