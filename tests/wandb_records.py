"""Read back an offline W&B run file (``run-*.wandb``): leveldb-log blocks of protobuf records."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
HEADER = 7  # ":W&B" + magic (2 bytes) + version


def read_records(path: Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, pos = [], b"", HEADER
    while pos + 7 <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def summarize_run(path: Path) -> dict:
    """Run attributes, config, summary and logged history keys of an offline run file."""
    out = {"config": {}, "summary": {}, "history": {}, "run": None}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = {
                "group": record.run.run_group,
                "job_type": record.run.job_type,
                "name": record.run.display_name,
            }
            for item in record.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                out["summary"][item.key or ".".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "history":
            for item in record.history.item:
                out["history"][item.key or ".".join(item.nested_key)] = json.loads(item.value_json)
    return out
