"""Imports a file of usage records (CSV or JSON lines) and charges them in batches."""

import csv
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from charging.offline import BatchResult, RecordStatus, charging_batch_size, usage_batch_ingest
from portal.api.parsers import MAX_DEPTH, deeper_than, holds_nul

CSV_COLUMNS = ["external_id", "msisdn", "service", "quantity", "occurred_at", "zone", "unit"]
CSV_REQUIRED = {"external_id", "msisdn", "service", "quantity"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
REJECTIONS_SHOWN = 20
NUL_HELD = "holds a NUL character (\\u0000), which cannot be stored"


class Command(BaseCommand):
    help = (
        "Imports usage records from a CSV file (header: " + ",".join(CSV_COLUMNS) + ") or JSON lines, "
        "stores each once (a repeat changes nothing) and charges the accepted ones in batches."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format", choices=["csv", "jsonl"], help="Default: jsonl for .jsonl/.ndjson/.json files, else csv."
        )
        parser.add_argument(
            "--source", default="mediation", help="The feeding system; ids are unique per source (default: mediation)."
        )
        parser.add_argument(
            "--chunk-size", type=int, default=None, help="Records per batch (default: CHARGING_BATCH_SIZE)."
        )

    def handle(self, *args, **options):
        path: Path = options["file"]
        fmt = options["format"] or ("jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "csv")
        chunk_size = options["chunk_size"] or charging_batch_size()
        if chunk_size < 1:
            raise CommandError("--chunk-size must be positive")
        self.unreadable: list[str] = []
        try:
            total = sum(1 for _ in self._records(path, fmt))
            self.unreadable.clear()  # reported once, by the pass that imports
            totals = {RecordStatus.ACCEPTED: 0, RecordStatus.DUPLICATE: 0, RecordStatus.REJECTED: 0}
            rejections: list[str] = []
            done = 0
            records = self._records(path, fmt)
            while chunk := list(islice(records, chunk_size)):
                result = usage_batch_ingest(payloads=[payload for _, payload in chunk], source=options["source"])
                self._tally(result, chunk, totals, rejections)
                done += len(chunk)
                self.stdout.write(f"{done}/{total} records")
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc

        for problem in self.unreadable:
            self.stderr.write(problem)
        for rejection in rejections[:REJECTIONS_SHOWN]:
            self.stderr.write(rejection)
        if len(rejections) > REJECTIONS_SHOWN:
            self.stderr.write(f"... and {len(rejections) - REJECTIONS_SHOWN} more rejected (kept for replay).")
        self.stdout.write(
            f"{done} records: {totals[RecordStatus.ACCEPTED]} accepted, {totals[RecordStatus.DUPLICATE]} duplicate, "
            f"{totals[RecordStatus.REJECTED]} rejected"
        )
        if self.unreadable:
            raise CommandError(f"{len(self.unreadable)} lines could not be read")

    def _records(self, path: Path, fmt: str) -> Iterator[tuple[int, dict]]:
        """Yields (line number, record) pairs; a line that is no record is noted in ``unreadable``."""
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if fmt == "csv":
                yield from self._csv_records(handle, path)
            else:
                yield from self._jsonl_records(handle)

    def _csv_records(self, handle, path: Path) -> Iterator[tuple[int, dict]]:
        reader = csv.DictReader(handle)
        missing = CSV_REQUIRED - set(reader.fieldnames or [])
        if missing:
            raise CommandError(f"{path}: the CSV header lacks {', '.join(sorted(missing))}")
        for row in reader:
            # An empty cell means "not given", so the record's defaults apply (zone, unit, time).
            payload = {
                key: value.strip() for key, value in row.items() if key in CSV_COLUMNS and value and value.strip()
            }
            if holds_nul(payload):
                self.unreadable.append(f"line {reader.line_num}: {NUL_HELD}")
                continue
            yield reader.line_num, payload

    def _jsonl_records(self, handle) -> Iterator[tuple[int, dict]]:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                payload = json.loads(line)
            except json.JSONDecodeError as exc:
                self.unreadable.append(f"line {number}: not JSON ({exc.msg})")
                continue
            except (RecursionError, ValueError):  # past Python's nesting, or a number of thousands of digits
                self.unreadable.append(f"line {number}: not JSON (nested too deeply)")
                continue
            if not isinstance(payload, dict):
                self.unreadable.append(f"line {number}: not a JSON object")
                continue
            if deeper_than(payload, MAX_DEPTH):
                self.unreadable.append(f"line {number}: not JSON (nested too deeply)")
                continue
            if holds_nul(payload):
                self.unreadable.append(f"line {number}: {NUL_HELD}")
                continue
            yield number, payload

    def _tally(self, result: BatchResult, chunk: list[tuple[int, dict]], totals: dict, rejections: list[str]) -> None:
        for outcome in result.outcomes:
            totals[outcome.status] += 1
            if outcome.status == RecordStatus.REJECTED:
                number = chunk[outcome.index][0]
                reasons = "; ".join(f"{field}: {reason}" for field, reason in outcome.errors.items())
                rejections.append(f"line {number} ({outcome.external_id or 'no id'}): {reasons}")
