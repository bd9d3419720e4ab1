"""How the dashboard is served: privately on this computer, or publicly to a class.

`make serve-class` sets `DIGITLAB_PUBLIC=1` and `DIGITLAB_CLASS_MODE=1` and serves the LAN.
Served publicly (either variable), the pages show no absolute server path (`display_path`)
and accept as a data folder only one of those the server offers (`allowed_data_folders`:
`$DIGITLAB_DATA_DIRS`, os.pathsep-separated, plus the MNIST download cache), answering the
same whether a typed path exists or not, so the page is no way to probe the server's files.

Class mode adds people: each run belongs to a person (`owner_key` of their name, from the
login when the operator enabled one, else a name typed once); anyone may look at anyone's
run, only its owner may rename, continue or delete it, and a teacher (`is_teacher`) may
publish a run to the class. Nothing here touches a page or Streamlit.
"""

from __future__ import annotations

import hmac
import os
import unicodedata
from pathlib import Path

from digits_core.data.mnist import mnist_home
from digits_core.errors import ConfigError
from digits_core.store.runs import default_runs_dir

PUBLIC_ENV = "DIGITLAB_PUBLIC"  # "1": served to others (`make serve-class`)
CLASS_ENV = "DIGITLAB_CLASS_MODE"  # "1": per-person runs (`make serve-class`)
TEACHERS_ENV = "DIGITLAB_TEACHERS"  # logins (names or e-mails, comma-separated) that teach
TEACHER_CODE_ENV = "DIGITLAB_TEACHER_CODE"  # a code that makes whoever types it a teacher
DATA_DIRS_ENV = "DIGITLAB_DATA_DIRS"  # extra data folders a public server offers
MAX_PATH_TEXT = 1024  # characters of a typed folder
MAX_NAME = 40  # characters of a person's name


def served_publicly() -> bool:
    """True when the dashboard is served to other computers (`$DIGITLAB_PUBLIC` or
    `$DIGITLAB_CLASS_MODE` is 1)."""
    return os.environ.get(PUBLIC_ENV, "").strip() == "1" or class_mode()


def class_mode() -> bool:
    """True when runs belong to people (`$DIGITLAB_CLASS_MODE` is 1)."""
    return os.environ.get(CLASS_ENV, "").strip() == "1"


def person_name(text: object) -> str:
    """A name a person typed -> the name as shown (spaces collapsed), or ConfigError.

    Letters of any script, digits, spaces and . - _ ' are allowed, up to MAX_NAME
    characters; a name must hold at least one letter or digit.
    """
    if not isinstance(text, str):
        raise ConfigError("type your name")
    name = " ".join(unicodedata.normalize("NFC", text).split())
    if not name:
        raise ConfigError("type your name")
    if len(name) > MAX_NAME:
        raise ConfigError(f"a name has at most {MAX_NAME} characters")
    if not any(c.isalnum() for c in name):
        raise ConfigError("a name needs a letter or a digit")
    bad = sorted({c for c in name if not (c.isalnum() or c in " .-_'")})
    if bad:
        raise ConfigError(f"a name cannot hold {' '.join(repr(c) for c in bad[:5])}")
    return name


def owner_key(name: str) -> str:
    """The owner a person's runs carry: '@' and their name, case-folded ('@ada lovelace'),
    so 'Ada' and 'ada' are one person and no session id (letters, digits, - and _) is one."""
    return "@" + person_name(name).casefold()


def is_teacher(*, login: str | None = None, code: str | None = None) -> bool:
    """A teacher: a login (name or e-mail) listed in `$DIGITLAB_TEACHERS`, or whoever typed
    `$DIGITLAB_TEACHER_CODE`. A typed name alone never makes a teacher."""
    if login:
        listed = {t.strip().casefold() for t in os.environ.get(TEACHERS_ENV, "").split(",") if t.strip()}
        if login.strip().casefold() in listed:
            return True
    secret = os.environ.get(TEACHER_CODE_ENV, "")
    return bool(secret and code) and hmac.compare_digest(secret.encode(), str(code).strip().encode())


def allowed_data_folders() -> list[Path]:
    """The data folders a public server offers: `$DIGITLAB_DATA_DIRS`, then the download cache.

    Absolute and normalised (`~` expanded, no `..`), without touching the file system.
    """
    texts = [t for t in os.environ.get(DATA_DIRS_ENV, "").split(os.pathsep) if t.strip()]
    folders = [_absolute(t.strip()) for t in texts] + [_absolute(mnist_home() / "mnist")]
    return list(dict.fromkeys(folders))


def check_data_folder(text: str) -> Path:
    """A data folder typed by a user -> its path, or ConfigError (one line).

    Public: only one of `allowed_data_folders()`, named by its path or as `display_path`
    shows it; anything else gets the same message whether it exists or not, and the file
    system is not consulted. Private: any folder (`~` expanded); the data loader says what
    is missing in it.
    """
    text = text.strip() if isinstance(text, str) else ""
    if not text or len(text) > MAX_PATH_TEXT or "\x00" in text:
        raise ConfigError("type the path of a folder")
    if not served_publicly():
        return Path(text).expanduser()
    for folder in allowed_data_folders():
        if text == display_path(folder) or (os.path.isabs(text) and _absolute(text) == folder):
            return folder
    offered = ", ".join(display_path(f) for f in allowed_data_folders())
    raise ConfigError(f"this server reads data only from the folders it offers: {offered}")


def display_path(path: str | os.PathLike) -> str:
    """A path as the pages show it.

    Public: relative to the runs folder or a data folder it lies in (prefixed with that
    folder's name), else just its final name: never an absolute server path. Private: the
    full path, with `~` for the home directory.
    """
    p = _absolute(path)
    if served_publicly():
        for root in (_absolute(default_runs_dir()), *allowed_data_folders()):
            if p == root or root in p.parents:
                return str(Path(root.name) / p.relative_to(root))
        return p.name
    home = _absolute(Path.home())
    if p == home or home in p.parents:
        return str(Path("~") / p.relative_to(home))
    return str(p)


def _absolute(path: str | os.PathLike) -> Path:
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(path)))))


__all__ = [
    "CLASS_ENV",
    "DATA_DIRS_ENV",
    "PUBLIC_ENV",
    "TEACHERS_ENV",
    "TEACHER_CODE_ENV",
    "allowed_data_folders",
    "check_data_folder",
    "class_mode",
    "display_path",
    "is_teacher",
    "owner_key",
    "person_name",
    "served_publicly",
]
