"""The room's roster: who may log in to the hub, each with a password of their own.

    flask --app labapp room roster alice bob carol --out roster.txt   # instructor added
    names = roster.load("roster.txt").names                          # the hub, the live view

One learner a line, `name password` (a `#` starts a comment); the admin's line
says `admin` after the password. Names are what a Linux account can carry
(lowercase letters, digits, `-`, `_`; 2-30 characters, a letter first), so a
learner's server can run as the account `jupyter-<name>` (tools/hub). The hub
(tools/hub/auth.py) lets in only these names, each with their own password;
`flask room progress --roster` lists every one of them, started or not.
"""
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from labapp.errors import LabError

NAME = re.compile(r"[a-z][a-z0-9_-]{1,29}")
MIN_PASSWORD = 8
# no look-alikes (0/O, 1/l/I): a password is read off a slip of paper
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


@dataclass
class Roster:
    passwords: dict = field(default_factory=dict)  # name -> password, in the file's order
    admins: set = field(default_factory=set)

    @property
    def names(self):
        return list(self.passwords)

    @property
    def learners(self):
        return [n for n in self.passwords if n not in self.admins]

    def check(self, name, password):
        """True if `name` is on the roster and `password` is theirs (constant time)."""
        expected = self.passwords.get(name)
        return expected is not None and hmac.compare_digest(expected.encode(), (password or "").encode())

    def text(self):
        lines = ["# name password [admin]: one line per person (flask room roster)"]
        lines += [f"{n} {p}" + (" admin" if n in self.admins else "") for n, p in self.passwords.items()]
        return "\n".join(lines) + "\n"


def check_name(name, where=""):
    if not NAME.fullmatch(name):
        raise LabError(f"{where}{name!r} is not a roster name: 2-30 lowercase letters, digits, "
                       "- or _, starting with a letter")
    return name


def parse(text, source="roster"):
    roster = Roster()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{source}, line {number}: "
        if len(words) not in (2, 3) or (len(words) == 3 and words[2] != "admin"):
            raise LabError(f"{where}expected `name password` or `name password admin`")
        name, password = check_name(words[0], where), words[1]
        if name in roster.passwords:
            raise LabError(f"{where}{name} is on the roster twice")
        if len(password) < MIN_PASSWORD:
            raise LabError(f"{where}{name}'s password is shorter than {MIN_PASSWORD} characters")
        roster.passwords[name] = password
        if len(words) == 3:
            roster.admins.add(name)
    if not roster.passwords:
        raise LabError(f"{source}: nobody on the roster")
    return roster


def load(path):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LabError(f"cannot read the roster {path}: {exc.strerror}") from None
    return parse(text, str(path))


def new(names, admin="instructor", length=10):
    """A roster for `names` plus `admin`, each with a fresh random password."""
    roster = Roster()
    for name in [admin, *names]:
        check_name(name)
        if name in roster.passwords:
            raise LabError(f"{name} is on the roster twice")
        roster.passwords[name] = "".join(secrets.choice(ALPHABET) for _ in range(length))
    roster.admins.add(admin)
    return roster


def write(roster, path):
    """The roster holds passwords: only its owner (the hub's) reads it."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(roster.text())
    path.chmod(0o600)
    return path
