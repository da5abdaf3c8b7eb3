"""Baseline files: a model version's reference loaded from recorded events instead of learned live.

``INFERWATCH_BASELINE_DIR`` names a folder of JSON-lines files (``*.jsonl``, or
gzip-compressed ``*.jsonl.gz``, in any sub-folder) of native JSON inference events
(one per line, no Kafka headers, so no binary-mode CloudEvents): the files
``inferwatch replay`` and ``backtest`` read, such as traffic the model is known to
be healthy on.  When a
worker first sees a model version, :meth:`Baselines.get` reads that version's
events from every file (lines not naming the model are skipped unparsed), in the
worker's loop (keep a folder to what a few warm-ups need: megabytes), keeping
the first ``max_events``; its drift detectors then take their reference from them
and monitor from the version's first live event.  The ``baseline`` reference
command reads them again (after the files changed).

Nothing in a baseline stops a worker: a bad line is skipped and counted by its
dead-letter reason, a file that cannot be read (or a damaged gzip stream) by
``unreadable_file``, and both are logged with the file (and line).
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from streams.decoding import InferenceDecoder
from streams.errors import Rejected
from streams.line_files import numbered_lines
from streams.records import InferenceEvent
from streams.settings import Settings

__all__ = ["MAX_BASELINE_EVENTS", "BaselineRead", "Baselines", "baseline_files", "read_baseline"]

log = logging.getLogger(__name__)
#: Events of one version kept from its baseline (the first ones); a reference is summarised, so more
#: than a few warm-ups' worth adds little.
MAX_BASELINE_EVENTS = 20_000
#: Bad lines quoted in a read's problems (all are counted).
MAX_PROBLEMS = 20


@dataclass
class BaselineRead:
    """What reading baseline files found: events per ``(model, version)``, bad lines by reason, the first
    bad lines and unreadable files (``problems``), and the versions that had more than ``max_events``."""

    events: dict[tuple[str, str], list[InferenceEvent]] = field(default_factory=dict)
    files: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    capped: set[tuple[str, str]] = field(default_factory=set)

    def _problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def baseline_files(directory: Path) -> list[Path]:
    """The ``*.jsonl`` and ``*.jsonl.gz`` files under ``directory``, sorted; ``FileNotFoundError`` when
    it is not a folder."""
    if not directory.is_dir():
        raise FileNotFoundError(f"baseline folder {directory} does not exist or is not a folder")
    return sorted(p for p in directory.rglob("*") if p.is_file() and (p.name.endswith(".jsonl") or p.name.endswith(".jsonl.gz")))


def read_baseline(
    directory: Path, settings: Settings, *, model: str | None = None, version: str | None = None, max_events: int = MAX_BASELINE_EVENTS
) -> BaselineRead:
    """Events under ``directory`` (of ``model`` and ``version`` when given), at most ``max_events`` per
    version, decoded as the inference topic's messages are (``settings``: sizes, feature limit, KServe
    joining).  Reading one version stops at its first event past ``max_events``.  Raises
    ``FileNotFoundError`` only when ``directory`` is not a folder."""
    read = BaselineRead()
    # Lines not naming the model are skipped unparsed, unless JSON may write its name otherwise (escaped).
    plain = model is not None and model.isascii() and model.isprintable() and not any(c in model for c in '"\\/')
    needle = model.encode() if plain else b""
    for path in baseline_files(directory):
        read.files += 1
        decoder = InferenceDecoder(settings)  # KServe halves join within one file
        try:
            for n, line in numbered_lines(path):
                if needle not in line or not line.strip():  # white space only: no event, not a bad line
                    continue
                try:
                    events = decoder.decode(line)
                except Rejected as exc:
                    read.rejected[exc.reason] += 1
                    read._problem(f"{path}:{n}: {exc.reason}: {exc.detail}")
                    continue
                for event in events:
                    if (model is None or event.model == model) and (version is None or event.version == version):
                        kept = read.events.setdefault((event.model, event.version), [])
                        if len(kept) < max_events:
                            kept.append(event)
                            continue
                        read.capped.add((event.model, event.version))
                        if model is not None and version is not None:
                            return read  # all that one version's reference takes
        except (OSError, EOFError, zlib.error) as exc:  # unreadable, or a damaged gzip stream: what was read stays
            read.rejected["unreadable_file"] += 1
            read._problem(f"{path}: cannot be read: {exc}")
    return read


class Baselines:
    """The baselines in a folder (none when ``directory`` is empty), read per version when asked for."""

    def __init__(self, directory: str | Path | None, settings: Settings, *, max_events: int = MAX_BASELINE_EVENTS) -> None:
        self.directory = Path(directory) if directory else None
        self.settings = settings
        self.max_events = max_events

    def get(self, model: str, version: str) -> list[InferenceEvent] | None:
        """The version's baseline events in file order, or None when it has none (or no folder is set).
        Bad lines and unreadable files are logged, never raised."""
        if self.directory is None:
            return None
        try:
            read = read_baseline(self.directory, self.settings, model=model, version=version, max_events=self.max_events)
        except FileNotFoundError as exc:
            log.warning("no baseline for %s %s: %s", model, version, exc)
            return None
        except Exception:  # a bug reading baselines must not cost the live batch that asked for one
            log.exception("reading the baseline of %s %s failed; its reference is learned from live events", model, version)
            return None
        if read.rejected:
            log.warning("baseline of %s %s: skipped %d bad lines or files %s; first: %s", model, version,
                        sum(read.rejected.values()), dict(read.rejected), "; ".join(read.problems[:3]))
        if (model, version) in read.capped:
            log.info("baseline of %s %s: kept its first %d events", model, version, self.max_events)
        return read.events.get((model, version))
