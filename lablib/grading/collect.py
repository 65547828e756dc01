"""`lablib collect SOURCE`: put submissions where `lablib grade` finds them.

SOURCE is a folder or a `.zip` file (an LMS "download all submissions"); a zip is read as if it
were unpacked. Accepted layouts (they may be mixed):

1. one folder per student: `<student>/01_layers.ipynb ...` (the notebooks may sit deeper inside the
   student's folder, e.g. `<student>/backprop-lab/01_layers.ipynb` as nbgrader keeps them; a zip
   holding one top folder around all of this is fine too). Moodle's folders
   (`Jane Doe_98765_assignsubmission_file_/`) give the student id `Jane-Doe_98765`;
2. flat files named `<student>_<notebook>` (`alice_01_layers.ipynb`), including LMS names that put
   more between the student and the notebook (`alice_12345_67890_01_layers.ipynb`, Canvas style)
   or a resubmission or copy suffix (`alice_01_layers-1.ipynb`, `alice_01_layers (1).ipynb`,
   `alice_01_layers-Copy1.ipynb`): the student id is the text before the first underscore.

The notebook names are those of the lab (`notebooks/NN_*.ipynb`). Each student's notebooks are
copied to `<build>/course/submitted/<student>/backprop-lab/`, with nbgrader's `timestamp.txt` (the time of collection, as
`nbgrader collect` writes it; formgrader compares it with the gradebook's to call a submission
autograded). A student's new submission replaces their earlier one, as an LMS's latest submission
does (other students are left alone); the earlier one is moved to
`<build>/course/replaced/<student>/<time of collection>/`, and the report names the notebooks it
had that the new one lacks (they are graded as missing). Anything that cannot be placed is reported,
never fatal: an
unknown notebook name, a student id with characters other than letters, digits, `.`, `_`, `-`,
`@`, two files for the same student and notebook, an unreadable zip member. A notebook that is not
valid JSON is still collected: `lablib grade` reports it as a malformed notebook.

Why not nbgrader's `zip_collect` and its `FileNameCollectorPlugin`: that plug-in maps one file
name to (student, file) through a course-specific regular expression, and `zip_collect` expects
its own `downloaded/<assignment>/archive/` layout and one layout per run. Here the lab's notebook
names are known, so no regular expression is needed; both layouts may be mixed in one zip; and
unsafe zip paths, oversized files and clashing resubmissions are refused and reported.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import paths
from .results import umask

__all__ = ["CollectError", "Collected", "collect", "MAX_NOTEBOOK_BYTES"]

#: A submitted notebook larger than this is refused (reported), in bytes.
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
#: nbgrader's submission timestamp: the file and its format (nbgrader.utils.parse_utc reads it).
TIMESTAMP_FILE, TIMESTAMP_FORMAT = "timestamp.txt", "%Y-%m-%d %H:%M:%S.%f %Z"
_STUDENT = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9._@-]{0,99}$")
#: What an LMS or a file manager appends to a notebook's name: "-1" (a resubmission), " (1)", "-Copy1".
_RESUBMISSION = re.compile(r"(-\d+| \(\d+\)|-Copy\d*)$")
#: Moodle's "download all submissions": one folder per student, "<full name>_<participant number>_assignsubmission_file_".
_MOODLE = re.compile(r"^(.+_\d+)_assignsubmission_[a-z]+_?$")
#: Where a replaced submission is kept, under the course folder (nbgrader does not look there).
REPLACED_FOLDER = "replaced"


class CollectError(ValueError):
    """SOURCE cannot be collected at all (does not exist, not a folder or zip)."""


@dataclass
class Collected:
    """students: {student: [notebook names]} collected now. problems: what was not collected, and why."""

    students: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    folder: Path | None = None
    #: A submission that replaced an earlier one: what the earlier one had that this one lacks, where it is kept.
    replaced: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        lines = [f"Collected {sum(map(len, self.students.values()))} notebook(s) of {len(self.students)} "
                 f"student(s) into {self.folder}"]
        for student, notebooks in sorted(self.students.items()):
            lines.append(f"  {student}: {', '.join(notebooks)}")
        if self.replaced:
            lines.append(f"{len(self.replaced)} earlier submission(s) replaced:")
            lines += [f"  {r}" for r in self.replaced]
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _entries_from_folder(source: Path) -> list[tuple[PurePosixPath, Path]]:
    return [(PurePosixPath(p.relative_to(source).as_posix()), p) for p in sorted(source.rglob("*.ipynb"))
            if p.is_file() and ".ipynb_checkpoints" not in p.parts and "__MACOSX" not in p.parts]


def _unzip(source: Path, into: Path, problems: list[str]) -> None:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as err:
        raise CollectError(f"{source} is not a readable zip file ({err})") from None
    with archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or not name.name.endswith(".ipynb"):
                continue
            if name.is_absolute() or ".." in name.parts or "__MACOSX" in name.parts:
                problems.append(f"{info.filename}: skipped (a path outside the archive's folder)")
                continue
            if info.file_size > MAX_NOTEBOOK_BYTES:
                problems.append(f"{info.filename}: skipped ({info.file_size} bytes, more than "
                                f"{MAX_NOTEBOOK_BYTES})")
                continue
            target = into.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as err:
                problems.append(f"{info.filename}: could not be read from the zip ({err})")
                target.unlink(missing_ok=True)


def _moodle_student(folder: str) -> str:
    """The student id of a Moodle submission folder ("Jane Doe_98765_assignsubmission_file_" ->
    "Jane-Doe_98765": the name and Moodle's participant number, spaces as '-'); other names unchanged."""
    match = _MOODLE.match(folder)
    if not match:
        return folder
    ascii_name = unicodedata.normalize("NFKD", match.group(1)).encode("ascii", "ignore").decode()  # É -> E
    return re.sub(r"[^A-Za-z0-9._@-]+", "-", ascii_name).strip("-") or folder


def _bare(name: str) -> str:
    """The notebook name without an LMS resubmission suffix (`01_layers-1.ipynb` -> `01_layers.ipynb`)."""
    return _RESUBMISSION.sub("", name[:-len(".ipynb")]) + ".ipynb"


def _place(rel: PurePosixPath, notebooks: set[str]) -> tuple[str, str] | str:
    """(student, notebook) for an entry, or the reason it cannot be placed."""
    stem = _bare(rel.name)
    if stem in notebooks and len(rel.parts) > 1:
        return ("", stem)  # in a student's folder: the student is the first folder
    for notebook in sorted(notebooks, key=len, reverse=True):
        if stem.endswith("_" + notebook):
            prefix = stem[:-len(notebook) - 1]
            return (prefix.split("_", 1)[0], notebook)
    return f"not a notebook of the lab (expected {', '.join(sorted(notebooks))})"


def collect(source: str | os.PathLike, build: str | os.PathLike | None = None, *,
            notebooks: list[str] | None = None) -> Collected:
    """Copy the submissions in `source` (folder or zip) into the course's submitted folder."""
    source = Path(source)
    if not source.exists():
        raise CollectError(f"no such file or folder: {source}")
    known = set(notebooks or [p.name for p in paths.source_notebooks()])
    result = Collected(folder=paths.submitted_root(build))
    with tempfile.TemporaryDirectory(prefix="lablib-collect-") as tmp:
        if source.is_dir():
            root = source
        elif zipfile.is_zipfile(source):
            root = Path(tmp) / "unzipped"
            root.mkdir()
            _unzip(source, root, result.problems)
        else:
            raise CollectError(f"{source} is neither a folder nor a zip file")
        entries = _entries_from_folder(root)
        # a zip (or folder) with one top folder around all the students: look inside it
        tops = {rel.parts[0] for rel, _ in entries if len(rel.parts) > 1}
        flat = [rel for rel, _ in entries if len(rel.parts) == 1]
        strip = 0
        if len(tops) == 1 and not flat:
            seconds = {rel.parts[1] for rel, _ in entries if len(rel.parts) > 2}
            named = any(len(rel.parts) == 2 and _place(rel, known) != ("", _bare(rel.name)) for rel, _ in entries)
            strip = 1 if len(seconds) > 1 or named else 0
        found: dict[str, dict[str, Path]] = {}
        for rel, path in entries:
            rel = PurePosixPath(*rel.parts[strip:]) if len(rel.parts) > strip else rel
            placed = _place(rel, known)
            if isinstance(placed, str):
                result.problems.append(f"{rel}: skipped, {placed}")
                continue
            student, notebook = placed
            if not student:
                student = _moodle_student(rel.parts[0])
            if not _STUDENT.match(student):
                result.problems.append(f"{rel}: skipped, the student id {student!r} has characters other than "
                                       "letters, digits, '.', '_', '-', '@'")
                continue
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                result.problems.append(f"{rel}: skipped (larger than {MAX_NOTEBOOK_BYTES} bytes)")
                continue
            mine = found.setdefault(student, {})
            if notebook in mine:
                result.problems.append(f"{rel}: skipped, {student} already has {notebook} "
                                       f"({mine[notebook].relative_to(root)})")
                continue
            mine[notebook] = path
        dest_root = paths.submitted_root(build)
        now = datetime.datetime.now(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)
        for student, files in sorted(found.items()):
            dest = dest_root / student / paths.ASSIGNMENT_ID
            staging = Path(tempfile.mkdtemp(prefix=f".{student}.", dir=_mkdir(dest_root)))
            for notebook, path in files.items():
                shutil.copyfile(path, staging / notebook)
            (staging / TIMESTAMP_FILE).write_text(now)
            os.chmod(staging, 0o777 & ~umask())  # mkdtemp's 0700 would hide it from a second TA
            if dest.exists():
                result.replaced.append(_keep_replaced(dest, paths.course_root(build), student, sorted(files)))
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(dest)
            result.students[student] = sorted(files)
    return result


def _keep_replaced(dest: Path, course: Path, student: str, new: list[str]) -> str:
    """Move a student's earlier submission out of the way (kept, never deleted); say what it had that
    the new one lacks."""
    earlier = sorted(p.name for p in dest.glob("*.ipynb"))
    stamp = dest / TIMESTAMP_FILE
    when = stamp.read_text().strip() if stamp.is_file() else "an earlier collection"
    keep = course / REPLACED_FOLDER / student / re.sub(r"[^0-9A-Za-z.-]+", "-", when)
    keep.parent.mkdir(parents=True, exist_ok=True)
    while keep.exists():
        keep = keep.with_name(keep.name + "+")
    dest.rename(keep)
    lacks = [n for n in earlier if n not in new]
    text = f"{student}: replaces the submission collected at {when}"
    if lacks:
        text += (f"; the new one lacks {', '.join(lacks)}, which will be graded as missing (if the student "
                 f"meant to resubmit only some notebooks, copy those from the earlier one back into "
                 f"{dest.relative_to(course)})")
    return f"{text}; the earlier files are kept in {keep}"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
