"""Error types of the gateway and their one JSON shape: {"error": {"type", "message"}}."""

from __future__ import annotations

NO_WORKER_ONLINE = "no worker is online: register a worker or start one, then try again"
NO_WORKER_REGISTERED = "no worker is registered: add one on the admin page or with POST /api/workers, then try again"


class GatewayError(Exception):
    """An error the gateway answers with its own JSON shape and an HTTP status."""

    status = 500
    type = "internal_error"

    def __init__(self, message: str, *, status: int | None = None, type: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.extra = extra or {}

    def to_json(self) -> dict:
        """The body of the error answer."""
        body = {"type": self.type, "message": self.message}
        body.update(self.extra)
        return {"error": body}


class BadRequest(GatewayError):
    """The client sent something invalid; the message names the field."""

    status = 400
    type = "bad_request"


class Unauthorized(GatewayError):
    status = 401
    type = "unauthorized"


class Forbidden(GatewayError):
    """The request came from a page or a name that is not the gateway's own (Host/Origin check)."""

    status = 403
    type = "forbidden"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "unsupported_media_type"


class NotFound(GatewayError):
    status = 404
    type = "not_found"


class Conflict(GatewayError):
    status = 409
    type = "conflict"


class WorkerBadAnswer(GatewayError):
    """A worker answered with something the gateway cannot use."""

    status = 502
    type = "worker_bad_answer"


class WorkerUnavailable(GatewayError):
    """No worker can take the request, or the chosen one cannot be reached."""

    status = 503
    type = "worker_unavailable"


class WorkerTimeout(GatewayError):
    """A worker did not answer within WORKER_REQUEST_TIMEOUT."""

    status = 504
    type = "worker_timeout"


class StoreUnavailable(GatewayError):
    """The job could not be written to the store, so it was not accepted (the client may retry)."""

    status = 503
    type = "store_unavailable"

    def __init__(self, message: str = "the job could not be stored, so it was not accepted; try again (the gateway "
                                      "log says why)"):
        super().__init__(message)


class ComfyError(Exception):
    """An answer in ComfyUI's own shape (for ComfyUI-compatible routes): status plus body."""

    def __init__(self, status: int, body: dict | str | bytes | None, headers: dict | None = None):
        super().__init__(f"ComfyUI-style error {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def comfy_400(error_type: str, message: str, details: str = "", extra_info: dict | None = None,
              node_errors: dict | None = None) -> ComfyError:
    """A 400 in ComfyUI's /prompt error shape."""
    return ComfyError(400, {"error": {"type": error_type, "message": message, "details": details,
                                      "extra_info": extra_info or {}}, "node_errors": node_errors or {}})
