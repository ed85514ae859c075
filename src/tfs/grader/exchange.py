"""``nbgrader collect`` from the filesystem exchange, with every submission handled as hostile.

nbgrader 0.9.6 trusts the names in the shared ``inbound/`` folder, which every student can write: another user's
folder named as the victim's replaced the victim's work (the owner check only warns), links were followed (the
solution graded as the attacker's, the gradebook and the collector's environment copied into a submission),
``/dev/zero`` was copied until killed, and a malformed timestamp in one folder name ended ``collect`` before any
later student was collected. :class:`SafeCollect` (``c.ExchangeFactory.collect`` in ``nbgrader_config.py``):

- refuses, with an error in the log, a folder whose name does not parse (the student id must pass
  :func:`tfs.grader.intake.valid_student_id`, the timestamp nbgrader's parser), and collects the others;
- refuses a folder that is not a real folder owned by the user its name names, or that holds anything owned by
  another user, a link, a device, a FIFO, a malformed ``timestamp.txt`` or oversized files (checked with
  ``lstat``, nothing followed); that student's latest submission of their own is collected instead;
- copies with :func:`tfs.grader.intake.copy_tree`: no-follow opens, regular files only, sizes capped while copying.

The owner check needs each student's uid: their account on this machine (a JupyterHub server with local users), or
``SafeCollect.student_uids`` (a hub that gives each user a uid of its own, as ``hub/z2jh/`` does). Where every student
runs as the same user, folder owners prove nothing: see INSTRUCTORS.md ("The exchange").
"""

from __future__ import annotations

import datetime
import os
import pwd
import shutil
from pathlib import Path

from nbgrader.exchange import ExchangeError
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import ignore_patterns
from traitlets import Dict, Integer

from tfs.grader import intake

REFUSED = "\0refused "  # the username of a refused record: a group of its own, which no real student id matches
EPOCH = datetime.datetime(1970, 1, 1)


class SafeCollect(ExchangeCollect):
    """nbgrader's filesystem ``collect``, taking only folders that are their named student's own (see module)."""

    limits = intake.Limits()
    student_uids = Dict(value_trait=Integer(), help="the uid owning each student's folders, where the student has "
                        "no account on this machine (a hub whose spawner sets one uid per user)").tag(config=True)

    def _path_to_record(self, path: str) -> dict:
        filename = os.path.basename(path)
        try:
            record = super()._path_to_record(path)
        except (ValueError, OverflowError, ExchangeError) as error:
            return self._refused(filename, f"its name is not <student>+<assignment>+<timestamp>+<random> ({error})")
        reasons = self._problems(Path(path), record["username"])
        return self._refused(filename, "; ".join(reasons)) if reasons else record

    def _refused(self, filename: str, reason: str) -> dict:
        return {"username": REFUSED + filename, "filename": filename, "timestamp": EPOCH, "refused": reason}

    def _problems(self, folder: Path, student: str) -> list[str]:
        if not intake.valid_student_id(student):
            return [f"{student!r} is not a valid student id"]
        found = intake.problems(folder, self.limits)
        if found or not self.check_owner:
            return found
        try:
            uid = self.student_uids[student] if student in self.student_uids else pwd.getpwnam(student).pw_uid
        except KeyError:
            return [f"there is no user {student!r} on this machine to own it (set SafeCollect.student_uids)"]
        strangers = [path for path in _tree(folder) if os.lstat(path).st_uid != uid]
        return [f"{os.path.relpath(path, folder.parent)} is not owned by {student}" for path in strangers[:5]]

    def copy_files(self) -> None:
        for record in self.src_records:
            if "refused" in record:
                self.log.error("Refusing the submission %s: %s", record["filename"], record["refused"])
        self.src_records = [record for record in self.src_records if "refused" not in record]
        super().copy_files()

    def do_copy(self, src: str, dest: str, log=None) -> None:
        ignore = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                 max_file_size=self.coursedir.max_file_size, log=self.log)
        try:
            intake.copy_tree(Path(src), Path(dest), self.limits, ignore=ignore)
        except intake.Refused as error:
            shutil.rmtree(dest, ignore_errors=True)
            self.log.error("Refusing the submission %s while copying it: %s", os.path.basename(src), error)


def _tree(folder: Path) -> list[str]:
    """``folder`` and everything in it, nothing followed."""
    found = [str(folder)]
    for parent, folders, names in os.walk(folder):
        found += [os.path.join(parent, name) for name in folders + names]
    return found
