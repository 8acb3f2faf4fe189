"""A server's long-term-retention backup operations, as ``GET .../flexibleServers/{name}/ltrBackupOperations``
(a list paged by ``nextLink``) and ``.../ltrBackupOperations/{backupName}`` show them at api-version 2024-08-01.

A scenario gives a server ``ltr_backups``, a list of operations, each a dict:

    name          the backupName (with ``repeat``: the stem of ``{name}-001`` ...)
    status        what Azure says: Succeeded, Failed, Cancelled, Running (an extensible enum: anything goes)
    started_ago   seconds before the simulator started (or was reset) that the backup began
    duration      seconds it takes (a Running one progresses with wall time, then becomes ``ends_as``)
    ends_as       what a Running one becomes once its duration has passed (Succeeded)
    size          datasourceSizeInBytes; ``transferred`` dataTransferredInBytes (default: a third of it)
    percent       where a Failed or Cancelled one stopped (default 100 for Succeeded, 37.5 otherwise)
    error_code, error_message   for Failed (default: a storage SAS that expired mid-copy)
    metadata      backupMetadata
    repeat, every N operations, ``every`` seconds apart, the newest ``started_ago`` ago (for paging)

and optionally ``ltr_behaviour``: a behaviour (state.BEHAVIOUR_DEFAULTS) for these reads only, e.g.
``{"outcome": "unavailable", "fail_times": 1}`` for a 503 and then success.
"""

import datetime

# (state.py loads scenarios through this module, so the namespace is spelled out here, not imported.)
OPERATION_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers/ltrBackupOperations"
READ_ACTION = "Microsoft.DBforPostgreSQL/flexibleServers/ltrBackupOperations/read"
DEFAULT_ERROR = (
    "UserErrorSasUriExpired",
    "The SAS URI of the storage container expired while the backup was being copied. Request a new SAS URI "
    "from the Backup vault and start the backup again.",
)
KNOWN_KEYS = {"name", "status", "started_ago", "duration", "ends_as", "size", "transferred", "percent",
              "error_code", "error_message", "metadata", "repeat", "every"}


def expand(specs: list[dict], epoch: float) -> list[dict]:
    """The scenario's operations, ``repeat`` unrolled, each with its absolute ``start`` (epoch seconds)."""
    operations = []
    for spec in specs:
        unknown = set(spec) - KNOWN_KEYS
        if unknown:
            raise ValueError(f"unknown ltr_backups keys: {sorted(unknown)}")
        repeat = int(spec.get("repeat", 1))
        for i in range(repeat):
            name = f"{spec['name']}-{i + 1:03}" if repeat > 1 else spec["name"]
            ago = float(spec.get("started_ago", 3600)) + (repeat - 1 - i) * float(spec.get("every", 86400))
            operations.append(_normalised(spec, name, epoch - ago))
    return operations


def _normalised(spec: dict, name: str, start: float) -> dict:
    status = spec.get("status", "Succeeded")
    size = int(spec.get("size", 39766487))
    code, message = DEFAULT_ERROR if status == "Failed" else ("", "")
    return {
        "name": name, "status": status, "start": start, "duration": float(spec.get("duration", 366)),
        "ends_as": spec.get("ends_as", "Succeeded"), "size": size,
        "transferred": int(spec.get("transferred", size // 3)),
        "percent": float(spec.get("percent", 100.0 if status == "Succeeded" else 37.5)),
        "error_code": spec.get("error_code", code), "error_message": spec.get("error_message", message),
        "metadata": spec.get("metadata", ""),
    }


def _stamp(epoch: float) -> str:
    # As the recorded answers print them: 2026-01-08T16:10:37.357Z
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _progress(op: dict, now: float) -> tuple[str, float, float | None]:
    """(status, percentComplete, end epoch or None) at ``now``: a Running one moves with wall time."""
    end = op["start"] + op["duration"]
    if op["status"] != "Running":
        return op["status"], op["percent"], end
    if now >= end:
        return op["ends_as"], 100.0 if op["ends_as"] == "Succeeded" else op["percent"], end
    return "Running", round(max(0.0, now - op["start"]) / op["duration"] * 100, 1), None


def resource(server_id: str, op: dict, now: float) -> dict:
    """One operation as ARM answers it (the LtrServerBackupOperation of the spec)."""
    status, percent, end = _progress(op, now)
    properties = {
        "backupName": op["name"],
        "datasourceSizeInBytes": op["size"],
        "dataTransferredInBytes": op["transferred"] if status != "Running" else int(op["transferred"] * percent / 100),
        "backupMetadata": op["metadata"],
        "status": status,
        "startTime": _stamp(op["start"]),
        "percentComplete": percent,
    }
    if end is not None:
        properties["endTime"] = _stamp(end)
    if op["error_code"] and status not in ("Running", "Succeeded"):
        properties["errorCode"], properties["errorMessage"] = op["error_code"], op["error_message"]
    return {"properties": properties, "id": f"{server_id}/ltrBackupOperations/{op['name']}", "name": op["name"],
            "type": OPERATION_TYPE}
