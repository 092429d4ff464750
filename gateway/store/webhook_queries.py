"""Blocking queries on the webhook outbox (run on the store thread)."""

from .common import check_fields, now


def add_delivery(m, fields):
    """Queue a notification; returns its id."""
    row = check_fields(m.WebhookDelivery, fields)
    row.pop("id", None)
    row.setdefault("created_at", now())
    row.setdefault("next_attempt_at", row["created_at"])
    return m.WebhookDelivery.insert(row).execute()


def due_deliveries(m, until, limit):
    """Notifications whose next try is due by ``until``, earliest first."""
    wd = m.WebhookDelivery
    return list(wd.select().where(wd.next_attempt_at <= until).order_by(wd.next_attempt_at, wd.id)
                .limit(limit).dicts())


def next_due_at(m):
    """When the earliest pending notification is due (None when the outbox is empty)."""
    wd = m.WebhookDelivery
    row = wd.select(wd.next_attempt_at).order_by(wd.next_attempt_at).limit(1).first()
    return row.next_attempt_at if row else None


def retry_delivery(m, delivery_id, attempts, next_attempt_at, error):
    """Record a failed try and when to try again."""
    wd = m.WebhookDelivery
    return wd.update(attempts=attempts, next_attempt_at=next_attempt_at, last_error=(error or "")[:255]) \
        .where(wd.id == delivery_id).execute()


def delete_delivery(m, delivery_id):
    """Remove a notification (delivered, or given up)."""
    wd = m.WebhookDelivery
    return wd.delete().where(wd.id == delivery_id).execute()
